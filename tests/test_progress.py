"""The build's progress (issue 9): the `progress` callable of `Builder` / `build_set`, the tqdm
bar `derivgen build` draws on a terminal only (not in a pipe, not with --quiet), and the PDFs
that failed in the summary line."""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

import pytest

import derivgen.cli as cli
import derivgen.pdf  # noqa: F401  (the module, through sys.modules: see DEVELOPERS.md)
from derivgen.api import build_set, find_set
from derivgen.build import BuildResult

ROOT = Path(__file__).resolve().parent.parent
PDF = sys.modules["derivgen.pdf"]
PROBLEMS = ["n000_atxb", "n002_trace", "n002_xtx"]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def course(tmp_path: Path) -> Path:
    folder = tmp_path / "course"
    folder.mkdir()
    for pid in PROBLEMS:
        shutil.copy(ROOT / "problems" / f"{pid}.yaml", folder / f"{pid}.yaml")
    return folder


def _require_tex() -> None:
    missing = PDF.tex_available("en")
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"TeX is needed in CI: {missing}", pytrace=False)
    pytest.skip(missing)


def _run(monkeypatch: pytest.MonkeyPatch, stderr: io.StringIO, *argv: str) -> tuple[int, str, str]:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", stderr)
    status = cli.main(list(argv))
    return status, out.getvalue(), stderr.getvalue()


def test_build_set_reports_documents_in_order_then_nothing_when_cached(course: Path, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    found = find_set(course, "md,json")
    result = build_set(found, tmp_path / "out", progress=lambda *a: calls.append(a))
    assert not result.failed
    assert calls == [("documents", n, 3) for n in range(4)]
    calls.clear()
    build_set(found, tmp_path / "out", progress=lambda *a: calls.append(a))
    assert calls == []  # every document from the cache: nothing to derive, no PDF


def test_build_set_counts_pdfs_compiled(course: Path, tmp_path: Path) -> None:
    _require_tex()
    calls: list[tuple[str, int, int]] = []
    result = build_set(find_set(course, "pdf"), tmp_path / "out", progress=lambda *a: calls.append(a))
    assert not result.errors and not result.pdf_failed
    pdfs = [c for c in calls if c[0] == "pdfs"]
    total = len(PROBLEMS) + 3  # each problem's, solutions, sheet, answers
    assert pdfs == [("pdfs", n, total) for n in range(total + 1)]
    assert calls.index(("documents", 3, 3)) < calls.index(("pdfs", 0, total))


def test_a_bar_on_a_terminal(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.ProgressBar, "DELAY", 0)  # at once, for the test (0.5 s in use)
    monkeypatch.setattr(cli.ProgressBar, "MININTERVAL", 0)  # every step drawn
    status, out, err = _run(monkeypatch, FakeTTY(), "build", str(course), "-o", str(tmp_path / "out"),
                            "--format", "md,json")
    assert status == 0
    assert "deriving" in err and "3/3" in err and "problem" in err
    assert "\r" in err  # drawn in place
    assert out.strip().startswith("built 3 problems") and "deriving" not in out


def test_the_bar_shows_pdfs_compiled(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_tex()
    monkeypatch.setattr(cli.ProgressBar, "DELAY", 0)
    monkeypatch.setattr(cli.ProgressBar, "MININTERVAL", 0)
    status, out, err = _run(monkeypatch, FakeTTY(), "build", str(course), "-o", str(tmp_path / "out"),
                            "--format", "pdf")
    assert status == 0, out + err
    assert "compiling PDFs" in err and "6/6" in err
    assert "PDFs failed" not in out


def test_a_quick_build_shows_no_bar(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    _run(monkeypatch, FakeTTY(), "build", str(course), "-o", str(out), "--format", "md")
    monkeypatch.setattr(cli.ProgressBar, "DELAY", 30)  # a stage ends long before the bar would show
    (course / "n000_atxb.yaml").write_text((course / "n000_atxb.yaml").read_text() + "# edited\n")
    status, _, err = _run(monkeypatch, FakeTTY(), "build", str(course), "-o", str(out), "--format", "md")
    assert status == 0 and err == ""


@pytest.mark.parametrize("stderr, argv", [(io.StringIO(), ()), (FakeTTY(), ("--quiet",))],
                         ids=["not a terminal", "quiet"])
def test_no_bar_in_a_pipe_or_with_quiet(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        stderr: io.StringIO, argv: tuple[str, ...]) -> None:
    monkeypatch.setattr(cli.ProgressBar, "DELAY", 0)
    status, _, err = _run(monkeypatch, stderr, "build", str(course), "-o", str(tmp_path / "out"),
                          "--format", "md,json", *argv)
    assert status == 0
    assert err == ""


def test_the_summary_counts_pdfs_that_failed(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No TeX here (as far as the build knows): every PDF fails, the other formats are built.
    monkeypatch.setattr(PDF, "tex_available", lambda lang="en", tex=None: "PDF output needs pdflatex")
    status, out, err = _run(monkeypatch, io.StringIO(), "build", str(course), "-o", str(tmp_path / "out"),
                            "--format", "md,pdf")
    assert status == 1
    assert "cannot make PDFs" in err
    assert "; 6 PDFs failed;" in out and "built 3 problems" in out
    assert not list((tmp_path / "out").glob("*.pdf"))
    assert cli.summary(BuildResult(pdf_failed=["a.pdf"]), Path("out")).count("1 PDF failed") == 1
    assert "failed" not in cli.summary(BuildResult(), Path("out"))

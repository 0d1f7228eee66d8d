"""How many times TeX runs for a PDF (derivgen.pdf): once when its log asks for no rerun.

A handout compiles in one engine run (hyperref's outlines written in that run through the
`bookmark` hook), with its bookmarks; a document with cross-references or a table of contents
is run again until it settles, and shows the resolved numbers. Needs TeX (skipped without it,
except with CI=true).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

import derivgen.pdf as pdf
from derivgen.errors import RenderError
from derivgen.latex import render_problem_tex
from derivgen.pipeline import problem_document

ROOT = Path(__file__).resolve().parent.parent


def _require_tex(lang: str = "en") -> None:
    missing = pdf.tex_available(lang)
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"TeX is needed in CI: {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The program of every TeX run `compile_pdf` starts (pdflatex, xelatex, latexmk)."""
    started: list[str] = []
    real = pdf._run_tex

    def counting(argv, *args, **kwargs):
        started.append(Path(argv[0]).name)
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(pdf, "_run_tex", counting)
    return started


def _text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _outlines(path: Path) -> list[str]:
    xml = subprocess.run(["pdftohtml", "-xml", "-stdout", "-i", "-q", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return re.findall(r'<item page="\d+">([^<]*)</item>', xml)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_handout_compiles_in_one_run_with_its_bookmarks(lang: str, tmp_path: Path, runs: list[str]) -> None:
    _require_tex(lang)
    doc = problem_document(ROOT / "problems" / "n001_trace_axbxtc.yaml", lang=lang)
    out = tmp_path / "p.pdf"
    pdf.compile_pdf(render_problem_tex(doc, lang=lang), out, lang, log=tmp_path / "p.log")
    assert runs == ["xelatex" if lang == "zh" else "pdflatex"]
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    outlines = _outlines(out)
    assert len(outlines) >= 3, outlines  # the problem, its parts, the result: written in the one run
    assert any("tr(AXBXTC)" in item for item in outlines) or lang == "zh"
    log = (tmp_path / "p.log").read_text(encoding="utf-8", errors="replace")
    asks = [m.group(0) for m in pdf._RERUN.finditer(log)]
    # XeTeX's hyperref asks for a rerun for the /PageLabels entry, the default labels 1, 2, …
    assert asks == ([] if lang == "en" else ["Rerun to get"]), asks
    assert lang == "en" or "Rerun to get /PageLabels entry." in log


def test_cross_references_and_contents_run_again_until_they_settle(tmp_path: Path, runs: list[str]) -> None:
    _require_tex()
    tex = "\n".join([
        r"\documentclass{article}",
        r"\usepackage{hyperref}",
        r"\begin{document}",
        r"\tableofcontents",
        r"\section{First}\label{first}",
        r"See section~\ref{second} on page~\pageref{second}.",
        r"\section{Second}\label{second}",
        r"Back to section~\ref{first}.",
        r"\end{document}",
    ])
    out = tmp_path / "refs.pdf"
    pdf.compile_pdf(tex, out)
    assert runs == ["pdflatex", "pdflatex"]
    text = _text(out)
    assert "??" not in text
    assert "See section 2 on page 1." in text
    assert re.search(r"Contents\s+1\s+First\s+1\s+2\s+Second", text), text
    assert _outlines(out) == ["First", "Second"]


def test_a_table_of_contents_alone_is_run_again(tmp_path: Path, runs: list[str]) -> None:
    _require_tex()
    tex = "\\documentclass{article}\n\\begin{document}\n\\tableofcontents\n\\section{Only}\nx\n\\end{document}\n"
    out = tmp_path / "toc.pdf"
    pdf.compile_pdf(tex, out)
    assert runs == ["pdflatex", "pdflatex"]
    assert re.search(r"Contents\s+1\s+Only\s+1", _text(out))


def test_a_document_that_never_settles_goes_to_latexmk_and_no_partial_pdf_is_left(
        tmp_path: Path, runs: list[str]) -> None:
    _require_tex()
    # Asks for a rerun on every run: the direct runs stop at MAX_RUNS and latexmk takes over
    # (which gives up after its own maximum: an error, and no PDF).
    tex = "\\documentclass{article}\n\\begin{document}\nx\\typeout{Rerun to get it right}\n\\end{document}\n"
    out = tmp_path / "never.pdf"
    try:
        pdf.compile_pdf(tex, out)
    except RenderError:
        assert not out.exists()
    else:
        assert out.read_bytes().startswith(b"%PDF-")
    assert runs[: pdf.MAX_RUNS] == ["pdflatex"] * pdf.MAX_RUNS
    assert runs[pdf.MAX_RUNS:] == ["latexmk"]


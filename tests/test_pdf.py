"""Tests of the PDF handouts (derivgen.pdf): the example set and single problems compiled by
TeX (run directly), their text layers read back with pdftotext, Chinese through XeLaTeX, TeX errors, and
that nothing in a problem file or template can make TeX run a program or read system files.

These need TeX (scripts/setup-tex.sh installs it). Without it they are skipped, except in CI
(CI=true), where a missing TeX is a failure. Everything is compiled once, in parallel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from derivgen.cli import set_document
from derivgen.errors import RenderError
from derivgen.latex import (
    _PDFLATEX_EXTRA,
    _UNICODE_TEXT,
    PDFLATEX,
    engine_of,
    math_lines,
    render_problem_tex,
    render_set_tex,
)
from derivgen.pdf import compile_many, compile_pdf, first_tex_error, tex_available
from derivgen.pipeline import problem_document
from derivgen.problem import find_problems

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
SINGLES = ["n001_trace_axbxtc", "n001_least_squares", "ext_rayleigh_quotient"]
ZH_PROBLEMS = ["n001_trace_axbxtc", "n002_logdet", "n003_utxv"]


def _require_tex(lang: str) -> None:
    missing = tex_available(lang)
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"TeX is needed in CI: {missing}", pytrace=False)
    pytest.skip(missing)


def _user_dir(root: Path, name: str, source: str) -> Path:
    path = root / name / "tex" / "problem.tex.j2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{% extends "default/tex/problem.tex.j2" %}\n' + source, encoding="utf-8")
    return root / name


class Built:
    """The outputs of the one parallel compilation every test here reads."""

    def __init__(self, root: Path):
        self.root = root
        config, paths = find_problems([PROBLEMS])
        self.docs = [problem_document(path) for path in paths]
        self.setdoc = set_document(config, self.docs, "en")
        self.by_id = {doc["id"]: doc for doc in self.docs}
        self.sentinel = b"%PDF-1.5 an older, good build\n%%EOF\n"
        self.jobs: dict[str, tuple] = {}
        self.pwned = root / "pwned"

        self.add("set", render_set_tex(self.setdoc), "en")
        self.add("sheet", render_set_tex(self.setdoc, solutions=False), "en")
        for name in SINGLES:
            self.add(name, render_problem_tex(self.by_id[name]), "en")
        if tex_available("zh") is None:
            zh_docs = [problem_document(PROBLEMS / f"{name}.yaml", lang="zh") for name in ZH_PROBLEMS]
            self.add("zh", render_set_tex(set_document(config, zh_docs, "zh")), "zh")

        xtx = self.by_id["n002_xtx"]
        # Every character the pdfLaTeX route claims to typeset, or to typeset through commands.
        self.latin_title = "".join(sorted(_PDFLATEX_EXTRA)) + "".join(_UNICODE_TEXT)
        self.add("latin", render_problem_tex(dict(xtx, title=self.latin_title)), "en")
        failed = problem_document(ROOT / "tests" / "data" / "bad" / "not_square.yaml")
        self.add("failed", render_set_tex(set_document(config, [failed, xtx], "en")), "en")
        broken = _user_dir(root, "broken", "{% block verification %}\\brokenmacro{x}\n\n{% endblock %}\n")
        self.add("broken", render_problem_tex(xtx, user_dir=broken), "en")
        self.add("broken_over_old", render_problem_tex(xtx, user_dir=broken), "en")
        (root / "broken_over_old.pdf").write_bytes(self.sentinel)

        # A statement trying shell escape (neutralised by escaping), and a template doing it
        # for real (a template is trusted; the TeX run is what must refuse).
        evil = dict(xtx, title="\\immediate\\write18{touch " + str(self.pwned) + "}",
                    statement=f"\\immediate\\write18{{touch {self.pwned}}} and "
                              f"$\\immediate\\write18{{touch {self.pwned}}}$")
        shell = _user_dir(root, "shell", f"{{% block header %}}\\immediate\\write18{{touch {self.pwned}}}\n"
                                         f"{{{{ super() }}}}{{% endblock %}}\n")
        self.add("shell", render_problem_tex(evil, user_dir=shell), "en")
        reader = _user_dir(root, "reader", "{% block header %}\\input{/etc/hostname}\n{% endblock %}\n")
        self.add("reader", render_problem_tex(xtx, user_dir=reader), "en")

        names = list(self.jobs)
        errors = compile_many([self.jobs[name] for name in names])
        self.errors = dict(zip(names, errors))

    def add(self, name: str, tex: str, lang: str) -> None:
        self.jobs[name] = (tex, self.root / f"{name}.pdf", lang, self.root / f"{name}.log")

    def pdf(self, name: str) -> Path:
        return self.root / f"{name}.pdf"

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def text(self, name: str) -> str:
        out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(self.pdf(name)), "-"],
                             capture_output=True, text=True, check=True).stdout
        return unicodedata.normalize("NFKC", out)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    _require_tex("en")
    return Built(tmp_path_factory.mktemp("pdf"))


# --- what a reader finds in the PDFs -----------------------------------------------------------


def _title(doc: dict) -> str:
    """A title as the PDF's text layer reads it: its $math$ as plain text, ⊤ for a transpose."""
    from derivgen.titles import plain

    return plain(doc["title"]).replace("ᵀ", "⊤")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).replace("ᵀ", "T"))


def _letters(latex: str) -> str:
    text = re.sub(r"\\(?:operatorname|mathrm|mathbf|text)\{([^{}]*)\}", r"\1", latex)
    text = re.sub(r"\\(log|det|exp|tanh|sqrt)\b", r"\1", text)
    return re.sub(r"[^A-Za-z]", "", re.sub(r"\\[A-Za-z]+", "", text))


_FRACTION = re.compile(r"\\frac\{((?:[^{}]|\{[^{}]*\})*)\}\{((?:[^{}]|\{[^{}]*\})*)\}")


_SUM_LIMITS = re.compile(r"\\sum_\{([^{}]*)\}\^\{([^{}]*)\}")


def _result_pieces(latex: str) -> list[str]:
    """The letters of each outermost term of a result (of each part of a fraction on its own:
    pdftotext reads numerators and denominators as lines of their own)."""
    pieces = []
    for term in math_lines(latex, 0):
        # the limits of a sum too (in a boxed result pdftotext reads them apart from the sum)
        limits = [x for pair in _SUM_LIMITS.findall(term) for x in pair]
        term = _SUM_LIMITS.sub(" ", term)
        pieces += [_letters(x) for x in limits if _letters(x)]
        parts = [x for pair in _FRACTION.findall(term) for x in pair] + _FRACTION.split(term)[::3]
        pieces += [_letters(part) for part in parts if _letters(part)]
    return pieces


def test_the_whole_example_set_is_one_pdf_with_every_problem_and_result(built: Built) -> None:
    assert built.errors["set"] is None, built.errors["set"]
    text = built.text("set")
    squashed = _squash(text)
    starts = []
    for number, doc in enumerate(built.docs, 1):
        heading = _squash(f"Problem {number}: {_title(doc)}")
        assert heading in squashed, heading
        starts.append(squashed.index(heading))
    assert starts == sorted(starts)  # in set order
    assert "Rulesused" in squashed[starts[-1]:]
    letters = [re.sub(r"[^A-Za-z]", "", squashed[a:b]) for a, b in zip(starts, starts[1:] + [None])]
    for doc, section in zip(built.docs, letters):
        assert doc["ok"], doc["error"]
        for result in doc["results"]:
            pieces = _result_pieces(result["latex"])
            assert pieces and all(piece in section for piece in pieces), (doc["id"], result["latex"])


def test_single_problem_pdfs(built: Built) -> None:
    for name in SINGLES:
        assert built.errors[name] is None, built.errors[name]
        doc = built.by_id[name]
        squashed = _squash(built.text(name))
        assert squashed.startswith(_squash(_title(doc)))
        assert "Given" in squashed and "Solution" in squashed and "Rulesused" in squashed
        letters = re.sub(r"[^A-Za-z]", "", squashed)
        for result in doc["results"]:
            assert all(piece in letters for piece in _result_pieces(result["latex"]))
        assert built.pdf(name).read_bytes().startswith(b"%PDF-")


def test_the_problem_sheet_has_statements_and_no_solutions(built: Built) -> None:
    assert built.errors["sheet"] is None, built.errors["sheet"]
    squashed = _squash(built.text("sheet"))
    assert "Given" in squashed and "Solution" not in squashed and "Verification" not in squashed


def test_a_failed_problem_shows_its_error_and_the_others_their_results(built: Built) -> None:
    assert built.errors["failed"] is None, built.errors["failed"]
    text = built.text("failed")
    assert "Error: this problem could not be solved, so no solution is given." in text
    squashed = _squash(text)  # the error box wraps lines where the file's path makes them long
    assert "not_square.yaml:5:7:assumption'spd'needsasquare" in squashed
    assert "hint:declareBsquare" in squashed
    assert squashed.count("Verification") == 1 and "Problem2:Gradientofx" in squashed


def test_pdflatex_typesets_every_character_it_is_given(built: Built) -> None:
    assert engine_of(built.jobs["latin"][0]) == PDFLATEX
    assert built.errors["latin"] is None, built.errors["latin"]
    assert "Missing character" not in built.log("latin")


def test_nothing_runs_off_the_page(built: Built) -> None:
    # Long steps are broken into lines; statements may stretch their spaces.
    for name in ["set", "failed", *SINGLES]:
        overfull = re.findall(r"^Overfull \\hbox \(([\d.]+)pt too wide\)", built.log(name), re.M)
        assert not [w for w in overfull if float(w) > 1.0], (name, overfull)


def test_chinese_pdf_has_the_chinese_headings(built: Built) -> None:
    _require_tex("zh")
    assert built.errors["zh"] is None, built.errors["zh"]
    text = built.text("zh")
    for heading in ("已知", "解答", "验证", "所用法则", "第 1 题", "第 3 题", "迹的循环性质", "变量"):
        assert heading in text, heading
    assert "Overfull \\hbox" not in built.log("zh")


# --- errors ------------------------------------------------------------------------------------


def test_a_tex_error_names_the_message_and_writes_no_pdf(built: Built) -> None:
    err = built.errors["broken"]
    assert isinstance(err, RenderError)
    assert "Undefined control sequence" in err.message
    assert err.location is not None and err.location.file == "broken.tex"
    assert err.location.source_line == "\\brokenmacro{x}"
    assert "l." in err.hint and "\\brokenmacro" in err.hint
    assert not built.pdf("broken").exists()
    assert not list(built.root.glob(".broken.pdf.*"))  # no temporary file either


def test_a_failed_build_leaves_an_older_pdf_untouched(built: Built) -> None:
    assert isinstance(built.errors["broken_over_old"], RenderError)
    assert built.pdf("broken_over_old").read_bytes() == built.sentinel


def test_shell_escape_is_impossible(built: Built) -> None:
    # Even a template calling \write18 itself only gets "runsystem(...)...disabled".
    assert built.errors["shell"] is None, built.errors["shell"]
    assert not built.pwned.exists()
    assert "runsystem(touch" in built.log("shell") and "disabled" in built.log("shell")


def test_tex_cannot_read_files_outside_its_directory(built: Built) -> None:
    err = built.errors["reader"]
    assert isinstance(err, RenderError) and "/etc/hostname" in err.message
    assert not built.pdf("reader").exists()


def test_a_run_over_its_time_limit_is_stopped(built: Built, tmp_path: Path) -> None:
    user = _user_dir(tmp_path, "loop", "{% block header %}\\loop\\iftrue\\repeat\n{% endblock %}\n")
    tex = render_problem_tex(built.by_id["n002_xtx"], user_dir=user)
    with pytest.raises(RenderError, match="longer than 3 s"):
        compile_pdf(tex, tmp_path / "loop.pdf", timeout=3)
    assert not (tmp_path / "loop.pdf").exists()


# --- without TeX -------------------------------------------------------------------------------


def test_first_tex_error_reads_file_line_errors() -> None:
    log = (
        "(./handout.tex\nLaTeX2e <2022-11-01>\n"
        "./handout.tex:42: Undefined control sequence.\n"
        "l.42 \\brokenmacro\n"
        "                  {x}\n"
        "./handout.tex:50: Another error.\n"
    )
    message, line, context = first_tex_error(log)
    assert (message, line) == ("Undefined control sequence.", 42)
    assert context == "l.42 \\brokenmacro\n                  {x}"
    assert first_tex_error("! Emergency stop.\n<*> handout.tex\n") == ("Emergency stop.", None, None)
    assert first_tex_error("all fine\n") == ("", None, None)


def test_tex_available_names_the_packages_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    message = tex_available("en")
    assert message is not None
    assert "pdflatex" in message and "texlive-latex-base" in message and "apt-get install" in message
    message = tex_available("zh")
    assert message is not None and "texlive-xetex" in message and "xelatex" in message
    with pytest.raises(RenderError, match="texlive-latex-base"):
        compile_pdf("\\documentclass{article}", Path("/nonexistent/x.pdf"))

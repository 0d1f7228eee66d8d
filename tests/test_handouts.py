"""Handouts an instructor can publish as they are (issue 8, items 3-5): notation that follows the
problem, publishing hygiene (notes, answer key, languages), math that fits where it is read.

Built from small problem files through the CLI, as a user would, and read back; the browser
checks reuse the DevTools client of test_browser.py (skipped without Chromium, except in CI).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from derivgen import expr as E
from derivgen.cli import main
from derivgen.errors import ProblemError
from derivgen.parse import Scope, parse_expr
from derivgen.pipeline import problem_document
from derivgen.printing import assuming, latex, name_latex, name_unicode
from derivgen.problem import load_problem_text
from derivgen.titles import plain, title_md, title_tex

CANARY = "NOTE-CANARY-7f3a"

NAMED = f"""\
title:
  en: Least squares in $x$
  zh: 关于 $x$ 的最小二乘
statement:
  en: Find the gradient of $L$.
  zh: 求 $L$ 的梯度。
notes: |
  {CANARY}: the answer is $A^T(Ax - b)$.
name: L
variables: {{A: [m, n], x: [n], b: [m]}}
function: "norm(A*x - b)^2 / 2"
wrt: [x]
"""

SPD = """\
title: Log-determinant
variables: {S: [n, n], y_hat: [n]}
assume: {S: [spd]}
function: "logdet(S) + y_hat'*S*y_hat"
wrt: [S, y_hat]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("set")
    (src / "named.yaml").write_text(NAMED, encoding="utf-8")
    (src / "spd.yaml").write_text(SPD, encoding="utf-8")
    out = src / "out"
    assert main(["build", str(src), "-o", str(out), "--format", "md,json,tex,html", "-q"]) == 0
    return out


def _read(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


# --- notation -------------------------------------------------------------------------------


def _expr(text: str, **shapes) -> E.Expr:
    scope = Scope()
    for name, shape in shapes.items():
        scope.declare(name, shape)
    return parse_expr(text, scope)


def test_thin_space_after_every_differential(built):
    A, X, B = E.Sym("A", (2, 3)), E.Sym("X", (3, 4)), E.Sym("B", (4, 5))
    dX = E.Dif("X", (3, 4))
    assert latex(E.mul(A, dX, B)) == "A\\,\\mathrm{d}X\\,B"
    assert latex(E.mul(dX, B)) == "\\mathrm{d}X\\,B"
    assert latex(E.mul(E.tp(dX), A.__class__("C", (3, 7)))) == "\\mathrm{d}X^{\\top}\\,C"
    assert latex(E.mul(E.num("1/2"), dX, B)) == "\\frac{1}{2}\\,\\mathrm{d}X\\,B"
    del X
    for name in ("named.md", "named.tex"):  # in the handouts: never a letter right after dx
        assert re.search(r"\\mathrm\{d\}x(\^\{\\top\})? ([A-Za-z(]|\\(?!steprule)[A-Za-z])", _read(built, name)) is None, name


def test_det_before_another_factor_is_parenthesised():
    doc = problem_document(Path(__file__).resolve().parent.parent / "problems" / "n001_det_power.yaml")
    steps = [s["latex"] for s in doc["results"][0]["steps"]]
    assert any(re.search(r"\(\\det X\)(\^\{\d\})? \\operatorname\{tr\}", s) for s in steps)
    assert not any(re.search(r"\\det X [A-Z\\]", s) for s in steps)  # never `\det X X^{-1}`
    assert doc["results"][0]["latex"] == "3 (\\det X)^{3} X^{-\\top}"


def test_logdet_of_an_spd_variable_is_log_det(built):
    doc = problem_document(built.parent / "spd.yaml")
    assert doc["function"]["latex"].startswith("\\log\\det S")
    assert "\\lvert" not in doc["function"]["latex"]
    general = _expr("logdet(S)", S=(3, 3))
    assert "\\lvert" in latex(general)  # without the assumption: log|det S|
    with assuming(["S"]):
        assert latex(general) == "\\log\\det S"


@pytest.mark.parametrize(("name", "tex", "text"), [
    ("y_hat", "\\hat{y}", "ŷ"), ("mu_hat", "\\hat{\\mu}", "μ̂"), ("x_bar", "\\bar{x}", "x̄"),
    ("X_tilde", "\\tilde{X}", "X̃"), ("mu_hat_t", "\\hat{\\mu}_{t}", "μ̂_t"), ("x_t", "x_{t}", "x_t"),
    ("ell", "\\ell", "ℓ"),
])
def test_accented_names(name, tex, text):
    assert name_latex(name) == tex and name_unicode(name) == text


def test_accent_in_the_handout(built):
    md = _read(built, "spd.md")
    assert "\\hat{y}" in md and "y_{hat}" not in md and "Gradient with respect to $\\hat{y}$" in md


def test_named_function_replaces_f(built):
    md = _read(built, "named.md").split("## Rules used")[0]  # the appendix states the rules for f
    assert "The function is $L = " in md
    assert "\\frac{\\partial L}{\\partial x}" in md and "\\mathrm{d}L" in md
    assert "\\partial f" not in md and "\\mathrm{d}f" not in md
    doc = problem_document(built.parent / "named.yaml")
    assert doc["results"][0]["lhs"] == "∂L/∂x" and doc["function"]["name_latex"] == "L"


def test_word_subheadings_and_one_boxed_result(built):
    md = _read(built, "named.md")
    assert "### Gradient with respect to $x$" in md
    assert md.count("\\boxed") == 1  # printed once: the last line of its chain, boxed
    assert "Gradient with respect to $x$" in _read(built, "solutions.md")


def test_titles_hold_math():
    title = r"Gradient of $\operatorname{tr}(AX^\top)$ *not bold* #1"
    assert title_md(title) == r"Gradient of $\operatorname{tr}(AX^\top)$ \*not bold\* \#1"
    assert title_tex(title) == r"Gradient of $\operatorname{tr}(AX^\top)$ *not bold* \#1"
    assert plain(title) == "Gradient of tr(AXᵀ) *not bold* #1"
    evil = r"$\input{/etc/passwd}$ and $\write18{x}$"
    assert "\\input" not in title_tex(evil).replace("\\textbackslash{}input", "")


def test_title_math_in_html_and_tex(built):
    html = _read(built, "named.html")
    assert "<title>Least squares in x</title>" in html
    assert re.search(r'<h1 class="dg-title">Least squares in <span class="katex">', html)
    tex = _read(built, "named.tex")
    assert "\\section{\\texorpdfstring{Least squares in $x$}{Least squares in x}}" in tex


def test_headings_are_not_hyphenated(built):
    tex = _read(built, "named.tex")
    assert tex.count("\\hyphenpenalty=10000") == 3  # section, subsection, subsubsection
    css = (Path(__file__).resolve().parent.parent / "derivgen" / "static" / "derivgen.css").read_text()
    assert re.search(r"\.derivgen h6 \{[^}]*hyphens: manual", css, re.S)


# --- hygiene --------------------------------------------------------------------------------


def test_notes_in_solutions_only(built):
    for ext in ("md", "tex", "html"):
        assert CANARY in _read(built, f"solutions.{ext}"), ext
        assert CANARY in _read(built, f"named.{ext}"), ext
        assert CANARY not in _read(built, f"sheet.{ext}"), ext
        assert CANARY not in _read(built, f"answers.{ext}"), ext


def test_answer_key_holds_results_only(built):
    answers = _read(built, "answers.md")
    assert answers.splitlines()[0].endswith("Answer key")
    assert answers.count("\\boxed") == 3  # ∂L/∂x, ∂f/∂S, ∂f/∂ŷ
    for absent in ("Given", "Find the gradient", "\\begin{aligned}", "Verification", "Rules used"):
        assert absent not in answers, absent
    assert "## Problem 1: Least squares in $x$" in answers
    html, tex = _read(built, "answers.html"), _read(built, "answers.tex")
    assert "Answer key" in html and html.count("boxpad") == 3 and "dg-chain" not in html
    assert tex.count("\\boxed") == 3 and "align*" not in tex


def test_title_and_statement_per_language(tmp_path):
    (tmp_path / "named.yaml").write_text(NAMED, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["build", str(tmp_path), "-o", str(out), "--format", "md", "--lang", "zh", "-q"]) == 0
    md = _read(out, "named.md")
    assert md.startswith("# 关于 $x$ 的最小二乘\n") and "求 $L$ 的梯度。" in md
    assert "### 关于 $x$ 的梯度" in md and "Least squares" not in md and "Find the gradient" not in md
    assert "教师备注" in _read(out, "solutions.md") and "答案" in _read(out, "answers.md")


@pytest.mark.parametrize(("yaml", "line", "column", "message"), [
    ("title: {en: a, fr: b}\nfunction: x\nwrt: x\nvariables: {x: []}\n", 1, 16, "unknown language 'fr' in title"),
    ("name: x\nvariables: {x: []}\nfunction: x\nwrt: x\n", 1, 7, "also the name of a variable"),
    ("name: 'L 2'\nvariables: {x: []}\nfunction: x\nwrt: x\n", 1, 7, "invalid function name"),
    ("name: {text: L, latex: '\\\\input{x}'}\nvariables: {x: []}\nfunction: x\nwrt: x\n", 1, 24,
     "name.latex is not LaTeX derivgen allows"),
    ("notes: [a]\nvariables: {x: []}\nfunction: x\nwrt: x\n", 1, 8, "notes must be text"),
])
def test_new_keys_are_validated_where_written(yaml, line, column, message):
    with pytest.raises(ProblemError) as info:
        load_problem_text(yaml, "p.yaml")
    err = info.value
    assert message in err.message and (err.location.line, err.location.column) == (line, column)


def test_name_with_its_own_latex():
    p = load_problem_text("name: {text: ℓ, latex: '\\ell'}\nvariables: {x: [n]}\nfunction: x'*x\nwrt: x\n")
    assert p.name == {"text": "ℓ", "latex": "\\ell"}


def test_set_page_is_small(built):
    # the folded steps are left for the browser (checked by KaTeX at build time); what is
    # pre-rendered is what a reader sees with the steps folded
    page = _read(built, "solutions.html")
    single = sum(len(_read(built, f"{p}.html")) for p in ("named", "spd"))
    assert len(page) < 0.7 * single
    assert page.count('<span class="dg-tex"') > 10
    assert '<script src="derivgen-assets/katex/katex.min.js" defer></script>' in page
    assert "dg-tex" not in _read(built, "named.html")  # a problem's own page: all pre-rendered


# --- math that fits -------------------------------------------------------------------------


def test_short_tags_and_a_legend(built):
    md = _read(built, "named.md")
    tags = re.findall(r"^\\text\{\[([A-Z0-9, ]+)\]\} &", md, re.M)
    assert tags and all(len(t) <= 12 for t in tags)
    assert "\\text{(" not in md  # no rule name inside a formula
    assert re.search(r"^\*\[D\d+\] [a-z]", md, re.M)  # the names, in a line under the chain
    html = _read(built, "named.html")
    assert re.search(r'title="product rule">D2</a>', html)
    assert '<p class="dg-legend">' in html
    tex = _read(built, "named.tex")
    assert re.findall(r"\\steprule\{([^}]*)\}", tex) and all(
        re.fullmatch(r"\[[A-Z0-9, ]+\]", t) for t in re.findall(r"\\steprule\{([^}]*)\}", tex))
    assert "\\steplegend{" in tex


def test_tags_in_view_at_phone_desktop_and_in_an_800px_column(tmp_path):
    from test_browser import Browser, _require_chromium

    _require_chromium()
    from derivgen.html import render_problem_html, write_assets

    doc = problem_document(Path(__file__).resolve().parent.parent / "problems" / "n001_gaussian_log_likelihood.yaml")
    (tmp_path / "page.html").write_text(render_problem_html(doc), encoding="utf-8")
    host = ("<!doctype html><html><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<style>body{margin:0} main{max-width:800px;margin:0 auto;padding:0 16px}</style></head>"
            f"<body><main>{render_problem_html(doc, standalone=False)}</main></body></html>")
    (tmp_path / "column.html").write_text(host, encoding="utf-8")
    write_assets(tmp_path)
    probe = ("[...document.querySelectorAll('.dg-tag')].filter(e => e.textContent.trim())"
             ".map(e => { const r = e.getBoundingClientRect(); const box = e.closest('main, .derivgen')"
             ".getBoundingClientRect(); return r.left >= box.left - 1 && r.right <= Math.min(box.right,"
             " window.innerWidth) + 1 && r.width > 10; })")
    browser = Browser(tmp_path / "profile")
    try:
        for page in ("page.html", "column.html"):
            for width in (390, 1280):
                browser.open((tmp_path / page).as_uri(), {"width": width, "height": 900,
                                                         "deviceScaleFactor": 1, "mobile": width < 500})
                seen = browser.evaluate(probe)
                assert len(seen) > 10 and all(seen), (page, width)
                assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        browser.close()

"""TeX and KaTeX by whitelist (issue 11, item 3): what a problem file can make TeX do.

A statement's math reaches TeX and KaTeX only when every command and environment in it is on
`derivgen.latex.check_math`'s lists; anything else is shown as written, with an error located
in the problem file. A problem whose TeX fails, or runs over the time limit, is left out of
solutions.pdf and sheet.pdf (which still compile), and a problem KaTeX cannot render is left
out of solutions.html and sheet.html. Each attack is a problem file in a set built with the
CLI; the outputs are searched for the contents of a canary file and of /etc/passwd.

The builds need TeX (scripts/setup-tex.sh) and node with KaTeX (scripts/setup-katex.sh);
without them those tests are skipped, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from derivgen import katex
from derivgen.cli import main, set_document
from derivgen.errors import RenderError
from derivgen.latex import (
    ALLOWED_ENVIRONMENTS,
    check_math,
    markdown_to_tex,
    render_problem_tex,
    render_set_tex,
    safe_math,
    statement_formulas,
    statement_math_errors,
)
from derivgen.pdf import TIME_LIMIT, compile_pdf, tex_available, time_limit
from derivgen.pipeline import problem_document
from derivgen.problem import find_problems
from derivgen.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
CANARY = "CANARY-d3rivg3n-7f3a"


def _ci() -> bool:
    return os.environ.get("CI") == "true"


def _require_tex() -> None:
    missing = tex_available("en")
    if missing is None and shutil.which("pdftotext"):
        return
    message = missing or "pdftotext (poppler-utils) is missing"
    if _ci():
        pytest.fail(f"TeX is needed in CI: {message}", pytrace=False)
    pytest.skip(message)


def _require_katex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DERIVGEN_MATH", raising=False)
    try:
        mode = katex.math_mode()
    except RenderError as err:
        mode = str(err)
    if mode != katex.PRERENDER:
        message = f"KaTeX pre-rendering unavailable ({mode}); run `bash scripts/setup-katex.sh`"
        if _ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _attacks(canary: Path) -> dict[str, str]:
    """Statements that tried, on main before the whitelist, to make TeX read, write or loop."""
    c = str(canary)
    return {
        "usename_input": rf"Read $\UseName{{input}}{{/etc/passwd}}$ and $\UseName{{input}}{{{c}}}$.",
        "usename_openout": r"Write $\UseName{immediate}\UseName{openout}3=pwned.tex x$.",
        "begin_catcode": r"Catcode $\begin{catcode}`\~=11 \end{catcode} x$ here.",
        "catcode_loop": r"Loop $\UseName{def}\x{\x}\x$ and $\begin{catcode}`\^^M=13 \end{catcode}$.",
        "iffalse": r"Swallow $\iffalse$ the rest of the document.",
        "hat_escape": rf"Hat $^^5cinput{{{c}}}$ and $\^^69nput{{/etc/passwd}}$.",
        "csname": rf"Csname $\csname input\endcsname{{{c}}}$.",
        "define": r"Define $\def\x{\input{/etc/passwd}}\x$.",
    }


PROBLEM = """title: {title}
statement: |
  {statement}
variables:
  a: [m]
  X: [m, n]
  b: [n]
function: "a'*X*b"
wrt: [X]
"""


def _set(root: Path, statements: dict[str, str], templates: dict[str, str] | None = None) -> Path:
    folder = root / "set"
    folder.mkdir()
    order = list(statements)
    config = "title: Attacks\norder:\n" + "".join(f"  - {name}\n" for name in order)
    if templates:
        config += "templates: tpl\n"
        for name, text in templates.items():
            path = folder / "tpl" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    (folder / "derivgen.yaml").write_text(config, encoding="utf-8")
    for name, statement in statements.items():
        (folder / f"{name}.yaml").write_text(
            PROBLEM.format(title=f"Problem {name.replace('_', ' ')}", statement=statement), encoding="utf-8")
    return folder


def _build(folder: Path, out: Path, capsys: pytest.CaptureFixture, formats: str) -> tuple[int, str, float]:
    start = time.monotonic()
    status = main(["build", str(folder), "-o", str(out), "--format", formats])
    elapsed = time.monotonic() - start
    captured = capsys.readouterr()
    return status, captured.out + captured.err, elapsed


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _every_output_text(out: Path) -> str:
    """Every output file as text (PDFs through pdftotext), the cache and assets left aside."""
    texts = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or ".derivgen-cache" in path.parts or "derivgen-assets" in path.parts:
            continue
        if path.suffix == ".pdf":
            texts.append(_pdf_text(path))
        else:
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def _passwd_lines() -> list[str]:
    try:
        return [line for line in Path("/etc/passwd").read_text().splitlines() if line.count(":") >= 6][:5]
    except OSError:
        return []


def _assert_nothing_leaked(out: Path) -> None:
    everything = _every_output_text(out)
    assert CANARY not in everything
    for line in _passwd_lines():
        assert line not in everything
    assert not list(Path(out).rglob("pwned*"))


# --- the whitelist -----------------------------------------------------------------------------


@pytest.mark.parametrize("tex", [
    r"\UseName{input}{/etc/passwd}", r"\UseName{openout}", r"\begin{catcode}`\~=11 \end{catcode}",
    r"\iffalse", r"^^5cinput{/etc/passwd}", r"\^^69nput{/etc/passwd}", r"x^^M", r"\csname input\endcsname",
    r"\def\x{\x}\x", r"\input{/etc/passwd}", r"\write18{touch x}", r"\catcode`\^^M=13", r"\let\a\b",
    r"\expandafter\x", r"\begin{filecontents}{x}", r"\end{document}", r"\begin{verbatim}", r"\newcommand",
    r"\loop\repeat", r"\makeatletter", r"\string\input", r"\href{run:x}{y}", r"\tr(X)",
    "a % comment", "#1", "x}} + {y", "{x", r"\left( x", r"x \right)", "a & b", r"a \\ b",
    r"\begin{pmatrix} a \end{bmatrix}", r"\text{a_b}", r"\text x", "a\x00b", "a\x1bb", "\\",
    r"\sqrt[\input{x}]{y}", "{" * 50 + "x" + "}" * 50, r"\mathscr{A}", r"\color{red} x",
])
def test_the_whitelist_rejects_what_is_not_plain_math(tex: str) -> None:
    rejection = check_math(tex)
    assert rejection is not None and rejection.reason
    shown = safe_math(tex)
    assert shown.startswith(r"\text{\texttt{\$")  # shown as written, in typewriter type
    # Nothing of it is a command any more: every backslash is printed, no brace is TeX's.
    body = shown[len(r"\text{\texttt{"):-2]
    assert re.sub(r"\\(?:allowbreak|textbackslash|textasciicircum|textasciitilde|textquotesingle"
                  r"|textasciigrave|textquotedbl|textless|textgreater)\{\}|\\allowbreak"
                  r"|\\[{}$&#%_]|~", "", body).count("\\") == 0


@pytest.mark.parametrize("tex", [
    r"\frac{\partial f}{\partial X} = A^{\top} C^{\top} X B^{\top}",
    r"\begin{pmatrix} a & b \\ c & d \end{pmatrix}",
    r"\operatorname{tr}\left(\Sigma^{-1}\right) \leq \lVert x \rVert_2^2",
    r"\mathrm{d}\log\lvert\det U\rvert = \text{ for } \{x\}",
    r"\hat\mu = \frac{1}{N}\sum_t x_t", r"\nabla_x f = \mathbf{A}^\top x",
    r"\begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases}",
    r"\begin{aligned} a &= b \\ &= c \end{aligned}", r"\sqrt[3]{x} \prod_{i=1}^n x_i",
    r"\left\{ x \right. \bigl( y \bigr)", r"\sum_{\substack{i < j \\ k}} x_{ij}",
    r"\operatorname*{arg\,min}_x \lVert Ax - b \rVert^2", r"\mathbb{R}^{m \times n} \ni X",
    r"\begin{bmatrix} 1 & 0 \\ 0 & 1 \end{bmatrix} \otimes I", r"\Sigma = \mathbb{E}[x x^\top]",
])
def test_the_whitelist_passes_ordinary_formulas_unchanged(tex: str) -> None:
    assert check_math(tex) is None
    assert safe_math(tex) == tex


def test_the_allowed_environments_align() -> None:
    for env in ALLOWED_ENVIRONMENTS:
        arg = "{cc}" if env == "array" else "{2}" if env == "alignedat" else ""
        assert check_math(rf"\begin{{{env}}}{arg} a & b \\ c & d \end{{{env}}}") is None, env


def _engine_latex(value, key: str = "") -> list[str]:
    """Every LaTeX string derivgen printed into a problem document (the *latex fields)."""
    if isinstance(value, dict):
        return [tex for k, v in value.items() for tex in _engine_latex(v, k)]
    if isinstance(value, list):
        return [tex for v in value for tex in _engine_latex(v, key)]
    if isinstance(value, str) and key.endswith("latex"):
        return [value]
    return []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_example_problems_engine_latex_passes_the_whitelist(lang: str) -> None:
    config, paths = find_problems([PROBLEMS])
    seen = 0
    for path in paths:
        doc = problem_document(path, lang)
        assert doc["ok"], doc.get("error")
        formulas = _engine_latex(doc) + [rule["formula"] for rule in doc["rules"]]
        for tex in formulas:
            assert check_math(tex) is None, (path.name, tex, check_math(tex))
        for tex, _ in statement_formulas(doc.get("statement") or ""):
            assert check_math(tex) is None, (path.name, tex, check_math(tex))
        assert statement_math_errors(doc) == []
        seen += len(formulas)
        # What the templates compose from them (boxed results, chains, shapes) passes too:
        # no formula of the handouts is shown as text.
        tex = render_problem_tex(doc, lang)
        assert r"\texttt{\$" not in tex, path.name
    assert seen > 500
    for rule in RULES.values():  # the whole catalogue, not only the rules the examples use
        assert check_math(rule.formula) is None, (rule.id, rule.formula)
    setdoc = set_document(config, [problem_document(p, lang) for p in paths], lang)
    assert r"\texttt{\$" not in render_set_tex(setdoc)


def test_every_example_page_has_no_rejected_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERIVGEN_MATH", "client")  # no node needed: formulas stay TeX in the page
    if katex.find_katex() is None:
        if _ci():
            pytest.fail("KaTeX not found; run `bash scripts/setup-katex.sh`", pytrace=False)
        pytest.skip("KaTeX not found")
    from derivgen.html import render_set_html

    config, paths = find_problems([PROBLEMS])
    page = render_set_html(set_document(config, [problem_document(p) for p in paths], "en"))
    assert "dg-math-rejected" not in page and page.count("dg-tex") > 500


def test_a_rejected_statement_formula_is_shown_as_text_and_located(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROBLEM.format(title="t", statement=r"Fine $x$, not $\UseName{input}{/etc/passwd}$."))
    doc = problem_document(path)
    [err] = statement_math_errors(doc)
    assert err.location.file == str(path) and (err.location.line, err.location.column) == (3, 18)
    assert r"\UseName is not an allowed command" in err.message and "show it as text" in err.message
    tex = markdown_to_tex(doc["statement"])
    assert r"Fine $x$, not \texttt{\$\allowbreak\textbackslash{}UseName\{input\}\{/etc/passwd\}\$}." in tex


def test_a_time_limit_far_below_two_minutes() -> None:
    assert 5 <= TIME_LIMIT <= 30
    assert time_limit(1) == TIME_LIMIT and TIME_LIMIT < time_limit(46) <= 40


# --- attacks, built ---------------------------------------------------------------------------


def test_attacks_in_statements_are_shown_as_text_and_the_set_builds(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_tex()
    _require_katex(monkeypatch)
    canary = tmp_path / "canary.tex"
    canary.write_text(CANARY + "\n")
    (tmp_path / "canary").write_text(CANARY + "\n")
    attacks = _attacks(tmp_path / "canary")
    folder = _set(tmp_path, {**attacks, "good": r"A good problem, $\frac{\partial f}{\partial X}$."})
    out = tmp_path / "out"
    status, log, elapsed = _build(folder, out, capsys, "tex,pdf,html")
    assert elapsed < 3 * TIME_LIMIT  # on main: 120 s for each of three PDFs
    assert status == 1
    for name in attacks:  # each rejected formula is an error at its place in the problem file
        assert re.search(rf"{re.escape(str(folder / name))}\.yaml:3:\d+: the formula .* is not allowed", log), name
    assert "Traceback" not in log and "internal error" not in log
    for name in [*attacks, "good"]:
        for suffix in (".pdf", ".tex", ".html"):
            assert (out / f"{name}{suffix}").is_file(), name + suffix
    for handout in ("solutions.pdf", "sheet.pdf"):
        text = _squash(_pdf_text(out / handout))
        for number, name in enumerate([*attacks, "good"], 1):
            assert _squash(f"Problem {number}: Problem {name.replace('_', ' ')}") in text, (handout, name)
        assert _squash(r"$\UseName{input}{/etc/passwd}$") in text  # shown as written
        assert _squash(r"$\iffalse$") in text and "therestofthedocument" in text
    html = (out / "solutions.html").read_text()
    assert r'<code class="dg-math-rejected">$\UseName{input}{/etc/passwd}$</code>' in html
    _assert_nothing_leaked(out)


def test_a_formula_tex_and_katex_cannot_typeset_drops_only_its_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_tex()
    _require_katex(monkeypatch)
    folder = _set(tmp_path, {
        "first": r"The first, $a^\top X b$.",
        "broken": r"On the whitelist, but TeX and KaTeX refuse it: $x^1^2$.",
        "last": r"The last, $\operatorname{tr}(X)$.",
    })
    out = tmp_path / "out"
    status, log, elapsed = _build(folder, out, capsys, "tex,pdf,html")
    assert status == 1 and elapsed < 3 * TIME_LIMIT
    broken = str(folder / "broken.yaml")
    for handout in ("solutions.pdf", "sheet.pdf"):
        assert f"{broken}: problem 'broken' is left out of {handout}" in log
        text = _squash(_pdf_text(out / handout))
        assert "Problem1:Problemfirst" in text and "Problem2:Problemlast" in text
        assert "broken" not in text
    for page, which in (("solutions.html", "solutions"), ("sheet.html", "problem sheet")):
        assert f"{broken}: problem 'broken' is left out of the set's {which} page" in log
        html = (out / page).read_text()
        assert "Problem first" in html and "Problem last" in html and "Problem broken" not in html
    assert "Double superscript" in log and "broken.pdf (from " + broken in log
    assert not (out / "broken.pdf").exists() and not (out / "broken.html").exists()
    tex = (out / "solutions.tex").read_text()
    assert "Problem broken" not in tex and "Problem last" in tex  # the .tex is what the PDF is made from


def test_a_problem_whose_tex_loops_costs_one_time_limit_and_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whitelist keeps loops out of statements; a set's own template can still write any
    # TeX, so the time limit and the isolation are what protect the set's handouts.
    _require_tex()
    canary = tmp_path / "canary.tex"
    canary.write_text(CANARY + "\n")
    loop = ('{% extends "default/tex/problem.tex.j2" %}\n'
            '{% block header %}{{ super() }}{% if doc.id == "looping" %}\n'
            "\\catcode`\\^^M=13 \\def\\x{\\x}\\x\n"
            "\\input{" + str(canary) + "}\n"
            "{% endif %}{% endblock %}\n")
    folder = _set(tmp_path, {"first": "The first.", "looping": "It loops.", "last": "The last."},
                  templates={"tex/problem.tex.j2": loop})
    out = tmp_path / "out"
    status, log, elapsed = _build(folder, out, capsys, "pdf")
    assert status == 1
    assert elapsed < 2 * TIME_LIMIT + 25  # one limit for the loop, then the sets again
    looping = str(folder / "looping.yaml")
    assert f"looping.pdf (from {looping}): cannot make looping.pdf: TeX took longer than {TIME_LIMIT:g} s" in log
    for handout in ("solutions.pdf", "sheet.pdf"):
        assert f"{looping}: problem 'looping' is left out of {handout}" in log
        text = _squash(_pdf_text(out / handout))
        assert "Problem1:Problemfirst" in text and "Problem2:Problemlast" in text and "loops" not in text
    assert not (out / "looping.pdf").exists()
    _assert_nothing_leaked(out)
    assert _tex_processes() == []  # the TeX process group was killed, not left looping


def _tex_processes() -> list[str]:
    """The processes still working in one of compile_pdf's temporary folders after it was
    deleted (compile_pdf deletes it when its run has ended; other tests' runs are not counted)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(proc / "cwd")
            if "derivgen-tex-" in cwd and cwd.endswith("(deleted)"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def test_a_set_whose_problem_fails_only_inside_the_set_is_isolated_by_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # A problem whose own PDF compiles but which breaks the set's handout (here a set template
    # that fails for it only) is found by compiling each problem in a set of its own.
    _require_tex()
    bad = ('{% extends "default/tex/problem.tex.j2" %}\n'
           '{% block header %}{{ super() }}{% if in_set and doc.id == "odd" %}\\undefinedcommand{% endif %}'
           "{% endblock %}\n")
    folder = _set(tmp_path, {"first": "The first.", "odd": "Odd.", "last": "The last."},
                  templates={"tex/problem.tex.j2": bad})
    out = tmp_path / "out"
    status, log, _ = _build(folder, out, capsys, "pdf")
    assert status == 1
    assert (out / "odd.pdf").is_file()
    odd = str(folder / "odd.yaml")
    assert f"{odd}: problem 'odd' is left out of solutions.pdf: it does not compile in the set" in log
    assert "Undefined control sequence" in log
    text = _squash(_pdf_text(out / "solutions.pdf"))
    assert "Problem1:Problemfirst" in text and "Problem2:Problemlast" in text


def test_compile_pdf_is_stopped_at_its_limit_and_leaves_no_pdf(tmp_path: Path) -> None:
    _require_tex()
    looping = "\\documentclass{article}\n\\begin{document}\n\\def\\x{\\x}\\x\n\\end{document}\n"
    out = tmp_path / "loop.pdf"
    out.write_bytes(b"%PDF-1.5 an older one\n%%EOF\n")
    start = time.monotonic()
    with pytest.raises(RenderError, match="longer than 2 s"):
        compile_pdf(looping, out, timeout=2)
    assert time.monotonic() - start < 10
    assert out.read_bytes().startswith(b"%PDF-1.5 an older one")  # compile_pdf never writes a partial PDF
    assert not list(tmp_path.glob("*.tmp*"))

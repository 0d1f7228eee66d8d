"""Tests of the LaTeX handouts (derivgen.latex): escaping of untrusted text and math, the
document's structure, Chinese, failures, template overrides and golden snapshots.

None of these needs TeX (tests/test_pdf.py compiles). Snapshots live in tests/golden/tex/;
regenerate them with ``DERIVGEN_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests`` and review
the diff.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from golden import assert_golden

from derivgen import i18n
from derivgen.errors import RenderError
from derivgen.latex import (
    MAGIC,
    PDFLATEX,
    XELATEX,
    engine_of,
    formula_width,
    markdown_to_tex,
    math_lines,
    preamble,
    render_problem_tex,
    render_set_tex,
    safe_math,
    tex_escape,
    tex_verbatim,
)
from derivgen.pipeline import document, problem_document, rules_list, solve
from derivgen.problem import load_problem
from derivgen.render import shown_rules

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
GOLDEN_PROBLEMS = ["n001_trace_axbxtc", "n000_sigmoid_quadratic", "ext_rayleigh_quotient"]

EVIL_TEXT = r"\input{/etc/passwd} #$%&_{}~^\ \immediate\write18{touch /tmp/pwned} ^^5cinput"


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    return {name: problem_document(PROBLEMS / f"{name}.yaml") for name in GOLDEN_PROBLEMS}


@pytest.fixture
def doc(docs: dict[str, dict]) -> dict:
    return copy.deepcopy(docs["n001_trace_axbxtc"])


def _set(docs: list[dict], lang: str = "en", **header: str) -> dict:
    ids = [r["id"] for d in docs for r in d["rules"]]
    return {"title": "Worked solutions", "course": None, "author": None, "date": None,
            "language": lang, "problems": docs, "rules": rules_list(ids, lang), **header}


def _body(tex: str) -> str:
    return tex.split("\\begin{document}", 1)[1]


# TeX's special characters outside the escapes the renderer writes: none may remain in text.
_SAFE_ESCAPES = re.compile(
    r"\\textbackslash\{\}|\\textasciicircum\{\}|\\textasciitilde\{\}|\\[{}$&#%_]"
    r"|\\textsuperscript\{[^{}\\]*\}|\\ensuremath\{\\[A-Za-z]+\}"
)


def _unescaped_specials(tex: str) -> str:
    return "".join(c for c in _SAFE_ESCAPES.sub("", tex) if c in "\\{}$&#%_^~")


# --- escaping ----------------------------------------------------------------------------------


def test_plain_text_is_escaped_completely() -> None:
    escaped = tex_escape(EVIL_TEXT)
    assert _unescaped_specials(escaped) == ""
    assert "\\input" not in escaped and "\\write18" not in escaped and "^^" not in escaped
    assert tex_escape("a\n  b\tc") == "a b c"  # one line: a title stays one heading


def test_unicode_without_a_text_glyph_is_typeset_in_math_or_superscript() -> None:
    assert tex_escape("tr(AXBXᵀC)") == r"tr(AXBX\textsuperscript{T}C)"
    assert tex_escape("∂f/∂μ") == r"\ensuremath{\partial}f/\ensuremath{\partial}\ensuremath{\mu}"
    assert tex_escape("naïve — ok") == "naïve — ok"  # pdfLaTeX typesets these as they are


@pytest.mark.parametrize("command", [
    r"\input{/etc/passwd}", r"\include{x}", r"\write18{touch /tmp/x}", r"\openout1=x.tex",
    r"\read16 to", r"\immediate", r"\catcode64=11", r"\def", r"\csname input\endcsname",
    r"\edef", r"\let", r"\newcommand", r"\special{x}", r"\pdffiledump", r"\openin", r"\href{run:x}",
    r"\InputIfFileExists{x}", r"\scantokens{x}", r"\expandafter", r"\everymath",
    r"\mathchardef", r"\NewDocumentCommand", r"\ifcsname", r"\AtBeginDocument{x}",
])
def test_math_cannot_run_commands_that_touch_files_or_define_macros(command: str) -> None:
    name = re.match(r"\\([A-Za-z]+)", command).group(1)
    safe = safe_math(f"x + {command} + y")
    assert f"\\{name}" not in safe  # not on the whitelist: the whole formula is shown as text
    assert safe.startswith(r"\text{\texttt{\$x + ") and rf"\textbackslash{{}}{name}" in safe


def test_math_neutralises_hat_notation_comments_and_stray_braces() -> None:
    # Each is rejected by the whitelist and shown as typewriter text, every special escaped.
    assert "^^" not in safe_math(r"x^^5cinput{/etc/passwd} ^^^^005c")
    # TeX reads ^^69 as "i" even inside a command's name: \^^69nput is \input.
    assert safe_math(r"\^^69nput{/etc/passwd}") == (
        r"\text{\texttt{\$\allowbreak\textbackslash{}\textasciicircum{}\textasciicircum{}69nput\{/etc/passwd\}\$}}")
    assert safe_math("a % comment") == r"\text{\texttt{\$a \% comment\$}}"
    assert safe_math("#1") == r"\text{\texttt{\$\#1\$}}"
    assert safe_math("x}} + {y") == r"\text{\texttt{\$x\}\} + \{y\$}}"
    assert safe_math("a\n\nb") == "a\nb"  # a blank line would end the paragraph
    assert safe_math(r"\begin{filecontents}{x.tex}").startswith(r"\text{\texttt{\$\allowbreak\textbackslash{}begin")
    assert safe_math(r"\end{document}").startswith(r"\text{\texttt{\$\allowbreak\textbackslash{}end")


def test_math_passes_ordinary_formulas_through() -> None:
    for formula in [
        r"\frac{\partial f}{\partial X} = A^{\top} C^{\top} X B^{\top}",
        r"\begin{pmatrix} a & b \\ c & d \end{pmatrix}",
        r"\operatorname{tr}\left(\Sigma^{-1}\right) \leq \lVert x \rVert_2^2",
        r"\mathrm{d}\log\lvert\det U\rvert = \text{ for } \{x\}",
        r"\hat\mu = \frac{1}{N}\sum_t x_t",
    ]:
        assert safe_math(formula) == formula


def test_markdown_statement_is_converted_and_escaped() -> None:
    tex = markdown_to_tex(
        "Let $f(X) = \\operatorname{tr}(X)$ be **very *nice***, with `a_b\\c` and 50% of #tags.\n"
        "Costs \\$5 and $ 3 $ dollars; see [link](http://x).\n"
        "\n"
        "- first $x_1$\n"
        "- second\n"
        "  continued\n"
        "\n"
        "1. one\n"
        "2. two\n"
        "\n"
        "$$\\sum_i x_i$$\n"
    )
    paragraphs = tex.split("\n\n")
    assert paragraphs[0] == (
        r"Let $f(X) = \operatorname{tr}(X)$ be \textbf{very \emph{nice}}, with "
        r"\texttt{a\_b\textbackslash{}c} and 50\% of \#tags. "
        r"Costs \$5 and \$ 3 \$ dollars; see [link](http://x)."
    )
    assert paragraphs[1] == "\\begin{itemize}\n\\item first $x_1$\n\\item second continued\n\\end{itemize}"
    assert paragraphs[2] == "\\begin{enumerate}\n\\item one\n\\item two\n\\end{enumerate}"
    assert paragraphs[3] == "\\[\n\\sum_i x_i\n\\]"


def test_markdown_statement_text_and_math_are_both_made_safe() -> None:
    tex = markdown_to_tex(
        "Text " + EVIL_TEXT + "\nand math $\\immediate\\write18{touch /tmp/pwned} \\input{/etc/passwd}$."
    )
    text_part, math_part = tex.split("and math ")
    assert _unescaped_specials(text_part) == ""
    assert "\\write18" not in tex and "\\input{" not in tex.replace(r"\backslash input}", "")
    assert math_part.startswith(r"\texttt{\$\allowbreak\textbackslash{}immediate\allowbreak\textbackslash{}write18")


def test_verbatim_keeps_spaces_escapes_and_cannot_be_closed() -> None:
    tex = tex_verbatim("error: p.yaml:2:5: bad\\input\n    f: x \\end{verbatimlines} %\n        ^")
    lines = tex.splitlines()
    assert lines[0] == r"\begin{verbatimlines}" and lines[-1] == r"\end{verbatimlines}"
    assert tex.count(r"\end{verbatimlines}") == 1
    assert lines[2].startswith(r"\verbatimline{~~~~f:~x~\textbackslash{}end\{verbatimlines\}~\%}")
    assert lines[3] == r"\verbatimline{~~~~~~~~\textasciicircum{}}"
    assert len(tex_verbatim("x" * 200, width=90).splitlines()) == 2 + 3  # long lines wrap
    wrapped = re.findall(r"\\verbatimline\{(.*)\}", tex_verbatim(" ".join(["word"] * 30), width=40))
    assert len(wrapped) > 3 and all(len(line.replace("~", " ")) <= 40 for line in wrapped)
    assert all(re.fullmatch(r"(~~)?word(~word)*", line) for line in wrapped)  # cut between words


# --- long formulas -----------------------------------------------------------------------------


def _all_steps() -> list[str]:
    steps = []
    for name in GOLDEN_PROBLEMS + ["n001_gaussian_log_likelihood", "n001_least_squares"]:
        problem = load_problem(PROBLEMS / f"{name}.yaml")
        problem.options["detail"] = "full"  # one rule per line: the longest lines there are
        doc = document(solve(problem))
        steps += [s["latex"] for r in doc["results"] for s in r["steps"]]
    return steps


def test_long_steps_are_broken_into_lines_that_fit() -> None:
    steps = _all_steps()
    longest = max(steps, key=formula_width)
    assert formula_width(longest) > 340  # the Rayleigh quotient's T0 step
    broken = 0
    for step in steps:
        lines = math_lines(step, 340)
        if len(lines) == 1:
            assert lines[0] == step
            continue
        broken += 1
        for line in lines:
            assert line.count("{") == line.count("}")
            assert line.count("\\left") == line.count("\\right")  # pairs never span lines
            assert formula_width(line) <= 400
        for line in lines[1:]:
            assert line.startswith(("{}+", "{}-"))
        # Nothing lost: the lines say what the step says, up to delimiter sizes.
        def norm(s: str) -> str:
            return re.sub(r"\\(left|right|[bB]ig[lr])|\s|\{\}", "", s)
        assert norm("".join(lines)) == norm(step)
    assert broken >= 3


def test_short_formulas_stay_on_one_line() -> None:
    assert math_lines("A^{\\top} x + b") == ["A^{\\top} x + b"]
    assert math_lines("x", 0) == ["x"]  # nothing to break at


def test_breaks_inside_parentheses_use_sized_delimiters() -> None:
    inner = " + ".join(f"A_{i} X B_{i}" for i in range(12))
    lines = math_lines(r"\operatorname{tr}\left(" + inner + r"\right)", 200)
    assert len(lines) > 2
    assert lines[0].startswith(r"\operatorname{tr}\bigl(") and lines[-1].endswith(r"\bigr)")


# --- structure ---------------------------------------------------------------------------------


def test_a_complete_document_with_preamble(doc: dict) -> None:
    tex = render_problem_tex(doc)
    assert tex.startswith(MAGIC.format(engine=PDFLATEX) + "\\documentclass[11pt,a4paper]{article}\n")
    assert engine_of(tex) == PDFLATEX
    for package in ("fontenc", "inputenc", "lmodern", "geometry", "amsmath", "amssymb", "mathtools",
                    "booktabs", "enumitem", "hyperref"):
        assert re.search(rf"\\usepackage(\[[^]]*\])?\{{{package}\}}", tex), package
    head, body = tex.split("\\begin{document}")
    assert "hyperref" in head.splitlines()[-15:][0] or head.index("hyperref") > head.index("booktabs")
    assert tex.rstrip().endswith("\\end{document}") and tex.endswith("\n")
    assert "\n\n\n" not in tex


def test_given_table_function_and_headings(doc: dict) -> None:
    body = _body(render_problem_tex(doc))
    # a title with math: typeset as math, plain text in the PDF bookmark
    assert body.lstrip().startswith(
        r"\section{\texorpdfstring{Gradient of $\operatorname{tr}(AXBX^\top C)$}{Gradient of tr(AXBX\textsuperscript{T}C)}}")
    assert "\\subsubsection{\\texorpdfstring{Gradient with respect to $X$}{Gradient with respect to X}}" in body
    assert "\\subsection{Given}" in body and "\\subsection{Solution}" in body
    table = body[body.index("\\begin{tabular}") : body.index("\\end{tabular}")]
    assert "\\toprule\nVariable & Shape & Assumptions \\\\\n\\midrule\n" in table
    assert "$X$ & $m \\times n$ matrix & — \\\\" in table
    assert "\\bottomrule" in table
    assert f"The function is $f = {doc['function']['latex']}$." in body


def test_one_align_per_chain_with_rule_tags(doc: dict) -> None:
    body = _body(render_problem_tex(doc))
    result = doc["results"][0]
    chains = [s for s in result["steps"] if s["lhs_latex"]]
    assert body.count("\\begin{align*}") == len(chains) == 2
    blocks = re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", body, re.S)
    rows = [row for block in blocks for row in block.split(" \\\\\n")]
    assert len(rows) == len(result["steps"])
    for row, step in zip(rows, result["steps"]):
        assert step["latex"] in row
        if step["rules"]:
            assert row.endswith(f"\\steprule{{[{', '.join(step['rules'])}]}}")  # short ids
        else:
            assert "\\steprule" not in row
    assert blocks[0].startswith("\\mathrm{d}f &= ")
    assert blocks[1].startswith("\\frac{\\partial f}{\\partial X} &= \\boxed{")  # the result, once
    # the names of the rules under each chain, each once
    legend = re.search(r"\\end\{align\*\}\n\\steplegend\{(.*)\}", body).group(1)
    assert legend.startswith("[D4]~differential of a trace · [D2]~product rule · ")


def test_boxed_result_and_verification(doc: dict) -> None:
    body = _body(render_problem_tex(doc))
    result = doc["results"][0]
    assert f"{result['lhs_latex']} &= \\boxed{{{result['latex']}}}" in body  # the last step, boxed
    assert body.count("\\boxed") == 1
    assert re.search(r"\\textbf\{Verification\}: checked numerically at random values \(sizes "
                     r"\$p = 3,\\ m = 4,\\ n = 5\$; 3 random points, \d+ checks\); largest relative "
                     r"error [0-9.e-]+, tolerance 1e-6\.", body)


def test_a_long_result_is_boxed_on_several_lines(doc: dict) -> None:
    result = doc["results"][0]
    result["latex"] = " + ".join([r"A^{\top} C^{\top} X B^{\top}"] * 14)
    body = _body(render_problem_tex(doc))
    assert "\\boxed{\\begin{aligned}\n\\frac{\\partial f}{\\partial X} &= " in body
    assert "\\\\\n  &\\qquad {}+ " in body


def test_rules_appendix_lists_exactly_the_rules_used(doc: dict) -> None:
    body = _body(render_problem_tex(doc))
    appendix = body[body.index("{\\large\\bfseries Rules used}") :]
    listed = re.findall(r"^\\item\[\{\[([A-Z]\d+)\]\}\] ", appendix, re.M)
    cited = {r for result in doc["results"] for s in result["steps"] for r in s["rules"]}
    assert set(listed) == cited and len(listed) == len(cited)
    assert listed == [r["id"] for r in shown_rules(doc["rules"], [doc])]  # catalogue order
    assert "\\item[{[T3]}] cyclic property: $\\operatorname{tr}(ABC) = \\operatorname{tr}(CAB)$" in appendix


def test_problem_sheet_has_no_solution(doc: dict) -> None:
    body = _body(render_problem_tex(doc, solutions=False))
    assert "\\subsection{Given}" in body
    for absent in ("Solution", "align*", "\\boxed", "Rules used", "Verification"):
        assert absent not in body


def test_set_handout(docs: dict[str, dict]) -> None:
    setdoc = _set(list(docs.values()), course="ML 101 & co", author="A. Teacher_1", date="2025-03-01")
    tex = render_set_tex(setdoc)
    body = _body(tex)
    assert tex.count("\\documentclass") == 1 and tex.count("\\begin{document}") == 1
    assert "{\\LARGE\\bfseries Worked solutions\\par}" in body
    assert "{\\large\\itshape ML 101 \\& co · A. Teacher\\_1 · 2025-03-01\\par}" in body
    headings = re.findall(r"^\\section\{(.*)\}$", body, re.M)
    assert headings == [
        r"\texorpdfstring{Problem 1: Gradient of $\operatorname{tr}(AXBX^\top C)$}"
        r"{Problem 1: Gradient of tr(AXBX\textsuperscript{T}C)}",
        "Problem 2: Quadratic form of a sigmoid layer",
        "Problem 3: Rayleigh quotient",
        "Rules used",
    ]
    assert body.count("Rules used") == 1  # one appendix, at the end
    assert "pdftitle={Worked solutions}" in tex and "pdfauthor={A. Teacher\\_1}" in tex


def test_set_problem_sheet_title(docs: dict[str, dict]) -> None:
    setdoc = _set(list(docs.values()))
    setdoc["title"] = None
    body = _body(render_set_tex(setdoc, solutions=False))
    assert "{\\LARGE\\bfseries Problem sheet\\par}" in body
    assert "\\boxed" not in body and "Rules used" not in body


def test_chinese_handout_uses_xelatex_and_the_catalogue(docs: dict[str, dict]) -> None:
    doc = problem_document(PROBLEMS / "n001_trace_axbxtc.yaml", lang="zh")
    tex = render_problem_tex(doc, lang="zh")
    assert engine_of(tex) == XELATEX
    assert "\\usepackage{xeCJK}" in tex and "\\setCJKmainfont{Noto Serif CJK SC}" in tex
    assert "inputenc" not in tex and "fontenc" not in tex
    body = _body(tex)
    for key in ("given", "solution"):
        assert f"\\subsection{{{i18n.text(key, 'zh')}}}" in body
    assert "{\\large\\bfseries 所用法则}" in body
    assert "\\subsubsection{\\texorpdfstring{关于 $X$ 的梯度}{关于 X 的梯度}}" in body
    assert "变量 & 形状 & 假设 \\\\" in body
    assert "\\steprule{[T3]}" in body and "[T3]~迹的循环性质" in body
    assert "\\textbf{验证}：已在随机取值处作数值检验" in body
    setdoc = _set(list(docs.values()), lang="zh")
    body = _body(render_set_tex(setdoc))
    assert "\\section{\\texorpdfstring{第 1 题：Gradient of $\\operatorname{tr}(AXBX^\\top C)$}" in body


def test_text_pdflatex_cannot_typeset_switches_to_xelatex(doc: dict) -> None:
    doc["title"] = "矩阵求导"
    tex = render_problem_tex(doc)
    assert engine_of(tex) == XELATEX and "\\section{矩阵求导}" in tex and "xeCJK" in tex
    assert engine_of(preamble()) == PDFLATEX  # no magic line: pdfLaTeX


def test_untrusted_title_and_statement_are_neutralised(doc: dict) -> None:
    doc["title"] = EVIL_TEXT
    doc["statement"] = f"{EVIL_TEXT}\n\nMath: $\\input{{/etc/passwd}} \\immediate\\write18{{touch /tmp/x}}$"
    doc["variables"][0]["assumptions"] = []
    tex = render_problem_tex(doc)
    assert "\\input{" not in tex and "\\write18" not in tex and "\\immediate" not in tex.replace(
        r"\backslash immediate", "")
    heading = re.search(r"^\\section\{(.*)\}$", tex, re.M).group(1)
    assert _unescaped_specials(heading) == ""
    assert "pdftitle={" + tex_escape(" ".join(EVIL_TEXT.split())) + "}" in tex


def test_failed_problem_shows_the_error_verbatim_and_no_result() -> None:
    bad = problem_document(ROOT / "tests" / "data" / "bad" / "not_square.yaml")
    assert not bad["ok"]
    bad["error"]["rendered"] += "\n  \\input{/etc/passwd} \\end{verbatimlines} 50%"
    body = _body(render_problem_tex(bad))
    assert "\\begin{errorbox}\n\\textbf{Error}: this problem could not be solved" in body
    assert "\\verbatimline{~~\\textbackslash{}input\\{/etc/passwd\\}~\\textbackslash{}end" in body
    for absent in ("\\boxed", "align*", "Solution", "Rules used"):
        assert absent not in body


def test_a_result_that_failed_its_check_is_withheld(doc: dict) -> None:
    doc["results"][0]["verification"]["passed"] = False
    body = _body(render_problem_tex(doc))
    assert "the result for $\\frac{\\partial f}{\\partial X}$ failed its numeric check" in body
    assert "\\boxed" not in body and "align*" not in body and "Rules used" not in body


def test_unknown_language_is_an_error(doc: dict) -> None:
    with pytest.raises(RenderError, match="unsupported language"):
        render_problem_tex(doc, lang="fr")


# --- templates ---------------------------------------------------------------------------------


def _user_dir(tmp_path: Path, source: str, name: str = "tex/problem.tex.j2") -> Path:
    path = tmp_path / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return tmp_path / "templates"


def test_extending_the_default_changes_nothing(tmp_path: Path, doc: dict) -> None:
    user = _user_dir(tmp_path, '{% extends "default/tex/problem.tex.j2" %}\n')
    assert render_problem_tex(doc, user_dir=user) == render_problem_tex(doc)


def test_overriding_one_block(tmp_path: Path, doc: dict) -> None:
    user = _user_dir(tmp_path, (
        '{% extends "default/tex/problem.tex.j2" %}\n'
        "{% block preamble %}{{ super() }}\\usepackage{xcolor}\n{% endblock %}\n"
        "{% block verification %}\\emph{Checked: {{ r.verification.max_rel_error|sci }}.}\n\n"
        "{% endblock %}\n"
    ))
    tex = render_problem_tex(doc, user_dir=user)
    default = render_problem_tex(doc)
    assert "\\usepackage{xcolor}\n\\begin{document}" in tex
    assert re.search(r"\\emph\{Checked: [0-9.e-]+\.\}", tex) and "Verification" not in tex
    # Everything else is as it was.
    strip = lambda s: re.sub(r"\\usepackage\{xcolor\}\n|\\emph\{Checked.*\n|\\textbf\{Verification.*\n", "", s)
    assert strip(tex) == strip(default)


def test_a_set_uses_the_overridden_problem_template(tmp_path: Path, docs: dict[str, dict]) -> None:
    user = _user_dir(tmp_path, (
        '{% extends "default/tex/problem.tex.j2" %}\n'
        "{% block given %}GIVEN-{{ number }}\n\n{% endblock %}\n"
    ))
    body = _body(render_set_tex(_set(list(docs.values())), user_dir=user))
    assert "GIVEN-1" in body and "GIVEN-3" in body and "\\subsection{Given}" not in body


def test_a_template_error_is_a_render_error(tmp_path: Path, doc: dict) -> None:
    user = _user_dir(tmp_path, '{% extends "default/tex/problem.tex.j2" %}\n{% block given %}{{ nope }}{% endblock %}\n')
    with pytest.raises(RenderError, match="nope"):
        render_problem_tex(doc, user_dir=user)


# --- golden snapshots --------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN_PROBLEMS)
def test_golden_tex(name: str, docs: dict[str, dict]) -> None:
    assert_golden(f"tex/{name}.en.tex", render_problem_tex(docs[name]))


def test_golden_tex_chinese() -> None:
    doc = problem_document(PROBLEMS / "n000_sigmoid_quadratic.yaml", lang="zh")
    assert_golden("tex/n000_sigmoid_quadratic.zh.tex", render_problem_tex(doc, lang="zh"))

"""Tests of the Markdown handouts, the template overrides, the i18n catalogue and atomic writes.

The documents here are written by hand after docs/schema.md, so these tests do not depend on
the engine. Snapshots live in tests/golden/ (see tests/golden.py for how to regenerate them).
"""

from __future__ import annotations

import copy
import os
import re
import string
from pathlib import Path

import pytest
from golden import assert_golden
from markdown_it import MarkdownIt

from derivgen import i18n
from derivgen.errors import RenderError
from derivgen.output import write_atomic
from derivgen.render import (
    TEMPLATE_DIR,
    code_block,
    environment,
    format_sci,
    md_escape,
    render_problem_md,
    render_set_md,
)

# --- sample documents -------------------------------------------------------------------------

GRADIENT = r"\left(2 M Y \odot Y \odot (\mathbf{1} - Y)\right) X^{\top}"
LHS = r"\frac{\partial f}{\partial W}"


def _step(latex: str, rules: list[str], lhs: str | None = None) -> dict:
    return {"lhs_latex": lhs, "lhs": None, "latex": latex, "text": "", "rules": rules}


def _sample_doc() -> dict:
    """f = tr(YᵀMY) with Y = σ(WX), M symmetric: two chains (df = …, ∂f/∂W = …)."""
    return {
        "id": "sigmoid_quadratic",
        "source": "problems/sigmoid_quadratic.yaml",
        "title": "Gradient of tr(YᵀMY) through a sigmoid layer",
        "statement": (
            "Let $Y = \\sigma(WX)$, with the logistic function $\\sigma$ applied entrywise.\n"
            "Compute the gradient of $f$ with respect to the weights $W$.\n"
        ),
        "ok": True,
        "error": None,
        "variables": [
            {"name": "W", "latex": "W", "shape": ["m", "n"], "shape_latex": r"m \times n",
             "kind": "matrix", "assumptions": []},
            {"name": "X", "latex": "X", "shape": ["n", "p"], "shape_latex": r"n \times p",
             "kind": "matrix", "assumptions": []},
            {"name": "M", "latex": "M", "shape": ["m", "m"], "shape_latex": r"m \times m",
             "kind": "matrix", "assumptions": ["symmetric"]},
        ],
        "where": [{"name": "Y", "latex": "Y", "text": "sigma(W*X)", "expr_latex": r"\sigma(W X)"}],
        "function": {"text": "tr(Y'*M*Y)", "latex": r"\operatorname{tr}(Y^{\top} M Y)"},
        "results": [
            {
                "wrt": "W",
                "wrt_latex": "W",
                "kind": "gradient",
                "lhs_latex": LHS,
                "latex": GRADIENT,
                "text": "(2*M*Y .* Y .* (1 - Y)) * X'",
                "numpy": "(2 * M @ Y * Y * (1 - Y)) @ X.T",
                "steps": [
                    _step(r"\mathrm{d}\operatorname{tr}(Y^{\top} M Y)", [], lhs=r"\mathrm{d}f"),
                    _step(r"\operatorname{tr}(\mathrm{d}Y^{\top} M Y + Y^{\top} M \, \mathrm{d}Y)",
                          ["D2", "D3"]),
                    _step(r"\operatorname{tr}(2 Y^{\top} M \, \mathrm{d}Y)", ["T1", "A1"]),
                    _step(r"\operatorname{tr}\left(2 Y^{\top} M \left(Y \odot (\mathbf{1} - Y)"
                          r" \odot (\mathrm{d}W \, X)\right)\right)", ["C1"]),
                    _step(r"\operatorname{tr}\left(\left(2 M Y \odot Y \odot (\mathbf{1} - Y)\right)^{\top}"
                          r" \mathrm{d}W \, X\right)", ["T4"]),
                    _step(r"\operatorname{tr}\left(X \left(2 M Y \odot Y \odot (\mathbf{1} - Y)\right)^{\top}"
                          r" \mathrm{d}W\right)", ["T2"]),
                    _step(GRADIENT, ["I1"], lhs=LHS),
                ],
                "verification": {
                    "passed": True,
                    "max_rel_error": 3.1e-11,
                    "tolerance": 1e-6,
                    "sizes": {"m": 3, "n": 4, "p": 5},
                    "trials": 3,
                    "checks": 42,
                },
            }
        ],
        "rules": [
            {"id": "D2", "name": "differential of a trace", "names": {"zh": "迹的微分"},
             "formula": r"\mathrm{d}\operatorname{tr}(A) = \operatorname{tr}(\mathrm{d}A)"},
            {"id": "D3", "name": "product rule", "names": {"zh": "乘积法则"},
             "formula": r"\mathrm{d}(AB) = \mathrm{d}A \, B + A \, \mathrm{d}B"},
            {"id": "T1", "name": "trace of a transpose", "names": {"zh": "转置的迹"},
             "formula": r"\operatorname{tr}(A^{\top}) = \operatorname{tr}(A)"},
            {"id": "T2", "name": "cyclic property of the trace", "names": {"zh": "迹的轮换性"},
             "formula": r"\operatorname{tr}(ABC) = \operatorname{tr}(CAB)"},
            {"id": "T4", "name": "Hadamard product inside a trace", "names": {"zh": "迹中的阿达马积"},
             "formula": r"\operatorname{tr}\left(A^{\top}(B \odot C)\right)"
                        r" = \operatorname{tr}\left((A \odot B)^{\top} C\right)"},
            {"id": "A1", "name": "symmetric matrix", "names": {"zh": "对称矩阵"},
             "formula": r"A^{\top} = A"},
            {"id": "C1", "name": "chain rule through a definition", "names": {"zh": "经由定义的链式法则"},
             "formula": r"Y = \sigma(Z) \Rightarrow \mathrm{d}Y = \sigma'(Z) \odot \mathrm{d}Z"},
            {"id": "I1", "name": "reading off the gradient", "names": {"zh": "读出梯度"},
             "formula": r"\mathrm{d}f = \operatorname{tr}(G^{\top} \mathrm{d}X)"
                        r" \Rightarrow \frac{\partial f}{\partial X} = G"},
        ],
    }


def _failed_doc() -> dict:
    return {
        "id": "broken",
        "source": "problems/broken.yaml",
        "title": "A problem that does not parse",
        "statement": "",
        "ok": False,
        "error": {
            "message": "unknown name 'Y'",
            "location": "problems/broken.yaml:4:17",
            "hint": "declare it under `variables:` or define it under `where:`",
            "rendered": (
                "error: problems/broken.yaml:4:17: unknown name 'Y'\n"
                "    function: tr(A * Y)\n"
                "                     ^\n"
                "hint: declare it under `variables:` or define it under `where:`"
            ),
        },
        "variables": [],
        "where": [],
        "function": None,
        "results": [],
        "rules": [],
    }


def _set_doc() -> dict:
    return {
        "title": "Matrix calculus: worked solutions",
        "course": "MATH 301 Optimisation",
        "author": "A. Teacher",
        "date": "2025-03-01",
        "language": "en",
        "problems": [_sample_doc(), _failed_doc()],
        "rules": _sample_doc()["rules"],
    }


@pytest.fixture
def doc() -> dict:
    return _sample_doc()


@pytest.fixture
def md(doc: dict) -> str:
    return render_problem_md(doc)


# --- helpers ----------------------------------------------------------------------------------

_MD = MarkdownIt("commonmark").enable("table")


def display_blocks(text: str) -> list[str]:
    """The contents of the $$ … $$ blocks, in order."""
    return re.findall(r"^\$\$\n(.*?)\n\$\$$", text, flags=re.M | re.S)


def headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of every heading, as a CommonMark parser sees them."""
    tokens = _MD.parse(text)
    return [
        (int(tok.tag[1]), tokens[i + 1].content)
        for i, tok in enumerate(tokens)
        if tok.type == "heading_open"
    ]


def section(text: str, heading: str) -> str:
    """The lines after `heading` up to the next heading of any level."""
    after = text.split(heading + "\n", 1)[1]
    return re.split(r"^#", after, maxsplit=1, flags=re.M)[0]


# --- the Markdown handout ---------------------------------------------------------------------


def test_each_chain_is_its_own_aligned_display_block(md: str) -> None:
    blocks = display_blocks(md)
    assert len(blocks) == 2  # two chains; the result is boxed in the last, not printed again
    first, second = blocks
    for chain in (first, second):
        assert chain.startswith("\\begin{aligned}\n") and chain.endswith("\n\\end{aligned}")
    assert first.splitlines()[1] == r" &\quad \mathrm{d}f &&= \mathrm{d}\operatorname{tr}(Y^{\top} M Y) \\"
    assert len(first.splitlines()) == 2 + 6  # begin, end and one line per step
    assert second.splitlines()[1] == rf"\text{{[I1]}} &\quad {LHS} &&= \boxed{{{GRADIENT}}}"
    assert md.count("\\boxed") == 1


def test_display_math_survives_markdown_block_parsing(md: str) -> None:
    # GitHub needs $$ on lines of their own and no blank line inside: each block must come out
    # of a CommonMark parser as one paragraph that opens and closes with $$.
    paragraphs = [tok.content for tok in _MD.parse(md) if tok.type == "inline" and "$$" in tok.content]
    assert len(paragraphs) == 2
    for content in paragraphs:
        assert content.startswith("$$\n") and content.endswith("\n$$")


def test_steps_carry_rule_tags(md: str) -> None:
    # short ids at the left of each line (a narrow column that scrolls the formula still shows
    # them), the names in a legend under the chain
    lines = display_blocks(md)[0].splitlines()
    assert lines[1].startswith(" &")  # the starting point needs no justification
    assert lines[2].startswith(r"\text{[D2, D3]} &\quad  &&= ")
    assert lines[4].startswith(r"\text{[C1]} &")
    assert lines[6].startswith(r"\text{[T2]} &") and not lines[6].endswith("\\\\")  # last line: no \\
    assert display_blocks(md)[1].splitlines()[1].startswith(r"\text{[I1]} &")
    assert ("\n*[D2] differential of a trace · [D3] product rule · [T1] trace of a transpose · "
            "[A1] symmetric matrix · [C1] chain rule through a definition · "
            "[T4] Hadamard product inside a trace · [T2] cyclic property of the trace*\n") in md
    assert "\n*[I1] reading off the gradient*\n" in md


def test_headings_of_a_single_problem(md: str) -> None:
    assert headings(md) == [
        (1, "Gradient of tr(YᵀMY) through a sigmoid layer"),
        (2, "Given"),
        (2, "Solution"),
        (3, "Gradient with respect to $W$"),
        (2, "Rules used"),
    ]


def test_given_table_and_function_line(md: str) -> None:
    given = section(md, "## Given")
    assert "| Variable | Shape | Assumptions |" in given
    assert r"| $W$ | $m \times n$ matrix | — |" in given
    assert r"| $M$ | $m \times m$ matrix | symmetric |" in given
    assert (
        r"The function is $f = \operatorname{tr}(Y^{\top} M Y)$, where $Y = \sigma(W X)$." in given
    )
    assert any(tok.type == "table_open" for tok in _MD.parse(given))
    assert "Find" not in given  # the statement already says what to find


def test_find_line_when_there_is_no_statement(doc: dict) -> None:
    doc["statement"] = ""
    assert f"Find ${LHS}$." in render_problem_md(doc)


def test_shapes_and_assumptions_of_each_kind(doc: dict) -> None:
    doc["variables"] = [
        {"name": "x", "latex": "x", "shape": ["n"], "shape_latex": "n", "kind": "vector",
         "assumptions": ["positive"]},
        {"name": "lam", "latex": r"\lambda", "shape": [], "shape_latex": "", "kind": "scalar",
         "assumptions": []},
        {"name": "S", "latex": r"\Sigma", "shape": ["n", "n"], "shape_latex": r"n \times n",
         "kind": "matrix", "assumptions": ["spd", "invertible"]},
    ]
    doc["where"].append({"name": "Z", "latex": "Z", "text": "Y'", "expr_latex": "Y^{\\top}"})
    md = render_problem_md(doc)
    assert "| $x$ | $n$ vector | positive entries |" in md
    assert r"| $\lambda$ | scalar | — |" in md
    assert r"| $\Sigma$ | $n \times n$ matrix | symmetric positive definite and invertible |" in md
    assert r"where $Y = \sigma(W X)$ and $Z = Y^{\top}$." in md
    zh = render_problem_md(doc, lang="zh")
    assert r"| $\Sigma$ | $n \times n$ 矩阵 | 对称正定、可逆 |" in zh
    assert r"其中 $Y = \sigma(W X)$、$Z = Y^{\top}$。" in zh


def test_boxed_result_and_verification_figures(md: str, doc: dict) -> None:
    assert f"{LHS} &&= \\boxed{{{GRADIENT}}}\n\\end{{aligned}}\n$$" in md
    # a result whose last step is not the result itself gets a box of its own
    doc["results"][0]["steps"] = doc["results"][0]["steps"][:-1]
    assert f"$$\n\\boxed{{{LHS} = {GRADIENT}}}\n$$" in render_problem_md(doc)
    assert (
        r"**Verification**: checked numerically at random values "
        r"(sizes $m = 3,\ n = 4,\ p = 5$; 3 random points, 42 checks); "
        r"largest relative error 3.1e-11, tolerance 1e-6."
    ) in md


def test_verification_line_in_the_singular_and_without_sizes(doc: dict) -> None:
    doc["results"][0]["verification"].update(sizes={}, trials=1, checks=1)
    md = render_problem_md(doc)
    assert "(1 random point, 1 check); largest relative error 3.1e-11" in md


def test_rules_appendix_lists_exactly_the_rules_used(doc: dict, md: str) -> None:
    cited = [rule for step in doc["results"][0]["steps"] for rule in step["rules"]]
    appendix = md.split("## Rules used\n", 1)[1]
    listed = re.findall(r"^- \*\*\[(\w+)\]\*\* ", appendix, flags=re.M)
    assert sorted(listed) == sorted(set(cited))
    assert listed == [rule["id"] for rule in doc["rules"]]  # in catalogue order
    assert (
        r"- **[T2]** cyclic property of the trace: $\operatorname{tr}(ABC) = \operatorname{tr}(CAB)$"
        in appendix
    )


def test_a_step_citing_an_unlisted_rule_is_an_error(doc: dict) -> None:
    doc["results"][0]["steps"][1]["rules"] = ["D2", "Z9"]
    with pytest.raises(RenderError, match="Z9"):
        render_problem_md(doc)


# --- failures are never shown as results ------------------------------------------------------


def test_failed_problem_shows_the_error_and_no_result() -> None:
    md = render_problem_md(_failed_doc())
    assert "\\boxed" not in md and "$$" not in md
    assert "## Solution" not in md and "Rules used" not in md
    assert "> **⚠ Error**: this problem could not be solved, so no solution is given." in md
    assert "> error: problems/broken.yaml:4:17: unknown name 'Y'\n>     function: tr(A * Y)\n" in md
    # the error report sits in a code block inside the quote, so its caret keeps its column
    tokens = _MD.parse(md)
    fence = next(tok for tok in tokens if tok.type == "fence")
    assert fence.content.splitlines()[2] == "                     ^"


def test_a_result_that_failed_its_check_is_withheld(doc: dict) -> None:
    doc["results"][0]["verification"].update(passed=False, max_rel_error=0.42)
    md = render_problem_md(doc)
    assert "\\boxed" not in md and "\\begin{aligned}" not in md and "$$" not in md
    assert "Verification" not in md
    assert (
        f"> **⚠ Error**: the result for ${LHS}$ failed its numeric check "
        "(largest relative error 4.2e-1, tolerance 1e-6), so it is not shown."
    ) in md
    assert "Rules used" not in md  # no step is shown, so no rule is used


def test_an_unverified_result_is_withheld(doc: dict) -> None:
    doc["results"][0]["verification"] = None
    md = render_problem_md(doc)
    assert "\\boxed" not in md
    assert "has not been checked numerically, so it is not shown." in md


def test_passed_must_be_true_not_truthy(doc: dict) -> None:
    doc["results"][0]["verification"]["passed"] = "yes"
    assert "\\boxed" not in render_problem_md(doc)


def test_only_the_published_result_of_two_is_shown(doc: dict) -> None:
    bad = copy.deepcopy(doc["results"][0])
    bad.update(wrt="X", lhs_latex=r"\frac{\partial f}{\partial X}", latex="WRONG")
    bad["steps"] = [_step("WRONG", ["T4"], lhs=r"\mathrm{d}f")]
    bad["verification"]["passed"] = False
    doc["results"].append(bad)
    doc["rules"].append({"id": "Q1", "name": "unused", "formula": "0 = 0"})
    md = render_problem_md(doc)
    assert "WRONG" not in md
    assert md.count("\\boxed") == 1
    assert "failed its numeric check" in md
    assert "(Q1)" not in md


# --- problem sheets, sets, languages ----------------------------------------------------------


def test_problem_sheet_has_statement_and_given_only(doc: dict) -> None:
    md = render_problem_md(doc, solutions=False)
    assert "Compute the gradient of $f$" in md
    assert "| $M$ | $m \\times m$ matrix | symmetric |" in md
    assert "$$" not in md and "Solution" not in md and "Rules used" not in md
    assert "3.1e-11" not in md and GRADIENT not in md


def test_set_handout() -> None:
    md = render_set_md(_set_doc())
    assert headings(md) == [
        (1, "Matrix calculus: worked solutions — Solutions"),
        (2, "Problem 1: Gradient of tr(YᵀMY) through a sigmoid layer"),
        (3, "Given"),
        (3, "Solution"),
        (4, "Gradient with respect to $W$"),
        (2, "Problem 2: A problem that does not parse"),
        (2, "Rules used"),
    ]
    assert "\n*MATH 301 Optimisation · A. Teacher · 2025-03-01*\n" in md
    # the problem looks the same as in its own handout, one heading level deeper
    alone = render_problem_md(_sample_doc())
    body = alone.split("## Given\n", 1)[1].split("## Rules used", 1)[0]
    assert body.replace("\n### ", "\n#### ").replace("\n## ", "\n### ") in md
    assert md.count("> **⚠ Error**") == 1
    assert md.count("## Rules used") == 1


def test_set_problem_sheet_and_language() -> None:
    setdoc = _set_doc()
    del setdoc["title"]
    sheet = render_set_md(setdoc, solutions=False)
    assert sheet.startswith("# Problem sheet\n")
    assert "$$" not in sheet and "Rules used" not in sheet
    setdoc["language"] = "zh"
    assert render_set_md(setdoc).startswith("# 习题解答\n")
    assert render_set_md(setdoc, lang="en").startswith("# Solutions\n")


ENGLISH_PROSE = [
    "Problem", "Given", "Solution", "Verification", "Rules used", "Variable", "Shape",
    "Assumptions", "symmetric", "matrix", "The function is", "checked numerically",
    "random points", "relative error", "differential of a trace",
]


def test_chinese_handout(doc: dict) -> None:
    doc["title"] = "经过 sigmoid 层的 tr(YᵀMY) 的梯度"
    doc["statement"] = "设 $Y = \\sigma(WX)$，求 $f$ 关于 $W$ 的梯度。"
    md = render_problem_md(doc, lang="zh")
    assert [text for _, text in headings(md)] == [doc["title"], "已知", "解答", "关于 $W$ 的梯度", "所用法则"]
    assert "| 变量 | 形状 | 假设 |" in md and "| $M$ | $m \\times m$ 矩阵 | 对称 |" in md
    assert "函数为 $f = \\operatorname{tr}(Y^{\\top} M Y)$，其中 $Y = \\sigma(W X)$。" in md
    assert r"\text{[D2, D3]}" in md and "*[D2] 迹的微分 · [D3] 乘积法则 · " in md
    assert "3 个随机点，42 次比较" in md and "最大相对误差 3.1e-11" in md
    for word in ENGLISH_PROSE:
        assert word not in md, word
    assert "**" not in _MD.render(md)  # bold labels next to CJK punctuation still close
    sheet = render_set_md({"title": "矩阵求导", "problems": [_sample_doc(), _failed_doc()]},
                          lang="zh-CN", solutions=False)
    assert "## 第 1 题：Gradient of tr(YᵀMY) through a sigmoid layer" in sheet
    assert "本题未能求解" in sheet


def test_rule_names_by_language(doc: dict) -> None:
    doc["rules"][0] = {**doc["rules"][0], "name": {"en": "trace rule", "zh": "迹法则"}}
    del doc["rules"][0]["names"]
    assert "*[D2] trace rule · [D3] product rule · " in render_problem_md(doc)
    assert "*[D2] 迹法则 · [D3] 乘积法则 · " in render_problem_md(doc, lang="zh")
    del doc["rules"][1]["names"]
    assert "*[D2] 迹法则 · [D3] product rule · " in render_problem_md(doc, lang="zh")


def test_unknown_language_is_an_error(doc: dict) -> None:
    with pytest.raises(RenderError, match="unsupported language 'fr'"):
        render_problem_md(doc, lang="fr")


# --- escaping ---------------------------------------------------------------------------------


def test_plain_text_title_is_escaped_for_markdown(doc: dict) -> None:
    doc["title"] = "Costs in $ and *weights* [v2] <b>|x|</b> #1\nsecond line"
    md = render_problem_md(doc)
    first = md.splitlines()[0]
    assert first == r"# Costs in \$ and \*weights\* \[v2\] \<b\>\|x\|\</b\> \#1 second line"
    assert _MD.render(first) == "<h1>Costs in $ and *weights* [v2] &lt;b&gt;|x|&lt;/b&gt; #1 second line</h1>\n"
    assert render_set_md({"title": "1. *Set*", "problems": []}).startswith(r"# 1\. \*Set\*")


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words, (parens) and 3.5", "plain words, (parens) and 3.5"),
        ("a_b*c`d", r"a\_b\*c\`d"),
        ("- item", r"\- item"),
        ("12. point", r"12\. point"),
        ("AT&T &amp; co", r"AT&T \&amp; co"),
        ("~~gone~~", r"\~\~gone\~\~"),
    ],
)
def test_md_escape(text: str, escaped: str) -> None:
    assert md_escape(text) == escaped
    rendered = _MD.render(escaped)
    assert rendered.startswith("<p>") and "<em>" not in rendered and "<code>" not in rendered


def test_rule_names_are_escaped_inside_text(doc: dict) -> None:
    # a rule name is Markdown text in the legend (no longer TeX text inside the formula)
    doc["rules"][0]["name"] = "trace {of} 100% & more_stuff *x*"
    md = render_problem_md(doc)
    assert r"*[D2] trace {of} 100% & more\_stuff \*x\* · [D3] product rule" in md


def test_code_block_fence_outlasts_backticks_inside() -> None:
    block = code_block("a ```` b")
    assert block.startswith("`````text\n") and block.endswith("\n`````")


@pytest.mark.parametrize(
    ("value", "text"),
    [(3.1e-11, "3.1e-11"), (1e-6, "1e-6"), (0.0, "0"), (2.04e-5, "2e-5"), (None, "—")],
)
def test_format_sci(value: float | None, text: str) -> None:
    assert format_sci(value) == text


def test_layout_is_tidy(md: str) -> None:
    assert md.endswith("\n") and not md.endswith("\n\n")
    assert "\n\n\n" not in md
    assert not any(line != line.rstrip() for line in md.splitlines())


# --- templates: overriding and extending ------------------------------------------------------


def _user_dir(tmp_path: Path, source: str, name: str = "md/problem.md.j2") -> Path:
    path = tmp_path / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return tmp_path / "templates"


def test_extending_a_default_with_super_changes_nothing(tmp_path: Path, md: str, doc: dict) -> None:
    user = _user_dir(
        tmp_path,
        '{% extends "default/md/problem.md.j2" %}\n'
        "{% block given %}<<{{ super() }}>>{% endblock %}\n",
    )
    out = render_problem_md(doc, user_dir=user)
    assert out.count("<<") == 1 and out.count(">>") == 1
    assert out.replace("<<", "").replace(">>", "") == md


def test_overriding_one_block_changes_just_that_block(tmp_path: Path, md: str, doc: dict) -> None:
    marked = _user_dir(
        tmp_path / "marked",
        '{% extends "default/md/problem.md.j2" %}{% block verification %}<<{{ super() }}>>{% endblock %}',
    )
    default_block = re.search(r"<<(.*)>>", render_problem_md(doc, user_dir=marked), re.S).group(1)
    user = _user_dir(
        tmp_path,
        '{% extends "default/md/problem.md.j2" %}\n'
        "{% block verification %}\n"
        "*Checked by {{ t('verification') }} at {{ r.verification.trials }} points.*\n\n"
        "{% endblock %}\n",
    )
    out = render_problem_md(doc, user_dir=user)
    assert out == md.replace(default_block, "*Checked by Verification at 3 points.*\n\n")
    # the set includes the same template, so the override shows there too
    assert "*Checked by Verification at 3 points.*" in render_set_md(_set_doc(), user_dir=user)


def test_a_user_template_with_a_defaults_name_replaces_it(tmp_path: Path, doc: dict) -> None:
    user = _user_dir(tmp_path, "CUSTOM {{ doc.title }} in {{ lang }}\n")
    assert render_problem_md(doc, user_dir=user) == f"CUSTOM {doc['title']} in en\n"
    assert render_problem_md(doc, user_dir=tmp_path) == render_problem_md(doc)  # other names: defaults


def test_an_edited_user_template_is_picked_up(tmp_path: Path, doc: dict) -> None:
    user = _user_dir(tmp_path, "first\n")
    assert render_problem_md(doc, user_dir=user) == "first\n"
    path = user / "md" / "problem.md.j2"
    path.write_text("second\n", encoding="utf-8")
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    assert render_problem_md(doc, user_dir=user) == "second\n"


def test_template_errors_are_render_errors_with_a_location(tmp_path: Path, doc: dict) -> None:
    user = _user_dir(tmp_path / "syntax", "line one\n{% if %}\n")
    with pytest.raises(RenderError) as caught:
        render_problem_md(doc, user_dir=user)
    assert caught.value.location.line == 2
    assert caught.value.location.file.endswith("problem.md.j2")

    user = _user_dir(tmp_path / "key", "line one\n{{ t('no_such_key') }}\n")
    with pytest.raises(RenderError, match="no_such_key") as caught:
        render_problem_md(doc, user_dir=user)
    assert caught.value.location.line == 2

    user = _user_dir(tmp_path / "field", "{{ doc.no_such_field }}\n")
    with pytest.raises(RenderError, match="no_such_field"):
        render_problem_md(doc, user_dir=user)

    with pytest.raises(RenderError, match="template directory not found"):
        render_problem_md(doc, user_dir=tmp_path / "missing")


def test_environment_finds_defaults_by_both_names() -> None:
    env = environment()
    for name in ("md/problem.md.j2", "md/set.md.j2", "md/macros.j2"):
        assert env.get_template(name).filename == env.get_template(f"default/{name}").filename


# --- i18n -------------------------------------------------------------------------------------


def _fields(value: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(value) if field}


def test_every_key_has_an_english_value_with_the_same_fields() -> None:
    english = i18n.catalogue("en")
    for lang in i18n.LANGUAGES:
        merged = i18n.catalogue(lang)
        assert set(merged) == set(english)
        for key, value in merged.items():
            assert english[key], key
            assert _fields(value) == _fields(english[key]), (lang, key)


def test_catalogues_have_no_keys_english_lacks() -> None:
    for lang, values in i18n._CATALOGUES.items():
        assert set(values) <= set(i18n._EN), lang


def test_every_key_the_templates_use_exists() -> None:
    used = set()
    for path in TEMPLATE_DIR.rglob("*.j2"):
        used |= set(re.findall(r"""\bt\(\s*["'](\w+)["']\s*[,)]""", path.read_text(encoding="utf-8")))
        used |= {f"{key}_{n}" for key in re.findall(r"""\bplural\(\s*["'](\w+)["']""",
                                                     path.read_text(encoding="utf-8"))
                 for n in ("one", "other")}
    assert used and used <= set(i18n.catalogue("en"))
    for name in ("symmetric", "spd", "invertible", "orthogonal", "diagonal", "positive"):
        assert i18n.text(f"assume_{name}", "zh") != i18n.text(f"assume_{name}", "en")


def test_text_formats_and_falls_back_to_english() -> None:
    assert i18n.text("problem_titled", "en", number=2, title="T") == "Problem 2: T"
    assert i18n.text("problem_titled", "zh", number=2, title="T") == "第 2 题：T"
    assert i18n.text("assume_spd", "zh") == "对称正定"
    assert "meta_sep" not in i18n._ZH and i18n.text("meta_sep", "zh") == " · "
    assert i18n.plural("points", 1, "en") == "1 random point"
    assert i18n.plural("points", 2, "en") == "2 random points"
    assert i18n.language("zh_CN") == "zh"


def test_unknown_key_or_language_raises() -> None:
    with pytest.raises(KeyError):
        i18n.text("Givne", "en")
    with pytest.raises(KeyError):
        i18n.text("Givne", "zh")
    with pytest.raises(ValueError):
        i18n.text("given", "fr")


# --- atomic writes ----------------------------------------------------------------------------


def test_write_atomic_writes_text_and_bytes_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "deep" / "p1.md"
    write_atomic(target, "ünïcode\r\nline\n")
    assert target.read_bytes() == "ünïcode\r\nline\n".encode("utf-8")
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert os.listdir(target.parent) == ["p1.md"]


def test_write_atomic_keeps_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "p1.md"
    target.write_text("old", encoding="utf-8")

    def refuse(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["p1.md"]


def test_write_atomic_keeps_permissions(tmp_path: Path) -> None:
    target = tmp_path / "p1.md"
    write_atomic(target, "one")
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not 0o600
    target.chmod(0o640)
    write_atomic(target, "two")
    assert target.stat().st_mode & 0o777 == 0o640


# --- golden snapshots -------------------------------------------------------------------------


def test_golden_problem_en(md: str) -> None:
    assert_golden("sample_problem.en.md", md)


def test_golden_problem_zh(doc: dict) -> None:
    assert_golden("sample_problem.zh.md", render_problem_md(doc, lang="zh"))


def test_golden_set_solutions_and_sheet() -> None:
    assert_golden("sample_set.en.md", render_set_md(_set_doc()))
    assert_golden("sample_set_sheet.en.md", render_set_md(_set_doc(), solutions=False))

"""Tests of the HTML handouts (no browser: tests/test_browser.py opens them in Chromium).

Escaping of untrusted text, offline assets (no URL that loads anything from the network),
KaTeX rendering of every formula (pre-rendered with node, or left to the browser), the
fragment's scoped stylesheet and ids, the Chinese handout, template overrides, failures, and
golden snapshots of two examples (tests/golden/html/, regenerated with
``DERIVGEN_UPDATE_GOLDEN=1``). The snapshots are taken with the math left as TeX for the
browser (``DERIVGEN_MATH=client``): they pin derivgen's own HTML, not KaTeX's.
"""

from __future__ import annotations

import copy
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from golden import assert_golden

from derivgen import katex
from derivgen.errors import RenderError
from derivgen.html import STATIC_DIR, render_problem_html, render_set_html, write_assets
from derivgen.pipeline import problem_document

ROOT = Path(__file__).resolve().parent.parent

R = r"\frac{\partial f}{\partial X}"


def _doc() -> dict:
    """f = tr(AXB) with a where-definition and a statement with math: two chains."""
    step = lambda latex, rules, lhs=None: {"lhs_latex": lhs, "lhs": None, "latex": latex,  # noqa: E731
                                           "text": "", "rules": rules}
    return {
        "id": "trace_axb",
        "source": "problems/trace_axb.yaml",
        "title": "Gradient of tr(AXB)",
        "statement": "Let $f = \\operatorname{tr}(AXB)$. Compute **the gradient** $\\partial f/\\partial X$.\n\n"
                     "$$\n\\mathrm{d}f = \\operatorname{tr}(A\\,\\mathrm{d}X\\,B)\n$$\n",
        "ok": True,
        "error": None,
        "variables": [
            {"name": "A", "latex": "A", "shape": ["p", "m"], "shape_latex": r"p \times m",
             "kind": "matrix", "assumptions": []},
            {"name": "X", "latex": "X", "shape": ["m", "n"], "shape_latex": r"m \times n",
             "kind": "matrix", "assumptions": ["symmetric", "invertible"]},
            {"name": "B", "latex": "B", "shape": ["n", "p"], "shape_latex": r"n \times p",
             "kind": "matrix", "assumptions": []},
            {"name": "s", "latex": "s", "shape": [], "shape_latex": "", "kind": "scalar",
             "assumptions": []},
        ],
        "where": [{"name": "Y", "latex": "Y", "text": "A*X", "expr_latex": "A X"}],
        "function": {"text": "tr(Y*B)", "latex": r"\operatorname{tr}\left(Y B\right)"},
        "results": [{
            "wrt": "X", "wrt_latex": "X", "kind": "gradient", "lhs_latex": R,
            "latex": r"A^{\top} B^{\top}", "text": "A'*B'", "numpy": "A.T @ B.T",
            "steps": [
                step(r"\mathrm{d}\operatorname{tr}\left(A X B\right)", [], lhs=r"\mathrm{d}f"),
                step(r"\operatorname{tr}\left(A\,\mathrm{d}X B\right)", ["D4", "D2"]),
                step(r"\operatorname{tr}\left(B A\,\mathrm{d}X\right)", ["T3"]),
                step(r"A^{\top} B^{\top}", ["I1"], lhs=R),
            ],
            "verification": {"passed": True, "max_rel_error": 3.1e-11, "tolerance": 1e-6,
                             "sizes": {"m": 3, "n": 4, "p": 5}, "trials": 3, "checks": 42},
        }],
        "rules": [
            {"id": "D2", "name": "product rule", "names": {"en": "product rule", "zh": "乘积法则"},
             "formula": r"\mathrm{d}(UV) = (\mathrm{d}U)V + U\,\mathrm{d}V"},
            {"id": "D4", "name": "differential of a trace", "names": {"en": "differential of a trace", "zh": "迹的微分"},
             "formula": r"\mathrm{d}\,\operatorname{tr}(U) = \operatorname{tr}(\mathrm{d}U)"},
            {"id": "T3", "name": "cyclic property", "names": {"en": "cyclic property", "zh": "迹的循环性质"},
             "formula": r"\operatorname{tr}(ABC) = \operatorname{tr}(CAB)"},
            {"id": "I1", "name": "identification of the gradient", "names": {"en": "identification of the gradient", "zh": "由微分识别梯度"},
             "formula": r"\mathrm{d}f = \operatorname{tr}(G^{\top}\mathrm{d}X) \;\Rightarrow\; \frac{\partial f}{\partial X} = G"},
        ],
    }


def _failed_doc() -> dict:
    return {
        "id": "broken", "source": "problems/broken.yaml", "title": "A problem that does not parse",
        "statement": "", "ok": False,
        "error": {"message": "unknown name 'Y'", "location": "problems/broken.yaml:4:17", "hint": None,
                  "rendered": "error: problems/broken.yaml:4:17: unknown name 'Y' <b>\n    function: tr(A * Y)\n"
                              "                     ^"},
        "variables": [], "where": [], "function": None, "results": [], "rules": [],
    }


def _set(*docs: dict, **fields) -> dict:
    rules = {r["id"]: r for d in docs for r in d["rules"]}
    return {"title": "Matrix calculus", "course": "MATH 301", "author": "A. Teacher", "date": "2025-03-01",
            "language": "en", "problems": list(docs), "rules": list(rules.values()), **fields}


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def prerender(monkeypatch):
    """Math pre-rendered by KaTeX under node (skipped without them, except in CI)."""
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


@pytest.fixture
def client(monkeypatch):
    """Math left as TeX for KaTeX's script in the browser (needs only KaTeX's files)."""
    monkeypatch.setenv("DERIVGEN_MATH", "client")
    if katex.find_katex() is None:
        if _ci():
            pytest.fail("KaTeX not found; run `bash scripts/setup-katex.sh`", pytrace=False)
        pytest.skip("KaTeX not found")


class Page(HTMLParser):
    """The parts of an HTML page the tests look at."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, dict]] = []
        self.top_level: list[str] = []
        self.depth = 0
        self.text_at_top = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        if self.depth == 0:
            self.top_level.append(tag)
        if tag not in self.VOID:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth == 0:
            self.text_at_top += data.strip()

    def tags(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.starts if tag == name]

    def ids(self) -> list[str]:
        return [attrs["id"] for _, attrs in self.starts if "id" in attrs]

    def urls(self) -> list[str]:
        return [attrs[key] for _, attrs in self.starts for key in ("src", "href", "data", "poster")
                if attrs.get(key) is not None]


# --- escaping of untrusted text --------------------------------------------------------------

OUR_SCRIPTS = ["derivgen-assets/katex/katex.min.js", "derivgen-assets/derivgen-math.js"]
HOSTILE = '<script>alert(1)</script>"onerror=alert(2) <img src=x onerror=alert(3)>'


@pytest.mark.parametrize("mode", ["prerender", "client"])
def test_untrusted_text_is_escaped(mode: str, request) -> None:
    request.getfixturevalue(mode)
    doc = _doc()
    doc["title"] = HOSTILE
    doc["statement"] = (
        f"{HOSTILE}\n\n<div onclick=alert(4)>raw html</div>\n\n"
        "[a link](javascript:alert(5)) ![an image](https://example.org/x.png)\n\n"
        "$x</span><script>alert(6)</script>$ and $\\href{javascript:alert(7)}{y}$\n"
    )
    doc["variables"][0]["assumptions"] = []
    rendered = render_problem_html(doc)
    for text in (rendered, render_set_html(_set(doc), standalone=False)):
        page = Page(text)
        scripts = [attrs.get("src") for attrs in page.tags("script")]
        assert scripts in ([], OUR_SCRIPTS) and page.tags("img") == []
        assert not [attrs for _, attrs in page.starts if any(k.startswith("on") for k in attrs)]
        assert "javascript:" not in " ".join(page.urls())
        assert "<script>alert" not in text and "<div onclick" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;&#34;onerror=alert(2)" in rendered


def test_raw_html_in_a_statement_is_shown_as_text(client) -> None:
    doc = _doc()
    doc["statement"] = "<b>bold?</b> *emphasis* and `code` and a <!-- comment -->"
    html = render_problem_html(doc, standalone=False)
    assert "&lt;b&gt;bold?&lt;/b&gt; <em>emphasis</em> and <code>code</code>" in html
    assert "&lt;!-- comment --&gt;" in html


def test_error_messages_are_escaped(client) -> None:
    html = render_problem_html(_failed_doc())
    assert "unknown name &#39;Y&#39; &lt;b&gt;" in html


# --- offline: nothing loads from the network ---------------------------------------------------

_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//|^\s*(?:https?|ftp):", re.I)


def _css_urls(css: str) -> list[str]:
    return [u.strip("'\" ") for u in re.findall(r"url\(([^)]*)\)", css)] + re.findall(r"@import\s+['\"]([^'\"]+)", css)


@pytest.mark.parametrize("mode", ["prerender", "client"])
def test_pages_load_nothing_from_the_network(mode: str, request, tmp_path: Path) -> None:
    request.getfixturevalue(mode)
    pages = {
        "problem.html": render_problem_html(_doc()),
        "problem.fragment.html": render_problem_html(_doc(), standalone=False),
        "set.html": render_set_html(_set(_doc(), _failed_doc())),
        "sheet.html": render_set_html(_set(_doc()), solutions=False),
    }
    for name, text in pages.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    written = write_assets(tmp_path)
    for name, text in pages.items():
        page = Page(text)
        urls = page.urls()
        assert urls, name
        for url in urls:
            assert not _REMOTE.match(url), (name, url)
            if not url.startswith("#"):  # every local file a page links exists next to it
                assert (tmp_path / url).is_file(), (name, url)
        # No inline style or script pulls anything in either.
        assert not [u for u in _css_urls(text) if _REMOTE.match(u)]
    for path in written:
        if path.suffix in (".css", ".js"):
            content = path.read_text(encoding="utf-8")
            for url in _css_urls(content) if path.suffix == ".css" else []:
                assert not _REMOTE.match(url), (path, url)
    # KaTeX's fonts, as its stylesheet names them first (woff2), are there.
    katex_css = (tmp_path / "derivgen-assets" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    fonts = {u for u in _css_urls(katex_css) if u.endswith(".woff2")}
    assert len(fonts) >= 15
    for font in fonts:
        assert (tmp_path / "derivgen-assets" / "katex" / font).is_file(), font


def test_write_assets_leaves_up_to_date_files_alone(client, tmp_path: Path) -> None:
    first = write_assets(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    assert write_assets(tmp_path) == first
    assert {p: p.stat().st_mtime_ns for p in first} == stamps
    names = {p.relative_to(tmp_path).as_posix() for p in first}
    assert {"derivgen-assets/derivgen.css", "derivgen-assets/katex/katex.min.css",
            "derivgen-assets/katex/katex.min.js", "derivgen-assets/derivgen-math.js"} <= names


# --- math -----------------------------------------------------------------------------------------


def _formula_count(doc_or_set, render, monkeypatch) -> int:
    monkeypatch.setenv("DERIVGEN_MATH", "client")
    text = render(doc_or_set)
    monkeypatch.delenv("DERIVGEN_MATH")
    return text.count('<span class="dg-tex"')


def test_every_formula_is_rendered_by_katex(prerender, monkeypatch) -> None:
    doc = _doc()
    html = render_problem_html(doc)
    assert "katex-error" not in html
    assert "dg-tex" not in html and "dgmath" not in html
    # As many KaTeX formulas as the same page holds TeX spans when left to the browser.
    expected = _formula_count(doc, render_problem_html, monkeypatch)
    assert html.count('class="katex"') == expected >= 20
    assert html.count('class="katex-display"') == _count_display(doc, monkeypatch)


def _count_display(doc, monkeypatch) -> int:
    monkeypatch.setenv("DERIVGEN_MATH", "client")
    text = render_problem_html(doc)
    monkeypatch.delenv("DERIVGEN_MATH")
    return text.count('data-display="true"')


def test_every_example_renders_with_katex(prerender, monkeypatch) -> None:
    """Every LaTeX string the engine writes for the example set renders (both languages)."""
    from derivgen.cli import set_document
    from derivgen.problem import find_problems

    config, paths = find_problems([str(ROOT / "problems")])
    for lang in ("en", "zh"):
        docs = [problem_document(path, lang) for path in paths]
        setdoc = set_document(config, docs, lang)
        html = render_set_html(setdoc, lang=lang)
        assert "katex-error" not in html
        # the folded derivations' formulas are checked by KaTeX at build time but typeset in the
        # browser (pre-rendered they made the page 3 MB); every other formula is pre-rendered
        prerendered, deferred = html.count('class="katex"'), html.count('<span class="dg-tex"')
        assert prerendered + deferred == _formula_count(setdoc, lambda s: render_set_html(s, lang=lang),
                                                        monkeypatch)
        assert prerendered > 300 and deferred > 300


@pytest.mark.parametrize("tex", [
    r"\begin{aligned} a &= b \\ &= c \end{aligned}", r"\operatorname{tr}(A)", r"\mathrm{d}X",
    r"A \odot B \oslash C", r"\boxed{x}", r"\lVert x \rVert", r"\left\lvert \det X \right\rvert",
    r"\tfrac{1}{2}", r"X^{\top}", r"\mathbf{1}", r"\sigma(x)", r"\text{(D2) 乘积法则；(T3) 迹的循环性质}",
])
def test_latex_the_engine_writes_renders(prerender, tex: str) -> None:
    [rendered] = katex.render([(tex, True)])
    assert rendered.error is None and "katex-error" not in rendered.html


def test_a_formula_katex_cannot_render_is_an_error(prerender) -> None:
    doc = _doc()
    # Formulas on the whitelist (derivgen.latex.check_math) that KaTeX still cannot parse.
    doc["statement"] = r"Let $x^1^2$ and $\frac{1}$ be given."
    with pytest.raises(katex.MathError) as caught:
        render_problem_html(doc)
    err = caught.value
    assert [tex for tex, _ in err.errors] == [r"x^1^2", r"\frac{1}"]
    assert err.location.file == "problems/trace_axb.yaml" and "Double superscript" in err.message


def test_one_node_process_serves_many_pages(prerender) -> None:
    render_problem_html(_doc())
    first = katex._process
    render_set_html(_set(_doc()))
    render_problem_html(_doc(), standalone=False)
    assert katex._process is first and first.alive()


def test_client_mode_loads_katex_from_the_assets(client) -> None:
    html = render_problem_html(_doc())
    scripts = [attrs["src"] for attrs in Page(html).tags("script")]
    assert scripts == OUR_SCRIPTS
    assert r'<span class="dg-tex" data-display="false">\frac{\partial f}{\partial X}</span>' not in html
    assert r'<span class="dg-tex" data-display="true">{} = \boxed{A^{\top} B^{\top}}</span>' in html


def test_statement_math_is_kept_for_katex(client) -> None:
    doc = _doc()
    doc["statement"] = r"Price \$5, $a_1 * b_2 * c$ and $$x^2$$ inline; `$not math$`."
    html = render_problem_html(doc, standalone=False)
    assert "Price $5, " in html
    assert r'<span class="dg-tex" data-display="false">a_1 * b_2 * c</span>' in html  # no emphasis
    assert r'<span class="dg-tex" data-display="true">x^2</span>' in html
    assert "<code>$not math$</code>" in html


# --- the page and the fragment ----------------------------------------------------------------


def test_standalone_page(client) -> None:
    html = render_problem_html(_doc())
    assert html.startswith("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    page = Page(html)
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.tags("meta")
    assert [a["href"] for a in page.tags("link")] == ["derivgen-assets/katex/katex.min.css",
                                                      "derivgen-assets/derivgen.css"]
    assert page.top_level == ["html"]


def test_fragment_is_one_div(client) -> None:
    for html in (render_problem_html(_doc(), standalone=False),
                 render_set_html(_set(_doc(), _failed_doc()), standalone=False)):
        page = Page(html)
        assert page.top_level == ["div"] and page.text_at_top == ""
        assert html.startswith('<div class="derivgen" lang="en" id="derivgen-')
        assert not {"html", "head", "body", "title", "meta", "style"} & {tag for tag, _ in page.starts}
        assert html.rstrip().endswith("</div>")


def test_ids_are_prefixed_unique_and_every_anchor_resolves(client) -> None:
    for html in (render_problem_html(_doc()), render_set_html(_set(_doc(), _failed_doc()))):
        ids = Page(html).ids()
        assert ids and all(i.startswith("derivgen-") for i in ids)
        assert len(ids) == len(set(ids))
        targets = {u[1:] for u in Page(html).urls() if u.startswith("#")}
        assert targets and targets <= set(ids)


def test_fragment_without_assets_links_nothing(client) -> None:
    html = render_problem_html(_doc(), standalone=False, assets=None)
    assert Page(html).tags("link") == [] and Page(html).tags("script") == []
    assert render_problem_html(_doc(), standalone=False, assets="/static/dg").count('href="/static/dg/') == 2


def _selectors(css: str) -> list[str]:
    """Every selector of `css`, also inside @media blocks (a small parser for our own file)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    found, depth_preludes, prelude = [], [], ""
    i = 0
    while i < len(css):
        c = css[i]
        if c == "{":
            head = prelude.strip()
            if head.startswith("@"):
                depth_preludes.append("@")
            else:
                found += [s.strip() for s in head.split(",")]
                depth_preludes.append("rule")
                i = css.index("}", i)  # declarations: no nested braces
                depth_preludes.pop()
            prelude = ""
        elif c == "}":
            depth_preludes.pop()
            prelude = ""
        elif c == ";" and not depth_preludes:
            prelude = ""  # a top-level at-statement
        else:
            prelude += c
        i += 1
    return found


def test_stylesheet_is_scoped_under_derivgen() -> None:
    css = (STATIC_DIR / "derivgen.css").read_text(encoding="utf-8")
    selectors = _selectors(css)
    assert len(selectors) > 40
    for selector in selectors:
        assert re.match(r"\.derivgen(?![\w-])", selector), selector
    assert "@import" not in css and "url(" not in css


def test_no_inline_style_in_the_fragment(client) -> None:
    html = render_set_html(_set(_doc()), standalone=False)
    assert "<style" not in html and " style=" not in html


# --- structure, language, failures -----------------------------------------------------------


def test_solution_structure(client) -> None:
    html = render_problem_html(_doc(), standalone=False)
    page = Page(html)
    headings = [tag for tag, _ in page.starts if re.fullmatch(r"h[1-6]", tag)]
    assert headings == ["h1", "h2", "h2", "h3", "h2"]  # title, Given, Solution, Gradient…, Rules used
    assert "<h3 class=\"dg-target\">Gradient with respect to <span class=\"dg-tex\"" in html
    assert page.tags("details") == [{"class": "dg-steps", "open": None}]
    # The result (its chain, the last row boxed) sits outside the <details>, so it stays visible
    # when the steps fold; it is printed once.
    details = html[html.index("<details"):html.index("</details>")]
    assert "boxed" not in details and html.index("dg-result-chain") > html.index("</details>")
    assert html.count("\\boxed") == 1 and "dg-boxed" not in html
    assert "<summary>Derivation <span class=\"dg-count\">2 steps</span></summary>" in html
    assert html.count('<div class="dg-row">') == 4 and html.count('<div class="dg-chain">') == 2
    # short tags (the name as a tooltip), the names in a legend under each chain
    assert ('[<a class="dg-rule-ref" href="#derivgen-trace_axb-rule-D4" title="differential of a trace">D4</a>, '
            '<a class="dg-rule-ref" href="#derivgen-trace_axb-rule-D2" title="product rule">D2</a>]') in html
    assert ('<p class="dg-legend"><span class="dg-legend-item"><span class="dg-rule-id">[D4]</span> '
            'differential of a trace</span> · ') in html
    assert "<strong>Verification</strong>: checked numerically at random values (sizes" in html
    assert "3 random points, 42 checks); largest relative error 3.1e-11, tolerance 1e-6." in html
    assert "<td>symmetric and invertible</td>" in html and "<td>scalar</td>" in html


def test_chinese_page(client) -> None:
    html = render_problem_html(_doc(), lang="zh")
    assert '<html lang="zh">' in html and '<div class="derivgen" lang="zh"' in html
    for heading in ("已知", "解答", "所用法则"):
        assert re.search(rf"<h[1-6][^>]*>{heading}</h[1-6]>", html), heading
    assert "<strong>验证</strong>：已在随机取值处作数值检验" in html
    assert "推导过程 <span class=\"dg-count\">2 步</span>" in html
    assert 'title="迹的微分">D4</a>' in html and "[D4]</span> 迹的微分</span>" in html
    assert "<td>对称、可逆</td>" in html
    setdoc = _set(_doc(), language="zh")
    assert "<h2 class=\"dg-title\">第 1 题：Gradient of tr(AXB)</h2>" in render_set_html(setdoc)


def test_failed_problem_shows_the_error_and_no_result(client) -> None:
    html = render_problem_html(_failed_doc())
    assert 'class="dg-error" role="alert"' in html
    assert "this problem could not be solved, so no solution is given." in html
    assert "<pre>error: problems/broken.yaml:4:17:" in html
    for absent in ("dg-solution", "dg-boxed", "dg-steps", "dg-verification", "dg-appendix"):
        assert absent not in html


def test_a_result_that_failed_its_check_is_withheld(client) -> None:
    doc = _doc()
    doc["results"][0]["verification"].update(passed=False, max_rel_error=0.25)
    html = render_problem_html(doc)
    assert "failed its numeric check (largest relative error 2.5e-1, tolerance 1e-6)" in html
    for absent in ("dg-boxed", "dg-steps", "dg-appendix", "A^{\\top} B^{\\top}"):
        assert absent not in html


def test_problem_sheet(client) -> None:
    html = render_set_html(_set(_doc()), solutions=False)
    assert "<title>Matrix calculus</title>" in html and "dg-statement" in html and "dg-given" in html
    for absent in ("dg-solution", "dg-boxed", "dg-appendix"):
        assert absent not in html


def test_overriding_one_block(client, tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "problem.html.j2").write_text(
        '{% extends "default/html/problem.html.j2" %}\n'
        "{% block verification %}<p class=\"mine\">Checked {{ r.verification.max_rel_error|sci }}"
        " {{ '<i>' }}</p>{% endblock %}\n",
        encoding="utf-8",
    )
    html = render_problem_html(_doc(), user_dir=tmp_path)
    default = render_problem_html(_doc())
    assert '<p class="mine">Checked 3.1e-11 &lt;i&gt;</p>' in html  # user templates autoescape too
    assert "dg-verification" not in html
    strip = lambda text: re.sub(r'<p class="(mine|dg-verification)">.*?</p>\n*', "", text)  # noqa: E731
    assert strip(html) == strip(default)
    assert "mine" in render_set_html(_set(_doc()), user_dir=tmp_path)  # the set includes it


def test_template_errors_are_render_errors(client, tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "problem.html.j2").write_text("{% block header %}{{ doc.nope }}{% endblock %}\n",
                                                       encoding="utf-8")
    with pytest.raises(RenderError, match="nope"):
        render_problem_html(_doc(), user_dir=tmp_path)


def test_input_document_is_not_modified(client) -> None:
    doc = _doc()
    before = copy.deepcopy(doc)
    render_problem_html(doc)
    render_set_html(_set(doc))
    assert doc == before


# --- golden snapshots --------------------------------------------------------------------------


def test_golden_example_page_en(client) -> None:
    doc = problem_document(ROOT / "problems" / "n001_trace_axbxtc.yaml", "en")
    assert_golden("html/n001_trace_axbxtc.en.html", render_problem_html(doc))


def test_golden_example_fragment_zh(client) -> None:
    doc = problem_document(ROOT / "problems" / "n000_sigmoid_quadratic.yaml", "zh")
    assert_golden("html/n000_sigmoid_quadratic.zh.fragment.html",
                  render_problem_html(doc, lang="zh", standalone=False))

"""Course sites as MathJax typesets them: every rule tag of a derivation in view, in Chromium.

The Sphinx directive's chains are one ``aligned`` block each, with the rules' ids in a last
column (``[D1, D4]``), typeset by the site's MathJax. A real Sphinx site (MyST, the default
theme) is built from the widest example derivations, once with MathJax 4 (Sphinx 9's default)
and once with MathJax 3 (Sphinx 7/8's default), both from ``node_modules`` (the test-only
devDependencies of package.json). MkDocs Material's documented math setup is arithmatex +
MathJax 3: there derivgen's fragment keeps its own KaTeX math, and the page's MathJax must
draw nothing in it (its MathML input does typeset the <math> KaTeX keeps for screen readers,
inside KaTeX's visually hidden .katex-mathml: harmless, and checked to stay hidden).

Each page is opened in headless Chromium at a 390 px phone, at a 1280 px desktop, and at
1280 px with the content confined to an 800 px column; after MathJax has typeset the page,
every tag must be where a reader can see it: inside the viewport and the content column and
not clipped by any box with hidden overflow, either as laid out or by scrolling the formula's
own box sideways (a chain wider than a phone cannot fit otherwise); the page itself never
scrolls sideways. MathJax must report no error (no ``mjx-merror``), nothing may log an error,
and nothing may be fetched from beyond the test's own server.

The pages are served from a loopback HTTP server in the test, not from file://: MathJax 4
starts its speech worker with ``importScripts``, which Chromium refuses for file:// URLs.
Screenshots go to ``$DERIVGEN_SCREENSHOTS`` if set (``mathjax-<site>-<width>.png``).
Skipped without Chromium, Sphinx/MkDocs or MathJax, except with CI=true, where they fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

try:
    from test_browser import Browser, _missing, _require_chromium
except ModuleNotFoundError:  # run as tests.test_browser_mathjax
    from tests.test_browser import Browser, _missing, _require_chromium

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
MATHJAX = {  # name: the combined component a site links, relative to node_modules
    "mathjax4": "mathjax/tex-mml-chtml.js",
    "mathjax3": "mathjax3/es5/tex-mml-chtml.js",
}
# The widest chains of the example set (measured as MathJax typesets them): softmax over a
# batch, the Hessians, the Gaussian likelihoods, softmax cross-entropy of a linear map, the
# sigmoid of a quadratic form.
PROBLEMS = [
    "ext_softmax_batch", "ext_hessian_logsumexp", "ext_hessian_logistic",
    "n001_gaussian_log_likelihood", "n001_gaussian_mle", "n001_softmax_cross_entropy_linear",
    "n002_jacobian_softmax", "n002_hessian_quadratic", "n000_sigmoid_quadratic",
]
VIEWS = {  # name: (viewport, confine the content to an 800 px column)
    "390": ({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}, False),
    "1280": ({"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, False),
    "column800": ({"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, True),
}
# `?column` on the URL confines the theme's content column to 800 px (as Read the Docs' theme
# does): a class set on <html> before anything renders, and a style sheet keyed on it.
COLUMN_JS = "if (/[?&]column\\b/.test(location.search)) document.documentElement.classList.add('dg-test-column');"
SPHINX_COLUMN_CSS = """html.dg-test-column div.document { width: auto; max-width: none; }
html.dg-test-column div.bodywrapper { margin-left: 220px; }
html.dg-test-column div.body { width: 800px; max-width: 800px; min-width: 0; box-sizing: border-box; }
"""
MATERIAL_COLUMN_CSS = """html.dg-test-column .md-grid { max-width: none; }
html.dg-test-column .md-sidebar--secondary { display: none; }
html.dg-test-column .md-content { flex: 0 0 auto; }
html.dg-test-column .md-content__inner { width: 800px; max-width: 800px; box-sizing: border-box; }
"""


def _run(*argv, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "NO_COLOR": "1"})


def _need(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        _missing(f"{', '.join(missing)} not installed (pip install -e '.[test]')")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102 - no request log on stderr
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(folder, base URL): a loopback HTTP server for `folder`, which links node_modules."""
    _require_chromium()
    for path in MATHJAX.values():
        if not (NODE_MODULES / path).is_file():
            _missing(f"node_modules/{path} missing: run `bash scripts/setup-katex.sh` (npm ci)")
    root = tmp_path_factory.mktemp("mathjax-sites")
    (root / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _copy_problems(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in PROBLEMS:
        shutil.copy(ROOT / "problems" / f"{name}.yaml", folder / f"{name}.yaml")


def _sphinx_site(root: Path, base: str, mathjax: str) -> Path:
    """A Sphinx (MyST) site whose one page holds every problem of PROBLEMS; its built page."""
    src = root / f"sphinx-{mathjax}-src"
    _copy_problems(src / "week1")
    (src / "_static").mkdir()
    (src / "_static" / "column.css").write_text(SPHINX_COLUMN_CSS)
    config = {"tex": {}}
    if mathjax == "mathjax4":  # self-hosted MathJax 4 is told where its fonts are (else a CDN)
        config = {"loader": {"paths": {"fonts": f"{base}/node_modules/@mathjax"}}}
    (src / "conf.py").write_text(
        'project = "Course"\nextensions = ["myst_parser", "derivgen.sphinx"]\n'
        f"mathjax_path = {base + '/node_modules/' + MATHJAX[mathjax]!r}\n"
        f"{mathjax}_config = {config!r}\n"
        'html_static_path = ["_static"]\nhtml_css_files = ["column.css"]\n'
        f"def setup(app):\n    app.add_js_file(None, body={COLUMN_JS!r}, priority=100)\n")
    (src / "index.md").write_text("# Course\n\n```{toctree}\nweek1/page\n```\n")
    (src / "week1" / "page.md").write_text("# Week 1\n\n" + "".join(
        f"```{{derivation}} {name}.yaml\n```\n\n" for name in PROBLEMS))
    out = root / f"sphinx-{mathjax}"
    run = _run("sphinx", "-b", "html", "-W", "-q", src, out, cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
    return out / "week1" / "page.html"


def _material_site(root: Path, base: str) -> Path:
    """MkDocs Material with arithmatex + MathJax 3 as its documentation sets them up
    (https://squidfunk.github.io/mkdocs-material/reference/math/), the MathJax local."""
    site = root / "material-src"
    docs = site / "docs"
    _copy_problems(docs / "week1")
    (docs / "index.md").write_text("# Course\n")
    (docs / "javascripts").mkdir()
    (docs / "javascripts" / "mathjax.js").write_text(COLUMN_JS + """
window.MathJax = {
  tex: {inline: [["\\\\(", "\\\\)"]], display: [["\\\\[", "\\\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"}
};
""")
    (docs / "column.css").write_text(MATERIAL_COLUMN_CSS)
    page = ["# Week 1", "", "The page's own math, typeset by MathJax:", "",
            "$$", "\\begin{aligned} f &= \\operatorname{tr}(A X B X^\\top C) && \\text{[D4]} \\end{aligned}", "$$", ""]
    for name in PROBLEMS:
        page += ["```derivation", f"{name}.yaml", "```", ""]
    (docs / "week1" / "page.md").write_text("\n".join(page))
    (site / "mkdocs.yml").write_text(
        "site_name: Course\ntheme:\n  name: material\n  font: false\n"  # font: false: no Google Fonts
        "plugins:\n  - derivgen\n"
        "markdown_extensions:\n  - pymdownx.arithmatex:\n      generic: true\n"
        f"extra_javascript:\n  - javascripts/mathjax.js\n  - {base}/node_modules/{MATHJAX['mathjax3']}\n"
        "extra_css:\n  - column.css\n"
        f"site_dir: {root / 'material'}\n")
    run = _run("mkdocs", "build", "--strict", cwd=site)
    assert run.returncode == 0, run.stdout + run.stderr
    return root / "material" / "week1" / "page" / "index.html"


@pytest.fixture(scope="module")
def sites(served) -> dict[str, tuple[str, str, str]]:
    """site name: (URL, tag selector scope, content column selector)."""
    _need("sphinx", "myst_parser", "mkdocs", "material", "pymdownx")
    root, base = served
    found = {}
    for mathjax in MATHJAX:
        page = _sphinx_site(root, base, mathjax)
        found[f"sphinx-{mathjax}"] = (f"{base}/{page.relative_to(root).as_posix()}", "mathjax", "div.body")
    page = _material_site(root, base)
    found["material-mathjax3"] = (f"{base}/{page.relative_to(root).as_posix()}", "katex", ".md-content__inner")
    return found


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    configured = os.environ.get("DERIVGEN_SCREENSHOTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# What the page shows, once MathJax is done: the tags (MathJax's \text{[D1, D4]} cells, or
# derivgen's KaTeX .dg-tag cells), each with the reason it cannot be seen, if any.
PROBE = r"""(async (kind, columnSelector) => {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) throw new Error('MathJax did not start');
  await MathJax.startup.promise;
  await document.fonts.ready;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const TAG = /^\[[A-Z][A-Z0-9]*(, [A-Z][A-Z0-9]*)*\]$/;
  // MathJax's CHTML draws a character as <mjx-c class="mjx-c5B"> with the glyph in CSS
  const chars = e => [...e.querySelectorAll('mjx-c')].map(c => {
    const m = c.getAttribute('class').match(/\bmjx-c([0-9A-F]+)\b/);
    return m ? String.fromCodePoint(parseInt(m[1], 16)) : c.textContent; }).join('');
  const text = e => (e.textContent.trim() || chars(e)).replace(/\u00a0/g, ' ').trim();
  const name = e => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '');
  const column = document.querySelector(columnSelector).getBoundingClientRect();
  const tags = kind === 'mathjax'
    ? [...document.querySelectorAll('.derivgen mjx-mtext')].filter(e => TAG.test(text(e)))
    : [...document.querySelectorAll('.derivgen .dg-tag')].filter(e => text(e));
  const hidden = tag => {
    const r = tag.getBoundingClientRect();
    if (r.width < 5 || r.height < 5) return 'not drawn';
    let left = r.left, right = r.right, scrolls = false;
    for (let a = tag.parentElement; a && a !== document.body; a = a.parentElement) {
      const cs = getComputedStyle(a);
      const box = a.getBoundingClientRect();
      if (cs.overflowY !== 'visible' && !/auto|scroll/.test(cs.overflowY)
          && (r.top < box.top - 1 || r.bottom > box.bottom + 1)) return 'cut off at the top or bottom by ' + name(a);
      if (cs.overflowX === 'visible') continue;
      if (/auto|scroll/.test(cs.overflowX)) {
        // a box that scrolls sideways: the tag must lie in what it scrolls over, and the box
        // must be wide enough to show it whole; what a reader then sees is the box
        const start = box.left + a.clientLeft - a.scrollLeft;
        if (left < start - 1 || right > start + a.scrollWidth + 1) return 'outside what ' + name(a) + ' scrolls over';
        if (left < box.left - 1 || right > box.right + 1) {
          if (a.clientWidth < right - left) return name(a) + ' is narrower than the tag';
          left = box.left; right = box.right; scrolls = true;
        }
      } else if (left < box.left - 1 || right > box.right + 1) return 'cut off by ' + name(a);
    }
    if (left < Math.max(0, column.left) - 1 || right > Math.min(innerWidth, column.right) + 1)
      return `outside the column or the viewport (${Math.round(r.left)}..${Math.round(r.right)} px)`;
    return scrolls ? 'scroll' : '';  // 'scroll': its box must be scrolled sideways to show it
  };
  const seen = tags.map(t => ({tag: text(t), where: hidden(t)}));
  // and scrolled to, such a tag is then in view as laid out
  tags.forEach((t, i) => { if (seen[i].where === 'scroll') {
    t.scrollIntoView({block: 'nearest', inline: 'nearest'});
    seen[i].where = hidden(t) || 'in view once scrolled to'; } });
  for (const e of document.querySelectorAll('*')) if (e.scrollLeft) e.scrollLeft = 0;
  scrollTo(0, 0);
  return {
    seen,
    page: document.documentElement.scrollWidth, view: innerWidth, column: [column.left, column.right],
    merror: document.querySelectorAll('mjx-merror, merror, [data-mjx-error]').length,
    mathjax: document.querySelectorAll('mjx-container').length,
    mathjaxInDerivgen: document.querySelectorAll('.derivgen mjx-container').length,
    // MathJax's MathML input typesets the <math> that KaTeX keeps for screen readers; it
    // stays inside KaTeX's visually hidden .katex-mathml
    mathjaxShownInDerivgen: [...document.querySelectorAll('.derivgen mjx-container')].filter(c => !c.closest('.katex-mathml')).length,
    sphinxMath: document.querySelectorAll('.derivgen div.math').length,
    sphinxTypeset: document.querySelectorAll('.derivgen div.math mjx-container[display]').length,
    rawTex: /\\begin\{aligned\}/.test(document.body.innerText),
  };
})"""


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("site", ["sphinx-mathjax4", "sphinx-mathjax3", "material-mathjax3"])
def test_every_tag_in_view_with_mathjax(tmp_path, sites, served, screenshots, site, view):
    url, kind, column = sites[site]
    metrics, confined = VIEWS[view]
    source = (served[0] / url.split("/", 3)[3]).read_text(encoding="utf-8")
    if kind == "mathjax":  # the tags the page's TeX holds
        expected = len(re.findall(r"\\text\{\[[A-Z][A-Z0-9]*(?:, [A-Z][A-Z0-9]*)*\]\}", source))
    else:
        expected = len(re.findall(r'<div class="dg-tag">\s*[^<\s]', source))
    assert expected > 50, expected
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(url + ("?column" if confined else ""), metrics)
        # MathJax typesets nine long derivations: more than Browser.evaluate's 30 s on a busy machine
        answer = browser.call("Runtime.evaluate", {"expression": f"{PROBE}({json.dumps(kind)}, {json.dumps(column)})",
                                                   "awaitPromise": True, "returnByValue": True}, timeout=180)
        assert "exceptionDetails" not in answer, answer["exceptionDetails"]
        seen = answer["result"]["value"]
        browser.screenshot(screenshots / f"mathjax-{site}-{view}.png", full_height=6000)
        remote = [u for u in browser.requests() if not u.startswith((served[1] + "/", "data:", "about:", "blob:"))]
        # the test's server has no /favicon.ico, which Chromium asks for on its own
        problems = [p for p in browser.problems() if not p.rstrip().endswith("/favicon.ico")]
    finally:
        browser.close()
    if confined:
        assert 795 <= seen["column"][1] - seen["column"][0] <= 805, seen["column"]
    assert seen["merror"] == 0, "MathJax reported an error"
    assert not seen["rawTex"], "TeX left untypeset on the page"
    if kind == "mathjax":
        assert seen["sphinxMath"] > 0 and seen["sphinxTypeset"] == seen["sphinxMath"], seen
    else:  # MathJax typeset the page's own math and drew nothing in derivgen's KaTeX fragment
        assert seen["mathjax"] > seen["mathjaxInDerivgen"] and seen["mathjaxShownInDerivgen"] == 0, seen
    assert len(seen["seen"]) == expected, (len(seen["seen"]), expected)
    lost = [s for s in seen["seen"] if s["where"] not in ("", "in view once scrolled to")]
    assert lost == [], lost[:5]
    if kind == "mathjax":  # the tags stand on the chain's left: in view as laid out, no scrolling needed
        scrolled = [s for s in seen["seen"] if s["where"]]
        assert scrolled == [], scrolled[:5]
    assert seen["page"] <= seen["view"], f"the page scrolls sideways: {seen['page']} px in {seen['view']}"
    assert remote == [], remote
    assert problems == []

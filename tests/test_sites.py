"""Course websites: a real Sphinx site (MyST) and a real MkDocs site, built in temporary folders.

- Sphinx with ``extensions = ["myst_parser", "derivgen.sphinx"]``: a ```{derivation}``` block
  (path relative to the page, in a sub-folder) becomes the statement, every step with its
  rules, the boxed result and the check, as Sphinx math nodes (MathJax markup in the HTML);
  ``:show: answer`` shows only the result; a problem that fails is left out with a located
  warning (``-W`` fails the build); a statement's formula outside the TeX whitelist (a canary
  file's path under ``\\input``) never reaches the math renderer.
- MkDocs with ``plugins: [derivgen]``: a ```derivation``` block becomes derivgen's fragment
  with KaTeX's math, and every stylesheet and script the page links resolves to a file of
  the site under directory URLs (and without them); a failing problem fails ``--strict``.

Skipped when Sphinx / myst-parser / MkDocs are not installed, except with CI=true (the test
extra installs them: ``pip install -e ".[test]"``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "problems" / "n001_quadratic_form.yaml"  # ∂f/∂x = (A + Aᵀ)x, ∂f/∂A = xxᵀ
BAD = ROOT / "tests" / "data" / "cli" / "bad" / "unknown_key.yaml"


def _need(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} needed in CI (the test extra installs them)", pytrace=False)
        pytest.skip(f"{', '.join(missing)} not installed (pip install -e '.[sphinx,mkdocs]')")


def _run(*argv, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


# ----------------------------------------------------------------------------- Sphinx


def _sphinx_site(root: Path, page: str, problem: Path = PROBLEM) -> Path:
    src = root / "src"
    (src / "week1").mkdir(parents=True)
    shutil.copy(problem, src / "week1" / "quadratic.yaml")
    (src / "conf.py").write_text('project = "Course"\nextensions = ["myst_parser", "derivgen.sphinx"]\n')
    (src / "index.md").write_text("# Course\n\n```{toctree}\nweek1/page\n```\n")
    (src / "week1" / "page.md").write_text(page)
    return src


def test_sphinx_site_shows_the_verified_derivation(tmp_path):
    _need("sphinx", "myst_parser")
    src = _sphinx_site(tmp_path, "# Week 1\n\n```{derivation} quadratic.yaml\n```\n\nOnly the answer:\n\n"
                                 "```{derivation} quadratic.yaml\n:show: answer\n```\n")
    run = _run("sphinx", "-b", "html", "-W", "-q", src, tmp_path / "out", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    html = (tmp_path / "out" / "week1" / "page.html").read_text()
    first, second = html.split("Only the answer:")
    assert 'class="derivgen docutils container"' in first
    assert "Quadratic form" in first  # the title and the statement
    assert r"\boxed{\frac{\partial f}{\partial x} = (A + A^{\top}) x}" in first
    assert r"\boxed{\frac{\partial f}{\partial A} = x x^{\top}}" in first
    assert r"\begin{aligned}" in first and re.search(r"\\text\{\[D2[],]", first)  # short ids in the equation
    assert "[D2] product rule" in first and 'class="derivgen-legend"' in first  # their names under it
    assert "Verification</strong>: checked numerically at random values" in first
    assert re.search(r"<strong>Gradient with respect to <span class=\"math[^\"]*\">\\\(x\\\)</span></strong>", first), \
        "the result's sub-heading in words, as in the handouts"
    assert "mathjax" in html.lower()  # Sphinx's own math machinery typesets it
    # the chains scroll in their own boxes (derivgen-sphinx.css), linked where a derivation is
    assert "_static/derivgen-sphinx.css" in html and (tmp_path / "out" / "_static" / "derivgen-sphinx.css").is_file()
    assert "derivgen-sphinx.css" not in (tmp_path / "out" / "index.html").read_text()
    assert r"\boxed{\frac{\partial f}{\partial x}" in second
    assert r"\begin{aligned}" not in second and "Quadratic form" not in second and "Verification" not in second


def test_sphinx_leaves_out_a_failing_problem_with_a_located_warning(tmp_path):
    _need("sphinx", "myst_parser")
    src = _sphinx_site(tmp_path, "# Week 1\n\n```{derivation} quadratic.yaml\n```\n", problem=BAD)
    strict = _run("sphinx", "-b", "html", "-W", "-q", src, tmp_path / "strict", cwd=tmp_path)
    assert strict.returncode != 0
    assert "page.md" in strict.stderr and "derivgen:" in strict.stderr
    assert re.search(r"quadratic\.yaml:\d+:\d+: unknown key", strict.stderr), strict.stderr
    lenient = _run("sphinx", "-b", "html", "-q", src, tmp_path / "out", cwd=tmp_path)
    assert lenient.returncode == 0, lenient.stderr
    html = (tmp_path / "out" / "week1" / "page.html").read_text()
    assert "derivgen" not in html and r"\boxed" not in html


def test_sphinx_keeps_statement_math_outside_the_whitelist_out_of_the_math_renderer(tmp_path):
    _need("sphinx", "myst_parser")
    canary = tmp_path / "canary-secret.tex"
    canary.write_text("CANARY-7f3a")
    text = PROBLEM.read_text().replace("statement: |", f"statement: |\n  Read $\\input{{{canary}}}$ first.", 1)
    assert "\\input" in text
    problem = tmp_path / "p.yaml"
    problem.write_text(text)
    src = _sphinx_site(tmp_path, "# Week 1\n\n```{derivation} quadratic.yaml\n```\n", problem=problem)
    run = _run("sphinx", "-b", "html", "-q", src, tmp_path / "out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    html = (tmp_path / "out" / "week1" / "page.html").read_text()
    assert "CANARY-7f3a" not in html
    assert re.search(r'<code[^>]*><span class="pre">\$\\input', html)  # shown as written, as code
    assert not re.search(r"\\\(\\input", html)  # never handed to MathJax


# ----------------------------------------------------------------------------- MkDocs


def _mkdocs_site(root: Path, problem: Path = PROBLEM, directory_urls: bool = True) -> Path:
    docs = root / "docs"
    (docs / "week1").mkdir(parents=True)
    shutil.copy(problem, docs / "week1" / "quadratic.yaml")
    (docs / "index.md").write_text("# Course\n")
    (docs / "week1" / "page.md").write_text("# Week 1\n\nBefore.\n\n```derivation\nquadratic.yaml\n```\n\nAfter.\n")
    (root / "mkdocs.yml").write_text(f"site_name: Course\nuse_directory_urls: {str(directory_urls).lower()}\n"
                                     "theme:\n  name: mkdocs\n  highlightjs: false\n"  # the theme's CDN links off
                                     "plugins:\n  - derivgen\n")
    return root


@pytest.mark.parametrize("directory_urls", [True, False])
def test_mkdocs_site_shows_the_derivation_with_its_assets(tmp_path, directory_urls):
    _need("mkdocs")
    root = _mkdocs_site(tmp_path, directory_urls=directory_urls)
    run = _run("mkdocs", "build", "--strict", cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
    page = root / "site" / "week1" / ("page/index.html" if directory_urls else "page.html")
    html = page.read_text()
    assert "```derivation" not in html and "derivgen-block-" not in html
    assert html.index("Before.") < html.index('<div class="derivgen"') < html.index("After.")
    from derivgen import katex

    if katex.node_executable() is not None:
        assert 'class="katex"' in html  # pre-rendered at build time
    else:
        assert 'class="dg-tex"' in html and "katex.min.js" in html
    assert "(A + A^{\\top}) x" in html  # KaTeX keeps the TeX in its MathML annotation
    links = re.findall(r'<link[^>]+href="([^"]+)"', html) + re.findall(r'<script[^>]+src="([^"]+)"', html)
    ours = [u for u in links if "derivgen-assets" in u]
    assert any(u.endswith("derivgen.css") for u in ours) and any(u.endswith("katex.min.css") for u in ours)
    for url in links:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # nothing from a network
        target = (page.parent / parts.path).resolve()
        assert target.is_file(), f"{url} from {page.relative_to(root)} does not resolve"
    fonts = list((root / "site" / "derivgen-assets" / "katex" / "fonts").glob("KaTeX_*.woff2"))
    assert len(fonts) >= 20


def test_mkdocs_strict_fails_on_a_failing_problem(tmp_path):
    _need("mkdocs")
    root = _mkdocs_site(tmp_path, problem=BAD)
    run = _run("mkdocs", "build", "--strict", cwd=root)
    assert run.returncode != 0
    assert "derivgen:" in run.stderr and re.search(r"quadratic\.yaml:\d+:\d+: unknown key", run.stderr), run.stderr
    lenient = _run("mkdocs", "build", cwd=root)
    assert lenient.returncode == 0
    html = (root / "site" / "week1" / "page" / "index.html").read_text()
    assert '<div class="derivgen"' not in html and "Before." in html and "After." in html


def test_the_fragment_keeps_its_look_inside_mkdocs_material(tmp_path):
    """MkDocs Material styles bare `.inline` (it floated statements' formulas into columns) and
    draws <details> as an admonition; derivgen's namespaced markup and CSS hold in it, looked
    at in Chromium at desktop and phone widths (screenshots kept with the browser tests')."""
    _need("mkdocs", "material")
    try:
        from test_browser import DESKTOP, PHONE, Browser, _require_chromium
    except ModuleNotFoundError:
        from tests.test_browser import DESKTOP, PHONE, Browser, _require_chromium
    _require_chromium()
    root = _mkdocs_site(tmp_path, problem=ROOT / "problems" / "n001_trace_axbxtc.yaml")
    (root / "mkdocs.yml").write_text("site_name: Course\ntheme:\n  name: material\n  font: false\n"
                                     "plugins:\n  - derivgen\n")  # font: false: no Google Fonts link
    run = _run("mkdocs", "build", "--strict", cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
    page = root / "site" / "week1" / "page" / "index.html"
    html = page.read_text()
    assert 'class="math inline"' not in html and 'class="dg-math-inline"' in html
    shots = Path(os.environ.get("DERIVGEN_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    browser = Browser(tmp_path / "profile")
    try:
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            browser.open(page.as_uri(), viewport)
            seen = browser.evaluate("""(() => {
              const block = document.querySelector('.derivgen'), summary = block.querySelector('details.dg-steps > summary');
              const details = getComputedStyle(summary.parentElement), box = block.getBoundingClientRect();
              const statement = [...block.querySelectorAll('.dg-statement .katex')].map(e => e.getBoundingClientRect());
              return {
                page: document.documentElement.scrollWidth, view: innerWidth,
                floats: [...block.querySelectorAll('*')].filter(e => getComputedStyle(e).float !== 'none').length,
                icons: [getComputedStyle(summary, '::before').content, getComputedStyle(summary, '::after').content],
                frame: [details.boxShadow, details.borderTopWidth, getComputedStyle(summary).backgroundColor],
                statementInside: statement.length > 0 && statement.every(r => r.left >= box.left - 1 && r.right <= box.right + 1),
                summary: summary.textContent.trim(),
              }; })()""")
            browser.screenshot(shots / f"material-{name}.png", full_height=1600)
            assert seen["page"] <= seen["view"], (name, seen)
            assert seen["floats"] == 0, (name, seen)
            assert seen["icons"] == ["none", "none"], (name, seen)  # no admonition icon or chevron
            assert seen["frame"] == ["none", "0px", "rgba(0, 0, 0, 0)"], (name, seen)
            assert seen["statementInside"], (name, seen)
            assert seen["summary"].startswith("Derivation"), (name, seen)
    finally:
        browser.close()

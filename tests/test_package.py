"""The package as a pip user gets it: the wheel, installed outside the checkout.

- The wheel is built (from a copy of the sources in a temporary folder, so the checkout is not
  written to) without setuptools warnings, and holds every file of the `derivgen/` tree —
  every subpackage, the grammar, the node script, the templates, CSS/JS, the shipped KaTeX
  (CSS, woff2 fonts, script) and the JSON Schema — with the license as an SPDX expression.
- The shipped KaTeX is the version pinned in package-lock.json (same bytes as node_modules).
- `package`: the wheel is installed into a new venv in a temporary folder (its dependencies
  from PyPI through pip's cache), and from another temporary folder `derivgen init course` and
  `derivgen build course -o out --format md,json,html,tex` (and pdf when TeX is there) run as a
  pip user would run them; the outputs are read back: verified results in the JSON, math
  pre-rendered by KaTeX in the HTML with the fonts next to it and nothing linked from a network,
  LaTeX, a PDF; then the pages with math rendered in the browser (no node), `python -m
  derivgen` and the Python API; with the extras `[sphinx,mkdocs]`, a Sphinx site and an MkDocs
  site built there. It runs with CI=true (or DERIVGEN_TEST_PACKAGE=1): about 40 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "derivgen"
IN_CI = os.environ.get("CI") == "true"
RUN_INSTALL = IN_CI or os.environ.get("DERIVGEN_TEST_PACKAGE") == "1"


def _source_files() -> set[str]:
    """Every file of the derivgen/ tree a wheel must hold (caches left out)."""
    return {
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """(the wheel, pip's output) built from a copy of the sources."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "derivgen", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (whl,) = dist.glob("derivgen-*.whl")
    return whl, run.stdout + run.stderr


def test_the_wheel_is_built_without_warnings(wheel):
    _, output = wheel
    assert not re.search(r"warning", output, re.I) or all(
        "is ignored: it is neither a file nor a directory" in line  # this machine's pip configuration
        for line in output.splitlines() if re.search(r"warning", line, re.I)
    ), output
    assert len(output.splitlines()) < 40, output


def test_the_wheel_holds_every_file_of_the_package(wheel):
    whl, _ = wheel
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    shipped = {n for n in names if n.startswith("derivgen/")}
    assert shipped == _source_files()
    for needed in ("derivgen/derive/engine.py", "derivgen/grammar.lark", "derivgen/katex_render.cjs",
                   "derivgen/templates/html/page.html.j2", "derivgen/templates/tex/set.tex.j2",
                   "derivgen/templates/md/problem.md.j2", "derivgen/static/derivgen.css",
                   "derivgen/static/katex/katex.min.css", "derivgen/static/katex/katex.min.js",
                   "derivgen/static/katex/fonts/KaTeX_Main-Regular.woff2",
                   "derivgen/schema/problem.schema.json", "derivgen/__main__.py", "derivgen/api.py"):
        assert needed in shipped, needed
    assert re.search(r"^License-Expression: MIT$", metadata, re.M)
    assert not re.search(r"^Classifier: License ::", metadata, re.M)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "derivgen = derivgen.cli:main" in entry_points
    assert whl.stat().st_size < 2_000_000


def test_the_shipped_katex_is_the_pinned_one():
    pinned = json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/katex"]["version"]
    shipped = PACKAGE / "static" / "katex"
    assert json.loads((shipped / "package.json").read_text())["version"] == pinned
    fonts = sorted(p.name for p in (shipped / "fonts").glob("KaTeX_*.woff2"))
    assert len(fonts) >= 20
    for name in re.findall(r"url\(fonts/([^)]+\.woff2)\)", (shipped / "katex.min.css").read_text()):
        assert name in fonts  # every font the CSS asks for first is there
    npm = ROOT / "node_modules" / "katex"
    if not (npm / "package.json").is_file():
        return
    assert json.loads((npm / "package.json").read_text())["version"] == pinned
    for name in ("katex.min.css", "katex.min.js"):
        assert (shipped / name).read_bytes() == (npm / "dist" / name).read_bytes(), f"run scripts/vendor-katex.sh ({name})"
    for font in fonts:
        assert (shipped / "fonts" / font).read_bytes() == (npm / "dist" / "fonts" / font).read_bytes()


# ----------------------------------------------------------------------------- installed outside


def _tex_available() -> bool:
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict]:
    """A fresh venv outside the checkout with the wheel installed: (its bin/, the environment)."""
    if not RUN_INSTALL:
        pytest.skip("installs the wheel into a new venv (about a minute): runs with CI=true or DERIVGEN_TEST_PACKAGE=1")
    whl, _ = wheel
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DERIVGEN_", "PYTHON", "VIRTUAL_ENV")) and k != "CI"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    run = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                          "--quiet", f"{whl}[sphinx,mkdocs]"], capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    return venv / "bin", env


def _run(bin_dir: Path, env: dict, cwd: Path, *argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    run = subprocess.run([str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True, cwd=cwd,
                         env=env, timeout=timeout)
    assert "Traceback" not in run.stderr, run.stderr
    return run


@pytest.mark.package
def test_installed_wheel_builds_every_format_outside_the_checkout(installed, tmp_path):
    bin_dir, env = installed
    where = _run(bin_dir, env, tmp_path, "python", "-c", "import derivgen; print(derivgen.__file__)").stdout.strip()
    assert not where.startswith(str(ROOT)) and "site-packages" in where  # the installed copy, not the checkout
    version = _run(bin_dir, env, tmp_path, "python", "-m", "derivgen", "--version")
    assert version.returncode == 0 and version.stdout.startswith("derivgen ")

    init = _run(bin_dir, env, tmp_path, "derivgen", "init", "course")
    assert init.returncode == 0, init.stderr
    formats = "md,json,html,tex" + (",pdf" if _tex_available() else "")
    build = _run(bin_dir, env, tmp_path, "derivgen", "build", "course", "-o", "out", "--format", formats)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "built 1 problem (1 result, all verified)" in build.stdout
    out = tmp_path / "out"

    doc = json.loads((out / "least_squares.json").read_text())
    assert doc["ok"] and doc["results"][0]["verification"]["passed"]
    assert doc["results"][0]["text"] == "A'*(A*x - b)"
    assert "\\partial f" in (out / "least_squares.md").read_text()
    assert "\\documentclass" in (out / "solutions.tex").read_text()

    page = (out / "least_squares.html").read_text()
    assert 'class="katex"' in page  # pre-rendered by node + the shipped KaTeX
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from a network
    assets = out / "derivgen-assets"
    assert (assets / "katex" / "katex.min.css").is_file()
    assert len(list((assets / "katex" / "fonts").glob("KaTeX_*.woff2"))) >= 20
    fragment = (out / "least_squares.fragment.html").read_text()
    assert 'class="katex"' in fragment
    if _tex_available():
        assert (out / "least_squares.pdf").read_bytes()[:5] == b"%PDF-"
        assert (out / "solutions.pdf").read_bytes()[:5] == b"%PDF-"

    # without node, the pages render their math in the browser from the shipped script
    client = _run(bin_dir, {**env, "DERIVGEN_NODE": "no-such-node"}, tmp_path,
                  "derivgen", "build", "course", "-o", "client", "--format", "html")
    assert client.returncode == 0, client.stderr
    page = (tmp_path / "client" / "least_squares.html").read_text()
    assert 'class="katex"' not in page and "katex.min.js" in page
    assert (tmp_path / "client" / "derivgen-assets" / "katex" / "katex.min.js").is_file()

    check = _run(bin_dir, env, tmp_path, "derivgen", "check", "course")
    assert check.returncode == 0 and "nothing written" in check.stdout
    api = _run(bin_dir, env, tmp_path, "python", "-c",
               "import derivgen; d = derivgen.derive(\"x'*A*x\", x='n', A=('n', 'n'), "
               "assume={'A': 'symmetric'}, wrt='x'); print(d.text); print(repr(d))")
    assert api.returncode == 0 and api.stdout.splitlines()[0] == "2*A*x", api.stderr


@pytest.mark.package
def test_installed_wheel_with_its_extras_builds_a_sphinx_and_an_mkdocs_site(installed, tmp_path):
    bin_dir, env = installed
    problem = (ROOT / "problems" / "n001_quadratic_form.yaml").read_text()
    src = tmp_path / "sphinx"
    (src / "week1").mkdir(parents=True)
    (src / "week1" / "quadratic.yaml").write_text(problem)
    (src / "conf.py").write_text('project = "Course"\nextensions = ["myst_parser", "derivgen.sphinx"]\n')
    (src / "index.md").write_text("# Course\n\n```{derivation} week1/quadratic.yaml\n```\n")
    run = _run(bin_dir, env, tmp_path, "sphinx-build", "-b", "html", "-W", "-q", str(src), "sphinx-out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert r"\boxed{\frac{\partial f}{\partial x} = (A + A^{\top}) x}" in (tmp_path / "sphinx-out" / "index.html").read_text()

    site = tmp_path / "mkdocs"
    (site / "docs" / "week1").mkdir(parents=True)
    (site / "docs" / "week1" / "quadratic.yaml").write_text(problem)
    (site / "docs" / "index.md").write_text("# Course\n")
    (site / "docs" / "week1" / "page.md").write_text("# Week 1\n\n```derivation\nquadratic.yaml\n```\n")
    (site / "mkdocs.yml").write_text("site_name: Course\nplugins:\n  - derivgen\n")
    run = _run(bin_dir, env, site, "mkdocs", "build", "--strict")
    assert run.returncode == 0, run.stdout + run.stderr
    html = (site / "site" / "week1" / "page" / "index.html").read_text()
    assert '<div class="derivgen"' in html and 'class="katex"' in html
    assert 'href="../../derivgen-assets/katex/katex.min.css"' in html
    assert (site / "site" / "derivgen-assets" / "katex" / "katex.min.css").is_file()


@pytest.mark.package
def test_the_sdist_holds_the_package_data_too(installed, tmp_path):
    """The sdist (built by setuptools' own backend) carries what the wheel is built from."""
    import tarfile

    bin_dir, env = installed
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "derivgen", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run = _run(bin_dir, env, src, "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "setuptools>=77")
    assert run.returncode == 0, run.stderr
    run = _run(bin_dir, env, src, "python", "-c",
               "from setuptools import build_meta; print(build_meta.build_sdist('dist'))")
    assert run.returncode == 0, run.stdout + run.stderr
    assert not re.search(r"warning", run.stdout + run.stderr, re.I), run.stdout + run.stderr
    (sdist,) = (src / "dist").glob("derivgen-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert _source_files() <= names
    assert {"pyproject.toml", "README.md", "LICENSE"} <= names

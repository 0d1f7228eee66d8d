"""Golden snapshots of the handouts of the example set `problems/`: Markdown, LaTeX and HTML.

The set is built once, as `derivgen build problems/ -o OUT --format md,tex,html` would (with
the HTML's math left as TeX for the browser, ``DERIVGEN_MATH=client``, so that the snapshots
read as the formulas and do not change with KaTeX's markup), and each file is compared with its
snapshot under ``tests/golden/examples/``: one page per problem and format (``<id>.md``,
``<id>.tex``, ``<id>.html``), the solution set, the problem sheet and the answer key
(``solutions.*``, ``sheet.*``, ``answers.*``). A mismatch fails with a unified diff.

When an output changes on purpose, regenerate every snapshot with one command::

    DERIVGEN_UPDATE_GOLDEN=1 python -m pytest tests

then read the changed handouts (``git diff tests/golden``) before committing them: they are
what students read.

One figure is masked before comparing: the largest relative error of the numeric check
(``largest relative error 3.1e-12``). It is floating-point rounding noise that differs between
BLAS builds and machines; the tests in test_examples.py and test_cli.py check that it is below
the tolerance.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from golden import GOLDEN_DIR, assert_golden

from derivgen.cli import main

PROBLEMS_DIR = Path(__file__).resolve().parent.parent / "problems"
PROBLEM_IDS = sorted(p.stem for p in PROBLEMS_DIR.glob("*.yaml") if p.stem not in ("derivgen",))
FORMATS = ("md", "tex", "html")
SET_FILES = [f"{stem}.{ext}" for ext in FORMATS for stem in ("solutions", "sheet", "answers")]

_ERROR_FIGURE = re.compile(r"(largest relative error |最大相对误差 )[0-9.e+-]+")


def masked(text: str) -> str:
    """The handout with the rounding-noise figure of each numeric check replaced by `ε`."""
    return _ERROR_FIGURE.sub(r"\1ε", text)


@pytest.fixture(scope="module")
def handouts(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("golden_examples")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DERIVGEN_MATH", "client")
        status = main(["build", str(PROBLEMS_DIR), "-o", str(out), "--format", ",".join(FORMATS), "-q"])
    assert status == 0, "the example set does not build"
    return out


def test_example_set_is_not_empty():
    assert len(PROBLEM_IDS) >= 20


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("pid", PROBLEM_IDS)
def test_problem_page(handouts, pid, ext):
    name = f"{pid}.{ext}"
    assert_golden(f"examples/{name}", masked((handouts / name).read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", SET_FILES)
def test_set_handout(handouts, name):
    assert_golden(f"examples/{name}", masked((handouts / name).read_text(encoding="utf-8")))


def test_no_stale_snapshots():
    """A snapshot whose problem was removed or renamed must go too."""
    directory = GOLDEN_DIR / "examples"
    if not directory.is_dir():
        pytest.skip("no snapshots yet")
    expected = {f"{pid}.{ext}" for pid in PROBLEM_IDS for ext in FORMATS} | set(SET_FILES)
    stale = sorted(p.name for p in directory.iterdir() if p.name not in expected)
    assert not stale, f"snapshots without a problem in problems/: {stale} (delete them)"


def test_masking_keeps_everything_else():
    line = "largest relative error 3.1e-12, tolerance 1e-6."
    assert masked(line) == "largest relative error ε, tolerance 1e-6."
    assert masked("最大相对误差 2e-11，容差 1e-6。") == "最大相对误差 ε，容差 1e-6。"

"""The Python API (derivgen/api.py), as a script or notebook would use it.

- `derivgen.derive` on an expression: the result in three notations (the NumPy one evaluated
  against a gradient written by hand), the steps with their rules, the verification figures,
  a readable repr; its mistakes are located `DerivgenError`s.
- `derivgen.load_problem` + `derive`, and `derive(path)`, give what the CLI's JSON holds.
- `derivgen.build` writes what `derivgen build` writes, byte for byte: the CLI is a layer over it.
- `import derivgen` exposes the small API without hiding the `derivgen.derive` engine package.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import derivgen
from derivgen.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "tests" / "data" / "cli" / "good"
BAD = ROOT / "tests" / "data" / "cli" / "bad"


def test_derive_quadratic_form_with_a_symmetric_matrix():
    d = derivgen.derive("x'*A*x", x="n", A=("n", "n"), assume={"A": "symmetric"}, wrt="x")
    assert isinstance(d, derivgen.Derivation)
    assert d.text == "2*A*x"
    assert d.latex.replace(" ", "") == "2Ax"
    # the NumPy expression, evaluated at a random symmetric A, is the gradient (A + Aᵀ)x = 2Ax
    rng = np.random.default_rng(1)
    B = rng.standard_normal((4, 4))
    A, x = B + B.T, rng.standard_normal((4, 1))
    value = eval(d.numpy, {"__builtins__": {}, "np": np, "A": A, "x": x})  # our own output, not a problem file
    np.testing.assert_allclose(value, 2 * A @ x, rtol=1e-12)
    assert d.steps[0].lhs == "df" and d.steps[0].text == "d(x'*A*x)"
    assert d.steps[-1].text == "2*A*x"
    assert all(rule in RULES for step in d.steps for rule in step.rules)
    # normal detail: dxᵀAx is written xᵀAᵀdx = xᵀA dx (a scalar is its own transpose, A symmetric)
    # and collected with xᵀA dx in the differential, as the notes do
    assert any({"J4", "S4", "S2"} <= set(step.rules) for step in d.steps)
    full = derivgen.derive("x'*A*x", x="n", A=("n", "n"), assume={"A": "symmetric"}, wrt="x", detail="full")
    assert any("T2" in step.rules for step in full.steps)  # the trace of a transpose: a trace step
    assert len(full.steps) > len(d.steps) and full.text == d.text
    v = d.verification
    assert v.passed and v.max_rel_error < 1e-6 and v.trials >= 3 and v.checks > 0 and v.sizes == {"n": 3}
    assert "verified at 3 random points" in str(v)
    text = repr(d)
    assert "∂f/∂x = 2*A*x" in text and "verified" in text and "steps" in text
    assert repr(d.first).startswith("<derivgen.Result ∂f/∂x = 2*A*x")
    assert "[D2]" in str(d) and "result: ∂f/∂x = 2*A*x" in str(d)


def test_without_the_assumption_the_gradient_keeps_the_transpose():
    d = derivgen.derive("x'*A*x", x="n", A="n,n", wrt="x")
    assert d.text in ("A*x + A'*x", "(A + A')*x")
    assert d["x"] is d.first
    with pytest.raises(KeyError, match="no result for 'A'"):
        d["A"]


def test_several_variables_order_two_and_the_shape_spellings():
    d = derivgen.derive("tr(A*X*B)", X=("m", "n"), A=("p", "m"), B=("n", "p"), wrt=["X", "A"])
    assert [r.wrt for r in d] == ["X", "A"] and len(d) == 2
    assert d["X"].text == "A'*B'" and d.text == "A'*B'"
    h = derivgen.derive("x'*x", x=3, order=2)  # one variable: wrt may be left out; an integer size
    assert [r.kind for r in h] == ["gradient", "hessian"]
    s = derivgen.derive("s^2*t", s=(), t="", wrt="s")  # scalars
    assert s.text == "2*s*t"
    named = derivgen.derive("wrt'*wrt", variables={"wrt": "n"}, wrt="wrt")  # a name that clashes with a parameter
    assert named.text == "2*wrt"


def test_where_definitions_run_the_chain_rule():
    d = derivgen.derive("tr(Y'*Y)", W=("l", "m"), X=("m", "n"), where={"Y": "sigma(W*X)"}, wrt="X")
    assert d.document["where"][0]["name"] == "Y"
    assert any(step.lhs == "dY" for step in d.steps)


def test_mistakes_are_located_errors_not_tracebacks():
    with pytest.raises(derivgen.DerivgenError) as info:
        derivgen.derive("x'*B*x", x="n", A=("n", "n"), wrt="x")
    err = info.value
    assert "unknown name 'B'" in err.message
    assert err.location is not None and err.location.line is not None and err.location.column is not None
    rendered = err.render()
    assert "^" in rendered and "x'*B*x" in rendered and "Traceback" not in rendered
    with pytest.raises(derivgen.DerivgenError, match="cannot multiply"):
        derivgen.derive("x'*A*x", x="n", A=("n", "m"), wrt="x")
    with pytest.raises(derivgen.DerivgenError, match="wrt is required"):
        derivgen.derive("x'*A*x", x="n", A=("n", "n"))
    with pytest.raises(derivgen.DerivgenError, match="no variables"):
        derivgen.derive("1")
    with pytest.raises(derivgen.DerivgenError, match="unknown assumption"):
        derivgen.derive("x'*A*x", x="n", A=("n", "n"), assume={"A": "symetric"}, wrt="x")
    with pytest.raises(derivgen.DerivgenError, match="a shape is"):
        derivgen.derive("x'*x", x=1.5)


def test_load_problem_and_derive_give_what_the_cli_json_holds(tmp_path, capsys):
    from derivgen.cli import main

    path = GOOD / "least_squares.yaml"
    problem = derivgen.load_problem(path)
    assert problem.id == "least_squares" and problem.wrt
    d = derivgen.derive(problem)
    assert main(["build", str(path), "-o", str(tmp_path), "--format", "json", "-q"]) == 0
    capsys.readouterr()
    doc = json.loads((tmp_path / "least_squares.json").read_text())
    assert [r["text"] for r in doc["results"]] == [r.text for r in d]
    assert [r["numpy"] for r in doc["results"]] == [r.numpy for r in d]
    assert [s["text"] for s in doc["results"][0]["steps"]] == [s.text for s in d.steps]
    assert derivgen.derive(str(path)).text == d.text  # a path is loaded as a problem file
    with pytest.raises(derivgen.DerivgenError, match="No such file"):
        derivgen.derive("week1/typo.yaml")  # a missing file, not an expression that fails to parse
    with pytest.raises(derivgen.ProblemError) as info:
        derivgen.load_problem(BAD / "unknown_key.yaml")
    assert info.value.location.file.endswith("unknown_key.yaml") and info.value.location.line


def test_build_writes_what_the_cli_writes(tmp_path, capsys):
    from derivgen.cli import main

    result = derivgen.build([GOOD], tmp_path / "api", formats="md,json", lang="en")
    assert result.failed == [] and result.errors == []
    assert {"least_squares.md", "least_squares.json", "solutions.md", "sheet.md"} <= set(result.written)
    assert main(["build", str(GOOD), "-o", str(tmp_path / "cli"), "--format", "md,json", "-q"]) == 0
    capsys.readouterr()
    api_files = sorted(p.name for p in (tmp_path / "api").iterdir() if p.is_file())
    cli_files = sorted(p.name for p in (tmp_path / "cli").iterdir() if p.is_file())
    assert api_files == cli_files and api_files
    for name in api_files:
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    again = derivgen.build(GOOD, tmp_path / "api", formats=["md", "json"])  # a single path; the cache
    assert again.written == [] and again.reused > 0


def test_build_reports_failures_in_the_result(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "good.yaml").write_text((GOOD / "least_squares.yaml").read_text())
    (tmp_path / "set" / "bad.yaml").write_text((BAD / "unknown_key.yaml").read_text())
    result = derivgen.build(tmp_path / "set", tmp_path / "out", formats="json")
    assert result.failed == ["bad"]
    assert (tmp_path / "out" / "good.json").is_file() and not (tmp_path / "out" / "bad.json").exists()
    with pytest.raises(derivgen.DerivgenError, match="unknown format 'docx'"):
        derivgen.build(tmp_path / "set", tmp_path / "out", formats="docx")
    with pytest.raises(derivgen.DerivgenError, match="no such file"):
        derivgen.build(tmp_path / "nothing", tmp_path / "out")


def test_the_set_document_lives_in_the_api_and_the_cli_reuses_it():
    from derivgen import api, cli

    assert cli.set_document is api.set_document
    assert cli.build_set is api.build_set


def test_the_package_exposes_the_api_and_keeps_the_engine_importable():
    assert callable(derivgen.derive) and callable(derivgen.build) and callable(derivgen.load_problem)
    assert {"derive", "load_problem", "build", "check", "Derivation", "DerivgenError"} <= set(derivgen.__all__)
    for name in derivgen.__all__:
        assert getattr(derivgen, name) is not None
    import importlib

    from derivgen.build import Builder  # the submodules named like the functions are still there
    from derivgen.derive import derive_gradient

    importlib.import_module("derivgen.derive.engine")
    assert callable(derive_gradient) and isinstance(Builder, type)
    assert callable(derivgen.derive) and callable(derivgen.build)  # and the names stay the functions
    for function in (derivgen.derive, derivgen.load_problem, derivgen.build, derivgen.check):
        assert function.__doc__ and len(function.__doc__) > 80


def test_python_dash_m_derivgen(tmp_path):
    run = subprocess.run([sys.executable, "-m", "derivgen", "--version"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"derivgen {derivgen.__version__}"
    run = subprocess.run([sys.executable, "-m", "derivgen", "show", "--expr", "x'*x", "--var", "x=n", "--wrt", "x"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0 and "∂f/∂x = 2*x" in run.stdout

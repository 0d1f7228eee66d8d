"""Coursework the engine used to refuse or misread (issue 7), each derived, verified and then
checked here on its own: the published NumPy code is evaluated with no builtins at values this
test draws, and compared with this test's finite differences of its own NumPy version of f."""

from __future__ import annotations

import numpy as np
import pytest

import derivgen
from derivgen.errors import DerivgenError, ShapeError
from derivgen.derive.differential import expand_one, rule_of
from derivgen.expr import Dif, Kron, Sym
from derivgen.numeric import evaluate
from fd import check_gradient

CITED = {"D25"}  # shown here, for tests/test_rules.py's catalogue check

RNG = np.random.default_rng(20261203)


def tall(n, k):
    return RNG.standard_normal((n, k))


def spd(n):
    a = RNG.standard_normal((n, n))
    return a @ a.T / n + np.eye(n)


def _logdet(a):
    return np.linalg.slogdet(a)[1]


def _b_above(A, x):
    return A @ x + RNG.uniform(0.5, 2.0, (A.shape[0], 1))


inv = np.linalg.inv
A5, C8, A8 = RNG.standard_normal((3, 3)), spd(8), RNG.standard_normal((8, 8))
Am, xm = RNG.standard_normal((6, 3)), RNG.standard_normal((3, 1))

# (function, shapes and assumptions, wrt, values, NumPy f of those values)
CASES = [
    ("log(sum(exp(A*x)))", dict(A=("m", "n"), x="n"), "x", dict(A=RNG.standard_normal((5, 3)), x=RNG.standard_normal((3, 1))),
     lambda A, x: float(np.log(np.sum(np.exp(A @ x))))),
    ("logdet(X'*X)", dict(X=("n", "k")), "X", dict(X=tall(8, 3)), lambda X: _logdet(X.T @ X)),
    ("tr(inv(X'*X))", dict(X=("n", "k")), "X", dict(X=tall(8, 3)), lambda X: np.trace(inv(X.T @ X))),
    ("det(X'*A*X)", dict(X=("n", "k"), A=("n", "n")), "X", dict(X=tall(8, 3), A=A8 + 3 * np.eye(8)),
     lambda X, A: np.linalg.det(X.T @ A @ X)),
    ("tr(X*inv(X'*X)*X'*A)", dict(X=("n", "k"), A=("n", "n")), "X", dict(X=tall(8, 3), A=A8),
     lambda X, A: np.trace(X @ inv(X.T @ X) @ X.T @ A)),
    ("logdet(X'*diag(w)*X)", dict(X=("n", "k"), w="n", assume={"w": "positive"}), "X",
     dict(X=tall(8, 3), w=RNG.uniform(0.5, 2, (8, 1))), lambda X, w: _logdet(X.T @ np.diag(w[:, 0]) @ X)),
    ("tr(inv(X'*C*X)*A)", dict(X=("n", "k"), C=("n", "n"), A=("k", "k"), assume={"C": "spd"}), "X",
     dict(X=tall(8, 3), C=C8, A=A5), lambda X, C, A: np.trace(inv(X.T @ C @ X) @ A)),
    ("sum(log(b - A*x))", dict(x="n", A=("m", "n"), b="m"), "x", dict(x=xm, A=Am, b=_b_above(Am, xm)),
     lambda x, A, b: np.sum(np.log(b - A @ x))),
    ("sum(log(b - A*x)) + sum(log(b + A*x))", dict(x="n", A=("m", "n"), b="m"), "x",
     dict(x=xm, A=Am, b=np.abs(Am @ xm) + 1), lambda x, A, b: np.sum(np.log(b - A @ x)) + np.sum(np.log(b + A @ x))),
    ("log(1 - x'*x) + log(s - 1)", dict(x="n", s=()), "x", dict(x=0.2 * tall(4, 1), s=np.array([[3.0]])),
     lambda x, s: (np.log(1 - x.T @ x) + np.log(s - 1)).item()),
    ("y'*log(p) + (1 - y)'*log(1 - p)", dict(p="n", y="n", assume={"p": "probability", "y": "probability"}), "p",
     dict(p=RNG.uniform(0.1, 0.9, (5, 1)), y=RNG.uniform(0.1, 0.9, (5, 1))),
     lambda p, y: (y.T @ np.log(p) + (1 - y).T @ np.log(1 - p)).item()),
    ("sum((x - 1*1'*x/4).^2)", dict(x=4), "x", dict(x=RNG.standard_normal((4, 1))),
     lambda x: np.sum((x - np.ones((4, 4)) @ x / 4) ** 2)),
    ("a'*1*1'*x", dict(x="n", a="n"), "x", dict(x=RNG.standard_normal((5, 1)), a=RNG.standard_normal((5, 1))),
     lambda x, a: (a.T @ np.ones((5, 5)) @ x).item()),
    ("-y'*log(sigma(X*w)) - (1 - y)'*log(1 - sigma(X*w))", dict(X=("m", "n"), w="n", y="m"), "w",
     dict(X=tall(6, 3), w=tall(3, 1), y=RNG.uniform(0, 1, (6, 1))),
     lambda X, w, y: (-y.T @ np.log(1 / (1 + np.exp(-X @ w))) - (1 - y).T @ np.log(1 - 1 / (1 + np.exp(-X @ w)))).item()),
    ("vec(X)'*vec(X)", dict(X=("n", "k")), "X", dict(X=tall(4, 3)), lambda X: np.sum(X * X)),
    ("vec(A*X*B)'*vec(C)", dict(X=(2, 3), A=(4, 2), B=(3, 5), C=(4, 5)), "X",
     dict(X=tall(2, 3), A=tall(4, 2), B=tall(3, 5), C=tall(4, 5)),
     lambda X, A, B, C: np.sum((A @ X @ B) * C)),
    ("tr(kron(A, X))", dict(X=("n", "n"), A=("m", "m")), "X", dict(X=tall(3, 3), A=tall(4, 4)),
     lambda X, A: np.trace(np.kron(A, X))),
    ("tr(kron(X, X))", dict(X=("n", "n")), "X", dict(X=tall(3, 3)), lambda X: np.trace(np.kron(X, X))),
    ("x'*kron(A, B)*x", dict(x=6, A=(2, 2), B=(3, 3)), "x", dict(x=tall(6, 1), A=tall(2, 2), B=tall(3, 3)),
     lambda x, A, B: (x.T @ np.kron(A, B) @ x).item()),
    # a batch of logits, one column per sample: softmax and logsumexp column by column
    ("-sum(Y .* log(softmax(W*X)))", dict(W=("k", "d"), X=("d", "N"), Y=("k", "N"), assume={"Y": "onehot"}), "W",
     dict(W=tall(3, 4), X=tall(4, 5), Y=np.eye(3)[:, [0, 2, 1, 1, 0]]),
     lambda W, X, Y: -np.sum(Y * np.log(_softmax_columns(W @ X)))),
    ("sum(logsumexp(Z))", dict(Z=("k", "N")), "Z", dict(Z=tall(3, 5)),
     lambda Z: np.sum(np.log(np.sum(np.exp(Z), axis=0)))),
    ("tr(A'*softmax(Z))", dict(Z=("k", "N"), A=("k", "N")), "Z", dict(Z=tall(3, 5), A=tall(3, 5)),
     lambda Z, A: np.sum(A * _softmax_columns(Z))),
    ("-y*log(sigma(w'*x)) - (1 - y)*log(1 - sigma(w'*x))", dict(w="n", x="n", y=()), "w",
     dict(w=tall(4, 1), x=tall(4, 1), y=np.array([[0.3]])),
     lambda w, x, y: (-y * np.log(1 / (1 + np.exp(-w.T @ x))) - (1 - y) * np.log(1 - 1 / (1 + np.exp(-w.T @ x)))).item()),
    ("log(1 + exp(-y*w'*x))", dict(w="n", x="n", y=()), "w", dict(w=tall(4, 1), x=tall(4, 1), y=np.array([[-1.0]])),
     lambda w, x, y: np.log(1 + np.exp(-y * (w.T @ x))).item()),
    ("sum(relu(W*X)) + sum(abs(W))", dict(W=("k", "d"), X=("d", "N")), "W", dict(W=tall(3, 4), X=tall(4, 5)),
     lambda W, X: np.sum(np.maximum(W @ X, 0)) + np.sum(np.abs(W))),
    ("a'*tanh(W*x) + sum(sin(W)) - sum(softplus(W*x))", dict(W=("k", "d"), x="d", a="k"), "W",
     dict(W=tall(3, 4), x=tall(4, 1), a=tall(3, 1)),
     lambda W, x, a: (a.T @ np.tanh(W @ x)).item() + np.sum(np.sin(W)) - np.sum(np.logaddexp(0, W @ x))),
]


def _softmax_columns(z):
    w = np.exp(z - z.max(axis=0))
    return w / w.sum(axis=0)


@pytest.mark.parametrize("function, shapes, wrt, values, f", CASES, ids=[c[0] for c in CASES])
def test_derived_and_right(function, shapes, wrt, values, f) -> None:
    d = derivgen.derive(function, wrt=wrt, **shapes)
    assert d.results[0].verification.passed
    g = eval(d.results[0].numpy, {"__builtins__": {}, "np": np, **values})  # our own output
    x = values[wrt]
    checks = check_gradient(lambda v: f(**{**values, wrt: v}), x, np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6, checks


def test_a_matrix_never_invertible_is_refused_saying_so() -> None:
    with pytest.raises(DerivgenError) as info:
        derivgen.derive("logdet(x*x' + 0*I)", wrt="x", x="n")
    assert "is singular at every random point" in info.value.message
    assert "bug" not in (info.value.hint or "")


def test_a_row_of_ones_never_reads_as_one() -> None:
    # `x - 1*1'*x/n`: the centring, not x - x/n
    d = derivgen.derive("sum((x - 1*1'*x/4).^2)", wrt="x", x=4)
    x = RNG.standard_normal((4, 1))
    g = eval(d.results[0].numpy, {"__builtins__": {}, "np": np, "x": x})
    centred = x - x.mean()
    assert np.allclose(g, 2 * centred)
    with pytest.raises(ShapeError) as info:
        derivgen.derive("1'*x + s*1'", wrt="x", x="n", s=())
    assert "row of ones" in info.value.message and "ones(n)" in info.value.hint


@pytest.mark.parametrize("function, shapes", [
    ("a'*vec(X)", dict(X=(2, 3), a=6)),
    ("sum(kron(A, X))", dict(X=(2, 3), A=(2, 2))),
    ("kron(A, X)", dict(X=(2, 3), A=(2, 2))),
])
def test_vec_and_kron_beyond_reach_are_refused_with_a_way_out(function, shapes) -> None:
    with pytest.raises(DerivgenError) as info:
        derivgen.derive(function, wrt="X", **shapes)
    assert "cannot" in info.value.message and info.value.hint
    assert "bug" not in info.value.message + info.value.hint


def test_the_jacobian_of_vec_is_the_identity() -> None:
    d = derivgen.derive("vec(X)", wrt="X", X=(2, 3))
    assert d.results[0].kind == "jacobian"
    assert np.array_equal(eval(d.results[0].numpy, {"__builtins__": {}, "np": np, "X": tall(2, 3)}), np.eye(6))


def test_the_differential_of_a_kronecker_product() -> None:
    # d(A⊗X) = dA⊗X + A⊗dX (D25), against the change of np.kron along a direction
    a, x = Sym("A", (2, 2)), Sym("X", (2, 3))
    u = Kron(a, x, (4, 6))
    assert rule_of(u) == "D25"
    expanded = expand_one(u, lambda e: "A" in _names(e) or "X" in _names(e))
    values = {"A": tall(2, 2), "X": tall(2, 3), ("d", "A"): tall(2, 2), ("d", "X"): tall(2, 3)}
    h = 1e-6
    change = (np.kron(values["A"] + h * values[("d", "A")], values["X"] + h * values[("d", "X")])
              - np.kron(values["A"] - h * values[("d", "A")], values["X"] - h * values[("d", "X")])) / (2 * h)
    got = evaluate(_with_difs(expanded), values, {})
    assert np.allclose(got, change, atol=1e-6)


def _names(e) -> set[str]:
    from derivgen.expr import symbols
    return symbols(e)


def _with_difs(e):
    """Replace d(A) by the leaf dA (the expander's own D0/leaf step)."""
    from derivgen.expr import D, transform
    return transform(e, lambda n: Dif(n.arg.name, n.arg.shape) if isinstance(n, D) and isinstance(n.arg, Sym) else None)


@pytest.mark.parametrize("function, shapes, wrt, textbook", [
    ("logdet(X'*X)", dict(X=("n", "k")), "X", "2*X*inv(X'*X)"),
    ("tr(inv(X'*X))", dict(X=("n", "k")), "X", "-2*X*(inv(X'*X))^2"),
    ("a'*inv(X'*X)*b", dict(X=("n", "k"), a="k", b="k"), "b", "inv(X'*X)*a"),
    ("-y'*log(sigma(X*w)) - (1 - y)'*log(1 - sigma(X*w))", dict(X=("m", "n"), w="n", y="m"), "w",
     "X'*(sigma(X*w) - y)"),
    ("-p'*log(softmax(z))", dict(z="n", p="n", assume={"p": "simplex"}), "z", "softmax(z) - p"),
    ("x'*(diag(a) + diag(b))*x", dict(x="n", a="n", b="n"), "x", "2*diag(a + b)*x"),
    ("sqrt(x'*x)", dict(x="n"), "x", "x/sqrt(x'*x)"),
    ("sum((a - x) .* (a + x))", dict(x="n", a="n"), "x", "-2*x"),
    ("a'*(x .* (1 - x))", dict(x="n", a="n"), "x", "a .* (1 - 2*x)"),
    ("sum(exp(u) ./ (1 + exp(u)))", dict(u="n"), "u", "sigma(u) .* (1 - sigma(u))"),
    ("log(softmax(z))", dict(z="n"), "z", "I - softmax(z)*ones(n)'"),
    ("log(sum(exp(x)))", dict(x="n"), "x", "softmax(x)"),  # read back by the definition (R7)
    ("log(sum(exp(A*x)))", dict(A=("m", "n"), x="n"), "x", "A'*softmax(A*x)"),  # denominator layout (the default); numerator I − 1sᵀ
    ("-y'*log(softmax(W*x))", dict(W=("k", "n"), x="n", y="k", assume={"y": "onehot"}), "W", "(softmax(W*x) - y)*x'"),
    ("-sum(Y .* log(softmax(W*X)))", dict(W=("k", "d"), X=("d", "N"), Y=("k", "N"), assume={"Y": "onehot"}), "W",
     "(softmax(W*X) - Y)*X'"),
    ("sum(logsumexp(Z)) - tr(Y'*Z)", dict(Z=("k", "N"), Y=("k", "N"), assume={"Y": "simplex"}), "Z", "softmax(Z) - Y"),
    ("sum(softplus(X*w)) - y'*X*w", dict(X=("m", "n"), w="n", y="m"), "w", "X'*(sigma(X*w) - y)"),
    ("sum(abs(A*x - b))", dict(A=("m", "n"), x="n", b="m"), "x", "A'*sign(A*x - b)"),
    ("a'*max(W*x, 0)", dict(W=("m", "n"), x="n", a="m"), "W", "(a .* step(W*x))*x'"),
    # one sample of logistic regression: scalar coefficients collected, eᵘ/(1 + eᵘ) read as σ(u)
    ("-y*log(sigma(w'*x)) - (1 - y)*log(1 - sigma(w'*x))", dict(w="n", x="n", y=()), "w", "(sigma(w'*x) - y)*x"),
    ("log(1 + exp(-y*w'*x))", dict(w="n", x="n", y=()), "w", "-sigma(-y*w'*x)*y*x"),
    ("y'*log(sigma(x)) + (1 - y)'*log(sigma(-x))", dict(x="n", y="n"), "x", "y - sigma(x)"),
])
def test_results_read_as_the_textbook_writes_them(function, shapes, wrt, textbook) -> None:
    result = derivgen.derive(function, wrt=wrt, **shapes).results[0]
    assert result.text == textbook and result.verification.passed


def _derive_file(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return derivgen.derive(str(path))


def test_a_stated_order_of_dimensions_is_kept(tmp_path) -> None:
    d = _derive_file(tmp_path, "variables: {X: [n, k], A: [m, n]}\ndomain: [m > n, n > k]\n"
                               "function: logdet(X'*A'*A*X)\nwrt: [X]\n")
    sizes = d.results[0].verification.sizes
    assert sizes["m"] > sizes["n"] > sizes["k"]


def test_a_stated_positive_expression_is_kept(tmp_path) -> None:
    # no variable stands alone in 1 - x'x: the check draws smaller values until it is positive
    d = _derive_file(tmp_path, "variables: {x: [n], y: [n]}\ndomain: [\"1 - x'*x > 0\"]\n"
                               "function: sqrt(1 - x'*x) + y'*x\nwrt: [x]\n")
    x, y = 0.2 * tall(4, 1), tall(4, 1)
    g = eval(d.results[0].numpy, {"__builtins__": {}, "np": np, "x": x, "y": y})
    checks = check_gradient(lambda v: (np.sqrt(1 - v.T @ v) + y.T @ v).item(), x, np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6


@pytest.mark.parametrize("domain, message", [
    ("[n > q]", "'q' in the domain condition 'n > q' is not a dimension of the problem"),
    ("[x < y < 0]", "cannot read the domain condition 'x < y < 0'"),
    ("[3]", "a domain condition must be text, not a number"),
])
def test_a_domain_it_cannot_read_is_a_located_error(tmp_path, domain, message) -> None:
    with pytest.raises(DerivgenError) as info:
        _derive_file(tmp_path, f"variables: {{x: [n], y: [n]}}\ndomain: {domain}\nfunction: x'*y\nwrt: [x]\n")
    assert info.value.message == message
    assert info.value.location.line == 2 and info.value.hint


def test_the_handout_states_the_domain(tmp_path) -> None:
    from derivgen.api import build_set, find_set

    (tmp_path / "p.yaml").write_text("variables: {X: [n, k], b: [m], A: [m, k]}\ndomain: [n >= k, \"b - A*X'*X*ones(k) > 0\"]\n"
                                     "function: logdet(X'*X) + sum(log(b - A*X'*X*ones(k)))\nwrt: [X]\n")
    build_set(find_set(tmp_path / "p.yaml", formats="md,tex"), tmp_path / "out")
    assert "We assume $n \\geq k$ and $b - A X^{\\top} X \\mathbf{1} > 0$." in (tmp_path / "out" / "p.md").read_text()
    assert "We assume $n \\geq k$" in (tmp_path / "out" / "p.tex").read_text()


def test_full_column_rank_checks_with_more_rows(tmp_path) -> None:
    d = _derive_file(tmp_path, "variables: {X: [k, n], A: [n, n]}\nassume: {X: [full_column_rank]}\n"
                               "function: logdet(X'*X) + tr(A)\nwrt: [X]\n")
    sizes = d.results[0].verification.sizes
    assert sizes["k"] >= sizes["n"] and d.results[0].text == "2*X*inv(X'*X)"
    with pytest.raises(ShapeError):
        _derive_file(tmp_path, "variables: {x: [n]}\nassume: {x: [full_column_rank]}\nfunction: x'*x\nwrt: [x]\n")


def test_softmax_cross_entropy_through_a_name_reads_s_minus_y(tmp_path) -> None:
    """With s = softmax(Wx) named under where:, the gradient is (s − y)xᵀ, not
    −(diag(s) − ssᵀ)(y ⊘ s)xᵀ: diag(s)(y ⊘ s) = y, sᵀ(y ⊘ s) = 1ᵀy = 1, the sign into the sum.
    Checked against this test's own finite differences of its NumPy f."""
    d = _derive_file(tmp_path, "variables: {W: [k, d], x: [d], y: [k]}\nassume: {y: [onehot]}\n"
                               "where: {s: softmax(W*x)}\nfunction: \"-y'*log(s)\"\nwrt: [W]\n")
    result = d.results[0]
    assert result.text == "(s - y)*x'" and result.verification.passed
    rng = np.random.default_rng(3)
    W, x, y = rng.standard_normal((3, 4)), rng.standard_normal((4, 1)), np.eye(3)[:, [1]]

    def f(W):
        z = W @ x
        return float(-(y.T @ (z - np.log(np.sum(np.exp(z)))))[0, 0])

    z = W @ x
    s = np.exp(z) / np.sum(np.exp(z))
    checks = check_gradient(f, W, (s - y) @ x.T, rng)
    assert max(c.error for c in checks) < 1e-6

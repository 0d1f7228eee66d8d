"""Textbook identities (the Matrix Cookbook's derivative sections, standard ML gradients) whose
results once came out in a form no textbook writes. Each is derived and verified, then checked
here on its own: the published NumPy code is evaluated with no builtins at values this test
draws and compared with this test's finite differences of its own NumPy version of f; the
simplified form is asserted too."""

from __future__ import annotations

import numpy as np
import pytest

import derivgen
from fd import check_gradient

RNG = np.random.default_rng(20260417)


def rand(*shape):
    return RNG.standard_normal(shape)


def _sigma(u):
    return 1 / (1 + np.exp(-u))


# (function, shapes and assumptions, wrt, values, NumPy f of those values, the textbook's form)
CASES = [
    # a transpose stays outside an elementwise function: Hᵀ with H = tanh(W₁X), not tanh(XᵀW₁ᵀ)
    ("norm(W2*tanh(W1*X) - Y)^2/2", dict(W1=("h", "d"), W2=("k", "h"), X=("d", "N"), Y=("k", "N")), "W2",
     dict(W1=rand(3, 4), W2=rand(5, 3), X=rand(4, 2), Y=rand(5, 2)),
     lambda W1, W2, X, Y: np.sum((W2 @ np.tanh(W1 @ X) - Y) ** 2) / 2,
     "(W2*tanh(W1*X) - Y)*tanh(W1*X)'"),
    ("norm(W2*relu(W1*x + b1) + b2 - y)^2/2",
     dict(W1=("h", "d"), W2=("k", "h"), x="d", y="k", b1="h", b2="k"), "W2",
     dict(W1=rand(3, 4), W2=rand(5, 3), x=rand(4, 1), y=rand(5, 1), b1=rand(3, 1), b2=rand(5, 1)),
     lambda W1, W2, x, y, b1, b2: np.sum((W2 @ np.maximum(W1 @ x + b1, 0) + b2 - y) ** 2) / 2,
     "(W2*relu(W1*x + b1) + b2 - y)*relu(W1*x + b1)'"),
    # terms grouped by a factor some of them share (S3), so that they cancel: Xᵀ(σ − y) + λw
    ("-y'*log(sigma(X*w)) - (1 - y)'*log(1 - sigma(X*w)) + lam/2*w'*w", dict(X=("N", "d"), w="d", y="N", lam=()),
     "w", dict(X=rand(6, 3), w=rand(3, 1), y=RNG.uniform(0, 1, (6, 1)), lam=np.array([[0.7]])),
     lambda X, w, y, lam: (-y.T @ np.log(_sigma(X @ w)) - (1 - y).T @ np.log(1 - _sigma(X @ w))
                           + lam / 2 * w.T @ w).item(),
     "X'*(sigma(X*w) - y) + lam*w"),
    ("-sum(Y .* log(softmax(W*X))) + lam/2*norm(W)^2", dict(W=("k", "d"), X=("d", "N"), Y=("k", "N"),
                                                                 assume={"Y": "onehot"}, lam=()),
     "W", dict(W=rand(3, 4), X=rand(4, 5), Y=np.eye(3)[:, [0, 2, 1, 1, 0]], lam=np.array([[0.3]])),
     lambda W, X, Y, lam: -np.sum(Y * np.log(_softmax_columns(W @ X))) + lam.item() / 2 * np.sum(W * W),
     "(softmax(W*X) - Y)*X' + lam*W"),
    # a scalar every term has comes out first: Xᵀ(σ − y)/N, not Xᵀ(((1 − y) ⊙ σ)/N − (y ⊙ (1 − σ))/N)
    ("-(y'*log(sigma(X*w)) + (1 - y)'*log(1 - sigma(X*w)))/N", dict(X=("N", "d"), w="d", y="N"), "w",
     dict(X=rand(6, 3), w=rand(3, 1), y=RNG.uniform(0, 1, (6, 1))),
     lambda X, w, y: (-(y.T @ np.log(_sigma(X @ w)) + (1 - y).T @ np.log(1 - _sigma(X @ w))) / X.shape[0]).item(),
     "X'*(sigma(X*w) - y)/N"),
    ("(sum(softplus(X*w)) - y'*X*w)/N + lam/2*norm(w)^2", dict(X=("N", "d"), w="d", y="N", lam=()), "w",
     dict(X=rand(6, 3), w=rand(3, 1), y=RNG.uniform(0, 1, (6, 1)), lam=np.array([[0.7]])),
     lambda X, w, y, lam: ((np.sum(np.logaddexp(0, X @ w)) - y.T @ X @ w) / X.shape[0]
                           + lam / 2 * w.T @ w).item(),
     "X'*(sigma(X*w) - y)/N + lam*w"),
    # elementwise factors every term has, taken out as they stand: (W₂ᵀ(S − Y)) ⊙ σ ⊙ (1 − σ)
    ("-sum(Y .* log(softmax(W2*sigma(W1*X))))", dict(W1=("h", "d"), W2=("k", "h"), X=("d", "N"), Y=("k", "N"),
                                                    assume={"Y": "onehot"}), "W1",
     dict(W1=rand(3, 4), W2=rand(5, 3), X=rand(4, 2), Y=np.eye(5)[:, [1, 4]]),
     lambda W1, W2, X, Y: -np.sum(Y * np.log(_softmax_columns(W2 @ _sigma(W1 @ X)))),
     "((W2'*(softmax(W2*sigma(W1*X)) - Y)) .* sigma(W1*X) .* (1 - sigma(W1*X)))*X'"),
    # the generalised Rayleigh quotient: A/s + Aᵀ/s = (A + Aᵀ)/s
    ("(x'*A*x)/(x'*B*x)", dict(x="n", A=("n", "n"), B=("n", "n"), assume={"B": "spd"}), "x",
     dict(x=rand(4, 1), A=rand(4, 4), B=np.eye(4) + 0.1 * np.ones((4, 4))),
     lambda x, A, B: ((x.T @ A @ x) / (x.T @ B @ x)).item(),
     "((A + A')/(x'*B*x) - 2*(x'*A*x)*B/(x'*B*x)^2)*x"),
    # Cookbook (49): a square factor cancels against the inverse of the product it ends (S6)
    ("det(A*X*B)", dict(X=("n", "n"), A=("n", "n"), B=("n", "n")), "X",
     dict(X=rand(4, 4) + 3 * np.eye(4), A=rand(4, 4) + 3 * np.eye(4), B=rand(4, 4) + 3 * np.eye(4)),
     lambda X, A, B: np.linalg.det(A @ X @ B), "det(A*X*B)*inv(X)'"),
    ("det(X'*A*X)", dict(X=("n", "n"), A=("n", "n"), assume={"A": "spd"}), "X",
     dict(X=rand(4, 4) + 3 * np.eye(4), A=np.eye(4) + 0.2 * np.ones((4, 4))),
     lambda X, A: np.linalg.det(X.T @ A @ X), "2*det(X'*A*X)*inv(X')"),
    # ... and only a square one: for a tall X the cookbook's (53) stays as it is
    ("det(X'*A*X)", dict(X=("m", "n"), A=("m", "m"), assume={"A": "spd"}), "X",
     dict(X=rand(6, 3), A=np.eye(6) + 0.2 * np.ones((6, 6))),
     lambda X, A: np.linalg.det(X.T @ A @ X), "2*det(X'*A*X)*A*X*inv(X'*A*X)"),
    # logistic regression with labels ±1: (eᵘ ⊙ v) ⊘ (1 + eᵘ) = σ(u) ⊙ v (S11), the sign out first (S17)
    ("sum(log(1 + exp(-y .* (X*w))))", dict(X=("N", "d"), w="d", y="N"), "w",
     dict(X=rand(6, 3), w=rand(3, 1), y=np.sign(rand(6, 1))),
     lambda X, w, y: np.sum(np.log1p(np.exp(-y * (X @ w)))), "-X'*(sigma(-(y .* (X*w))) .* y)"),
    # numbers cancel across an elementwise quotient: 2u ⊘ (2√(u² + 1)) = u ⊘ √(u² + 1) (S17)
    ("sum(sqrt((A*x - b).^2 + 1))", dict(x="n", A=("m", "n"), b="m"), "x",
     dict(x=rand(3, 1), A=rand(5, 3), b=rand(5, 1)),
     lambda x, A, b: np.sum(np.sqrt((A @ x - b) ** 2 + 1)), "A'*((A*x - b) ./ sqrt((A*x - b).^2 + 1))"),
    # the diagonal of an outer product: diag(u uᵀ) = u ⊙ u (S16)
    ("x'*diag(w)*x", dict(x="n", w="n"), "w", dict(x=rand(4, 1), w=rand(4, 1)),
     lambda x, w: (x.T @ np.diag(w[:, 0]) @ x).item(), "x .* x"),
    ("(X*w - y)'*diag(s)*(X*w - y)", dict(X=("N", "d"), w="d", y="N", s="N"), "s",
     dict(X=rand(6, 3), w=rand(3, 1), y=rand(6, 1), s=rand(6, 1)),
     lambda X, w, y, s: ((X @ w - y).T @ np.diag(s[:, 0]) @ (X @ w - y)).item(), "(X*w - y).^2"),
]


def _softmax_columns(z):
    w = np.exp(z - z.max(axis=0))
    return w / w.sum(axis=0)


@pytest.mark.parametrize("function, shapes, wrt, values, f, textbook", CASES, ids=[c[0] for c in CASES])
def test_derived_right_and_in_the_textbook_form(function, shapes, wrt, values, f, textbook) -> None:
    result = derivgen.derive(function, wrt=wrt, **shapes).results[0]
    assert result.verification.passed
    g = eval(result.numpy, {"__builtins__": {}, "np": np, **values})  # our own output, no builtins
    checks = check_gradient(lambda v: f(**{**values, wrt: v}), values[wrt], np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    assert result.text == textbook


@pytest.mark.parametrize("function, values, f, line, textbook", [
    ("tr(X^3)", dict(X=rand(4, 4)), lambda X: np.trace(X @ X @ X), "tr(3*X^2*dX)", "3*(X')^2"),
    ("tr(X^-2)", dict(X=rand(4, 4) + 3 * np.eye(4)), lambda X: np.trace(np.linalg.inv(X @ X)),
     "tr(-2*(inv(X))^3*dX)", "-2*(inv(X)')^3"),
])
def test_powers_a_rotation_puts_side_by_side_are_combined_in_the_trace(function, values, f, line, textbook) -> None:
    # tr(X dX X) = tr(X X dX) = tr(X² dX) on the cyclic line (T3, S9), so the like terms are seen there
    d = derivgen.derive(function, X=("n", "n"), wrt="X")
    result = d.results[0]
    g = eval(result.numpy, {"__builtins__": {}, "np": np, **values})
    checks = check_gradient(lambda v: f(v), values["X"], np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    texts = [s.text for s in d.steps]
    assert line in texts and result.text == textbook
    assert any(s.rules == ("T3", "S9") for s in d.steps)


def test_a_common_start_and_end_come_out_in_one_line() -> None:
    # Cookbook (124): one S3 line, not one per factor peeled off
    X, C, A = rand(7, 3), np.eye(7) + 0.1 * np.ones((7, 7)), rand(3, 3)
    inv = np.linalg.inv
    d = derivgen.derive("tr(inv(X'*C*X)*A)", X=("m", "n"), C=("m", "m"), A=("n", "n"), assume={"C": "spd"}, wrt="X")
    result = d.results[0]
    g = eval(result.numpy, {"__builtins__": {}, "np": np, "X": X, "C": C, "A": A})
    checks = check_gradient(lambda v: np.trace(inv(v.T @ C @ v) @ A), X, np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    assert result.text == "-C*X*inv(X'*C*X)*(A + A')*inv(X'*C*X)"
    assert [s.rules for s in d.steps].count(("S3",)) == 1


@pytest.mark.parametrize("function, shapes, values, f, line, textbook", [
    # (Ax)ᵀA dx and (A dx)ᵀAx are like terms once (Ax)ᵀ is written xᵀAᵀ (J4, S2)
    ("(A*x)'*(A*x)", dict(x="n", A=("m", "n")), dict(x=rand(3, 1), A=rand(5, 3)),
     lambda x, A: (x.T @ A.T @ A @ x).item(), "2*x'*A'*A*dx", "2*A'*A*x"),
    ("norm(A*X*B)^2", dict(X=("m", "n"), A=("p", "m"), B=("n", "q")),
     dict(X=rand(3, 4), A=rand(5, 3), B=rand(4, 2)),
     lambda X, A, B: np.sum((A @ X @ B) ** 2), "2*tr(B'*X'*A'*A*dX*B)", "2*A'*A*X*B*B'"),
    # tr(dXᵀ (Xᵀ)²) = tr(X² dX): the transpose of a power of Xᵀ is the power of X (T2)
    ("tr((X')^3)", dict(X=("n", "n")), dict(X=rand(4, 4)), lambda X: np.trace(X.T @ X.T @ X.T),
     "tr(3*X^2*dX)", "3*(X')^2"),
])
def test_like_terms_are_seen_in_the_differential(function, shapes, values, f, line, textbook) -> None:
    d = derivgen.derive(function, wrt=next(iter(values)), **shapes)
    result = d.results[0]
    wrt = next(iter(values))
    g = eval(result.numpy, {"__builtins__": {}, "np": np, **values})
    checks = check_gradient(lambda v: f(**{**values, wrt: v}), values[wrt], np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    assert line in [s.text for s in d.steps] and result.text == textbook
    assert d.steps[-1].rules == ("I1",)  # read off as it stands: nothing left to collect


def test_a_lone_sum_above_a_fraction_bar_has_no_brackets() -> None:
    # the multivariate t log-density: \frac{ν + n}{…}, not \frac{(ν + n)}{…}
    x, mu, nu = rand(3, 1), rand(3, 1), np.array([[2.5]])
    Sigma = np.eye(3) + 0.2 * np.ones((3, 3))
    d = derivgen.derive("-(nu + n)/2*log(1 + (x - mu)'*inv(Sigma)*(x - mu)/nu)", x="n", mu="n", Sigma=("n", "n"),
                        nu=(), assume={"Sigma": "spd", "nu": "positive"}, wrt="mu")
    result = d.results[0]
    g = eval(result.numpy, {"__builtins__": {}, "np": np, "x": x, "mu": mu, "Sigma": Sigma, "nu": nu, "n": 3})

    def f(m):
        q = ((x - m).T @ np.linalg.inv(Sigma) @ (x - m)).item()
        return -(nu.item() + 3) / 2 * np.log(1 + q / nu.item())

    checks = check_gradient(f, mu, np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    assert result.latex.startswith(r"\frac{\nu + n}{")
    # one denominator, as the textbook writes it: ν⁻¹(1 + q/ν)⁻¹ = (ν + q)⁻¹ (S7)
    assert result.text == "(nu + n)*inv(Sigma)*(x - mu)/(nu + (x - mu)'*inv(Sigma)*(x - mu))"
    assert d.steps[-1].rules == ("S7",)


def test_a_scalar_added_to_a_vector_is_refused_with_the_way_to_write_it() -> None:
    from derivgen.errors import ShapeError

    with pytest.raises(ShapeError) as info:
        derivgen.derive("sum(softplus(X*w + b))", X=("N", "d"), w="d", b=(), wrt="w")
    assert info.value.hint == "to add the scalar `b` to every entry write `b*1`"
    # written so, it derives: the bias of logistic regression
    d = derivgen.derive("sum(softplus(X*w + b*1)) - y'*(X*w + b*1)", X=("N", "d"), w="d", b=(), y="N", wrt="b")
    X, w, b, y = rand(6, 3), rand(3, 1), np.array([[0.4]]), RNG.uniform(0, 1, (6, 1))
    g = eval(d.results[0].numpy, {"__builtins__": {}, "float": float, "np": np, "X": X, "w": w, "b": b, "y": y})
    checks = check_gradient(lambda v: (np.sum(np.logaddexp(0, X @ w + v)) - y.T @ (X @ w + v)).item(), b,
                            np.asarray(g, float).reshape(b.shape), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    # a scalar gradient whose terms all end in 1 sums the entries of one vector: 1ᵀ(σ(Xw + b1) − y) (S3)
    assert d.results[0].text == "ones(N)'*(sigma(X*w + b*ones(N)) - y)"


def test_the_symmetric_gradient_keeps_the_diagonal_term_as_the_cookbook_writes_it(tmp_path) -> None:
    # Cookbook (141): ∂ log det X / ∂X = 2X⁻¹ − I ⊙ X⁻¹ over the free entries of a symmetric X,
    # not X⁻¹ ⊙ (2·11ᵀ − I)
    path = tmp_path / "p.yaml"
    path.write_text("variables: {S: [n, n]}\nassume: {S: [spd]}\nfunction: logdet(S)\nwrt: [S]\n"
                    "constrain_symmetric: entries\n")
    result = derivgen.derive(str(path)).results[0]
    assert result.text == "2*inv(S) - I .* inv(S)"
    a = rand(4, 4)
    S = a @ a.T + 4 * np.eye(4)
    g = np.asarray(eval(result.numpy, {"__builtins__": {}, "np": np, "S": S}), float)
    upper = np.triu(np.ones((4, 4)))
    for _ in range(3):  # along symmetric directions, each free entry (i ≤ j) moved once
        V = rand(4, 4) * upper
        E = V + V.T - np.diag(np.diag(V))
        h = 1e-5
        fd = (np.linalg.slogdet(S + h * E)[1] - np.linalg.slogdet(S - h * E)[1]) / (2 * h)
        assert abs(fd - np.sum(g * V)) < 1e-6 * max(1.0, abs(fd))


@pytest.mark.parametrize("detail", ["brief", "normal", "full"])
def test_the_gradient_of_a_bias_is_read_off_without_nested_traces(detail) -> None:
    # df = db·(Xw + b1 − y)ᵀ1 is read off as it stands, not through tr(tr((Xw + b1 − y)ᵀ1)·db)
    d = derivgen.derive("norm(X*w + b*1 - y)^2/2", X=("N", "d"), w="d", b=(), y="N", wrt="b", detail=detail)
    X, w, b, y = rand(6, 3), rand(3, 1), np.array([[0.4]]), rand(6, 1)
    g = eval(d.results[0].numpy, {"__builtins__": {}, "float": float, "np": np, "X": X, "w": w, "b": b, "y": y})
    checks = check_gradient(lambda v: np.sum((X @ w + v - y) ** 2) / 2, b, np.asarray(g, float).reshape(b.shape), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    assert not any("tr(tr(" in s.text for s in d.steps)
    assert d.results[0].text == "ones(N)'*(X*w + b*ones(N) - y)"  # 1ᵀ(Xw + b1 − y), the sum of the residuals (J4)


def test_a_negated_kronecker_product_is_written_without_brackets() -> None:
    # Magnus & Neudecker's −(X⁻¹a) ⊗ X⁻ᵀ and the text's -kron(…), which parses back
    X, a = rand(3, 3) + 3 * np.eye(3), rand(3, 1)
    d = derivgen.derive("inv(X)*a", X=("n", "n"), a="n", assume={"X": "invertible"}, wrt="X")
    result = d.results[0]
    J = np.asarray(eval(result.numpy, {"__builtins__": {}, "np": np, "X": X, "a": a}), float)
    h, E = 1e-6, rand(3, 3)  # denominator layout: vec(df) = Jᵀ vec(dX)
    change = (np.linalg.inv(X + h * E) @ a - np.linalg.inv(X - h * E) @ a) / (2 * h)
    assert np.allclose(J.T @ E.reshape(-1, 1, order="F"), change, atol=1e-6)
    assert result.text == "-kron(inv(X)*a, inv(X)')"
    assert result.latex == r"-(X^{-1} a) \otimes X^{-\top}"

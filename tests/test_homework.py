"""Course homework beyond plain gradients — chain rule through `where:`, stationary points,
Jacobians, Hessians — that the engine used to refuse or write in an untextbook form. Each is
derived and verified, then checked here on its own: the published NumPy code is evaluated with no
builtins at values this test draws, and compared with this test's finite differences of its own
NumPy version of f (a stationary point: this test's own gradient vanishes there)."""

from __future__ import annotations

import numpy as np

import derivgen
from fd import check_gradient, numerical_gradient

CITED = {"E9"}  # shown here, for tests/test_rules.py's catalogue check

RNG = np.random.default_rng(20261204)


def _derive(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return derivgen.derive(str(path))


def _result(d, wrt: str, kind: str = "gradient"):
    return next(r for r in d.results if r.wrt == wrt and r.kind == kind)


def _numpy(result, values: dict) -> np.ndarray:
    return np.asarray(eval(result.numpy, {"__builtins__": {}, "np": np, **values}), float)  # our own output


def _assert_gradient(f, values: dict, wrt: str, g: np.ndarray) -> None:
    checks = check_gradient(lambda v: f(**{**values, wrt: v}), values[wrt], g, RNG)
    assert max(c.error for c in checks) < 1e-6, checks


def _softmax_columns(z):
    w = np.exp(z - z.max(axis=0))
    return w / w.sum(axis=0)


def test_backprop_through_a_softmax_defined_under_where(tmp_path) -> None:
    # P = softmax(W2 H) under log(P): the check of ∂f/∂P moved P's tiny entries below 0 (NaN) and
    # the problem was refused as "a bug in derivgen"
    d = _derive(tmp_path, "variables: {W1: [h, d], W2: [k, h], X: [d, N], Y: [k, N]}\n"
                          "assume: {Y: [onehot]}\nwhere:\n  H: relu(W1*X)\n  P: softmax(W2*H)\n"
                          "function: -sum(Y .* log(P))\nwrt: [W2, W1]\n")
    assert _result(d, "W2").text == "(P - Y)*H'"
    assert _result(d, "W1").text == "((W2'*(P - Y)) .* step(W1*X))*X'"
    values = dict(W1=RNG.standard_normal((3, 4)), W2=RNG.standard_normal((5, 3)), X=RNG.standard_normal((4, 6)),
                  Y=np.eye(5)[:, RNG.integers(0, 5, 6)])

    def f(W1, W2, X, Y):
        return float(-np.sum(Y * np.log(_softmax_columns(W2 @ np.maximum(W1 @ X, 0)))))

    for wrt in ("W2", "W1"):
        _assert_gradient(f, values, wrt, _numpy(_result(d, wrt), values))


def fd_hessian(f, x0: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Second central differences of a scalar f of a column x, entry by entry."""
    n = x0.size
    out = np.zeros((n, n))

    def at(*steps):
        x = x0.copy()
        for k, s in steps:
            x[k, 0] += s
        return f(x)

    for i in range(n):
        for j in range(n):
            out[i, j] = (at((i, h), (j, h)) - at((i, h), (j, -h)) - at((i, -h), (j, h)) + at((i, -h), (j, -h))) / (4 * h * h)
    return out


def test_newton_step_of_logistic_regression_over_samples(tmp_path) -> None:
    # the sample points x_t inside log(1 + exp(wᵀx_t)) crashed the sampler (KeyError), and the
    # Hessian, a sum over samples, could not be brought to the form J dw
    d = _derive(tmp_path, "variables: {x_t: [n], y_t: [], w: [n]}\nindices: {t: N}\n"
                          "function: sum(t, log(1 + exp(w'*x_t)) - y_t*w'*x_t)\nwrt: [w]\norder: 2\n")
    hessian = _result(d, "w", "hessian")
    assert _result(d, "w").text == "sum(t, (sigma(w'*x_t) - y_t)*x_t)"  # one sum: Σ_t (σ(wᵀx_t) − y_t) x_t
    assert hessian.text == "sum(t, sigma(w'*x_t)*(1 - sigma(w'*x_t))*x_t*x_t')"  # Σ_t σ(1 − σ) x_t x_tᵀ
    X, y = RNG.standard_normal((3, 7)), RNG.integers(0, 2, (1, 7)).astype(float)
    values = dict(x_t=X, y_t=y, w=RNG.standard_normal((3, 1)))

    def f(x_t, y_t, w):
        z = (w.T @ x_t).ravel()
        return float(np.sum(np.log1p(np.exp(z)) - y_t.ravel() * z))

    _assert_gradient(f, values, "w", _numpy(_result(d, "w"), values))
    np.testing.assert_allclose(_numpy(hessian, values), fd_hessian(lambda w: f(X, y, w), values["w"]), rtol=1e-4, atol=1e-5)


def test_stationary_points_with_the_unknown_multiplied_on_the_right(tmp_path) -> None:
    # ‖WX − Y‖²: the solver inverted X and Xᵀ one by one (a crash: k×d by N×d); with λ‖W‖² it
    # refused ("multiplied from both sides by different factors")
    X, Y, lam = RNG.standard_normal((4, 9)), RNG.standard_normal((3, 9)), 0.7
    for extra, textbook, want in [
        ("", "Y*X'*inv(X*X')", Y @ X.T @ np.linalg.inv(X @ X.T)),
        (" + lambda*norm(W)^2", "Y*X'*inv(X*X' + lambda*I)", Y @ X.T @ np.linalg.inv(X @ X.T + lam * np.eye(4))),
    ]:
        d = _derive(tmp_path, "variables: {W: [k, d], X: [d, N], Y: [k, N], lambda: []}\n"
                              "assume: {lambda: [positive]}\n"
                              f"function: norm(W*X - Y)^2{extra}\nwrt: [W]\nsolve: true\n")
        solution = _result(d, "W", "solution")
        assert solution.text == textbook
        values = dict(X=X, Y=Y, lambda_=lam)
        w_hat = _numpy(solution, values)

        def f(W):
            return float(np.sum((W @ X - Y) ** 2) + (lam * np.sum(W * W) if extra else 0.0))

        np.testing.assert_allclose(w_hat, want, rtol=1e-9)
        assert np.abs(numerical_gradient(f, w_hat)).max() < 1e-6  # this test's own gradient vanishes there


def test_a_scalar_coefficient_of_the_unknown_is_divided_out(tmp_path) -> None:
    # 2(x − a) + 2(x − b) = 0 was solved through inv(eye(n) + eye(n))
    d = _derive(tmp_path, "variables: {x: [n], a: [n], b: [n]}\nfunction: norm(x - a)^2 + norm(x - b)^2\n"
                          "wrt: [x]\nsolve: true\n")
    solution = _result(d, "x", "solution")
    assert solution.text == "(a + b)/2"
    assert not any("eye" in s.text or "inv" in s.text for s in solution.steps)
    a, b = RNG.standard_normal((4, 1)), RNG.standard_normal((4, 1))
    x_hat = _numpy(solution, dict(a=a, b=b))
    assert np.abs(numerical_gradient(lambda x: float(np.sum((x - a) ** 2) + np.sum((x - b) ** 2)), x_hat)).max() < 1e-6


def test_least_squares_over_samples_is_solved(tmp_path) -> None:
    # Σ_t (y_t − wᵀx_t)² and Σ_t ‖y_t − W x_t‖²: the unknown inside the sum was "not linear"
    X, Yv, y = RNG.standard_normal((3, 8)), RNG.standard_normal((2, 8)), RNG.standard_normal((1, 8))
    d = _derive(tmp_path, "variables: {x_t: [n], y_t: [], w: [n]}\nindices: {t: N}\n"
                          "function: sum(t, (y_t - w'*x_t)^2)\nwrt: [w]\nsolve: true\n")
    solution = _result(d, "w", "solution")
    assert solution.text == "inv(sum(t, x_t*x_t'))*sum(t, y_t*x_t)"  # (Σ x_t x_tᵀ)⁻¹ Σ y_t x_t
    w_hat = _numpy(solution, dict(x_t=X, y_t=y))
    assert np.abs(numerical_gradient(lambda w: float(np.sum((y - w.T @ X) ** 2)), w_hat)).max() < 1e-6

    d = _derive(tmp_path, "variables: {x_t: [d], y_t: [k], W: [k, d]}\nindices: {t: N}\n"
                          "function: sum(t, norm(y_t - W*x_t)^2)\nwrt: [W]\nsolve: true\n")
    solution = _result(d, "W", "solution")
    assert solution.text == "sum(t, y_t*x_t')*inv(sum(t, x_t*x_t'))"
    w_hat = _numpy(solution, dict(x_t=X, y_t=Yv))
    assert np.abs(numerical_gradient(lambda W: float(np.sum((Yv - W @ X) ** 2)), w_hat)).max() < 1e-6


def test_the_precision_matrix_is_solved_by_multiplying_on_one_side(tmp_path) -> None:
    # N/2 Λ⁻¹ − S/2 = 0: multiplied by Λ on both sides it holds Λ twice and was refused
    d = _derive(tmp_path, "variables: {x_t: [n], mu: [n], Lambda: [n, n]}\nindices: {t: N}\n"
                          "assume: {Lambda: [spd]}\n"
                          "function: N/2*logdet(Lambda) - 1/2*sum(t, (x_t - mu)'*Lambda*(x_t - mu))\n"
                          "wrt: [Lambda]\nsolve: true\n")
    solution = _result(d, "Lambda", "solution")
    assert solution.text == "N*inv(sum(t, (x_t - mu)*(x_t - mu)'))"
    assert "E9" in {r for s in solution.steps for r in s.rules}
    X, mu = RNG.standard_normal((3, 10)), RNG.standard_normal((3, 1))
    lam = _numpy(solution, dict(x_t=X, mu=mu))

    def f(L):
        return 10 / 2 * np.linalg.slogdet(L)[1] - 0.5 * float(np.sum((X - mu) * (L @ (X - mu))))

    assert np.abs(numerical_gradient(f, lam)).max() < 1e-6  # this test's own gradient vanishes there


def test_an_autoencoder_keeps_the_transpose_outside_the_sigmoid(tmp_path) -> None:
    # ∂‖X − W2 σ(W1 X)‖²/∂W2 read −2(X − W2σ(W1X)) σ(XᵀW1ᵀ): the transpose pushed into σ
    d = _derive(tmp_path, "variables: {W1: [h, d], W2: [d, h], X: [d, N]}\n"
                          "function: norm(X - W2*sigma(W1*X))^2\nwrt: [W2, W1]\n")
    assert _result(d, "W2").text == "-2*(X - W2*sigma(W1*X))*sigma(W1*X)'"
    values = dict(W1=RNG.standard_normal((3, 4)), W2=RNG.standard_normal((4, 3)), X=RNG.standard_normal((4, 5)))

    def f(W1, W2, X):
        return float(np.sum((X - W2 @ (1 / (1 + np.exp(-W1 @ X)))) ** 2))

    for wrt in ("W2", "W1"):
        _assert_gradient(f, values, wrt, _numpy(_result(d, wrt), values))


def test_the_symmetric_gradient_of_logdet_reads_as_the_cookbook(tmp_path) -> None:
    # 2X⁻¹ − I ⊙ X⁻¹ was factored into X⁻¹ ⊙ (2·ones(n, n) − eye(n))
    d = _derive(tmp_path, "variables: {X: [n, n]}\nassume: {X: [spd]}\nfunction: logdet(X)\nwrt: [X]\n"
                          "constrain_symmetric: entries\n")
    result = _result(d, "X")
    assert result.text == "2*inv(X) - I .* inv(X)"
    a = RNG.standard_normal((4, 4))
    X = a @ a.T + 4 * np.eye(4)
    g = _numpy(result, dict(X=X))
    # the derivative along the free entries i <= j: X + t·(E_ij + E_ji) (E_ii once on the diagonal)
    for i, j in [(0, 0), (0, 2), (1, 3), (3, 3)]:
        e = np.zeros((4, 4))
        e[i, j] = e[j, i] = 1.0
        fd = (np.linalg.slogdet(X + 1e-5 * e)[1] - np.linalg.slogdet(X - 1e-5 * e)[1]) / 2e-5
        assert abs(fd - g[i, j]) < 1e-6


def test_numbers_cancel_through_an_elementwise_quotient(tmp_path) -> None:
    # the Jacobian of √(x ⊙ x + 1) read 2 diag(x ⊘ (2√(x ⊙ x + 1))), its gradient 2(x ⊘ (2√…))
    d = _derive(tmp_path, "variables: {x: [n]}\nfunction: sqrt(x .* x + 1)\nwrt: [x]\n")
    jac = _result(d, "x", "jacobian")
    assert jac.text == "diag(x ./ sqrt(x .* x + 1))"
    x = RNG.standard_normal((4, 1))
    J = _numpy(jac, dict(x=x))
    for k in range(4):  # column k of ∂f/∂x (denominator layout): row k holds ∂f/∂x_k
        e = np.zeros((4, 1))
        e[k] = 1e-5
        fd = (np.sqrt((x + e) ** 2 + 1) - np.sqrt((x - e) ** 2 + 1)) / 2e-5
        np.testing.assert_allclose(J[k:k + 1, :].T, fd, atol=1e-8)
    d = _derive(tmp_path, "variables: {x: [n]}\nfunction: sum(sqrt(x .* x + 1))\nwrt: [x]\n")
    assert _result(d, "x").text == "x ./ sqrt(x .* x + 1)"
    _assert_gradient(lambda x: float(np.sum(np.sqrt(x * x + 1))), dict(x=x), "x", _numpy(_result(d, "x"), dict(x=x)))


def _vec(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1, order="F")


def test_matrix_derivatives_through_sums_over_samples(tmp_path) -> None:
    # vec of a sum over samples could not be vectorised: the Hessian of Σ_t ‖y_t − W x_t‖² and
    # the derivative of Σ_t a_t a_tᵀ X b_t b_tᵀ were refused
    d = _derive(tmp_path, "variables: {x_t: [d], y_t: [k], W: [k, d]}\nindices: {t: N}\n"
                          "function: sum(t, norm(y_t - W*x_t)^2)\nwrt: [W]\norder: 2\n")
    hessian = _result(d, "W", "hessian")
    assert hessian.text == "2*kron(sum(t, x_t*x_t'), eye(k))"  # 2 (Σ_t x_t x_tᵀ) ⊗ I
    X, Y, W = RNG.standard_normal((3, 6)), RNG.standard_normal((2, 6)), RNG.standard_normal((2, 3))
    got = _numpy(hessian, dict(x_t=X, y_t=Y, W=W))
    want = fd_hessian(lambda w: float(np.sum((Y - w.reshape(2, 3, order="F") @ X) ** 2)), _vec(W))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    d = _derive(tmp_path, "variables: {a_t: [m], b_t: [n], X: [m, n]}\nindices: {t: N}\n"
                          "function: sum(t, a_t*a_t'*X*b_t*b_t')\nwrt: [X]\n")
    jac = _result(d, "X", "jacobian")
    assert jac.text == "sum(t, kron(b_t*b_t', a_t*a_t'))"
    A, B, X0 = RNG.standard_normal((3, 5)), RNG.standard_normal((4, 5)), RNG.standard_normal((3, 4))

    def F(X):
        return sum(A[:, [t]] @ A[:, [t]].T @ X @ B[:, [t]] @ B[:, [t]].T for t in range(5))

    columns = []
    for k in range(12):
        e = np.zeros(12)
        e[k] = 1e-5
        step = e.reshape(3, 4, order="F")
        columns.append((_vec(F(X0 + step)) - _vec(F(X0 - step))) / 2e-5)
    numerator = np.hstack(columns)  # rows follow vec F, columns vec X
    np.testing.assert_allclose(_numpy(jac, dict(a_t=A, b_t=B, X=X0)), numerator.T, atol=1e-7)


def test_a_hessian_symmetric_by_assumption_is_read_off_in_one_line(tmp_path) -> None:
    # ½xᵀAx − bᵀx with A symmetric: `J = A`, then `∂²f/∂x∂xᵀ = A` again for the layout
    d = _derive(tmp_path, "variables: {A: [n, n], x: [n], b: [n]}\nassume: {A: [symmetric]}\n"
                          "function: x'*A*x/2 - b'*x\nwrt: [x]\norder: 2\n")
    hessian = _result(d, "x", "hessian")
    assert hessian.text == "A"
    assert [s.lhs for s in hessian.steps] == ["d(∂f/∂x)", None, "∂²f/∂x∂x'"]
    assert {"J0", "L1", "S4"} <= set(hessian.steps[-1].rules)
    a = RNG.standard_normal((4, 4))
    A, b = a + a.T, RNG.standard_normal((4, 1))
    x0 = RNG.standard_normal((4, 1))
    np.testing.assert_allclose(_numpy(hessian, dict(A=A, b=b, x=x0)),
                               fd_hessian(lambda x: (x.T @ A @ x / 2 - b.T @ x).item(), x0), rtol=1e-4, atol=1e-5)


def test_scalar_rates_are_solved_by_multiplying_by_the_unknown(tmp_path) -> None:
    # N/λ − Σ_t x_t = 0 (exponential) and Σ_t k_t/λ − N = 0 (Poisson) were "not linear"
    x = RNG.uniform(0.5, 2.0, (1, 6))
    for function, textbook, f in [
        ("N*log(lambda) - lambda*sum(t, x_t)", "N/sum(t, x_t)", lambda lam: 6 * np.log(lam) - lam * np.sum(x)),
        ("sum(t, x_t*log(lambda) - lambda)", "sum(t, x_t)/N", lambda lam: np.sum(x * np.log(lam) - lam)),
    ]:
        d = _derive(tmp_path, "variables: {x_t: [], lambda: []}\nindices: {t: N}\n"
                              f"assume: {{lambda: [positive], x_t: [positive]}}\nfunction: {function}\n"
                              "wrt: [lambda]\nsolve: true\n")
        solution = _result(d, "lambda", "solution")
        assert solution.text == textbook
        lam = float(_numpy(solution, dict(x_t=x)))
        assert lam > 0 and abs((f(lam + 1e-6) - f(lam - 1e-6)) / 2e-6) < 1e-6


def test_the_newton_step_of_a_log_barrier(tmp_path) -> None:
    # cᵀx − Σ log(b − Ax): the Hessian read Aᵀ diag(1 ⊘ ((b − Ax) ⊙ (b − Ax))) A
    d = _derive(tmp_path, "variables: {A: [m, n], x: [n], b: [m], c: [n]}\n"
                          "function: c'*x - sum(log(b - A*x))\nwrt: [x]\norder: 2\n")
    hessian = _result(d, "x", "hessian")
    assert hessian.text == "A'*diag(ones(m) ./ (b - A*x).^2)*A"
    A, x0, c = RNG.standard_normal((6, 3)), RNG.standard_normal((3, 1)), RNG.standard_normal((3, 1))
    b = A @ x0 + RNG.uniform(0.5, 2.0, (6, 1))

    def f(x):
        return (c.T @ x).item() - float(np.sum(np.log(b - A @ x)))

    values = dict(A=A, x=x0, b=b, c=c)
    _assert_gradient(lambda A, x, b, c: f(x), values, "x", _numpy(_result(d, "x"), values))
    np.testing.assert_allclose(_numpy(hessian, values), fd_hessian(f, x0), rtol=1e-4, atol=1e-5)


def test_a_minimiser_reached_as_x_equals_b_is_not_divided_by_one(tmp_path) -> None:
    # tr(X) − log det X: I − X⁻¹ = 0 held X twice once multiplied on both sides (refused), and
    # X = I was followed by X̂ = I "divided by a scalar"
    d = _derive(tmp_path, "variables: {X: [n, n]}\nassume: {X: [spd]}\nfunction: -logdet(X) + tr(X)\n"
                          "wrt: [X]\nsolve: true\n")
    solution = _result(d, "X", "solution")
    assert solution.text == "eye(n)"
    assert "E7" not in {r for s in solution.steps for r in s.rules}
    assert tuple(solution.steps[-1].rules) == ("E1",)

    def f(X):
        return -np.linalg.slogdet(X)[1] + np.trace(X)

    assert np.abs(numerical_gradient(f, np.eye(4))).max() < 1e-6

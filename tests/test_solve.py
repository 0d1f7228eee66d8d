"""Stationary points (`solve: true`): least squares, ridge regression, the Gaussian MLE.

The checks are the test's own: the gradient of f, computed here by central finite differences
of f (evaluated from the parsed tree, not differentiated), must vanish at the engine's solution,
and for least squares the solution must agree with NumPy's own least-squares solver.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from derivgen.errors import UnsupportedError
from derivgen.numeric import evaluate
from derivgen.pipeline import solve
from derivgen.printing import text
from derivgen.problem import load_problem_text

SIZES = {"m": 9, "n": 4, "N": 7}


def problem(src: str):
    return load_problem_text(textwrap.dedent(src))


def fd_gradient(f, x0, h=1e-5):
    g = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[idx] = h
        g[idx] = (f(x0 + e) - f(x0 - e)) / (2 * h)
    return g


def solution_of(solved, wrt):
    return next(d for d in solved.derivations if d.kind == "solution" and d.wrt == wrt)


def rules_of(d):
    return {r for b in d.blocks for s in b.steps for r in s.rules}


def test_least_squares_normal_equations():
    solved = solve(problem("""
        variables: {A: [m, n], x: [n], b: [m]}
        function: norm(A*x - b)^2/2
        wrt: [x]
        solve: true
        """))
    d = solution_of(solved, "x")
    assert text(d.result) == "inv(A'*A)*A'*b"
    assert {"E0", "E1", "E2", "T7"} <= rules_of(d)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((9, 4)), rng.standard_normal((9, 1))
    x = evaluate(d.result, {"A": a, "b": b}, SIZES)
    np.testing.assert_allclose(x, np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-10)


def test_ridge_regression():
    solved = solve(problem("""
        variables: {A: [m, n], x: [n], b: [m], lambda: []}
        assume: {lambda: [positive]}
        function: norm(A*x - b)^2/2 + lambda/2*x'*x
        wrt: [x]
        solve: true
        """))
    d = solution_of(solved, "x")
    assert text(d.result) == "inv(A'*A + lambda*I)*A'*b"
    ctx = solved.context
    rng = np.random.default_rng(1)
    values = {"A": rng.standard_normal((9, 4)), "b": rng.standard_normal((9, 1)), "lambda": np.array([[0.7]])}
    x = evaluate(d.result, values, SIZES)
    f = lambda v: float(evaluate(ctx.function, {**values, "x": v}, SIZES)[0, 0])  # noqa: E731
    assert np.linalg.norm(fd_gradient(f, x)) < 1e-6


PROBLEM_MLE_TR = """
        variables: {X: [n, N], mu: [n], Sigma: [n, n]}
        assume: {Sigma: [spd]}
        function: -N/2*logdet(Sigma) - 1/2*tr(inv(Sigma)*(X - mu*1')*(X - mu*1')')
        wrt: [mu, Sigma]
        solve: true
        """


def test_gaussian_maximum_likelihood():
    solved = solve(problem(PROBLEM_MLE_TR))
    mu, sigma = solution_of(solved, "mu"), solution_of(solved, "Sigma")
    assert text(mu.result) == "X*ones(N)/N"  # the sample mean
    assert text(sigma.result) == "(X - mu*ones(N)')*(X - mu*ones(N)')'/N"  # the scatter over N
    # normal detail: Σ⁻¹ and −1 cancelled from −NΣ⁻¹μ = −Σ⁻¹X1 (E6), then divided by N (E7); Σ̂ is
    # shown with μ̂ put in for μ (E8), its result kept in the variables (evaluated at μ = μ̂)
    assert {"E5", "E6", "E7"} <= rules_of(mu) and {"E3", "E6", "E7", "E8"} <= rules_of(sigma)
    assert "mu_hat" in text(sigma.shown) and "mu_hat" not in text(sigma.result)
    full = solve(problem(PROBLEM_MLE_TR), detail="full")
    assert {"E5", "S6"} <= rules_of(solution_of(full, "mu")) and {"E3"} <= rules_of(solution_of(full, "Sigma"))
    assert text(solution_of(full, "Sigma").result) == text(sigma.result)
    ctx = solved.context
    rng = np.random.default_rng(2)
    data = rng.standard_normal((4, 7))
    m_hat = evaluate(mu.result, {"X": data}, SIZES)
    np.testing.assert_allclose(m_hat, data.mean(axis=1, keepdims=True), rtol=1e-12)
    s_hat = evaluate(sigma.result, {"X": data, "mu": m_hat}, SIZES)
    np.testing.assert_allclose(s_hat, np.cov(data, bias=True), rtol=1e-10)
    # the gradient with respect to Σ vanishes at (μ̂, Σ̂)
    f = lambda s: float(evaluate(ctx.function, {"X": data, "mu": m_hat, "Sigma": s}, SIZES)[0, 0])  # noqa: E731
    assert np.linalg.norm(fd_gradient(f, s_hat)) < 1e-5


def test_not_linear_is_said_not_guessed():
    with pytest.raises(UnsupportedError, match="not linear"):
        solve(problem("""
            variables: {x: [n], A: [n, n]}
            function: x'*A*x + exp(x'*x)
            wrt: [x]
            solve: true
            """))


def test_product_inverse_rule():
    solved = solve(problem("""
        variables: {A: [n, n], B: [n, n], x: [n], b: [n]}
        assume: {A: [invertible], B: [invertible]}
        function: x'*B'*A'*A*B*x/2 - b'*x
        wrt: [x]
        solve: true
        """))
    d = solution_of(solved, "x")
    assert "E4" in rules_of(d)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4)) + 3 * np.eye(4)
    bm = rng.standard_normal((4, 4)) + 3 * np.eye(4)
    b = rng.standard_normal((4, 1))
    x = evaluate(d.result, {"A": a, "B": bm, "b": b}, SIZES)
    np.testing.assert_allclose((a @ bm).T @ (a @ bm) @ x, b, rtol=1e-9)


# rules the tests above assert are cited, for tests/test_rules.py's every-rule check
CITED = {"E0", "E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "T7", "S6"}


def test_ridge_without_a_half_cancels_the_two():
    """2(XᵀX + λI)w = 2Xᵀy: the 2 is cancelled (E6) before inverting, as a teacher does."""
    solved = solve(problem("""
        variables: {X: [m, n], w: [n], y: [m], lambda: []}
        assume: {lambda: [positive]}
        function: norm(X*w - y)^2 + lambda*w'*w
        wrt: [w]
        solve: true
        """))
    sol = solution_of(solved, "w")
    lines = [text(s.expr) for b in sol.blocks for s in b.steps]
    assert "E6" in rules_of(sol) and not any("2*inv(" in line for line in lines), lines
    assert text(sol.result) == "inv(X'*X + lambda*I)*X'*y"
    assert lines[-1].startswith("w_hat = ")  # the estimate wears a hat

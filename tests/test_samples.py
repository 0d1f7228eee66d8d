"""Sums over samples: an indexed family x_t (t = 1..N) and `sum(t, ...)`, the notes' Gaussian MLE.

f is evaluated here with its own NumPy code (a loop over the samples), independently of the
engine's tree, and the engine's gradients and stationary points are checked against central
finite differences of that f.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from derivgen.errors import DerivgenError
from derivgen.numeric import evaluate
from derivgen.pipeline import document, solve
from derivgen.printing import text
from derivgen.problem import load_problem_text

GAUSSIAN = """
    variables: {x_t: [n], mu: [n], Sigma: [n, n]}
    indices: {t: N}
    assume: {Sigma: [spd]}
    function: -N/2*logdet(Sigma) - 1/2*sum(t, (x_t - mu)'*inv(Sigma)*(x_t - mu))
    wrt: [mu, Sigma]
    solve: true
    """
SIZES = {"n": 3, "N": 6}


def f_gauss(xs, mu, sigma):
    """The log-likelihood written directly, sample by sample."""
    inv = np.linalg.inv(sigma)
    n = xs.shape[1]
    quad = sum(((xs[:, [t]] - mu).T @ inv @ (xs[:, [t]] - mu)).item() for t in range(n))
    return -n / 2 * np.linalg.slogdet(sigma)[1] - quad / 2


def fd_gradient(f, x0, h=1e-5):
    g = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[idx] = h
        g[idx] = (f(x0 + e) - f(x0 - e)) / (2 * h)
    return g


@pytest.fixture(scope="module")
def solved():
    return solve(load_problem_text(textwrap.dedent(GAUSSIAN)))


def point(seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((3, 6))
    mu = rng.standard_normal((3, 1))
    a = rng.standard_normal((3, 3))
    return xs, mu, a @ a.T / 3 + np.eye(3)


def by(solved, kind, wrt):
    return next(d for d in solved.derivations if d.kind == kind and d.wrt == wrt)


def rules(d):
    return {r for b in d.blocks for s in b.steps for r in s.rules}


def test_gradients_match_finite_differences(solved):
    xs, mu, sigma = point()
    values = {"x_t": xs, "mu": mu, "Sigma": sigma}
    g_mu = evaluate(by(solved, "gradient", "mu").result, values, SIZES)
    g_sigma = evaluate(by(solved, "gradient", "Sigma").result, values, SIZES)
    np.testing.assert_allclose(g_mu, fd_gradient(lambda m: f_gauss(xs, m, sigma), mu), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g_sigma, fd_gradient(lambda s: f_gauss(xs, mu, s), sigma), rtol=1e-6, atol=1e-8)
    assert {"D23", "S12"} <= rules(by(solved, "gradient", "mu"))  # Σ⁻¹ out of the sum in the differential
    full = solve(load_problem_text(textwrap.dedent(GAUSSIAN)), detail="full")
    assert {"D23", "T8", "S12"} <= rules(by(full, "gradient", "mu"))  # one rule per line: Σ into the trace


def test_maximum_likelihood_estimates_as_in_the_notes(solved):
    mu_hat, sigma_hat = by(solved, "solution", "mu"), by(solved, "solution", "Sigma")
    assert text(mu_hat.result) == "sum(t, x_t)/N"
    assert text(sigma_hat.result) == "sum(t, (x_t - mu)*(x_t - mu)')/N"
    xs, _, _ = point(1)
    m = evaluate(mu_hat.result, {"x_t": xs}, SIZES)
    np.testing.assert_allclose(m, xs.mean(axis=1, keepdims=True), rtol=1e-12)
    s = evaluate(sigma_hat.result, {"x_t": xs, "mu": m}, SIZES)
    np.testing.assert_allclose(s, np.cov(xs, bias=True), rtol=1e-10)
    assert np.linalg.norm(fd_gradient(lambda v: f_gauss(xs, m, v), s)) < 1e-5


def test_numpy_code_takes_the_samples_as_columns(solved):
    doc = document(solved)
    xs, mu, sigma = point(2)
    for r in doc["results"]:
        if r["kind"] != "gradient":
            continue
        got = eval(r["numpy"], {"__builtins__": {}, "np": np, "x_t": xs, "mu": mu, "Sigma": sigma})  # our own generated code
        want = evaluate(by(solved, "gradient", r["wrt"]).result, {"x_t": xs, "mu": mu, "Sigma": sigma}, SIZES)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_latex_shows_the_sum(solved):
    doc = document(solved)
    assert "\\sum_{t=1}^{N}" in doc["results"][0]["latex"]


@pytest.mark.parametrize("src, message", [
    ("variables: {x_t: [n]}\nindices: {t: N}\nfunction: x_t'*x_t\nwrt: [x_t]", "sample of a family"),
    ("variables: {x_t: [n], a: [n]}\nindices: {t: N}\nfunction: sum(s, a'*x_t)\nwrt: [a]", "index declared"),
    ("variables: {x_t: [n, n], a: [n]}\nindices: {t: N}\nfunction: a'*a\nwrt: [a]", "vector or a scalar"),
])
def test_misuse_is_a_clear_error(src, message):
    with pytest.raises(DerivgenError, match=message):
        solve(load_problem_text(src))


# rules the tests above assert are cited, for tests/test_rules.py's every-rule check
CITED = {"D23", "T8", "S12"}

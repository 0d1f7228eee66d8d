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
]


@pytest.mark.parametrize("function, shapes, wrt, values, f, textbook", CASES, ids=[c[0] for c in CASES])
def test_derived_right_and_in_the_textbook_form(function, shapes, wrt, values, f, textbook) -> None:
    result = derivgen.derive(function, wrt=wrt, **shapes).results[0]
    assert result.verification.passed
    g = eval(result.numpy, {"__builtins__": {}, "np": np, **values})  # our own output, no builtins
    checks = check_gradient(lambda v: f(**{**values, wrt: v}), values[wrt], np.asarray(g, float), RNG)
    assert max(c.error for c in checks) < 1e-6, checks
    assert result.text == textbook

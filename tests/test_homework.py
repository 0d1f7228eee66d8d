"""Course homework beyond plain gradients — chain rule through `where:`, stationary points,
Jacobians, Hessians — that the engine used to refuse or write in an untextbook form. Each is
derived and verified, then checked here on its own: the published NumPy code is evaluated with no
builtins at values this test draws, and compared with this test's finite differences of its own
NumPy version of f (a stationary point: this test's own gradient vanishes there)."""

from __future__ import annotations

import numpy as np

import derivgen
from fd import check_gradient, numerical_gradient

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

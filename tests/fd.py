"""Finite-difference helpers for checking gradients independently of the engine.

A gradient ``G`` of a scalar function ``f`` at ``X`` (denominator layout, so ``G`` has the shape
of ``X``) is checked through directional derivatives: for a direction ``V``,

    d/dt f(X + tV) at t = 0  ==  <G, V> = sum(G * V).

The left side is estimated with the fourth-order central stencil

    (f(X - 2hV) - 8 f(X - hV) + 8 f(X + hV) - f(X + 2hV)) / (12 h),

whose truncation error is O(h^4): with h around 1e-3 times the size of the entries of ``X`` both
the truncation and the rounding error stay far below the 1e-6 relative tolerance used in the
tests, for the smooth functions of moderate size in the example set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DirectionCheck",
    "check_gradient",
    "directional_derivative",
    "numerical_gradient",
    "relative_error",
    "step_size",
]

ScalarFunction = Callable[[np.ndarray], float]


def step_size(x: np.ndarray, rel: float = 1e-3) -> float:
    """A step for a unit-norm direction: ``rel`` times the RMS entry of ``x`` (at least ``rel``)."""
    x = np.asarray(x, dtype=float)
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return rel * max(1.0, rms)


def directional_derivative(f: ScalarFunction, x: np.ndarray, v: np.ndarray, h: float | None = None) -> float:
    """Estimate d/dt f(x + t v) at t = 0 with the 4-point central stencil."""
    x = np.asarray(x, dtype=float)
    v = np.asarray(v, dtype=float)
    if h is None:
        h = step_size(x) / max(float(np.linalg.norm(v)), 1e-300)
    fm2 = float(f(x - 2 * h * v))
    fm1 = float(f(x - h * v))
    fp1 = float(f(x + h * v))
    fp2 = float(f(x + 2 * h * v))
    return (fm2 - 8.0 * fm1 + 8.0 * fp1 - fp2) / (12.0 * h)


def relative_error(estimate: float, claimed: float, floor: float = 0.0) -> float:
    """|estimate - claimed| relative to the larger of the two magnitudes (and of ``floor``).

    Two exact zeros agree (error 0). ``floor`` keeps the ratio meaningful when both numbers happen
    to be almost zero for a direction nearly orthogonal to the gradient.
    """
    diff = abs(estimate - claimed)
    scale = max(abs(estimate), abs(claimed), floor)
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


@dataclass(frozen=True)
class DirectionCheck:
    """One comparison of a finite-difference estimate with the claimed <G, V>."""

    label: str          # "random 0", "along G", ...
    fd: float           # finite-difference directional derivative
    claimed: float      # <G, V>
    error: float        # relative error between the two


def check_gradient(
    f: ScalarFunction,
    x: np.ndarray,
    grad: np.ndarray,
    rng: np.random.Generator,
    n_random: int = 3,
) -> list[DirectionCheck]:
    """Compare ``grad`` with finite differences of ``f`` at ``x`` along several directions.

    The directions are ``n_random`` random Gaussian ones plus the direction of ``grad`` itself
    (where ``<G, V> = |G|`` is as large as it can be, so a wrong scale cannot hide); all are
    normalised to unit Frobenius norm. Returns one ``DirectionCheck`` per direction; the caller
    decides on the tolerance.
    """
    x = np.asarray(x, dtype=float)
    grad = np.asarray(grad, dtype=float)
    if grad.shape != x.shape:
        raise ValueError(f"gradient shape {grad.shape} differs from variable shape {x.shape}")
    directions: list[tuple[str, np.ndarray]] = []
    for i in range(n_random):
        directions.append((f"random {i}", rng.standard_normal(x.shape)))
    if np.linalg.norm(grad) > 0:
        directions.append(("along G", grad.copy()))
    checks = []
    gnorm = float(np.linalg.norm(grad))
    for label, v in directions:
        v = v / np.linalg.norm(v)
        fd = directional_derivative(f, x, v)
        claimed = float(np.sum(grad * v))
        # floor: a direction almost orthogonal to G must not turn rounding noise into a failure
        floor = 1e-4 * max(gnorm, abs(fd))
        checks.append(DirectionCheck(label, fd, claimed, relative_error(fd, claimed, floor)))
    return checks


def numerical_gradient(f: ScalarFunction, x: np.ndarray, h: float | None = None) -> np.ndarray:
    """The full finite-difference gradient, entry by entry (for small arrays and for messages);
    `h`: the step (default `step_size(x)`), smaller where f curves fast (a matrix near singular)."""
    x = np.asarray(x, dtype=float)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = 1.0
        grad[idx] = directional_derivative(f, x, e, h)
    return grad

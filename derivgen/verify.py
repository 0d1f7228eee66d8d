"""Numeric checks of every step and every result (DESIGN §4).

At random values that satisfy the assumptions, with a different size for each dimension
symbol (so a missing transpose cannot hide), each block of a derivation is checked:

- `f = …` rewrites: each line has the value of f;
- `df = …`: each line, with dX set to a random direction V (and dY to the finite-difference
  change of Y along V), equals the finite-difference derivative of f along V;
- `dY = …`: each line equals the finite-difference change of Y along V;
- `∂f/∂X = G = …`: ⟨G, V⟩ equals the finite-difference derivative of f along V, line by line.

Finite differences use a 4-point central stencil. Any failure raises VerificationError: the
result is never published.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from . import expr as E
from .derive import Context, Derivation
from .errors import VerificationError
from .expr import Expr
from .limits import MAX_CHECK_SIZE
from .numeric import Evaluator, check_size

TOLERANCE = 1e-6
TRIALS = 3
STEP = 5e-4  # with the 6-point stencil: truncation O(h⁶) stays below round-off for steep f
SIZES = (3, 4, 5, 2, 6, 7, 8, 9, 10, 11)
SQUARE_NEEDS_INVERSE = ("det", "logdet")
# a second choice for solutions: well-separated sizes keep AᵀA well conditioned when A is tall
SOLUTION_SIZES = (12, 5, 3, 2, 7, 8, 9, 10, 11, 4)
FAILURES_TO_REJECT = 3  # points at which a check must fail before the result is rejected


@dataclass
class Report:
    """The figures published with a result."""

    passed: bool
    max_rel_error: float
    tolerance: float
    sizes: dict[str | int, int]
    trials: int
    checks: int

    def as_dict(self) -> dict:
        out = {
            "passed": self.passed,
            "max_rel_error": float(self.max_rel_error),
            "tolerance": self.tolerance,
            "sizes": {k: v for k, v in self.sizes.items() if isinstance(k, str)},
            "trials": self.trials,
            "checks": self.checks,
        }
        stand_ins = {str(k): v for k, v in self.sizes.items() if isinstance(k, int)}
        if stand_ins:  # integer dimensions too large to check at: the sizes they were checked at
            out["stand_ins"] = stand_ins
        return out


def dimension_sizes(ctx: Context) -> dict[str | int, int]:
    """A distinct size for every dimension symbol, in order of first appearance; and a distinct
    small stand-in for every integer dimension larger than `limits.MAX_CHECK_SIZE` (keyed by the
    integer), so that no check allocates by a declared size: `x: [100000]` and
    `indices: {t: 100000000}` are checked at sizes like 13. (A derivation holds for every size,
    and a wrong one fails at any size; distinct sizes keep a missing transpose from hiding.)"""
    declared = [d for shape in ctx.variables.values() for d in shape] + list(ctx.families.values())
    written = [d for e in [ctx.function, *ctx.where.values()] for n in E.walk(e) for d in _dims_of(n)]
    integers = {d for d in declared + written if isinstance(d, int)}
    pool = _size_pool({d for d in integers if d <= MAX_CHECK_SIZE})
    sizes: dict[str | int, int] = {}
    for shape in ctx.variables.values():
        for d in shape:
            if isinstance(d, str) and d not in sizes:
                sizes[d] = next(pool)
    for count in ctx.families.values():
        if isinstance(count, str) and count not in sizes:
            sizes[count] = next(pool)
    for e in [ctx.function, *ctx.where.values()]:
        for n in E.walk(e):
            if isinstance(n, E.Sym) and n.role == "dim" and n.name not in sizes:
                sizes[n.name] = next(pool)
    for d in sorted(d for d in integers if d > MAX_CHECK_SIZE):
        # a small multiple of a stand-in (y: [300] next to vec of X: [100, 3]) keeps the relation
        if not any(d % b == 0 and d // b <= MAX_CHECK_SIZE for b in sizes if isinstance(b, int)):
            sizes[d] = next(pool)
    return sizes


def _dims_of(n: Expr):
    """The dimensions an expression node is sized by (flattened products included)."""
    dims = list(n.shape)
    if isinstance(n, E.Eye):
        dims.append(n.n)
    elif isinstance(n, E.Commutation):
        dims += [n.m, n.n]
    elif isinstance(n, E.SumOver):
        dims.append(n.count)
    for d in dims:
        yield from (d if isinstance(d, tuple) else (d,))


def _size_pool(taken: set[int]):
    """Check sizes in the order of SIZES, then 12, 13, …; none of them a size already in use."""
    seen = set(taken)
    for s in itertools.chain(SIZES, itertools.count(12)):
        if s not in seen:
            seen.add(s)
            yield s


def _needs_inverse(ctx: Context) -> set[str]:
    """Square variables that appear under an inverse, det or logdet: sampled well-conditioned."""
    names: set[str] = set()
    for e in [ctx.function, *ctx.where.values()]:
        for n in E.walk(e):
            if isinstance(n, E.Inverse) or (isinstance(n, E.Func) and n.name in SQUARE_NEEDS_INVERSE) or (
                isinstance(n, E.Power) and not n.is_scalar
            ):
                names |= E.symbols(n)
    return names


class Sampler:
    """Random values that satisfy the assumptions of a problem."""

    def __init__(self, ctx: Context, sizes: dict[str | int, int], rng: np.random.Generator):
        self.ctx, self.sizes, self.rng = ctx, sizes, rng
        self.conditioned = _needs_inverse(ctx)

    def size(self, d) -> int:
        return check_size(d, self.sizes)

    def value(self, name: str, positive: bool = False) -> np.ndarray:
        r, c = (self.size(d) for d in self.ctx.variables[name])
        if name in self.ctx.families:  # the samples side by side, one per column
            c = self.size(self.ctx.families[name])
        rng = self.rng
        assumptions = self.ctx.assume.get(name, set())
        if "orthogonal" in assumptions:
            q, rr = np.linalg.qr(rng.standard_normal((r, r)))
            return q * np.sign(np.diag(rr))
        if "spd" in assumptions:
            a = rng.standard_normal((r, r))
            return a @ a.T / r + np.eye(r)
        if "diagonal" in assumptions:
            d = rng.uniform(0.5, 2.0, r)
            if not positive and "positive" not in assumptions:
                d = d * rng.choice([-1.0, 1.0], r)
            return np.diag(d)
        if positive or "positive" in assumptions:
            a = rng.uniform(0.5, 2.0, (r, c))
        else:
            a = rng.standard_normal((r, c))
        if "symmetric" in assumptions:
            a = (a + a.T) / 2
        if r == c and r > 1 and ("invertible" in assumptions or name in self.conditioned):
            a = a / np.sqrt(r) + 2.0 * np.eye(r) * (1 if positive else rng.choice([-1.0, 1.0]))
        return a

    def point(self, positive: bool = False) -> dict:
        return {name: self.value(name, positive) for name in self.ctx.variables}


class Checker:
    """Evaluates a problem's expressions at one random point."""

    def __init__(self, ctx: Context, sizes: dict[str | int, int], values: dict):
        self.ctx, self.sizes, self.values = ctx, sizes, values

    def env(self, overrides: dict | None = None) -> dict:
        """Variable values plus `where:` values computed in order (overridden names kept)."""
        env = dict(self.values)
        overrides = overrides or {}
        env.update(overrides)
        for name, definition in self.ctx.where.items():
            if name not in overrides:
                env[name] = Evaluator(env, self.sizes)(definition)
        return env

    def value(self, e: Expr, env: dict) -> np.ndarray:
        """The value of e in env; lines checked in the same env share one evaluator's cache of
        subexpressions (a derivation repeats most of its subexpressions from line to line)."""
        if getattr(self, "_env", None) is not env:
            self._env, self._evaluator = env, Evaluator(env, self.sizes)
        return self._evaluator(e)

    def f(self, overrides: dict | None = None) -> float:
        return float(self.value(self.ctx.function, self.env(overrides))[0, 0])

    def directional(self, g, name: str, direction: np.ndarray, base: np.ndarray):
        """6-point central difference of g(name = base + t·direction) at t = 0 (error O(h⁶))."""
        h = STEP
        v = {t: g({name: base + t * h * direction}) for t in (3, 2, 1, -1, -2, -3)}
        return (v[3] - 9 * v[2] + 45 * v[1] - 45 * v[-1] + 9 * v[-2] - v[-3]) / (60 * h)


class Tally:
    """The comparisons made at one point: their count and the largest relative error."""

    def __init__(self):
        self.worst, self.checks = 0.0, 0

    def compare(self, got, want, what: str, scale: float) -> None:
        if not _finite(got) and _has_overflow(got):
            raise _Unevaluable()  # a line overflows at this point (exp(exp(…))): draw another point
        with np.errstate(all="ignore"):
            err = rel_error(got, want, scale)
        if np.isnan(err) and _finite(got) and _finite(want):
            raise _Unevaluable()  # values so large that their norm overflows: draw another point
        self.checks += 1
        if not (_finite(got) and err <= TOLERANCE):
            raise VerificationError(
                f"numeric check failed: {what} (relative error {err:.2e} > {TOLERANCE:g})",
                hint="this is a bug in derivgen, not in your problem; please report it with the problem file",
            )
        self.worst = max(self.worst, err)


def _has_overflow(a) -> bool:
    """Infinite entries (an overflow), as opposed to NaN alone (which a wrong line can produce)."""
    return bool(np.any(np.isinf(np.asarray(a, dtype=float))))


class _Unevaluable(Exception):
    """f or its finite differences overflow at this point: another point is drawn."""


def rel_error(a, b, scale: float) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(np.linalg.norm(a - b))
    denom = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)), scale)
    return diff / denom


def _finite(x) -> bool:
    return bool(np.all(np.isfinite(x)))


def _at_random_points(ctx: Context, seed: int, check_point) -> Report:
    """Run `check_point(values, sizes, rng)` → (largest error, checks) at TRIALS random points.

    A point where f cannot be evaluated (singular, not finite) is drawn again, so is one where
    the finite differences overflow (`_Unevaluable`). An ill-conditioned point (a saturated
    softmax, say) can defeat finite differences, but a wrong derivation fails at every point:
    a check must fail at FAILURES_TO_REJECT points before the derivation is rejected."""
    sizes = dimension_sizes(ctx)
    rng = np.random.default_rng(seed)
    sampler = Sampler(ctx, sizes, rng)
    worst, checks, trials, attempts = 0.0, 0, 0, 0
    failures: list[VerificationError] = []
    while trials < TRIALS:
        attempts += 1
        if attempts > 4 * TRIALS:
            raise VerificationError(
                "the function could not be evaluated at random values (not finite)",
                hint="add assumptions (e.g. `positive`, `spd`) so that f is defined at random values",
            )
        values = sampler.point(positive=attempts > 2)
        try:
            err, n = check_point(values, sizes, rng)
        except (_Unevaluable, np.linalg.LinAlgError):
            continue
        except VerificationError as failure:
            failures.append(failure)
            if len(failures) >= FAILURES_TO_REJECT:
                raise failures[0]
            continue
        trials += 1
        worst, checks = max(worst, err), checks + n
    return Report(True, worst, TOLERANCE, sizes, trials, checks)


def verify(ctx: Context, derivation: Derivation, seed: int = 0) -> Report:
    """Check every step and the result of `derivation`; raise VerificationError on a mismatch."""

    def check_point(values, sizes, rng):
        check = Checker(ctx, sizes, values)
        with np.errstate(all="ignore"):
            f0 = check.f()
        if not np.isfinite(f0):
            raise _Unevaluable()
        return _check_point(ctx, derivation, check, derivation.wrt, rng, f0)

    return _at_random_points(ctx, seed, check_point)


def _check_point(ctx: Context, derivation: Derivation, check: Checker, wrt: str, rng, f0: float):
    """All checks at one point; returns (largest relative error, number of checks)."""
    values = check.values
    direction = rng.standard_normal(values[wrt].shape)
    direction /= np.linalg.norm(direction)
    env0 = check.env()
    # absolute floor: finite differences of f carry round-off of about eps·|f|/h ≈ 2e-13·|f|
    scale = 1e-5 * (1.0 + abs(f0))
    with np.errstate(all="ignore"):
        dfdv = check.directional(lambda o: check.f(o), wrt, direction, values[wrt])
        dys = {
            y: check.directional(lambda o, y=y: check.env(o)[y], wrt, direction, values[wrt])
            for y in ctx.where
        }
    if not (_finite(dfdv) and all(_finite(v) for v in dys.values())):
        raise _Unevaluable()
    difs = {("d", wrt): direction, **{("d", y): v for y, v in dys.items()}}
    tally = Tally()
    compare = tally.compare
    env = {**env0, **difs}
    for b_index, block in enumerate(derivation.blocks):
        for s_index, step in enumerate(block.steps):
            where = f"step {s_index + 1} of block {b_index + 1} ({block.kind}{' ' + block.var if block.var else ''})"
            e = step.expr
            if any(isinstance(n, E.D) for n in E.walk(e)):
                continue  # d(...) not yet expanded: checked through the lines around it
            with np.errstate(all="ignore"):
                if block.kind == "f":
                    compare(check.value(e, env)[0, 0], f0, where, scale)
                elif block.kind == "df":
                    compare(check.value(e, env)[0, 0], dfdv, where, scale)
                elif block.kind == "dY":
                    want = dys[block.var]
                    compare(check.value(e, env), want, where, 1e-5 * (1.0 + float(np.linalg.norm(want))))
                elif block.kind == "grad":
                    compare(*_gradient_check(check, ctx, block.var, wrt, e, env, direction, dfdv, rng), where, scale)
                elif block.kind == "gradT":  # numerator layout: the transpose of the gradient
                    compare(float(np.sum(check.value(e, env).T * direction)), dfdv, where, scale)
                elif block.kind == "gradS":
                    compare(*_symmetric_check(check, wrt, e, env, rng), where, scale)
    with np.errstate(all="ignore"):
        if derivation.symmetric:
            compare(*_symmetric_check(check, wrt, derivation.result, env, rng), "the result on symmetric directions", scale)
        else:
            g = check.value(derivation.result, env)
            g = g.T if derivation.layout == "numerator" else g
            compare(float(np.sum(g * direction)), dfdv, "the result ⟨G, V⟩", scale)
    return tally.worst, tally.checks


def _symmetric_check(check: Checker, wrt: str, g: Expr, env, rng):
    """Σ_{i≤j} Gₛᵢⱼ Wᵢⱼ against the derivative of f along a random symmetric W."""
    base = env[wrt]
    w = rng.standard_normal(base.shape)
    w = (w + w.T) / 2
    w /= np.linalg.norm(w)
    value = check.value(g, env)
    return float(np.sum(np.triu(value * w))), check.directional(lambda o: check.f(o), wrt, w, base)


def _gradient_check(check: Checker, ctx: Context, var: str, wrt: str, g: Expr, env, direction, dfdv, rng):
    """(⟨G, W⟩, finite difference of f along W) for the gradient G of f with respect to var."""
    value = check.value(g, env)
    if var == wrt:
        return float(np.sum(value * direction)), dfdv
    base = env[var]
    w = rng.standard_normal(base.shape)
    w /= np.linalg.norm(w)

    def f_of(o):
        return check.f(o)

    return float(np.sum(value * w)), check.directional(f_of, var, w, base)


# ----------------------------------------------------------------------------- Jacobians and Hessians


def _vec(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).reshape(-1, 1, order="F")


def verify_jacobian(ctx: Context, derivation: Derivation, seed: int = 0) -> Report:
    """Check a Jacobian (or Hessian) derivation entry by entry against finite differences.

    `derivation.function` is what was differentiated (a Hessian: the verified gradient). Every
    line of `dF = …` must equal the finite-difference change of F along a random V, every line
    of `vec dF = …` its vec, and every line of `J = …` (`∂f/∂x = Jᵀ = …`) the finite-difference
    Jacobian, column by column."""
    wrt, F = derivation.wrt, derivation.function

    def check_point(values, sizes, rng):
        def value(e: Expr, overrides=None, difs=None) -> np.ndarray:
            return Evaluator({**values, **(overrides or {}), **(difs or {})}, sizes)(e)

        with np.errstate(all="ignore"):
            f0 = value(F)
        if not _finite(f0):
            raise _Unevaluable()
        x0 = values[wrt]
        check = Checker(ctx, sizes, values)
        with np.errstate(all="ignore"):
            fd = lambda direction: check.directional(lambda o: value(F, o), wrt, direction, x0)  # noqa: E731
            v = rng.standard_normal(x0.shape)
            v /= np.linalg.norm(v)
            dF = fd(v)
            columns = []
            for k in range(x0.size):
                e = np.zeros(x0.size)
                e[k] = 1.0
                columns.append(_vec(fd(e.reshape(x0.shape, order="F"))))
            jac_fd = np.hstack(columns)
        with np.errstate(all="ignore"):
            scale = 1e-5 * (1.0 + float(np.linalg.norm(f0)))
        if not (_finite(dF) and _finite(jac_fd) and np.isfinite(scale)):
            raise _Unevaluable()
        tally = Tally()
        shared = Evaluator({**values, ("d", wrt): v}, sizes)  # one cache of subexpressions for every line
        _compare_blocks(derivation, lambda e, difs=None: shared(e), {("d", wrt): v}, dF, jac_fd,
                        lambda g, w, what: tally.compare(g, w, what, scale))
        return tally.worst, tally.checks

    return _at_random_points(ctx, seed, check_point)


def _compare_blocks(derivation: Derivation, value, difs, dF, jac_fd, compare) -> None:
    """Every line of a Jacobian derivation, and its result, against the finite differences."""
    for b_index, block in enumerate(derivation.blocks):
        for s_index, step in enumerate(block.steps):
            what = f"step {s_index + 1} of block {b_index + 1} ({block.kind})"
            e = step.expr
            if any(isinstance(n, E.D) for n in E.walk(e)):
                continue
            with np.errstate(all="ignore"):
                got = value(e, difs=difs)
            if block.kind == "dF":
                compare(got, dF, what)
            elif block.kind == "vecdF":
                compare(got, _vec(dF), what)
            elif block.kind == "jac":
                compare(got, jac_fd, what)
            elif block.kind == "jacT":
                compare(got.T, jac_fd, what)
    with np.errstate(all="ignore"):
        final = value(derivation.result)
    compare(final.T if derivation.layout == "denominator" else final, jac_fd, "the result, entry by entry")


# ----------------------------------------------------------------------------- stationary points


def verify_solution(ctx: Context, derivation: Derivation, gradient: Expr, seed: int = 0) -> Report:
    """Check a stationary point: the gradient vanishes there, and every line of the solution holds.

    The solution of a linear equation exists only when its matrix is invertible (AᵀA needs
    more rows than columns), so when the first choice of sizes makes it singular, the sizes are
    drawn again in the other order before the check fails."""
    wrt = derivation.wrt
    last_error: VerificationError | None = None
    for pool in (SIZES, SOLUTION_SIZES, tuple(reversed(SOLUTION_SIZES))):
        try:
            return _verify_solution(ctx, derivation, gradient, wrt, seed, pool)
        except VerificationError as err:
            last_error = err
    raise last_error  # type: ignore[misc]


def _verify_solution(ctx, derivation, gradient, wrt, seed, pool) -> Report:
    global SIZES
    saved, SIZES = SIZES, pool
    try:
        sizes = dimension_sizes(ctx)
    finally:
        SIZES = saved
    rng = np.random.default_rng(seed)
    sampler = Sampler(ctx, sizes, rng)
    worst, checks = 0.0, 0
    for _ in range(TRIALS):
        values = sampler.point()
        with np.errstate(all="ignore"):
            try:
                x_star = Evaluator(values, sizes)(derivation.result)
                at_star = {**values, wrt: x_star}
                g_star = Evaluator(at_star, sizes)(gradient)
                g_typical = Evaluator(values, sizes)(gradient)
            except np.linalg.LinAlgError as exc:
                raise VerificationError(f"the stationary point could not be evaluated ({exc})") from None
        scale = max(float(np.linalg.norm(g_typical)), 1e-12)
        err = float(np.linalg.norm(g_star)) / scale
        checks += 1
        if not (_finite(x_star) and _finite(g_star) and err <= TOLERANCE):
            raise VerificationError(
                f"numeric check failed: the gradient does not vanish at the solution (relative size {err:.2e})",
                hint="this is a bug in derivgen, not in your problem; please report it with the problem file",
            )
        worst = max(worst, err)
        for block in derivation.blocks:
            for s_index, step in enumerate(block.steps):
                e = step.expr
                if not isinstance(e, E.Eq):
                    continue
                with np.errstate(all="ignore"):
                    lhs, rhs = Evaluator(at_star, sizes)(e.lhs), Evaluator(at_star, sizes)(e.rhs)
                # relative to the sides, or to a typical gradient for the line `∂f/∂X = 0`
                denom = max(float(np.linalg.norm(lhs)), float(np.linalg.norm(rhs)), scale)
                line_err = float(np.linalg.norm(lhs - rhs)) / denom
                checks += 1
                if not (_finite(lhs) and _finite(rhs) and line_err <= TOLERANCE):
                    raise VerificationError(
                        f"numeric check failed: line {s_index + 1} of the solution does not hold at the solution "
                        f"(relative error {line_err:.2e})",
                        hint="this is a bug in derivgen, not in your problem; please report it with the problem file",
                    )
                worst = max(worst, line_err)
    return Report(True, worst, TOLERANCE, sizes, TRIALS, checks)

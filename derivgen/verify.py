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
from . import functions
from .derive import Context, Derivation
from .derive.differential import instantiate
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
# the orders of sizes tried, first to last, until every matrix the problem inverts is invertible:
# the first keeps the published sizes of most problems; then tall first (a Gram matrix XᵀX of
# X: [n, k] needs n ≥ k), then wide first (XXᵀ needs n ≤ k)
SIZE_POOLS = (SIZES, SOLUTION_SIZES, (11, 10, 9, 8, 7, 6, 5, 4, 3, 2), (2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
              tuple(reversed(SOLUTION_SIZES)), (5, 12, 2, 3, 7, 8, 9, 10, 11, 4))
CONDITION_LIMIT = 1e8  # a point where a matrix the problem inverts is worse conditioned is drawn again
KINK_MARGIN = 0.05  # an argument of abs, sign, relu or step is kept this far from its kink at 0
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


def _expressions(ctx: Context) -> list[Expr]:
    """The function and the `where:` definitions: every expression a problem writes."""
    return [ctx.function, *ctx.where.values()]


def dimension_sizes(ctx: Context, pool: tuple[int, ...] = SIZES) -> dict[str | int, int]:
    """A distinct size for every dimension symbol, in order of first appearance; and a distinct
    small stand-in for every integer dimension larger than `limits.MAX_CHECK_SIZE` (keyed by the
    integer), so that no check allocates by a declared size: `x: [100000]` and
    `indices: {t: 100000000}` are checked at sizes like 13. (A derivation holds for every size,
    and a wrong one fails at any size; distinct sizes keep a missing transpose from hiding.)"""
    declared = [d for shape in ctx.variables.values() for d in shape] + list(ctx.families.values())
    written = [d for e in _expressions(ctx) for n in E.walk(e) for d in _dims_of(n)]
    integers = {d for d in declared + written if isinstance(d, int)}
    pool = _size_pool({d for d in integers if d <= MAX_CHECK_SIZE}, pool)
    sizes: dict[str | int, int] = {}
    for shape in ctx.variables.values():
        for d in shape:
            if isinstance(d, str) and d not in sizes:
                sizes[d] = next(pool)
    for count in ctx.families.values():
        if isinstance(count, str) and count not in sizes:
            sizes[count] = next(pool)
    for e in _expressions(ctx):
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


def _size_pool(taken: set[int], order: tuple[int, ...]):
    """Check sizes in the given order, then 12, 13, …; none of them a size already in use."""
    seen = set(taken)
    for s in itertools.chain(order, itertools.count(12)):
        if s not in seen:
            seen.add(s)
            yield s


def square_parts(ctx: Context) -> list[Expr]:
    """The matrices the problem inverts or takes the determinant of (each once, in order)."""
    return _inverted(ctx)[0]


def _inverted(ctx: Context) -> tuple[list[Expr], set[str]]:
    """One walk for both: the matrices inverted (or under det, logdet, a negative power), and
    the names under any of those or under a matrix power (sampled well-conditioned)."""
    return inverted_parts(_expressions(ctx))


def inverted_parts(expressions: list[Expr]) -> tuple[list[Expr], set[str]]:
    """The matrices `expressions` invert (or take det, logdet, a negative power of), each once,
    and the names under any of those or under a matrix power."""
    parts: list[Expr] = []
    names: set[str] = set()
    for e in expressions:
        for n in E.walk(e):
            if isinstance(n, E.Inverse) or (isinstance(n, E.Func) and n.name in SQUARE_NEEDS_INVERSE):
                part = n.arg
            elif isinstance(n, E.Power) and not n.is_scalar:
                names |= E.symbols(n)
                part = n.base if isinstance(n.exp, E.Num) and n.exp.value < 0 else None
            else:
                continue
            if part is None:
                continue
            names |= E.symbols(part)
            if not part.is_scalar and part not in parts:
                parts.append(part)
    return parts, names


def positive_parts(ctx: Context) -> list[Expr]:
    """The expressions that must be positive for the problem to be defined: the arguments of log
    and sqrt, 1 + u for log1p(u) (each function's `domain` in derivgen/functions.py), and the
    expressions its `domain:` says are positive."""
    parts = list(ctx.positive)
    for _, part in _function_parts(ctx, "domain"):
        if part not in parts:
            parts.append(part)
    return parts


def kink_parts(ctx: Context) -> list[Expr]:
    """The arguments of functions not differentiable at 0 (abs, sign, relu, step): a point is
    drawn where none of their entries is near 0, so the finite differences see one smooth piece."""
    return list(dict.fromkeys(part for _, part in kinks(ctx)))


def kinks(ctx: Context) -> list[tuple[str, Expr]]:
    """(function, argument) for each function of the problem with a kink (its `kink` in
    derivgen/functions.py): the result holds where the argument has no entry at the kink."""
    return _function_parts(ctx, "kink")


def _function_parts(ctx: Context, attribute: str) -> list[tuple[str, Expr]]:
    """(function, its `attribute` template over the argument) for each function call in the
    problem that has one, once each; expressions without a variable are left out."""
    out: list[tuple[str, Expr]] = []
    for e in _expressions(ctx):
        for n in E.walk(e):
            template = isinstance(n, E.Func) and getattr(functions.FUNCTIONS[n.name], attribute)
            if template:
                found = (n.name, instantiate(template, n.arg))
                if found not in out and E.symbols(found[1]):
                    out.append(found)
    return out


def choose_sizes(ctx: Context, seed: int = 0) -> dict[str | int, int]:
    """Sizes at which every matrix the problem inverts can be invertible: the sizes of
    SIZE_POOLS in turn, each tried at a few random points; the first if none is fit (the check
    then says what could not be met)."""
    candidates: list[dict] = []
    for pool in SIZE_POOLS:
        sizes = dimension_sizes(ctx, pool)
        if sizes not in candidates:
            candidates.append(sizes)
    if ctx.orders:  # `domain: [n > k]`: only sizes in that order, one made so if none is
        ordered = [c for c in candidates if _in_order(c, ctx.orders)] or [_put_in_order(candidates[0], ctx.orders)]
        candidates = [c for c in ordered if c is not None] or candidates
    square, positive = square_parts(ctx), positive_parts(ctx)
    if not (square or positive) or len(candidates) == 1:
        return candidates[0]
    for sizes in candidates:
        sampler = Sampler(ctx, sizes, np.random.default_rng([seed, 7919]), square, positive)
        for attempt in range(4):
            if sampler.defect(sampler.point(positive=attempt >= 2)) is None:
                return sizes
    return candidates[0]


def _in_order(sizes: dict, orders: list[tuple]) -> bool:
    def size(d):
        return d if isinstance(d, int) and d not in sizes else sizes.get(d, d)

    return all(size(a) > size(b) if op == ">" else size(a) >= size(b) for a, op, b in orders)


def _put_in_order(sizes: dict, orders: list[tuple]) -> dict | None:
    """The same sizes given to the dimension symbols so that every stated order holds (a larger
    dimension gets a larger size), or None when no such assignment exists (a cycle, n > 12)."""
    dims = [d for d in sizes if isinstance(d, str)]
    above = {d: {b for a, _, b in orders if a == d and b in dims} for d in dims}
    ranked: list[str] = []
    while len(ranked) < len(dims):
        free = [d for d in dims if d not in ranked and not (above[d] - set(ranked))]
        if not free:
            return None
        ranked += free[:1]
    values = sorted((sizes[d] for d in dims))
    out = {**sizes, **dict(zip(ranked, values))}
    return out if _in_order(out, orders) else None


class Sampler:
    """Random values that satisfy the assumptions of a problem.

    Where the problem takes the log or square root of an expression that is linear in a
    variable standing alone as one of its terms (`log(b - A*x)`, `sqrt(c - x)`), that variable is
    set so that the expression is positive (between 0.5 and 2 entrywise): values inside the domain."""

    def __init__(self, ctx: Context, sizes: dict[str | int, int], rng: np.random.Generator,
                 square: list[Expr] | None = None, positive: list[Expr] | None = None):
        self.ctx, self.sizes, self.rng = ctx, sizes, rng
        parts, self.conditioned = _inverted(ctx)
        self.square = parts if square is None else square
        self.kinks = kink_parts(ctx)
        self.domains: list[tuple[Expr, tuple[str, float] | None]] = []
        taken: set[str] = set()
        for part in positive_parts(ctx) if positive is None else positive:  # each variable set for one at most
            solvable = _solvable_term(ctx, part)
            if solvable is not None and solvable[0] in taken:
                solvable = None
            self.domains.append((part, solvable))
            taken |= {solvable[0]} if solvable else set()

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
        if "probability" in assumptions:
            return rng.uniform(0.05, 0.95, (r, c))
        if "simplex" in assumptions:
            a = rng.uniform(0.2, 1.0, (r, c))
            return a / a.sum(axis=0, keepdims=True)
        if "onehot" in assumptions:
            a = np.zeros((r, c))
            a[rng.integers(r, size=c), np.arange(c)] = 1.0
            return a
        if positive or assumptions & {"positive", "nonnegative"}:
            a = rng.uniform(0.5, 2.0, (r, c))
        else:
            a = rng.standard_normal((r, c))
        if "symmetric" in assumptions:
            a = (a + a.T) / 2
        if r == c and r > 1 and ("invertible" in assumptions or name in self.conditioned):
            a = a / np.sqrt(r) + 2.0 * np.eye(r) * (1 if positive else rng.choice([-1.0, 1.0]))
        return a

    def point(self, positive: bool = False) -> dict:
        drawn = {name: self.value(name, positive) for name in self.ctx.variables}
        if any(solvable is None for _, solvable in self.domains):
            # an argument no variable stands alone in (1 - xᵀx): smaller values, until it is positive
            for scale in (1.0, 0.5, 0.25, 0.1):
                values = {k: v if self.ctx.assume.get(k) else v * scale for k, v in drawn.items()}
                self._solve_domains(values)
                if self._positive(values):
                    return values
        values = dict(drawn)
        self._solve_domains(values)
        return values

    def _solve_domains(self, values: dict) -> None:
        for part, solvable in self.domains:
            if solvable is not None:
                self._into_domain(part, *solvable, values)

    def _positive(self, values: dict) -> bool:
        return self.defect(values, square=False) is None

    def defect(self, values: dict, square: bool = True, condition_limit: float = CONDITION_LIMIT,
               also: list[Expr] = ()) -> str | None:
        """What makes `values` unfit for checking the problem, or None: a matrix it inverts that
        is singular or ill-conditioned there, an argument of log or sqrt that is not positive, or
        an argument of abs, sign, relu or step with an entry near 0 (its kink). `also`: more
        matrices that must be invertible there (grading: those its reference result inverts)."""
        from .printing import text as to_text

        squares, kinks = (self.square + [p for p in also if p not in self.square], self.kinks) if square else ([], [])
        if not (squares or kinks or self.domains):
            return None
        with np.errstate(all="ignore"):
            try:
                ev = Evaluator(Checker(self.ctx, self.sizes, values).env(), self.sizes)
                for part in squares:
                    for a in _at_each_sample(self.ctx, ev, part):
                        if not _finite(a) or float(np.linalg.cond(a)) > condition_limit:
                            return f"`{to_text(part)}` is singular"
                for part, _ in self.domains:
                    a = _stacked(self.ctx, ev, part)
                    if not (_finite(a) and np.all(a > 0)):
                        return f"`{to_text(part)}` is not positive"
                for part in kinks:
                    a = _stacked(self.ctx, ev, part)
                    if not (_finite(a) and np.all(np.abs(a) > KINK_MARGIN)):
                        return f"`{to_text(part)}` has an entry at 0, where it is not differentiable"
            except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, OverflowError):
                return "the function cannot be evaluated"
        return None

    def _into_domain(self, part: Expr, name: str, coeff: float, values: dict) -> None:
        if _sample_indices(part, self.ctx.families):  # log(1 + exp(wᵀx_t)): a bound per sample, not solved for
            return
        """Set `name` (a term `coeff·name` of `part`) so that `part` is positive."""
        with np.errstate(all="ignore"):
            try:
                rest = np.asarray(Evaluator(Checker(self.ctx, self.sizes, {**values, name: 0 * values[name]}).env(),
                                            self.sizes)(part), float)
            except (np.linalg.LinAlgError, ValueError, ZeroDivisionError, OverflowError):
                return
        if not _finite(rest):
            return
        want = (self.rng.uniform(0.5, 2.0, rest.shape) - rest) / coeff
        if values[name].size == 1 and want.size > 1:  # a scalar: the bound that holds for every entry
            want = np.array([[want.max() if coeff > 0 else want.min()]])
        if want.shape == values[name].shape:
            values[name] = want


def _solvable_term(ctx: Context, part: Expr) -> tuple[str, float] | None:
    """(name, c) when `part` has a term c·name with `name` a variable of its shape (or a scalar)
    that no other term, no `where:` definition before it and no assumption constrains."""
    terms = E.terms(part)
    for i, term in enumerate(terms):
        coeff, sym = 1.0, term
        if isinstance(term, E.MatMul) and not term.scalars and len(term.chain) == 1:
            coeff, sym = float(term.coeff), term.chain[0]
        if not (isinstance(sym, E.Sym) and sym.name in ctx.variables and sym.name not in ctx.families):
            continue
        if ctx.assume.get(sym.name) or not (sym.shape == part.shape or sym.is_scalar):
            continue
        others = [t for j, t in enumerate(terms) if j != i]
        used = set().union(*(E.symbols(t) for t in others)) if others else set()
        for name in list(used):
            if name in ctx.where:
                used |= E.symbols(ctx.where[name])
        if sym.name not in used:
            return sym.name, coeff
    return None


def _sample_indices(part: Expr, families: dict) -> dict[str, int | str]:
    """The indices of the samples a part uses outside any sum over them (`x_t` in the argument
    `1 + exp(wᵀx_t)` of a log inside `sum(t, …)`), each with its count (N)."""
    found: dict[str, int | str] = {}

    def go(n: Expr, bound: frozenset) -> None:
        if isinstance(n, E.SumOver):
            bound = bound | {n.index}
        elif isinstance(n, E.Sym) and n.index is not None and n.index not in bound:
            found.setdefault(n.index, families[n.name])
        for c in n.children():
            go(c, bound)

    go(part, frozenset())
    return found


def _at_each_sample(ctx: Context, ev: Evaluator, part: Expr) -> list[np.ndarray]:
    """The values of a part at every sample of the indices it uses unbound (one value without)."""
    indices = _sample_indices(part, ctx.families)
    if not indices:
        return [np.asarray(ev(part), float)]
    env, sizes = ev.env, ev.sizes
    counts = [sizes[c] if isinstance(c, str) else int(c) for c in indices.values()]
    return [np.asarray(Evaluator({**env, **{("index", i): k for i, k in zip(indices, ks)}}, sizes)(part), float)
            for ks in np.ndindex(*counts)]


def _stacked(ctx: Context, ev: Evaluator, part: Expr) -> np.ndarray:
    values = _at_each_sample(ctx, ev, part)
    return values[0] if len(values) == 1 else np.hstack([v.reshape(-1, 1) for v in values])


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
    sizes = choose_sizes(ctx, seed)
    rng = np.random.default_rng(seed)
    sampler = Sampler(ctx, sizes, rng)
    worst, checks, trials, attempts = 0.0, 0, 0, 0
    failures: list[VerificationError] = []
    unfit: str | None = None
    while trials < TRIALS:
        attempts += 1
        if attempts > 4 * TRIALS:
            raise _unfit_error(ctx, sizes, unfit)
        values = sampler.point(positive=attempts > 2)
        unfit = sampler.defect(values)
        if unfit is not None:
            continue
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


def _unfit_error(ctx: Context, sizes: dict, unfit: str | None) -> VerificationError:
    """Why no random point could be used: what was singular or outside the domain, and what to state."""
    at = ", ".join(f"{d} = {v}" for d, v in sizes.items() if isinstance(d, str))
    if unfit is None:
        return VerificationError(
            "the function could not be evaluated at random values (not finite)",
            hint="add assumptions (e.g. `positive`, `spd`, `probability`) so that f is defined at random values")
    if unfit.endswith("singular"):
        return VerificationError(
            f"the result cannot be checked: {unfit} at every random point and every choice of sizes tried"
            + (f" (e.g. {at})" if at else ""),
            hint="a matrix the function inverts must be invertible at random values: assume it `spd` or "
                 "`invertible`, or check that it can be (xxᵀ of a vector never is)")
    if unfit.endswith("not differentiable"):
        return VerificationError(
            f"the result cannot be checked: {unfit}, at every random point tried",
            hint="abs, sign, relu and step are differentiable only away from 0: the argument must have no "
                 "entry that is 0 for all values (abs(x - x) is always at its kink)")
    return VerificationError(
        f"the result cannot be checked: {unfit} at the random values tried, so the function is not defined there",
        hint="state where it is defined: assume its variables `positive`, `probability` (entries in (0, 1)) "
             "or `nonnegative`, or write it so that a variable stands alone in it (`log(b - A*x)`: b is "
             "then chosen to keep it positive)")


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
    env = {**env0, **difs, ("d(...)",): _pending_differential(check, wrt, direction, values[wrt])}
    for b_index, block in enumerate(derivation.blocks):
        for s_index, step in enumerate(block.steps):
            where = f"step {s_index + 1} of block {b_index + 1} ({block.kind}{' ' + block.var if block.var else ''})"
            e = step.expr
            with np.errstate(all="ignore"):
                if block.kind == "f":
                    compare(check.value(e, env)[0, 0], f0, where, scale)
                elif block.kind == "df":
                    got = check.value(e, env)[0, 0]
                    floor = scale
                    if rel_error(got, dfdv, scale) > TOLERANCE:  # only then: the round-off of its d(U)
                        floor += _pending_floor(check, e, env)
                    compare(got, dfdv, where, floor)
                elif block.kind == "dY":
                    want = dys[block.var]
                    compare(check.value(e, env), want, where, 1e-5 * (1.0 + float(np.linalg.norm(want))))
                elif block.kind == "grad":
                    compare(*_gradient_check(check, ctx, block.var, wrt, e, env, direction, dfdv, rng), where, scale)
                elif block.kind == "gradT":  # numerator layout: the transpose of the gradient
                    compare(float(np.sum(check.value(e, env).T * direction)), dfdv, where, scale)
                elif block.kind == "gradS":
                    compare(*_symmetric_check(check, wrt, e, env, rng, derivation.symmetric), where, scale)
    with np.errstate(all="ignore"):
        if derivation.symmetric:
            compare(*_symmetric_check(check, wrt, derivation.result, env, rng, derivation.symmetric),
                    "the result on symmetric directions", scale)
        else:
            g = check.value(derivation.result, env)
            g = g.T if derivation.layout == "numerator" else g
            compare(float(np.sum(g * direction)), dfdv, "the result ⟨G, V⟩", scale)
    return tally.worst, tally.checks


def _pending_floor(check: Checker, e: Expr, env: dict) -> float:
    """The round-off a line's unexpanded d(U) bring: their finite differences carry about
    1e-12·‖U‖ of noise, times what multiplies them in the line (probed with a random unit
    value in place of d(U)); an identically zero f (a'M(a − a)) gives no scale to absorb it.
    0 for a line without d(U)."""
    pending = [n for n in E.walk(e) if isinstance(n, E.D)]
    total, rng = 0.0, np.random.default_rng(0)  # its own draws: the point's stream stays as it was
    try:
        for d in dict.fromkeys(pending):
            u = check.value(d.arg, env)
            z = rng.standard_normal(u.shape)
            z /= max(float(np.linalg.norm(z)), 1e-300)
            probe = E.Sym("d(...) probe", d.shape)
            line = E.transform_top(e, lambda n, d=d: probe if n == d else (E.zero(n.shape) if isinstance(n, E.D) else None))
            cofactor = abs(float(Evaluator({**env, "d(...) probe": z}, check.sizes)(line)[0, 0]))
            total += float(np.linalg.norm(u)) * cofactor
    except (np.linalg.LinAlgError, ValueError, KeyError, ZeroDivisionError, OverflowError):
        return 0.0
    return 1e-6 * total


def _pending_differential(check: Checker, wrt: str, direction: np.ndarray, base: np.ndarray):
    """The value of an unexpanded d(U) in a line: the finite difference of U along the direction
    of `wrt` (the `where:` names recomputed), at the sample indices of the sums around it. A
    line such as `tr(d(A X B Xᵀ C))` is thus checked like any other, by numbers alone."""

    def value(u: Expr, env: dict) -> np.ndarray:
        indices = {k: v for k, v in env.items() if isinstance(k, tuple) and k and k[0] == "index"}

        def at(overrides):
            return Evaluator({**check.env(overrides), **indices}, check.sizes)(u)

        return check.directional(at, wrt, direction, base)

    return value


def _symmetric_check(check: Checker, wrt: str, g: Expr, env, rng, convention="entries"):
    """Σ_{i≤j} Gₛᵢⱼ Wᵢⱼ (`entries`) or ⟨Gₛ, W⟩ (`space`) against the derivative of f along a
    random symmetric W."""
    base = env[wrt]
    w = rng.standard_normal(base.shape)
    w = (w + w.T) / 2
    w /= np.linalg.norm(w)
    value = check.value(g, env)
    pairing = np.sum(value * w) if convention == "space" else np.sum(np.triu(value * w))
    return float(pairing), check.directional(lambda o: check.f(o), wrt, w, base)


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

    fd = check.directional(f_of, var, w, base)
    if not _finite(fd):
        # an intermediate such as P = softmax(Z) under log(P) leaves its domain when a tiny entry is
        # moved by the step: along a direction scaled entry by entry to the intermediate's own size,
        # every entry keeps its sign (any direction checks ⟨G, W⟩)
        w = w * np.abs(base)
        w /= max(float(np.linalg.norm(w)), 1e-300)
        fd = check.directional(f_of, var, w, base)
    return float(np.sum(value * w)), fd


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
        pending = _pending_differential(check, wrt, v, x0)
        shared = Evaluator({**values, ("d", wrt): v, ("d(...)",): pending}, sizes)  # one cache for every line
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
            with np.errstate(all="ignore"):
                got = value(e, difs=difs)
            if block.kind == "f":  # f rewritten (softmax by its definition): the same values
                compare(got, value(derivation.function), what)
            elif block.kind == "dF":
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


def verify_solution(ctx: Context, derivation: Derivation, gradient: Expr, seed: int = 0,
                    estimates: dict[str, Expr] | None = None) -> Report:
    """Check a stationary point: the gradient vanishes there, and every line of the solution holds.

    The solution of a linear equation exists only when its matrix is invertible (AᵀA needs
    more rows than columns), so when the first choice of sizes makes it singular, the sizes are
    drawn again in the other order before the check fails."""
    wrt = derivation.wrt
    last_error: VerificationError | None = None
    for pool in (SIZES, SOLUTION_SIZES, tuple(reversed(SOLUTION_SIZES))):
        try:
            return _verify_solution(ctx, derivation, gradient, wrt, seed, pool, estimates or {})
        except VerificationError as err:
            last_error = err
    raise last_error  # type: ignore[misc]


def _verify_solution(ctx, derivation, gradient, wrt, seed, pool, estimates) -> Report:
    sizes = dimension_sizes(ctx, pool)
    rng = np.random.default_rng(seed)
    sampler = Sampler(ctx, sizes, rng)
    worst, checks = 0.0, 0
    for _ in range(TRIALS):
        values = sampler.point()
        for name, estimate in estimates.items():  # the estimates found before (μ̂): the joint stationary point
            with np.errstate(all="ignore"):
                values[name] = values[f"{name}_hat"] = Evaluator(values, sizes)(estimate)
        with np.errstate(all="ignore"):
            try:
                x_star = Evaluator(values, sizes)(derivation.result)
                at_star = {**values, wrt: x_star, f"{wrt}_hat": x_star}
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

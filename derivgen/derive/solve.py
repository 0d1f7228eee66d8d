"""Stationary points: solving ∂f/∂X = 0 where the equation is linear in X.

Steps: set the gradient to zero (E0); if X appears only through X⁻¹, multiply both sides by X on
the left and the right (E3, the notes' move for the Gaussian covariance); expand so that every
term holds X at most once (T7); collect the terms L·X·R on one side and move the rest (E1); multiply
by the inverses (E2) and simplify (E4 inverse of a product, S6 A A⁻¹ = I, E5 1ᵀ1 = N, …). Where
the equation is not of that form derivgen says so instead of guessing.
"""

from __future__ import annotations

from fractions import Fraction

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Expr
from .model import Block, Derivation, Step
from . import detail as detail_steps
from .simplify import cancel_inverses, collect, factor, push_transposes, scalar_powers, simplify_steps, split_coeff
from .trace import parts, split


def _only_through_inverse(g: Expr, x: E.Sym) -> bool:
    """True when every occurrence of X in g is inside X⁻¹."""
    found = False

    def go(n: Expr, inside: bool) -> bool:
        nonlocal found
        if n == x:
            found = True
            return inside
        if (isinstance(n, E.Inverse) and n.arg == x) or (isinstance(n, E.Power) and n.base == x and n.exp == E.Num(-1)):
            found = True  # X⁻¹, or 1/λ for a scalar
            return True
        return all(go(c, inside) for c in n.children())

    return go(g, False) and found


def _at_most_once(g: Expr, x: E.Sym) -> bool:
    """True when every term of g, expanded, holds x at most once."""
    pieces, _ = split(E.substitute(g, {x: E.Dif(x.name, x.shape)}))
    return all(sum(isinstance(m, E.Dif) for m in E.walk(p)) <= 1 for p in pieces)


def inverse_of(a: Expr) -> Expr:
    """(c s A B)⁻¹ = c⁻¹ s⁻¹ B⁻¹ A⁻¹, (A⁻¹)⁻¹ = A (E4)."""
    if isinstance(a, E.MatMul):
        scalars = [E.Num(1 / a.coeff), *(E.power(s, E.Num(Fraction(-1))) for s in a.scalars)]
        if all(f.is_square for f in a.chain):
            return E.mul(*scalars, *(inverse_of(f) for f in reversed(a.chain)))
        return E.mul(*scalars, E.inv(E.mul(*a.chain)))  # (AᵀA)⁻¹ does not split: A is not square
    if isinstance(a, E.Num):
        return E.Num(1 / a.value)
    if a.is_scalar:
        return E.power(a, E.Num(Fraction(-1)))
    return E.inv(a)


def ones_products(e: Expr) -> Expr:
    """1ᵀ1 = N for the all-ones vector of length N (E5)."""

    def pair(a, b):
        if isinstance(a, E.Transpose) and isinstance(a.arg, E.Ones) and isinstance(b, E.Ones):
            n = b.shape[0]
            return [E.Sym(n, E.SCALAR, "dim") if isinstance(n, str) else E.Num(Fraction(n))]
        return None

    from .simplify import _chain_rewrite

    return _chain_rewrite(e, pair)


def _tidy(e: Expr) -> Expr:
    """The bookkeeping between solution lines: inverses cancelled, 1ᵀ1 = N, like terms collected."""
    for f in (ones_products, cancel_inverses, push_transposes, collect, factor):
        e = f(e)
    return e


def hat(name: str, shape) -> E.Sym:
    """The estimate X̂ of the unknown X (printed with a hat: `mu_hat` is μ̂)."""
    return E.Sym(f"{name}_hat", shape)


def solve_stationary(g: Expr, x_name: str, x_shape, assume: dict[str, set[str]], detail: str = "full",
                     estimates: dict[str, Expr] | None = None) -> Derivation:
    """The stationary point X̂ with ∂f/∂X = g(X) = 0, step by step (a 'solution' derivation).

    At a coarser detail than `full` the equation is solved as a teacher does: a factor common to
    both sides is cancelled (E6), a scalar coefficient is divided out (E7) instead of inverting
    a multiple of I, and the estimates already found (`estimates`, e.g. μ̂ when solving for Σ)
    are put in for their variables (E8)."""
    x = E.Sym(x_name, x_shape)
    xh = hat(x_name, x_shape)
    zero = E.zero(g.shape)
    block = Block("solve", x_name)
    block.add(E.Eq(g, zero, g.shape), "E0")
    lhs = g
    if _only_through_inverse(g, x) and x.is_scalar:  # N/λ − Σ_t x_t = 0: N − λ Σ_t x_t = 0 (λ ≠ 0)
        lhs = scalar_powers(_tidy(E.add(*(E.mul(x, t) for t in E.terms(lhs)), shape=g.shape)))
        block.add(E.Eq(lhs, zero, lhs.shape), "E9")
    elif _only_through_inverse(g, x):
        both = _tidy(E.add(*(E.mul(x, t, x) for t in E.terms(lhs)), shape=g.shape))
        one = _tidy(E.add(*(E.mul(x, t) for t in E.terms(lhs)), shape=g.shape))
        if _at_most_once(both, x) or not _at_most_once(one, x):  # Σ⁻¹SΣ⁻¹ − NΣ⁻¹: S − NΣ
            lhs = both
            block.add(E.Eq(lhs, zero, lhs.shape), "E3", "S6")
        else:  # N Λ⁻¹ − S (the precision): N I − Λ S, linear, where Λ (N Λ⁻¹ − S) Λ is not
            lhs = one
            block.add(E.Eq(lhs, zero, lhs.shape), "E9", "S6")
    marked = E.substitute(lhs, {x: E.Dif(x_name, x_shape)})
    pieces, _ = split(marked)
    tidied = [ones_products(p) for p in pieces]
    used_ones = tidied != pieces
    pieces = tidied
    moved: set[str] = set()
    for k, p in enumerate(pieces):
        out = _out_of_sum(p, x_shape[1] == 1)
        if out is not None:
            pieces[k], rules = out
            moved |= rules
    linear, constant = [], []
    for p in pieces:
        n = sum(isinstance(m, E.Dif) for m in E.walk(p))
        if n == 0:
            constant.append(E.substitute(p, {}))
        elif n == 1:
            linear.append(p)
        else:
            raise _not_linear(x_name)
    if not linear:
        raise _not_linear(x_name)
    expanded = E.add(*(E.substitute(p, {E.Dif(x_name, x_shape): x}) for p in pieces), shape=g.shape)
    if expanded != lhs:
        block.add(E.Eq(_tidy_terms(expanded), zero, g.shape), *(("T7", "E5") if used_ones else ("T7",)),
                  *(r for r in ("J4", "J2", "S12") if r in moved))
    lefts, rights = [], []
    for p in linear:
        c, sc, ch = parts(p)
        i = next((k for k, f in enumerate(ch) if isinstance(f, E.Dif)), None)
        if i is None:
            j = next((k for k, s in enumerate(sc) if isinstance(s, E.Dif)), None)
            if j is None:
                raise _not_linear(x_name)
            lefts.append(E.mul(E.Num(c), *sc[:j], *sc[j + 1:], *ch))
            rights.append(())
            continue
        after = list(ch[i + 1:])
        if after and E.mul(*after).is_scalar:  # X 1ᵀ1 = N X: a scalar on the right moves left
            sc, after = [*sc, E.mul(*after)], []
        lefts.append(E.mul(E.Num(c), *sc, *ch[:i]) if (i or sc or c != 1) else None)
        rights.append(tuple(after))
    if any(rights) and all(lf is None or lf.is_scalar for lf in lefts):
        # X·R = B: the unknown multiplied on the right only (W X Xᵀ + λW = Y Xᵀ)
        factors = [E.mul(*([lf] if lf is not None else []), *(r or (E.Eye(x_shape[1]),))) for lf, r in zip(lefts, rights)]
        return _solve_right(block, x, xh, E.add(*factors), constant, assume, detail, estimates)
    if len(set(rights)) != 1:
        raise UnsupportedError(
            f"derivgen cannot solve ∂f/∂{x_name} = 0: {x_name} is multiplied from both sides by different factors",
            hint="only equations L·X·R = B with one L and one R are solved step by step",
        )
    right = rights[0]
    n_rows = x_shape[0]
    if all(lf is None or lf.is_scalar for lf in lefts):  # 2x + 2x = 4x: a scalar coefficient, no multiple of I
        left = E.add(*(lf if lf is not None else E.ONE for lf in lefts))
    else:
        left = E.add(*(lf if lf is not None else E.Eye(n_rows) for lf in (_as_matrix(l, n_rows) for l in lefts)))
    rhs = _tidy(E.add(*(E.neg(c) for c in constant), shape=(x_shape[0], x_shape[1]) if not right else _rhs_shape(left, x, right))) if constant else E.zero(_rhs_shape(left, x, right))
    collected = E.mul(left, x, *right)
    block.add(E.Eq(collected, rhs, collected.shape), "E1")
    if detail != "full" and not right:
        left, rhs = _cancel_common(block, left, x, rhs, assume)
        divided = _divided(left, rhs)
        if divided is not None:
            e = _tidy(divided)
            _add_estimate(block, xh, e, left)
            return _with_estimates(block, x_name, e, xh, estimates, assume, detail)
    divided = _divided(left, rhs) if left.is_scalar and not right else None
    solution = divided if divided is not None else E.mul(_inv(left) if not isinstance(left, E.Eye) else E.ONE, rhs, *((_inv(E.mul(*right)),) if right else ()))
    block.add(E.Eq(xh, solution, x.shape), "E7" if divided is not None else "E2")
    e = solution
    for step in _solution_steps(solution, assume):
        block.add(E.Eq(xh, step.expr, x.shape), *step.rules)
        e = step.expr
    if detail != "full":
        return _with_estimates(block, x_name, e, xh, estimates, assume, detail)
    return Derivation(x_name, [block], e, kind="solution", detail=detail, estimates=_joint(estimates, x_name, e))


def _solve_right(block: Block, x: E.Sym, xh: E.Sym, right: Expr, constant: list[Expr], assume, detail: str,
                 estimates) -> Derivation:
    """X·R = B solved as X̂ = B R⁻¹ (E2), a common number cancelled first (E6) and a scalar R
    divided out (E7) at a coarser detail than `full`."""
    rhs = _tidy(E.add(*(E.neg(c) for c in constant), shape=x.shape)) if constant else E.zero(x.shape)
    block.add(E.Eq(E.mul(x, right), rhs, x.shape), "E1")
    if detail != "full":
        right, rhs = _cancel_common(block, right, x, rhs, {}, on_right=True)
        divided = _divided(right, rhs)
        if divided is not None:
            e = _tidy(divided)
            _add_estimate(block, xh, e, right)
            return _with_estimates(block, x.name, e, xh, estimates, assume, detail)
    solution = E.mul(rhs, _inv(right))
    block.add(E.Eq(xh, solution, x.shape), "E2")
    e = solution
    for step in _solution_steps(solution, assume):
        block.add(E.Eq(xh, step.expr, x.shape), *step.rules)
        e = step.expr
    if detail != "full":
        return _with_estimates(block, x.name, e, xh, estimates, assume, detail)
    return Derivation(x.name, [block], e, kind="solution", detail=detail, estimates=_joint(estimates, x.name, e))


def _out_of_sum(p: Expr, vector: bool) -> tuple[Expr, set[str]] | None:
    """A term Σ_t L_t dX R (or Σ_t L dX R_t) of the marked equation with the unknown taken out of
    the sum, (Σ_t L_t) dX R (S12), and the rules used; a vector unknown first moves behind the
    scalars it is in, (wᵀx_t) x_t = x_t x_tᵀ w (J4, J2). None when there is no such sum, or the
    unknown stands between two factors that both change with t."""
    from .jacobian import next_linear_move

    c, sc, ch = parts(p)
    for seq in (sc, ch):
        for k, f in enumerate(seq):
            if not (isinstance(f, E.SumOver) and E.has_dif(f)):
                continue
            body, rules = f.body, {"S12"}
            if vector:
                try:
                    for _ in range(20):
                        move = next_linear_move(body, True)
                        if move is None:
                            break
                        rules.add(move[0])
                        body = move[1]
                except (UnsupportedError, E.ShapeMismatch):
                    return None
            bc, bsc, bch = parts(body)
            i = next((n for n, g in enumerate(bch) if isinstance(g, E.Dif)), None)
            if i is None or sum(isinstance(n, E.Dif) for n in E.walk(body)) != 1:
                return None
            before, after = bch[:i], bch[i + 1:]
            changes = lambda fs: any(E.uses_index(g, f.index) for g in fs)  # noqa: E731
            if changes(before) and changes(after):
                return None
            if changes(after):
                pulled = E.mul(E.Num(bc), *before, bch[i], E.sumover(f.index, f.count, E.mul(*bsc, *after)))
            else:
                pulled = E.mul(E.Num(bc), E.sumover(f.index, f.count, E.mul(*bsc, *before)), bch[i], *after)
            new = list(seq)
            new[k] = pulled
            return (E.mul(E.Num(c), *new, *ch) if seq is sc else E.mul(E.Num(c), *sc, *new)), rules
    return None


def _add_estimate(block: Block, xh: E.Sym, e: Expr, coefficient: Expr) -> None:
    """X̂ = B / s (E7); with nothing to divide by (X = B already) the last line becomes X̂ = B."""
    if isinstance(coefficient, E.Eye) or coefficient == E.ONE:
        last = block.steps.pop()
        block.add(E.Eq(xh, e, xh.shape), *last.rules)
    else:
        block.add(E.Eq(xh, e, xh.shape), "E7")


def _invertible(f: Expr, assume) -> bool:
    """A factor that may be cancelled from both sides: an inverse, or a declared invertible matrix."""
    if isinstance(f, E.Inverse):
        return True
    return isinstance(f, E.Sym) and bool(assume.get(f.name, set()) & {"invertible", "spd", "orthogonal"})


def _cancel_common(block: Block, left: Expr, x: Expr, rhs: Expr, assume, on_right: bool = False) -> tuple[Expr, Expr]:
    """L X = B with a factor common to both sides cancelled (E6): a number (−½ in −½NΣ = −½S, the
    sign in −Nμ = −s) and an invertible matrix on the left (Σ⁻¹ in Σ⁻¹Nμ = Σ⁻¹s). `on_right`:
    X L = B, where only a number is cancelled."""
    lc, lsc, lch = parts(left) if isinstance(left, E.MatMul) else (Fraction(1), [], [left])
    if isinstance(left, E.Num):  # 4x = 2a + 2b
        lc, lch = left.value, []
    if isinstance(left, E.Add):  # (2AᵀA + 2λI) X: the common number of the sum's terms
        cs = [split_coeff(t) for t in left.terms]
        if len({c for c, _ in cs}) == 1 and cs[0][0] != 1:
            lc, lsc, lch = cs[0][0], [], [E.add(*(b for _, b in cs))]
    terms = [parts(t) if isinstance(t, E.MatMul) else (Fraction(1), [], [t]) for t in E.terms(rhs)]
    factor = Fraction(1)
    coeffs = {c for c, _, _ in terms}
    if len(coeffs) == 1 and next(iter(coeffs)) == lc and lc != 1:
        factor = lc
    elif len(coeffs) == 1 and next(iter(coeffs)) not in (0, 1) and (lc / next(iter(coeffs))).denominator == 1:
        factor = next(iter(coeffs))  # 4x = 2a + 2b: the 2 of every term, 2x = a + b
    elif lc < 0 and all(c < 0 for c in coeffs):
        factor = Fraction(-1)
    matrix = None
    if not on_right and lch and not isinstance(lch[0], E.Eye) and _invertible(lch[0], assume) and all(ch and ch[0] == lch[0] for _, _, ch in terms):
        matrix = lch[0]
    if factor == 1 and matrix is None:
        return left, rhs
    drop = 1 if matrix is not None else 0
    new_left = E.mul(E.Num(lc / factor), *lsc, *lch[drop:])
    new_rhs = E.add(*(E.mul(E.Num(c / factor), *sc, *ch[drop:]) for c, sc, ch in terms), shape=(E.mul(x, new_left) if on_right else E.mul(new_left, x)).shape)
    block.add(E.Eq(E.mul(x, new_left) if on_right else E.mul(new_left, x), new_rhs, x.shape), "E6")
    return new_left, new_rhs


def _divided(left: Expr, rhs: Expr) -> Expr | None:
    """B / s for s X = B (or s I X = B) with a scalar s (E7), else None."""
    lc, lsc, lch = parts(left) if isinstance(left, E.MatMul) else (Fraction(1), [], [left])
    if lch and not (len(lch) == 1 and isinstance(lch[0], E.Eye)):
        if not (len(lch) == 1 and lch[0].is_scalar):
            return None
    if isinstance(left, E.Eye):
        return rhs
    if left.is_scalar and not isinstance(left, E.MatMul):
        return E.mul(E.power(left, E.Num(Fraction(-1))), rhs)
    return E.mul(E.Num(1 / lc), *(E.power(s, E.Num(Fraction(-1))) for s in [*lsc, *(f for f in lch if f.is_scalar)]), rhs)


def _joint(estimates, x_name: str, e: Expr) -> dict[str, Expr]:
    """The estimates found before that the solution `e` depends on (μ̂ for Σ̂): it holds where they
    are put in, and is verified and graded there."""
    return {name: est for name, est in (estimates or {}).items() if name != x_name and name in E.symbols(e)}


def _with_estimates(block: Block, x_name: str, e: Expr, xh: Expr, estimates, assume, detail) -> Derivation:
    """The solution with the estimates already found put in for their variables (E8: μ̂ in Σ̂)."""
    for step in simplify_steps(e, assume):
        block.add(E.Eq(xh, step.expr, xh.shape), *step.rules)
        e = step.expr
    mapping = {E.Sym(name, est.shape): hat(name, est.shape) for name, est in (estimates or {}).items()
               if name != x_name}
    put = E.substitute(e, mapping) if mapping else e
    if put != e:  # the result stays in the variables (μ, evaluated at μ̂); the handout shows μ̂
        block.add(E.Eq(xh, put, xh.shape), "E8")
        block.steps = detail_steps.solving(block.steps, detail)
        return Derivation(x_name, [block], e, kind="solution", detail=detail, shown=put,
                          estimates=_joint(estimates, x_name, e))
    block.steps = detail_steps.solving(block.steps, detail)
    return Derivation(x_name, [block], e, kind="solution", detail=detail, estimates=_joint(estimates, x_name, e))


def _inv(a: Expr) -> Expr:
    """L⁻¹ as written (E2); distributing it over a product is the next step (E4)."""
    return E.power(a, E.Num(Fraction(-1))) if a.is_scalar else E.Inverse(a, a.shape)


def _tidy_terms(e: Expr) -> Expr:
    return ones_products(e)


def _as_matrix(l: Expr | None, n) -> Expr | None:
    """A scalar coefficient of a vector unknown becomes a multiple of I (λx = λI x)."""
    if l is None:
        return None
    if l.is_scalar and n != 1:
        return E.mul(l, E.Eye(n))
    return l


def _rhs_shape(left: Expr, x: Expr, right) -> tuple:
    return E.mul(left, x, *right).shape


def _solution_steps(solution: Expr, assume) -> list[Step]:
    steps: list[Step] = []
    e = solution
    for rule, f in (("E4", _distribute_inverses), ("E5", ones_products), ("S6", cancel_inverses)):
        new = f(e)
        if new != e:
            steps.append(Step(new, (rule,)))
            e = new
    steps += simplify_steps(e, assume)
    return steps


def _distribute_inverses(e: Expr) -> Expr:
    return E.transform(e, lambda n: inverse_of(n.arg) if isinstance(n, E.Inverse) and isinstance(n.arg, E.MatMul) else None)


def _not_linear(x: str) -> UnsupportedError:
    return UnsupportedError(
        f"derivgen cannot solve ∂f/∂{x} = 0 step by step: the equation is not linear in {x}",
        hint="solving is done where the gradient is linear in the unknown (least squares, ridge regression) "
             "or becomes linear after multiplying by the unknown (the Gaussian covariance)",
    )

"""Bringing a differential to trace normal form `Σ tr(Kᵢ dVᵢ)`.

The differential is first split into terms with one `dV` each (linearity, distributivity).
Then, step by step, every term is moved towards `tr(K dV)`: a scalar is its own trace (T0),
scalars move inside the trace (T1), a transposed `dV` is undone with `tr(Aᵀ) = tr(A)` (T2), the
cyclic property puts the factor holding `dV` last (T3), and the Hadamard–trace rules take `dV`
out of `⊙` and `⊘` (T4, T5), the diag rule out of `diag` (T6). Each step applies one rule to
all the terms it fits.
"""

from __future__ import annotations

from fractions import Fraction

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Expr
from .detail import trace_form
from .model import Step
from .simplify import matrix_powers, push_transposes


def is_trace(e: Expr) -> bool:
    return isinstance(e, E.Func) and e.name == "tr"


def parts(e: Expr) -> tuple[Fraction, list[Expr], list[Expr]]:
    """A product's coefficient, scalar factors and chain (a lone factor is a product of one)."""
    if isinstance(e, E.MatMul):
        return e.coeff, list(e.scalars), list(e.chain)
    if e.is_scalar:
        return Fraction(1), [e], []
    return Fraction(1), [], [e]


def _index_with_dif(factors: list[Expr]) -> int | None:
    for i, f in enumerate(factors):
        if E.has_dif(f):
            return i
    return None


# ----------------------------------------------------------------------------- splitting


def split(e: Expr) -> tuple[list[Expr], set[str]]:
    """Terms of `e` with one differential each, and the rules used to split it (T1, T7)."""
    rules: set[str] = set()

    def go(n: Expr) -> list[Expr]:
        if not E.has_dif(n):
            return [n]
        if isinstance(n, E.Add):
            return [t for term in n.terms for t in go(term)]
        if isinstance(n, E.MatMul):
            factors = list(n.scalars) + list(n.chain)
            i = _index_with_dif(factors)
            pieces = go(factors[i])
            if len(pieces) > 1:
                rules.add("T7")
            return [E.mul(E.Num(n.coeff), *factors[:i], p, *factors[i + 1:]) for p in pieces]
        if isinstance(n, E.Transpose):
            pieces = go(n.arg)
            if len(pieces) > 1:
                rules.add("S1")
            return [E.tp(p) for p in pieces]
        if is_trace(n):
            pieces = go(n.arg)
            if len(pieces) > 1:
                rules.add("T1")
            return [E.fn("tr", p) for p in pieces]
        if isinstance(n, E.Hadamard):
            i = _index_with_dif(list(n.factors))
            pieces = go(n.factors[i])
            if len(pieces) > 1:
                rules.add("T7")
            return [E.had(*n.factors[:i], p, *n.factors[i + 1:]) for p in pieces]
        if isinstance(n, E.HadDiv):
            pieces = go(n.num)
            if len(pieces) > 1:
                rules.add("T7")
            return [E.hdiv(p, n.den) for p in pieces]
        if isinstance(n, E.SumOver):
            pieces = go(n.body)
            if len(pieces) > 1:
                rules.add("T7")
            return [E.sumover(n.index, n.count, p) for p in pieces]
        if isinstance(n, E.Func) and n.name in ("diag", "diagvec"):
            pieces = go(n.arg)
            if len(pieces) > 1:
                rules.add("T7")
            return [E.fn(n.name, p) for p in pieces]
        return [n]

    return go(e), rules


# ----------------------------------------------------------------------------- one move per term


def next_move(t: Expr, outside: bool = False) -> tuple[str, Expr] | None:
    """The next rewrite of a scalar term towards `tr(K dV)`, or None if it is there.

    `outside`: constant scalar factors may stay outside the trace (`c·tr(K dV)` is normal), as
    a teacher keeps −½ in front of tr(…) rather than moving it in and collecting it again."""
    summed = _sum_move(t, outside)
    if summed is not None:
        return summed
    if not is_trace(t):
        c, sc, ch = parts(t)
        i = _index_with_dif(sc)
        if i is not None and is_trace(sc[i]):
            if outside and not ch:
                inner = next_move(sc[i])
                if inner is None:
                    return None
                return inner[0], E.mul(E.Num(c), *sc[:i], inner[1], *sc[i + 1:])
            return "T1", _into_trace(c, sc, ch, i)
        return "T0", E.fn("tr", t)
    c, sc, ch = parts(t.arg)
    i = _index_with_dif(sc)
    if i is not None:
        s = sc[i]
        if isinstance(s, E.Dif):
            if not ch or (s.is_scalar and E.mul(*ch).is_scalar):
                return None  # k·db with a 1×1 k is read off as it stands, not as tr(tr(k)·db)
            return "T1", E.fn("tr", E.mul(E.Num(c), *sc[:i], *sc[i + 1:], E.fn("tr", E.mul(*ch)), s))
        if isinstance(s, E.Transpose):
            return "T2", E.fn("tr", E.mul(E.Num(c), *sc[:i], s.arg, *sc[i + 1:], *ch))
        if is_trace(s) or isinstance(s, E.MatMul):
            return "T1", _into_trace(c, sc, ch, i)
        raise UnsupportedError(f"cannot bring a term of the differential to trace form ({type(s).__name__})")
    i = _index_with_dif(ch)
    if i is None:  # pragma: no cover - every term holds a differential
        return None
    f = ch[i]
    last = i == len(ch) - 1
    if isinstance(f, E.Dif):
        if not last:
            return "T3", _rotate(c, sc, ch, i)
        merged = matrix_powers(t.arg)  # tr(X X dX) = tr(X² dX), so that like terms are seen
        return None if merged == t.arg else ("S9", E.fn("tr", merged))
    if isinstance(f, E.Transpose):
        return "T2", E.fn("tr", E.mul(E.Num(c), *sc, *(_tp_unit(g) for g in reversed(ch))))
    if not last:
        return "T3", _rotate(c, sc, ch, i)
    prefix = ch[:i]
    if isinstance(f, E.Hadamard):
        j = _index_with_dif(list(f.factors))
        rest = [g for k, g in enumerate(f.factors) if k != j]
        a = _transposed_prefix(prefix, f)
        return "T4", E.fn("tr", E.mul(E.Num(c), *sc, E.tp(E.had(a, *rest)), f.factors[j]))
    if isinstance(f, E.HadDiv):
        a = _transposed_prefix(prefix, f)
        return "T5", E.fn("tr", E.mul(E.Num(c), *sc, E.tp(E.hdiv(a, f.den)), f.num))
    if isinstance(f, E.Func) and f.name == "diag":
        u = f.arg
        pd = E.fn("diagvec", E.mul(*prefix)) if prefix else E.Ones(u.shape)
        return "T6", E.fn("tr", E.mul(E.Num(c), *sc, E.tp(pd), u))
    if isinstance(f, E.Func) and f.name == "diagvec":
        row = E.mul(*prefix) if prefix else E.Ones((1, 1))
        return "T6", E.fn("tr", E.mul(E.Num(c), *sc, E.fn("diag", push_transposes(E.tp(row))), f.arg))
    if isinstance(f, E.Func) and f.name == "vec":
        raise UnsupportedError(
            "cannot read a gradient off a product with vec(dX): it is a vector reshaped into the shape of X, "
            "which derivgen cannot write",
            hint="write the function with matrices: vec(A)'*vec(X) is tr(A'*X)")
    if isinstance(f, E.Kron):
        raise UnsupportedError(
            "cannot read a gradient off a Kronecker product that holds the differential, except in tr(A⊗X)",
            hint="derivgen differentiates tr(kron(A, X)) = tr(A)*tr(X) and products with a constant kron(A, B); "
                 "write other uses of kron(A, X) without it")
    raise UnsupportedError(
        f"cannot bring a term of the differential to trace form ({type(f).__name__} holding the differential)"
    )


def _sum_move(t: Expr, outside: bool = False) -> tuple[str, Expr] | None:
    """Σ_t terms: move inside the sum; a normal Σ_t tr(K_t dV) becomes tr((Σ_t K_t) dV) (T8)."""
    c, sc, ch = parts(t)
    i = _index_with_dif(sc)
    if i is None or not isinstance(sc[i], E.SumOver):
        return None
    s = sc[i]
    others = [E.Num(c), *sc[:i], *sc[i + 1:], *ch]
    move = next_move(s.body, outside)
    if move is not None:
        return move[0], E.mul(*others, E.sumover(s.index, s.count, move[1]))
    name, k = coefficient_of(s.body)
    dv = next(n for n in E.walk(s.body) if isinstance(n, E.Dif))
    summed = E.mul(*others, E.sumover(s.index, s.count, k))  # what multiplies the sum stays outside it
    return "T8", E.fn("tr", E.mul(summed, dv)) if not dv.is_scalar else E.mul(summed, dv)


def _into_trace(c, sc, ch, i) -> Expr:
    """c·s₁…·tr(N)·(chain) → tr(c·s₁…·(chain)·N): scalars move inside the trace."""
    s = sc[i]
    others = sc[:i] + sc[i + 1:]
    outer = [E.fn("tr", E.mul(*ch))] if ch and not E.mul(*ch).is_scalar else ([E.mul(*ch)] if ch else [])
    inner = s.arg if is_trace(s) else s
    return E.fn("tr", E.mul(E.Num(c), *others, *outer, inner))


def _tp_unit(g: Expr) -> Expr:
    """gᵀ for a factor of a transposed product; a power of a transpose loses both: ((Xᵀ)²)ᵀ = X²."""
    if isinstance(g, E.Power) and isinstance(g.base, E.Transpose):
        return E.power(g.base.arg, g.exp)
    return E.tp(g)


def _rotate(c, sc, ch, i) -> Expr:
    return E.fn("tr", E.mul(E.Num(c), *sc, *ch[i + 1:], *ch[: i + 1]))


def _transposed_prefix(prefix: list[Expr], f: Expr) -> Expr:
    """Aᵀ for the prefix A of tr(A (B ⊙ C)) (the identity when there is none)."""
    if not prefix:
        return E.Eye(f.shape[0])
    return push_transposes(E.tp(E.mul(*prefix)))


# ----------------------------------------------------------------------------- the whole procedure


def normal_form(df: Expr, detail: str = "full") -> tuple[list[Step], list[Expr]]:
    """Steps that bring `df` to a sum of `tr(K dV)` terms, and those terms.

    At `full` detail each step applies one rule to every term it fits; at a coarser detail every
    term takes its own next move on the same line (derive.detail.trace_form merges further)."""
    steps: list[Step] = []
    terms, rules = split(df)
    terms = [t for t in terms if not E.is_zero(t) and E.has_dif(t)]
    split_first = len(terms) > 1 and bool(rules)
    if split_first:
        steps.append(Step(E.add(*terms), tuple(sorted(rules))))
    parallel = detail != "full"
    for _ in range(100):
        moves = [next_move(t, parallel) for t in terms]
        pending = [m for m in moves if m is not None]
        if not pending:
            return trace_form(steps, detail, split_first), terms
        used = list(dict.fromkeys(m[0] for m in pending)) if parallel else [pending[0][0]]
        new_terms: list[Expr] = []
        for t, m in zip(terms, moves):
            new = m[1] if (m is not None and m[0] in used) else t
            pieces, _ = split(new)
            new_terms.extend(pieces)
        terms = [t for t in new_terms if not E.is_zero(t) and E.has_dif(t)]
        steps.append(Step(E.add(*terms, shape=E.SCALAR), tuple(used)))
    raise UnsupportedError("the trace normal form did not converge")  # pragma: no cover


def coefficient_of(term: Expr) -> tuple[str, Expr]:
    """For a normal term tr(K dV) (or c·tr(K dV)): the name V and K (of shape of dVᵀ)."""
    if not is_trace(term):
        c, sc, ch = parts(term)
        i = _index_with_dif(sc)
        if i is not None and is_trace(sc[i]) and not ch:
            name, k = coefficient_of(sc[i])
            return name, E.mul(E.Num(c), *sc[:i], *sc[i + 1:], k)
    c, sc, ch = parts(term.arg)
    i = _index_with_dif(sc)
    if i is not None:
        dv = sc[i]
        return dv.name, E.mul(E.Num(c), *sc[:i], *sc[i + 1:], *ch)
    dv = ch[-1]
    rest = ch[:-1]
    if not rest:
        return dv.name, E.mul(E.Num(c), *sc, E.Eye(dv.shape[0])) if dv.shape[0] != 1 else E.mul(E.Num(c), *sc)
    return dv.name, E.mul(E.Num(c), *sc, *rest)

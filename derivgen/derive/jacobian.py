"""Jacobians (`df = J dx`), matrix-by-matrix derivatives (`vec dF = J vec dX`) and Hessians.

For a vector variable x the differential of f is brought, term by term, to the form `Kᵢ dx`:
a Hadamard product becomes a diagonal matrix (`u ⊙ (K dx) = diag(u) K dx`, J1), a scalar factor
moves behind the vectors it scales (`(aᵀdx) v = v aᵀ dx`, J2), `diag(dx) v = diag(v) dx` (J3),
and a scalar equals its transpose (`dxᵀa = aᵀdx`, J4). For a matrix variable both sides are
vectorised (V4) and `vec(P dX Q) = (Qᵀ ⊗ P) vec dX` (V1), with the commutation matrix for
`dXᵀ` (V2) and `vec(U ⊙ C) = diag(vec U) vec C` (V3); a trace becomes `vec(Kᵀ)ᵀ vec dX` (V5).

The Jacobian J (numerator layout: rows follow f, columns x) is read off; in denominator layout
the result is ∂f/∂x = Jᵀ. The Hessian of a scalar f is the Jacobian of its gradient.
"""

from __future__ import annotations

from fractions import Fraction

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Expr
from .differential import Expander
from .model import Block, Derivation, Step
from . import detail as detail_
from .simplify import collect, hadamard_collect, push_transposes, scalar_powers, simplify_steps, sums_over_samples
from .trace import coefficient_of, is_trace, next_move as trace_move, parts, split


def _dif_index(factors: list[Expr]) -> int | None:
    for i, f in enumerate(factors):
        if E.has_dif(f):
            return i
    return None


def _vec_node(m: Expr) -> Expr:
    """vec(M) kept visible even for a column vector (vec(dW x) still needs V1)."""
    return E.Func("vec", m, (E.dim_mul(*m.shape), 1))


def _row_of_trace(s: Expr, vector: bool) -> tuple[list[Expr], Expr]:
    """tr(K dX) → the factors of vec(Kᵀ)ᵀ and vec(dX) (for a vector: K and dx)."""
    name, k = coefficient_of(s)
    dv = next(n for n in E.walk(s) if isinstance(n, E.Dif))
    if vector or dv.shape[1] == 1:
        return [k] if not (isinstance(k, E.Num) and k.value == 1) else [], dv
    return [E.tp(E.vec(push_transposes(E.tp(k))))], _vec_node(dv)


def next_linear_move(t: Expr, vector: bool) -> tuple[str, Expr] | None:
    """The next rewrite of one term of vec(df) towards K·vec(dX) (K·dx for a vector x)."""
    c, sc, ch = parts(t)
    i = _dif_index(sc)
    if i is not None:
        s, others = sc[i], sc[:i] + sc[i + 1:]
        if isinstance(s, E.Dif):
            return None  # a scalar variable: the term is (c · others · chain) dx
        if is_trace(s):
            move = trace_move(s)
            if move is not None:
                return move[0], E.mul(E.Num(c), *others, move[1], *ch)
            row, dv = _row_of_trace(s, vector)
            rest = ([_vec_node(E.mul(*ch))] if ch and not vector and ch[-1].shape[1] != 1 else ch)
            return "V5" if not vector else "T0", E.mul(E.Num(c), *others, *rest, *row, dv)
        if isinstance(s, E.MatMul) or isinstance(s, E.Transpose):
            inner = s.chain if isinstance(s, E.MatMul) else (s,)
            if isinstance(inner[0], E.Transpose) and E.has_dif(inner[0]):
                return "J4", E.mul(E.Num(c), *others, _flip_scalar(s), *ch)
            if isinstance(s, E.MatMul) and isinstance(s.chain[-1], (E.Dif,)) and not s.scalars:
                if not ch:
                    return None if vector else ("V5", E.mul(E.Num(c), *others, *s.chain))
                return "J2", E.mul(E.Num(c * s.coeff), *others, *ch, *s.chain)
            return "T0", E.mul(E.Num(c), *others, E.fn("tr", s), *ch)
        raise UnsupportedError(f"cannot bring a term of the differential to the form J·dx ({type(s).__name__})")

    j = _dif_index(ch)
    if j is None:  # pragma: no cover
        return None
    f = ch[j]
    if vector:
        return _vector_move(c, sc, ch, j, f)
    return _vec_move(c, sc, ch, j, f)


def _flip_scalar(s: Expr) -> Expr:
    """A scalar product written transposed: dxᵀ A y = yᵀ Aᵀ dx (equal, as a 1×1 is its own transpose)."""
    from .simplify import transpose_of

    c, sc, ch = parts(s)
    return E.mul(E.Num(c), *sc, *(transpose_of(g, True) for g in reversed(ch)))


def _vector_move(c, sc, ch, j, f):
    last = j == len(ch) - 1
    if isinstance(f, E.Dif):
        if last:
            return None
        rest = E.mul(*ch[j + 1:])
        if rest.is_scalar:
            return "J2", E.mul(E.Num(c), *sc, rest, *ch[: j + 1])
    if isinstance(f, E.Transpose) and isinstance(f.arg, E.Dif):
        for k in range(j + 2, len(ch) + 1):
            unit = E.mul(*ch[j:k])
            if unit.is_scalar:
                return "J4", E.mul(E.Num(c), *sc, _flip_scalar(unit), *ch[:j], *ch[k:])
    if isinstance(f, E.Hadamard):
        k = _dif_index(list(f.factors))
        rest = E.had(*(g for n, g in enumerate(f.factors) if n != k))
        if f.shape[0] == 1 and f.shape[1] != 1:  # a row: dxᵀ ⊙ uᵀ = dxᵀ diag(u)
            return "J1", E.mul(E.Num(c), *sc, *ch[:j], f.factors[k], E.fn("diag", push_transposes(E.tp(rest))), *ch[j + 1:])
        return "J1", E.mul(E.Num(c), *sc, *ch[:j], E.fn("diag", rest), f.factors[k], *ch[j + 1:])
    if isinstance(f, E.HadDiv):
        inv_den = E.hdiv(E.Ones(f.den.shape), f.den)
        if f.shape[0] == 1 and f.shape[1] != 1:
            return "J1", E.mul(E.Num(c), *sc, *ch[:j], f.num, E.fn("diag", push_transposes(E.tp(inv_den))), *ch[j + 1:])
        return "J1", E.mul(E.Num(c), *sc, *ch[:j], E.fn("diag", inv_den), f.num, *ch[j + 1:])
    if isinstance(f, E.Func) and f.name == "diag" and not last:
        v = E.mul(*ch[j + 1:])
        return "J3", E.mul(E.Num(c), *sc, *ch[:j], E.fn("diag", v), f.arg)
    if isinstance(f, E.Transpose):
        return "S1", E.mul(E.Num(c), *sc, *ch[:j], push_transposes(f), *ch[j + 1:])
    if isinstance(f, E.SumOver) and (last or E.mul(*ch[j + 1:]).is_scalar):
        # Σ_t u_t: its body to the form K_t dx, then dx, the same for every sample, out (S12)
        move = next_linear_move(f.body, True)
        if move is not None:
            return move[0], E.mul(E.Num(c), *sc, *ch[:j], E.sumover(f.index, f.count, move[1]), *ch[j + 1:])
        dv = next(n for n in E.walk(f.body) if isinstance(n, E.Dif))
        k = jacobian_of_term(f.body, dv.shape[0])
        return "S12", E.mul(E.Num(c), *sc, *ch[j + 1:], *ch[:j], E.sumover(f.index, f.count, k), dv)
    raise UnsupportedError(f"cannot bring a term of the differential to the form J·dx ({type(f).__name__})")


def _vec_move(c, sc, ch, j, f):
    if isinstance(f, E.Func) and f.name == "vec":
        while isinstance(f.arg, E.Func) and f.arg.name == "vec":  # vec(vec U) = vec U, a column already
            f = f.arg
        if isinstance(f.arg, E.Dif):
            return None if j == len(ch) - 1 and f is ch[j] else ("V4", E.mul(E.Num(c), *sc, *ch[:j], f, *ch[j + 1:]))
        lead = ch[:j]
        mc, msc, mch = parts(f.arg)
        k = _dif_index(msc)
        if mc != 1 or msc:
            return "V4", E.mul(E.Num(c * mc), *sc, *msc, *lead, _vec_node(E.mul(*mch)))
        k = _dif_index(mch)
        g = mch[k]
        p = E.mul(*mch[:k]) if k > 0 else E.Eye(g.shape[0])
        q = E.mul(*mch[k + 1:]) if k < len(mch) - 1 else E.Eye(g.shape[1])
        kr = E.kron(push_transposes(E.tp(q)), p)
        if isinstance(g, E.Dif):
            return "V1", E.mul(E.Num(c), *sc, *lead, kr, _vec_node(g))
        if isinstance(g, E.Transpose) and isinstance(g.arg, E.Dif):
            x = g.arg
            return "V2", E.mul(E.Num(c), *sc, *lead, kr, E.commutation(x.shape[0], x.shape[1]), _vec_node(x))
        if isinstance(g, E.Hadamard):
            n = _dif_index(list(g.factors))
            rest = E.had(*(h for m, h in enumerate(g.factors) if m != n))
            return "V3", E.mul(E.Num(c), *sc, *lead, kr, E.fn("diag", E.vec(rest)), _vec_node(g.factors[n]))
        if isinstance(g, E.HadDiv):
            inv_den = E.hdiv(E.Ones(g.den.shape), g.den)
            return "V3", E.mul(E.Num(c), *sc, *lead, kr, E.fn("diag", E.vec(inv_den)), _vec_node(g.num))
        if isinstance(g, E.Transpose):
            return "S1", E.mul(E.Num(c), *sc, *lead, _vec_node(E.mul(*mch[:k], push_transposes(g), *mch[k + 1:])))
        if isinstance(g, E.SumOver):  # vec(P (Σ_t B_t) Q) = Σ_t vec(P B_t Q)
            body = _vec_node(E.mul(*mch[:k], g.body, *mch[k + 1:]))
            return "V4", E.mul(E.Num(c), *sc, *lead, E.sumover(g.index, g.count, body))
        raise _cannot_vectorise(g)
    if isinstance(f, E.SumOver) and j == len(ch) - 1:
        move = next_linear_move(f.body, False)  # Σ_t K_t vec(dX) = (Σ_t K_t) vec(dX) (S12)
        if move is not None:
            return move[0], E.mul(E.Num(c), *sc, *ch[:j], E.sumover(f.index, f.count, move[1]))
        bc, bsc, bch = parts(f.body)
        return "S12", E.mul(E.Num(c), *sc, *ch[:j], E.sumover(f.index, f.count, E.mul(E.Num(bc), *bsc, *bch[:-1])), bch[-1])
    raise _cannot_vectorise(f)


def _cannot_vectorise(f: Expr) -> UnsupportedError:
    if isinstance(f, E.Kron) or (isinstance(f, E.Func) and f.name == "vec"):
        return UnsupportedError(
            "cannot vectorise a Kronecker product or a vec that holds the differential (a Jacobian of kron(A, X) "
            "or vec(X))", hint="derivgen differentiates kron and vec in scalar functions: tr(kron(A, X)), "
                               "vec(A)'*vec(X); the Jacobian of vec(X) with respect to X is the identity")
    return UnsupportedError(f"cannot vectorise a term of the differential ({type(f).__name__})")


def linear_form(df: Expr, vector: bool, detail: str = "full") -> tuple[list[Step], list[Expr]]:
    """Steps from df (or vec df) to Σ Kᵢ·dx, and the final terms; one rule per step at `full`
    detail, every term's own next move on one line otherwise (derive.detail.trace_form)."""
    terms, rules = split(df)
    terms = [t for t in terms if not E.is_zero(t)]
    steps: list[Step] = []
    split_first = len(terms) > 1 and bool(rules)
    if split_first:
        steps.append(Step(E.add(*terms), tuple(sorted(rules))))
    for _ in range(60):
        moves = [next_linear_move(t, vector) for t in terms]
        if all(m is None for m in moves):
            return detail_.trace_form(steps, detail, split_first), terms
        pending = list(dict.fromkeys(m[0] for m in moves if m is not None))
        used = pending if detail != "full" else pending[:1]
        new_terms: list[Expr] = []
        for t, m in zip(terms, moves):
            new = m[1] if (m is not None and m[0] in used) else t
            new_terms.extend(p for p in split(new)[0] if not E.is_zero(p))
        terms = new_terms
        steps.append(Step(E.add(*terms), tuple(used)))
    raise UnsupportedError("the Jacobian did not reach the form J·dx")  # pragma: no cover


def jacobian_of_term(t: Expr, rows) -> Expr:
    """K for a normal term K·dx (or K·vec dX)."""
    c, sc, ch = parts(t)
    i = _dif_index(sc)
    if i is not None:
        return E.mul(E.Num(c), *sc[:i], *sc[i + 1:], *ch)
    rest = ch[:-1]
    if not rest:
        return E.mul(E.Num(c), *sc, E.Eye(rows)) if rows != 1 else E.mul(E.Num(c), *sc)
    return E.mul(E.Num(c), *sc, *rest)


def derive_jacobian(function: Expr, wrt: str, wrt_shape, where: dict[str, Expr], assume: dict[str, set[str]],
                    layout: str = "denominator", kind: str = "jacobian", lhs_note: str | None = None,
                    detail: str = "full") -> Derivation:
    """The step-by-step Jacobian of `function` with respect to `wrt` (where-names inlined), with
    steps at `detail` (derive.detail: linear maps in runs, like terms collected in dF)."""
    try:
        return _derive_jacobian(function, wrt, wrt_shape, where, assume, layout, kind, vector=None, detail=detail)
    except E.ShapeMismatch as err:  # a form the moves do not cover: a clean refusal, never a crash
        raise UnsupportedError(f"derivgen cannot bring this derivative to the form J·dx ({err})") from None


def _derive_jacobian(function, wrt, wrt_shape, where, assume, layout, kind, vector, detail="full") -> Derivation:
    f = _inline(function, where)
    if vector is None:
        vector = wrt_shape[1] == 1 and f.shape[1] == 1  # df = J dx; otherwise vec dF = J vec dX
        if vector:
            try:
                return _derive_jacobian(function, wrt, wrt_shape, where, assume, layout, kind, vector=True,
                                        detail=detail)
            except (UnsupportedError, E.ShapeMismatch):
                vector = False  # e.g. x inside an elementwise function of a matrix: vectorise instead
    expander = Expander({wrt})
    blocks: list[Block] = []
    softmax_of = None
    if detail != "full" and isinstance(f, E.Func) and f.name == "softmax" and f.arg == E.Sym(wrt, wrt_shape):
        softmax_of, written = f, softmax_definition(f)  # derived from its definition, not quoted (D19)
        blocks.append(Block("f", None, [Step(f), Step(written, ("R7",))]))
        f = written
    df = Block("dF", None)
    df.add(E.dif(f), *(("H1",) if kind == "hessian" else ()))
    df.steps += detail_.differential(expander.steps(E.dif(f), linear_first=detail != "full"), detail)
    if detail != "full":  # dX ⊙ X + X ⊙ dX = 2 X ⊙ dX where it appears, not after the Jacobian is read off
        collected = collect(hadamard_collect(df.last))
        if collected != df.last:
            df.add(collected, "S2")
    blocks.append(df)
    expanded = df.last
    if vector:
        steps, terms = linear_form(expanded, True, detail)
        if detail != "full":  # s/s² = 1/s where it appears (S7)
            from .engine import powers_as_they_appear

            steps = powers_as_they_appear(steps)
            terms = [scalar_powers(t) for t in terms]
        df.steps += steps
        current = df
    else:
        vb = Block("vecdF", None)
        pieces, _ = split(expanded)
        pulled = [sums_over_samples(p) for p in pieces]  # Σ_t dW x_t x_tᵀ = dW Σ_t x_t x_tᵀ before vec
        vec_rules = ("V4", "S12") if pulled != pieces else ("V4",)
        pieces = pulled
        wrapped = E.add(*(_wrap_vec(p) for p in pieces if not E.is_zero(p)), shape=(E.dim_mul(*f.shape), 1)) if pieces else E.zero((E.dim_mul(*f.shape), 1))
        vb.add(wrapped, *vec_rules)
        steps, terms = linear_form(wrapped, False, detail)
        vb.steps += steps
        blocks.append(vb)
        current = vb
    rows = E.dim_mul(*wrt_shape)
    out_rows = E.dim_mul(*f.shape)
    if not terms:
        jac = E.zero((out_rows, rows))
    else:
        ks = [jacobian_of_term(t, rows) for t in terms]
        jac = E.add(*ks)
        dv = E.Dif(wrt, wrt_shape) if vector else _vec_node(E.Dif(wrt, wrt_shape))
        line = E.mul(jac, dv) if not jac.is_scalar else E.mul(jac, dv)
        if len(ks) > 1 and line != current.last:
            current.add(line, "T7")
    jb = Block("jac", wrt)
    jb.steps = detail_.simplification(Step(jac, ("J0",) if layout == "denominator" else ("J0", "L2")),
                                      simplify_steps(jac, assume), detail)
    if softmax_of is not None:
        named = softmax_named(jb.last, softmax_of)
        if named != jb.last:
            jb.add(named, "S8")
    blocks.append(jb)
    result = jb.last
    transposed = push_transposes(E.tp(result)) if layout == "denominator" else None
    by_assumption = simplify_steps(transposed, assume) if transposed is not None and transposed != result else []
    if layout == "denominator" and (transposed == result or (by_assumption and by_assumption[-1].expr == result)):
        jb.kind = "jacT"  # symmetric (a Hessian, or diag(s) − s sᵀ, or A for a symmetric A): both layouts read the same
        used = tuple(dict.fromkeys(r for st in by_assumption for r in st.rules if r not in jb.steps[0].rules))
        jb.steps[0] = Step(jb.steps[0].expr, jb.steps[0].rules + ("L1",) + used)
    elif layout == "denominator":
        tb = Block("jacT", wrt)
        first = Step(push_transposes(E.tp(result)), ("L1",))
        tb.steps = detail_.simplification(first, simplify_steps(first.expr, assume), detail)
        blocks.append(tb)
        result = tb.last
    if softmax_of is not None:
        f = softmax_of
    return Derivation(wrt, blocks, result, kind=kind, function=f, layout=layout, detail=detail)


def softmax_definition(s: E.Func) -> Expr:
    """softmax(z) = exp(z) / (1ᵀ exp(z)) (R7)."""
    e = E.fn("exp", s.arg)
    return E.mul(e, E.power(E.mul(E.tp(E.Ones(s.arg.shape)), e), E.Num(Fraction(-1))))


def softmax_named(j: Expr, s: E.Func) -> Expr:
    """diag(eᶻ)/(1ᵀeᶻ) → diag(s) and eᶻ(eᶻ)ᵀ/(1ᵀeᶻ)² → s sᵀ for s = softmax(z) (S8)."""
    e = E.fn("exp", s.arg)
    v = E.mul(E.tp(E.Ones(s.arg.shape)), e)
    transposed = {E.tp(e), E.fn("exp", E.tp(s.arg))}

    def term(t: Expr) -> Expr:
        if not isinstance(t, E.MatMul):
            return t
        sc, ch = list(t.scalars), list(t.chain)
        if sc == [E.power(v, E.Num(Fraction(-1)))] and ch == [E.fn("diag", e)]:
            return E.mul(E.Num(t.coeff), E.fn("diag", s))
        if sc == [E.power(v, E.Num(Fraction(-2)))] and len(ch) == 2 and ch[0] == e and ch[1] in transposed:
            return E.mul(E.Num(t.coeff), s, E.tp(s))
        return t

    if isinstance(j, E.Add):
        return E.add(*(term(t) for t in j.terms), shape=j.shape)
    return term(j)


def _wrap_vec(term: Expr) -> Expr:
    """vec of one term: scalar factors come out; vec(M) stays visible only around the differential."""
    c, sc, ch = parts(term)
    if not ch:
        return term
    m = E.mul(*ch)
    return E.mul(E.Num(c), *sc, _vec_node(m) if E.has_dif(m) else E.vec(m))


def _inline(f: Expr, where: dict[str, Expr]) -> Expr:
    """Replace `where:` names by their definitions (latest first, so nested names resolve)."""
    mapping = {}
    for name, definition in where.items():
        mapping[E.Sym(name, definition.shape, "where")] = E.substitute(definition, mapping)
    return E.substitute(f, mapping) if mapping else f

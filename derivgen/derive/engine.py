"""One gradient, end to end: rewrites, differential, trace normal form, chain rule, result.

The blocks of a derivation of ∂f/∂X, in order:

1. `f = …` rewrites that make the differential easier (‖u‖² = uᵀu, …), when any apply;
2. `df = d(…) = … = Σ tr(Kᵢ dVᵢ)` with the differential rules, then the trace rules;
3. for each `where:` name Y on the way to X (last defined first): `∂f/∂Y = …` identified,
   `dY = d(…) = …` expanded, and `df = tr((∂f/∂Y)ᵀ dY) = …` with dY substituted (chain rule);
4. `∂f/∂X = G = …` identified from `df = tr(Gᵀ dX)` and simplified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import Expr, Shape
from . import detail as detail_
from .differential import Expander
from .facts import declared_symmetric
from .model import Block, Derivation, Step
from .simplify import (built_symmetric, collect, push_transposes, scalar_powers, simplify_steps, sums_over_samples,
                       symmetric, transpose_of, use_definitions)
from .trace import coefficient_of, normal_form


@dataclass
class Context:
    """What a derivation needs from a problem: the function, definitions and assumptions."""

    function: Expr
    variables: dict[str, Shape]
    where: dict[str, Expr] = field(default_factory=dict)  # in definition order
    assume: dict[str, set[str]] = field(default_factory=dict)
    families: dict[str, object] = field(default_factory=dict)  # x_t -> N: the family's number of samples
    # `domain:`: expressions whose entries are positive, and orders of dimensions (a, ">", b)
    positive: list[Expr] = field(default_factory=list)
    orders: list[tuple] = field(default_factory=list)

    def dependent_where(self, wrt: str) -> list[str]:
        """`where:` names that depend on `wrt`, directly or through earlier names, in order."""
        deps: list[str] = []
        live = {wrt}
        for name, definition in self.where.items():
            if E.symbols(definition) & live:
                deps.append(name)
                live.add(name)
        return deps


# ----------------------------------------------------------------------------- rewrites of f


def _rewrite_once(e: Expr, depends) -> tuple[Expr, str | None]:
    """Apply the first rewrite rule (R1–R6) that fits somewhere in `e`."""
    for rule, f in REWRITES:
        hit = False

        def visit(n: Expr, f=f):
            nonlocal hit
            if depends(n):
                out = f(n)
                if out is not None:
                    hit = True
                    return out
            return None

        new = E.transform_top(e, visit)
        if hit:
            return new, rule
    return e, None


def _norm_squared(n: Expr):
    if isinstance(n, E.Power) and isinstance(n.base, E.Func) and n.base.name == "norm":
        if isinstance(n.exp, E.Num) and n.exp.value == 2:
            u = n.base.arg
            inner = E.mul(E.tp(u), u)
            return inner if u.shape[1] == 1 else E.fn("tr", inner)
    return None


def _sum_entries(n: Expr):
    if isinstance(n, E.Func) and n.name == "sum" and n.arg.is_scalar:
        return n.arg
    if isinstance(n, E.Func) and n.name == "sum":
        a = n.arg
        left = [E.tp(E.Ones((a.shape[0], 1)))] if a.shape[0] != 1 else []
        right = [E.Ones((a.shape[1], 1))] if a.shape[1] != 1 else []
        return E.mul(*left, a, *right)
    return None


def _log_softmax(n: Expr):
    if isinstance(n, E.Func) and n.name == "log" and isinstance(n.arg, E.Func) and n.arg.name == "softmax":
        z = n.arg.arg
        return E.sub(z, E.mul(E.Ones((z.shape[0], 1)), E.fn("logsumexp", z)))
    return None


def _det_power(n: Expr):
    if isinstance(n, E.Func) and n.name == "det" and isinstance(n.arg, E.Power):
        return E.power(E.fn("det", n.arg.base), n.arg.exp)
    return None


def _vec_inner(n: Expr):
    """vec(A)ᵀ vec(B) → tr(AᵀB), where the two stand next to each other in a product."""
    if not isinstance(n, E.MatMul):
        return None
    chain = list(n.chain)
    for i in range(len(chain) - 1):
        a, b = chain[i], chain[i + 1]
        if (isinstance(a, E.Transpose) and isinstance(a.arg, E.Func) and a.arg.name == "vec"
                and isinstance(b, E.Func) and b.name == "vec" and a.arg.arg.shape == b.arg.shape):
            inner = E.fn("tr", E.mul(E.tp(a.arg.arg), b.arg))
            return E.mul(E.Num(n.coeff), *n.scalars, *chain[:i], inner, *chain[i + 2:])
    return None


def _trace_kron(n: Expr):
    if isinstance(n, E.Func) and n.name == "tr" and isinstance(n.arg, E.Kron):
        return E.mul(E.fn("tr", n.arg.a), E.fn("tr", n.arg.b))
    return None


REWRITES = [("R1", _norm_squared), ("R2", _sum_entries), ("R3", _log_softmax), ("R4", _det_power),
            ("R5", _vec_inner), ("R6", _trace_kron)]


def rewrite_steps(f: Expr, depends) -> list[Step]:
    steps: list[Step] = []
    e = f
    for _ in range(20):
        e, rule = _rewrite_once(e, depends)
        if rule is None:
            break
        steps.append(Step(e, (rule,)))
    return steps


# ----------------------------------------------------------------------------- identification


def group_terms(terms: list[Expr]) -> dict[str, list[Expr]]:
    """Coefficients K of the normal terms tr(K dV), grouped by V (in order of appearance)."""
    groups: dict[str, list[Expr]] = {}
    for t in terms:
        if not E.has_dif(t):  # a term that cancelled to zero (tr(0·dY))
            continue
        name, k = coefficient_of(t)
        groups.setdefault(name, []).append(k)
    return groups


def _trace_line(gradients: dict[str, Expr], shapes: dict[str, Shape]) -> Expr:
    """Σ tr(Gᵥᵀ dV) — the form the gradients are read from."""
    terms = []
    for name, g in gradients.items():
        dv = E.Dif(name, shapes[name])
        gt = E.tp(g)
        terms.append(E.fn("tr", E.mul(gt, dv)) if not dv.is_scalar else E.mul(gt, dv))
    return E.add(*terms, shape=E.SCALAR)


def _assumed(k: Expr, assume: dict[str, set[str]]) -> tuple[Expr, bool]:
    """K with the declared symmetry applied (S4, S13), and whether it changed."""
    sym = declared_symmetric(assume)
    out = built_symmetric(symmetric(k, sym) if sym else k, sym)
    return out, out != k


def _identify(block: Block, terms: list[Expr], shapes: dict[str, Shape], detail: str = "full",
              assume: dict[str, set[str]] | None = None) -> tuple[dict[str, Expr], tuple[str, ...]]:
    """Combine terms per differential (T1) and write df = Σ tr(Gᵀ dV) (S1); returns G per name
    and the rules folded into the identification that follows (S1 at a coarser detail, where
    the line `tr(Gᵀ dV)` is read off in `∂f/∂V = G` itself).

    At a coarser detail the declared symmetry is applied to each term before like terms are
    collected (S4), so that tr(Σ⁻¹ …) and tr(Σ⁻ᵀ …) are collected in the differential."""
    groups = group_terms(terms)
    applied = False
    if detail != "full":
        for name, ks in groups.items():
            if len(ks) > 1:
                new = [_assumed(k, assume or {}) for k in ks]
                applied = applied or any(changed for _, changed in new)
                groups[name] = [k for k, _ in new]
    ks = {name: collect(E.add(*k)) for name, k in groups.items()}
    if any(len(k) > 1 for k in groups.values()):
        line = E.add(*(E.fn("tr", E.mul(k, E.Dif(n, shapes[n]))) if not shapes[n] == E.SCALAR else E.mul(k, E.Dif(n, shapes[n])) for n, k in ks.items()), shape=E.SCALAR)
        collected = any(len(k) > 1 and (not isinstance(ks[n], E.Add) or len(ks[n].terms) < len(k)) for n, k in groups.items())
        if line != block.last:
            rules = ("T1", *(("S4",) if applied else ()), *(("S2",) if collected else ()))
            block.add(line, *rules)
    gradients = {name: push_transposes(E.tp(k)) for name, k in ks.items() if not E.is_zero(k)}
    line = _trace_line(gradients, shapes)
    if line != block.last:
        if detail == "full":
            block.add(line, "S1")
        else:
            return gradients, ("S1",)
    return gradients, ()


def _gradient_block(var: str, g: Expr, ctx: Context, where: dict[str, Expr] | None, detail: str = "full",
                    folded: tuple[str, ...] = ()) -> Block:
    block = Block("grad", var)
    rules: tuple[str, ...] = ("I1",)
    if detail != "full":  # the declared symmetry is used as the gradient is read off
        sym = declared_symmetric(ctx.assume)
        g4 = symmetric(g, sym) if sym else g
        g13 = built_symmetric(g4, sym)
        rules += (("S4",) if g4 != g else ()) + (("S13",) if g13 != g4 else ())
        g = g13
    first = Step(g, rules, folded)
    block.steps = detail_.simplification(first, simplify_steps(g, ctx.assume, where), detail)
    return block


def _flipped(t: Expr) -> Expr:
    """A scalar term written transposed: dxᵀ A y = yᵀ Aᵀ dx (J4: a 1×1 is its own transpose)."""
    c, sc, ch = (t.coeff, list(t.scalars), list(t.chain)) if isinstance(t, E.MatMul) else (Fraction(1), [], [t])
    return E.mul(E.Num(c), *sc, *(transpose_of(g, True) for g in reversed(ch)))


def _transposed_dif(t: Expr) -> bool:
    return any(isinstance(n, E.Transpose) and E.has_dif(n.arg) for n in E.walk(t))


def powers_as_they_appear(steps: list[Step]) -> list[Step]:
    """Each line with powers of a scalar combined where they appear (S7: 3(det X)² det X is
    3(det X)³ on the line that makes it, not three lines later)."""
    out, cited = [], False
    for s in steps:
        new = scalar_powers(s.expr)
        if new != s.expr:
            s = Step(new, s.rules + (() if cited else ("S7",)), s.folded)
            cited = True
        out.append(s)
    return out


def _sign_out_of_sum(n: Expr):
    """Σ_t (−u_t) = −Σ_t u_t, and Σ_t tr(−U_t) = −Σ_t tr(U_t): a sign is not carried inside a sum
    over samples, where the line that made it can take it out (−½ Σ_t (−u_t) is ½ Σ_t u_t)."""
    if not isinstance(n, E.SumOver):
        return None
    body = n.body
    traced = isinstance(body, E.Func) and body.name == "tr"
    inner = body.arg if traced else body
    if not (isinstance(inner, E.MatMul) and inner.coeff < 0):
        return None
    flipped = E.mul(E.Num(-inner.coeff), *inner.scalars, *inner.chain)
    return E.neg(E.sumover(n.index, n.count, E.fn("tr", flipped) if traced else flipped))


def signs_as_they_appear(steps: list[Step]) -> list[Step]:
    """Each line with the signs inside sums over samples taken out where they appear (folded S12:
    the rule D5 makes −Σ⁻¹ dΣ Σ⁻¹ inside −½ Σ_t (…), which the line writes as +½ Σ_t (…))."""
    out = []
    for s in steps:
        new = E.transform(s.expr, _sign_out_of_sum)
        if new != s.expr:
            s = detail_.with_folded(Step(new, s.rules, s.folded), "S12")
        out.append(s)
    return out


def as_they_appear(steps: list[Step]) -> list[Step]:
    """Each line with powers combined and signs out of sums over samples where they appear."""
    return signs_as_they_appear(powers_as_they_appear(steps))


def _number_out_of_trace(n: Expr):
    """tr(cA) = c tr(A) for a number c (T1)."""
    if isinstance(n, E.Func) and n.name == "tr" and isinstance(n.arg, E.MatMul) and n.arg.coeff != 1:
        return E.mul(E.Num(n.arg.coeff), E.fn("tr", E.mul(*n.arg.scalars, *n.arg.chain)))
    return None


def collect_in_differential(e: Expr, assume: dict[str, set[str]]) -> tuple[Expr, tuple[str, ...]]:
    """Like terms of the differential collected where they appear: a scalar term with a transposed
    differential (dμᵀ Σ⁻¹ u) written as its transpose (J4, with the declared symmetry: S4) when
    that makes it a like term of another (uᵀ Σ⁻¹ dμ), then collected (S2); likewise a term inside
    a trace (tr(dUᵀ A + Aᵀ dU) = 2 tr(Aᵀ dU), T2). Returns the expression and the rules used (none
    when nothing was collected)."""
    sym = declared_symmetric(assume)
    used_sym = False
    used = set()

    def visit(n: Expr):
        inside_trace = isinstance(n, E.Func) and n.name == "tr" and isinstance(n.arg, E.Add)
        if inside_trace:  # tr(dUᵀ A + Aᵀ dU) = 2 tr(Aᵀ dU): a term may be written transposed (T2)
            new = _collect_terms(n.arg, lambda t: push_transposes(E.tp(t)), "T2")
            return E.fn("tr", new) if new is not None else None
        if not isinstance(n, E.Add) or not n.is_scalar or not E.has_dif(n):
            return None
        return _collect_terms(n, lambda t: push_transposes(_flipped(t)) if t.is_scalar else None, "J4")

    def _collect_terms(n: Expr, flip, rule: str):
        nonlocal used_sym
        terms = list(n.terms)
        flips = {}
        for j, t in enumerate(terms):
            if not (E.has_dif(t) and _transposed_dif(t)):
                continue
            alt = flip(t)
            if alt is None:
                continue
            assumed = symmetric(alt, sym) if sym else alt
            for i, other in enumerate(terms):
                if i == j or i in flips:
                    continue
                # the other term with its transposes pushed in too: (Ax)ᵀA dx is xᵀAᵀA dx
                for like in dict.fromkeys((other, push_transposes(other))):
                    if not isinstance(collect(E.add(assumed, like)), E.Add):
                        flips[j] = assumed
                        if like != other:
                            flips[i] = like
                        used_sym = used_sym or assumed != alt
                        break
                if j in flips:
                    break
        if not flips:
            return None
        new = collect(E.add(*(flips.get(j, t) for j, t in enumerate(terms)), shape=n.shape))
        if isinstance(new, E.Add) and len(new.terms) >= len(terms):
            return None
        used.add(rule)
        return new

    out = E.transform(e, visit)
    if out == e:
        return e, ()
    if "T2" in used:  # ½ tr(2 Aᵀ dU) = tr(Aᵀ dU): the number out of the trace meets the one outside
        pulled = E.transform(out, _number_out_of_trace)
        if pulled != out:
            used.add("T1")
            out = pulled
    summed = sums_over_samples(out)  # −½ Σ_t (−2 uᵀΣ⁻¹dμ) = (Σ_t u)ᵀΣ⁻¹dμ: the numbers meet
    return summed, (*sorted(used, key=["J4", "T2", "T1"].index), *(("S4",) if used_sym else ()), "S2",
                    *(("S12",) if summed != out else ()))


# ----------------------------------------------------------------------------- the derivation


def derive_gradient(ctx: Context, wrt: str, detail: str = "full") -> Derivation:
    """The step-by-step derivation of ∂f/∂wrt (denominator layout: the shape of wrt).

    `detail` ("brief", "normal" or "full", derive.detail) sets how many rule applications a
    line shows; at every detail each line is an equation the verifier checks."""
    detail_.check(detail)
    f = ctx.function
    if not f.is_scalar:
        raise UnsupportedError(
            f"the function is {E.shape_str(f.shape)}, not a scalar: a gradient needs a scalar function",
            hint="wrap it in tr(...), sum(...) or norm(...)^2, or ask for a Jacobian (a later version)",
        )
    deps = ctx.dependent_where(wrt)
    variables = {wrt, *deps}
    shapes: dict[str, Shape] = {name: ctx.where[name].shape for name in deps}
    wrt_shape = ctx.variables[wrt]
    shapes[wrt] = wrt_shape
    expander = Expander(variables)
    blocks: list[Block] = []

    if not expander.depends(f):
        zero = E.zero(wrt_shape)
        df = Block("df", None, [Step(E.dif(f)), Step(E.ZERO, ("D0",))])
        return Derivation(wrt, [df, Block("grad", wrt, [Step(zero, ("I1",))])], zero, detail=detail)

    rewrites = rewrite_steps(f, expander.depends)
    if rewrites:
        blocks.append(Block("f", None, [Step(f)] + rewrites))
        f = rewrites[-1].expr

    df = Block("df", None)
    df.add(E.dif(f))
    df.steps += detail_.differential(expander.steps(E.dif(f), linear_first=detail != "full"), detail)
    if detail != "full":
        df.steps = df.steps[:1] + as_they_appear(df.steps[1:])
        collected, rules = collect_in_differential(df.last, ctx.assume)
        if rules:
            df.add(collected, *rules)
    steps, terms = normal_form(df.last, detail)
    if detail != "full":
        steps = as_they_appear(steps)
        terms = [scalar_powers(t) for t in terms]
    df.steps += steps
    blocks.append(df)
    if not terms:
        zero = E.zero(wrt_shape)
        blocks.append(Block("grad", wrt, [Step(zero, ("I1",))]))
        return Derivation(wrt, blocks, zero, detail=detail)
    gradients, folded = _identify(df, terms, shapes, detail, ctx.assume)

    for y in reversed(deps):
        if y not in gradients:
            continue
        gy_block = _gradient_block(y, gradients[y], ctx, None, detail, folded)
        blocks.append(gy_block)
        gy = gy_block.last
        gradients[y] = gy

        dy = Block("dY", y)
        definition = ctx.where[y]
        dy.add(E.dif(definition))
        cited = False
        for step in detail_.differential(Expander(variables - {y}).steps(E.dif(definition), linear_first=detail != "full"), detail):
            named = use_definitions(step.expr, ctx.where)  # σ(WX) ⊙ … reads Y ⊙ … once Y is defined
            first = named != step.expr and not cited
            cited = cited or first
            dy.steps.append(Step(named, step.rules + (("S8",) if first else ()), step.folded))
        blocks.append(dy)

        chain = Block("df", None)
        chain.add(_trace_line(gradients, shapes))
        substituted = E.substitute(chain.last, {E.Dif(y, shapes[y]): dy.last})
        chain.add(substituted, "C1")
        if detail != "full":
            collected, rules = collect_in_differential(substituted, ctx.assume)
            if rules:
                chain.add(collected, *rules)
        steps, terms = normal_form(chain.last, detail)
        chain.steps += steps
        blocks.append(chain)
        gradients, folded = _identify(chain, terms, shapes, detail, ctx.assume)

    unexpected = set(gradients) - {wrt}
    if unexpected:  # pragma: no cover - every where-name was substituted above
        raise UnsupportedError(f"could not eliminate d{', d'.join(sorted(unexpected))}")
    if wrt not in gradients:
        zero = E.zero(wrt_shape)
        blocks.append(Block("grad", wrt, [Step(zero, ("I1",))]))
        return Derivation(wrt, blocks, zero, detail=detail)
    dependent_defs = {name: ctx.where[name] for name in deps}
    final = _gradient_block(wrt, gradients[wrt], ctx, dependent_defs, detail, folded)
    blocks.append(final)
    result = final.last
    if result.shape != wrt_shape:  # pragma: no cover - a bug, caught before anything is published
        raise UnsupportedError(f"internal error: the gradient has shape {result.shape}, not {wrt_shape}")
    return Derivation(wrt, blocks, result, detail=detail)

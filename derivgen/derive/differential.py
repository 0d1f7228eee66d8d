"""Expanding differentials `d(...)` one rule at a time.

Each step picks the first unexpanded `d(U)` (in reading order), takes the rule for U's outermost
operation, and applies that one rule to every `d(...)` of the same kind. Differentials of
constants become 0 on the spot (rule D0) and `d` of a variable becomes the leaf `dX`.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Callable

from .. import expr as E
from .. import functions
from ..errors import UnsupportedError
from ..expr import D, Expr
from .model import Step

#: d of a linear map of U is that map of dU: sums, transposes, sums over samples and the linear
#: functions of the registry (tr, sum, diag, vec)
LINEAR_RULES = frozenset({"D1", "D3", "D23"} | {f.rule for f in functions.FUNCTIONS.values() if f.linear})


def rule_of(u: Expr, depends: Callable[[Expr], bool] | None = None) -> str:
    """The id of the differential rule for d(u), by u's outermost operation.

    A product with one factor that depends on the variables is linear in it: d(cU) = c dU and
    d(AUB) = A dU B for constant A, B (D1, linearity); the product rule (D2) is for two or more."""
    if isinstance(u, E.Add):
        return "D1"
    if isinstance(u, E.MatMul):
        factors = list(u.scalars) + list(u.chain)
        if len(factors) == 1:
            return "D1"
        if depends is not None and sum(1 for f in factors if depends(f)) == 1:
            return "D1"
        return "D2"
    if isinstance(u, E.Transpose):
        return "D3"
    if isinstance(u, E.Inverse):
        return "D5"
    if isinstance(u, E.Power):
        return "D9" if u.base.is_scalar else "D8"
    if isinstance(u, E.Hadamard):
        return "D10"
    if isinstance(u, E.HadDiv):
        return "D11"
    if isinstance(u, E.HadPow):
        return "D12"
    if isinstance(u, E.Func):
        return functions.FUNCTIONS[u.name].rule_for(_kind(u.arg))
    if isinstance(u, E.SumOver):
        return "D23"
    if isinstance(u, E.Kron):
        return "D25"
    raise UnsupportedError(f"no differential rule for {type(u).__name__}")  # pragma: no cover


def quotient_parts(u: Expr, depends: Callable[[Expr], bool]) -> tuple[Expr, Expr] | None:
    """(numerator, denominator) of a product u/v whose numerator and scalar denominator both
    depend on the variables (u = xᵀAx, v = xᵀx in xᵀAx/(xᵀx)); None for other products."""
    if not isinstance(u, E.MatMul):
        return None
    dens = [s for s in u.scalars if isinstance(s, E.Power) and isinstance(s.exp, E.Num)
            and s.exp.value == -1 and depends(s.base)]
    if len(dens) != 1:
        return None
    rest = [s for s in u.scalars if s is not dens[0]]
    num = E.mul(E.Num(u.coeff), *rest, *u.chain)
    if not depends(num):
        return None
    return num, dens[0].base


def quotient_rule(u: Expr, depends: Callable[[Expr], bool]) -> Expr:
    """d(u/v) = (du·v − u·dv)/v² (D38), with du and dv left to expand."""
    num, den = quotient_parts(u, depends)
    top = E.sub(E.mul(E.dif(num), den), E.mul(num, E.dif(den)))
    return E.mul(top, E.power(den, E.Num(Fraction(-2))))


def _minus_one() -> E.Num:
    return E.Num(Fraction(-1))


def expand_one(u: Expr, depends: Callable[[Expr], bool]) -> Expr:
    """d(u) by the rule for u's outermost operation; inner differentials stay as D nodes."""
    d = E.dif
    if isinstance(u, E.Add):
        return E.add(*(d(t) for t in u.terms), shape=u.shape)
    if isinstance(u, E.MatMul):
        factors = list(u.scalars) + list(u.chain)
        terms = []
        for i, f in enumerate(factors):
            if depends(f):
                terms.append(E.mul(E.Num(u.coeff), *factors[:i], d(f), *factors[i + 1:]))
        return E.add(*terms, shape=u.shape)
    if isinstance(u, E.Transpose):
        return E.tp(d(u.arg))
    if isinstance(u, E.Inverse):
        a = u.arg
        return E.mul(_minus_one(), E.inv(a), d(a), E.inv(a))
    if isinstance(u, E.Power):
        return _power(u, depends)
    if isinstance(u, E.Hadamard):
        terms = []
        for i, f in enumerate(u.factors):
            if depends(f):
                terms.append(E.had(*u.factors[:i], d(f), *u.factors[i + 1:]))
        return E.add(*terms, shape=u.shape)
    if isinstance(u, E.HadDiv):
        terms = []
        if depends(u.num):
            terms.append(E.hdiv(d(u.num), u.den))
        if depends(u.den):
            terms.append(E.neg(E.hdiv(E.had(u.num, d(u.den)), E.had(u.den, u.den))))
        return E.add(*terms, shape=u.shape)
    if isinstance(u, E.HadPow):
        k = u.exp
        return E.mul(E.Num(k), E.had(E.hpow(u.base, k - 1), d(u.base)))
    if isinstance(u, E.Func):
        return _func(u)
    if isinstance(u, E.SumOver):
        return E.sumover(u.index, u.count, d(u.body))
    if isinstance(u, E.Kron):
        terms = [E.kron(d(u.a), u.b)] if depends(u.a) else []
        terms += [E.kron(u.a, d(u.b))] if depends(u.b) else []
        return E.add(*terms, shape=u.shape)
    raise UnsupportedError(f"no differential rule for {type(u).__name__}")  # pragma: no cover


def _power(u: E.Power, depends) -> Expr:
    base, exp = u.base, u.exp
    if depends(exp):
        raise UnsupportedError("derivgen cannot differentiate a power whose exponent depends on the variable")
    if base.is_scalar:
        # d(s^a) = a s^(a-1) ds
        lowered = E.Num(exp.value - 1) if isinstance(exp, E.Num) else E.add(exp, _minus_one())
        return E.mul(exp, E.power(base, lowered), E.dif(base))
    if not isinstance(exp, E.Num):
        raise UnsupportedError(
            "derivgen cannot differentiate a matrix power with a symbolic exponent",
            hint="use an integer power such as `X^3`, or `det(X^k)`, which is rewritten as `det(X)^k`",
        )
    k = int(exp.value)
    if k < 0:
        inner = E.inv(base)
        return expand_one(E.power(inner, E.Num(Fraction(-k))), depends) if -k > 1 else expand_one(inner, depends)
    terms = [E.mul(E.power(base, E.Num(Fraction(i))), E.dif(base), E.power(base, E.Num(Fraction(k - 1 - i)))) for i in range(k)]
    return E.add(*terms, shape=u.shape)


def _func(u: E.Func) -> Expr:
    """d f(U) by the registry's template for f (derivgen/functions.py), over this argument."""
    return instantiate(functions.FUNCTIONS[u.name].template(_kind(u.arg)), u.arg, u)


def _kind(a: Expr) -> str:
    """"scalar", "vector" or "matrix": which of a registry entry's templates serves argument `a`."""
    return "scalar" if a.is_scalar else "vector" if a.shape[1] == 1 else "matrix"


def instantiate(template: str, arg: Expr, value: Expr | None = None) -> Expr:
    """A registry template (derivgen/functions.py) over `arg`: `U` is `arg`, `dU` its
    differential d(arg) and `F` the function's `value` there."""
    parsed = _parsed(template, arg.shape, None if value is None else value.shape)
    mapping = {E.Sym("U", arg.shape): arg, E.Sym("dU", arg.shape): E.dif(arg)}
    if value is not None:
        mapping[E.Sym("F", value.shape)] = value
    return E.transform_top(parsed, lambda n: mapping.get(n) if isinstance(n, E.Sym) else None)


@lru_cache(maxsize=None)
def _parsed(template: str, shape: E.Shape, value_shape: E.Shape | None) -> Expr:
    from ..parse import PlainSource, Scope, parse_expr

    scope = Scope()
    scope.declare("U", shape)
    scope.declare("dU", shape)
    if value_shape is not None:
        scope.declare("F", value_shape)
    return parse_expr(PlainSource(template), scope)


class Expander:
    """Expands d(...) in steps for one derivation.

    `variables`: the names whose differential is a leaf (the variable differentiated, and the
    `where:` names that depend on it); everything else is constant."""

    def __init__(self, variables: set[str]):
        self.variables = variables
        self._cache: dict[Expr, bool] = {}

    def depends(self, e: Expr) -> bool:
        hit = self._cache.get(e)
        if hit is None:
            hit = any(isinstance(n, E.Sym) and n.name in self.variables for n in E.walk(e))
            self._cache[e] = hit
        return hit

    def resolve(self, e: Expr) -> tuple[Expr, bool]:
        """d(variable) → dX, d(constant) → 0. Returns the expression and whether a constant fell away."""
        dropped = False

        def visit(n: Expr):
            nonlocal dropped
            if isinstance(n, D):
                if not self.depends(n.arg):
                    dropped = True
                    return E.zero(n.shape)
                if isinstance(n.arg, E.Sym):
                    return E.Dif(n.arg.name, n.arg.shape)
            return None

        return E.transform_top(e, visit), dropped

    def first_pending(self, e: Expr) -> D | None:
        for n in E.walk(e):
            if isinstance(n, D):
                return n
        return None

    def first_linear(self, e: Expr) -> D | None:
        """The first pending d(…) whose rule is a linear map (LINEAR_RULES), if any."""
        for n in E.walk(e):
            if isinstance(n, D) and rule_of(n.arg, self.depends) in LINEAR_RULES:
                return n
        return None

    def rule(self, u: Expr, quotients: bool) -> str:
        if quotients and quotient_parts(u, self.depends) is not None:
            return "D38"
        return rule_of(u, self.depends)

    def expand(self, u: Expr, quotients: bool) -> Expr:
        if quotients and quotient_parts(u, self.depends) is not None:
            return quotient_rule(u, self.depends)
        return expand_one(u, self.depends)

    def steps(self, start: Expr, limit: int = 200, linear_first: bool = False) -> list[Step]:
        """The expansion of `start` (which holds D nodes) as steps, until no d(...) is left.

        `linear_first`: linear maps (sums, constant factors, transposes, traces) are applied
        wherever they fit before the next other rule, so that they come in runs a coarser
        detail shows as one line (derive.detail), and a quotient u/v of two expressions that
        both depend on the variables takes the quotient rule (D38) rather than the product rule
        over u's factors and v⁻¹ at once."""
        out: list[Step] = []
        e, dropped = self.resolve(start)
        if dropped or e != start:
            out.append(Step(e, ("D0",) if dropped else ()))
        for _ in range(limit):
            target = (self.first_linear(e) if linear_first else None) or self.first_pending(e)
            if target is None:
                return out
            q = linear_first
            rule = self.rule(target.arg, q)

            def apply(n: Expr):
                if isinstance(n, D) and self.rule(n.arg, q) == rule:
                    return self.expand(n.arg, q)
                return None

            new = E.transform_top(e, apply)
            new, dropped = self.resolve(new)
            out.append(Step(new, (rule, "D0") if dropped else (rule,)))
            e = new
        raise UnsupportedError("the differential did not finish expanding")  # pragma: no cover

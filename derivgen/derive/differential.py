"""Expanding differentials `d(...)` one rule at a time.

Each step picks the first unexpanded `d(U)` (in reading order), takes the rule for U's outermost
operation, and applies that one rule to every `d(...)` of the same kind. Differentials of
constants become 0 on the spot (rule D0) and `d` of a variable becomes the leaf `dX`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

from .. import expr as E
from ..errors import UnsupportedError
from ..expr import D, Expr
from .model import Step

FUNC_RULES = {
    "tr": "D4", "det": "D6", "logdet": "D7", "exp": "D13", "log": "D14", "sigma": "D15",
    "tanh": "D16", "sqrt": "D17", "norm": "D18", "softmax": "D19", "logsumexp": "D20",
    "diag": "D21", "diagvec": "D21", "sum": "D22", "vec": "D24",
}


LINEAR_RULES = frozenset({"D1", "D3", "D4", "D21", "D22", "D23", "D24"})  # d of a linear map of U: that map of dU


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
        return FUNC_RULES[u.name]
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
    """d(u/v) = (du·v − u·dv)/v² (D26), with du and dv left to expand."""
    num, den = quotient_parts(u, depends)
    top = E.sub(E.mul(E.dif(num), den), E.mul(num, E.dif(den)))
    return E.mul(top, E.power(den, E.Num(Fraction(-2))))


def _minus_one() -> E.Num:
    return E.Num(Fraction(-1))


def _ones_like(u: Expr) -> Expr:
    return E.ONE if u.is_scalar else E.Ones(u.shape)


def _times_elementwise(a: Expr, du: Expr) -> Expr:
    """a ⊙ du, or the ordinary product for scalars."""
    return E.mul(a, du) if a.is_scalar else E.had(a, du)


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
    a, name, d = u.arg, u.name, E.dif
    if name == "tr":
        return E.fn("tr", d(a))
    if name == "det":
        return E.mul(u, E.fn("tr", E.mul(E.inv(a), d(a))))
    if name == "logdet":
        return E.fn("tr", E.mul(E.inv(a), d(a)))
    if name == "exp":
        return _times_elementwise(u, d(a))
    if name == "log":
        return E.hdiv(d(a), a) if not a.is_scalar else E.mul(E.power(a, _minus_one()), d(a))
    if name == "sigma":
        return _times_elementwise(E.had(u, E.sub(_ones_like(a), u)) if not a.is_scalar else E.mul(u, E.sub(E.ONE, u)), d(a))
    if name == "tanh":
        return _times_elementwise(E.sub(_ones_like(a), E.hpow(u, Fraction(2))), d(a))
    if name == "sqrt":
        two_root = E.mul(E.Num(Fraction(2)), u)
        return E.hdiv(d(a), two_root) if not a.is_scalar else E.mul(E.power(two_root, _minus_one()), d(a))
    if name == "norm":
        inner = E.mul(E.tp(a), d(a))
        if a.shape[1] != 1:
            inner = E.fn("tr", inner)
        return E.mul(inner, E.power(u, _minus_one()))
    if name == "softmax":
        s = u
        return E.mul(E.sub(E.fn("diag", s), E.mul(s, E.tp(s))), d(a))
    if name == "logsumexp":
        return E.mul(E.tp(E.fn("softmax", a)), d(a))
    if name in ("diag", "diagvec"):
        return E.fn(name, d(a))
    if name == "vec":
        return E.vec(d(a))
    if name == "sum":
        if a.is_scalar:
            return d(a)
        return E.mul(E.tp(E.Ones((a.shape[0], 1))), d(a), E.Ones((a.shape[1], 1)))
    raise UnsupportedError(f"no differential rule for {name}")  # pragma: no cover


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
            return "D26"
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
        both depend on the variables takes the quotient rule (D26) rather than the product rule
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

"""Simplification of a gradient, one visible rule per step.

The passes, in the order they are tried: transposes pushed inward (S1), a matrix times its
inverse (S6), powers of a scalar combined (S7), numbers out of inverses and powers (S17),
assumptions (S4 symmetric, S15 probability vectors, S13 symmetric by construction, S5
orthogonal), elementwise products and scaled sums expanded where terms cancel (S14, T7), like
terms collected (S2), common factors taken out (S3), repeated factors as powers (S9), diagonal
algebra (S10, S16), the logistic function (S11), step/relu/sign/abs of one argument (S18), 1 − σ(−u) = σ(u)
(S19), a transposed vector summed by the all-ones written 1ᵀu (J4), and `where:` definitions put
back by name (S8).
Each pass that changes something is one step.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Callable

from .. import expr as E
from ..expr import Expr
from .facts import declared_symmetric, is_symmetric
from .model import Step


# ----------------------------------------------------------------------------- S1 transposes


def transpose_of(a: Expr, in_product: bool = False) -> Expr:
    """Aᵀ with the transpose moved as far inward as reads well."""
    if a.is_scalar:
        return a
    if isinstance(a, E.Transpose):
        return a.arg
    if isinstance(a, E.MatMul):
        return E.mul(E.Num(a.coeff), *a.scalars, *(transpose_of(f, True) for f in reversed(a.chain)))
    if isinstance(a, E.Add):
        pushed = E.add(*(transpose_of(t) for t in a.terms))
        if isinstance(pushed, E.Add) and Counter(pushed.terms) == Counter(a.terms):
            return a  # a symmetric sum such as diag(s) - s sᵀ or A + Aᵀ keeps its order
        return E.tp(a) if in_product else pushed  # (A + B)ᵀ stays a unit inside a product
    if isinstance(a, E.Hadamard):
        return E.had(*(transpose_of(f) for f in a.factors))
    if isinstance(a, E.HadDiv):
        return E.hdiv(transpose_of(a.num), transpose_of(a.den))
    if isinstance(a, E.HadPow):
        return E.hpow(transpose_of(a.base), a.exp)
    if isinstance(a, E.Func) and a.name in E.ELEMENTWISE:
        # f(U)ᵀ = f(Uᵀ) only where that removes a transpose: tanh(W X)ᵀ stays, as textbooks write Hᵀ
        inner = transpose_of(a.arg)
        return E.fn(a.name, inner) if _transpose_count(inner) < _transpose_count(a.arg) else E.tp(a)
    if isinstance(a, E.Func) and a.name == "diag":
        return a
    if isinstance(a, E.Power):
        return E.power(transpose_of(a.base, True), a.exp)
    if isinstance(a, E.SumOver):
        return E.sumover(a.index, a.count, transpose_of(a.body))
    if isinstance(a, E.Kron):  # (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ
        return E.kron(transpose_of(a.a, True), transpose_of(a.b, True))
    if isinstance(a, E.Ones) and a.shape[1] != 1:
        return E.Ones((a.shape[1], a.shape[0]))
    if isinstance(a, (E.Eye, E.Zero, E.Num)):
        return E.tp(a)
    return E.tp(a)


def push_transposes(e: Expr) -> Expr:
    """Every transpose in `e` moved inward (S1)."""

    def visit(n: Expr, in_product: bool = False) -> Expr:
        if isinstance(n, E.Transpose):
            inner = visit(n.arg)
            return transpose_of(inner, in_product)
        kids = n.children()
        if not kids:
            return n
        if isinstance(n, E.MatMul):
            new = tuple(visit(k, True) for k in kids)
        else:
            new = tuple(visit(k) for k in kids)
        if all(a is b for a, b in zip(new, kids)):
            return n
        return n.rebuild(new)

    return visit(e)


# ----------------------------------------------------------------------------- S2 collect, S3 factor


def split_coeff(t: Expr) -> tuple[Fraction, Expr]:
    """A term as coefficient × body (body has coefficient 1)."""
    if isinstance(t, E.MatMul):
        return t.coeff, E.mul(*t.scalars, *t.chain)
    if isinstance(t, E.Num):
        return t.value, E.ONE
    return Fraction(1), t


def collect(e: Expr) -> Expr:
    """aA + bA = (a + b)A in every sum (S2)."""

    def visit(n: Expr):
        if not isinstance(n, E.Add):
            return None
        order: list[Expr] = []
        coeffs: dict[Expr, Fraction] = {}
        for t in n.terms:
            c, body = split_coeff(t)
            if body not in coeffs:
                order.append(body)
                coeffs[body] = Fraction(0)
            coeffs[body] += c
        if len(order) == len(n.terms):
            return None
        return E.add(*(E.mul(E.Num(coeffs[b]), b) for b in order if coeffs[b] != 0), shape=n.shape)

    return E.transform(e, visit)


def _chain_of(t: Expr) -> tuple[Fraction, list[Expr], list[Expr]]:
    if isinstance(t, E.MatMul):
        return t.coeff, list(t.scalars), list(t.chain)
    if t.is_scalar:
        return Fraction(1), [t], []
    return Fraction(1), [], [t]


def _transpose_count(e: Expr) -> int:
    return sum(isinstance(n, E.Transpose) for n in E.walk(e))


def factor(e: Expr) -> Expr:
    """AB + AC = A(B + C) and BA + CA = (B + C)A, when every term has the common factor (S3)."""

    def visit(n: Expr):
        if not isinstance(n, E.Add):
            return None
        if n.is_scalar:  # a scalar gradient: σᵀ1 − yᵀ1 = (σ − y)ᵀ1, on ones only
            return _scalar_sum_on_ones(n)
        parts = [_chain_of(t) for t in n.terms]
        if all(ch for _, _, ch in parts):  # a scalar every term has: a/N − b/N = (a − b)/N
            for s in dict.fromkeys(parts[0][1]):
                if all(s in sc for _, sc, _ in parts[1:]):
                    rest = []
                    for c, sc, ch in parts:
                        sc = list(sc)
                        sc.remove(s)
                        rest.append(E.mul(E.Num(c), *sc, *ch))
                    return E.mul(_tidy_sum(rest), s)
        if any(len(ch) < 2 for _, _, ch in parts):
            return None
        # the longest common end and then start at once, each term keeping a factor:
        # −CX(X'CX)⁻¹A(X'CX)⁻¹ − CX(X'CX)⁻¹A'(X'CX)⁻¹ = −CX(X'CX)⁻¹(A + A')(X'CX)⁻¹ in one line
        room = min(len(ch) for _, _, ch in parts) - 1
        end = 0
        while end < room and all(ch[-1 - end] == parts[0][2][-1 - end] for _, _, ch in parts):
            end += 1
        start = 0
        while start < room - end and all(ch[start] == parts[0][2][start] for _, _, ch in parts):
            start += 1
        if not start + end:
            return None
        first, last = parts[0][2][:start], parts[0][2][len(parts[0][2]) - end:]
        inner = [E.mul(E.Num(c), *sc, *ch[start:len(ch) - end]) for c, sc, ch in parts]
        inner.sort(key=_transpose_count)
        return E.mul(*first, _tidy_sum(inner), *last)

    def some(n: Expr):
        """Xᵀa + λw − Xᵀb = Xᵀ(a − b) + λw: the largest group of terms with a common first or last
        factor (or, failing that, a common scalar: A/s + Aᵀ/s = (A + Aᵀ)/s), as a teacher groups them."""
        if not isinstance(n, E.Add) or n.is_scalar or len(n.terms) < 3:
            return None
        parts = [_chain_of(t) for t in n.terms]
        best: tuple[int, list[int], str, Expr] | None = None
        for side in ("first", "last"):
            groups: dict[Expr, list[int]] = {}
            for i, (_, _, ch) in enumerate(parts):
                if len(ch) >= 2:
                    groups.setdefault(ch[0] if side == "first" else ch[-1], []).append(i)
            for f, members in groups.items():
                if 2 <= len(members) < len(parts) and (best is None or len(members) > best[0]):
                    best = (len(members), members, side, f)
        if best is None:
            scalar_groups: dict[Expr, list[int]] = {}
            for i, (_, sc, ch) in enumerate(parts):
                if ch:
                    for s in dict.fromkeys(sc):
                        scalar_groups.setdefault(s, []).append(i)
            for f, members in scalar_groups.items():
                if 2 <= len(members) < len(parts) and (best is None or len(members) > best[0]):
                    best = (len(members), members, "scalar", f)
        if best is None:
            return None
        _, members, side, f = best
        group = E.add(*(n.terms[i] for i in members), shape=n.shape)
        if side == "scalar":
            rest = []
            for i in members:
                c, sc, ch = parts[i]
                sc = list(sc)
                sc.remove(f)
                rest.append(E.mul(E.Num(c), *sc, *ch))
            grouped = E.mul(_tidy_sum(rest), f)
        else:
            grouped = visit(group)
        if grouped is None:
            return None
        terms = [grouped if i == members[0] else t for i, t in enumerate(n.terms) if i == members[0] or i not in members]
        return E.add(*terms, shape=n.shape)

    def either(n: Expr):
        return visit(n) or some(n)

    return E.transform(e, either)


def _scalar_sum_on_ones(n: E.Add) -> Expr | None:
    """uᵀ1 − vᵀ1 = 1ᵀ(u − v): the terms of a scalar sum that all end in the same all-ones vector,
    written as the textbook sums the entries of one vector."""
    parts = [_chain_of(t) for t in n.terms]
    last = parts[0][2][-1] if parts[0][2] else None
    if not isinstance(last, E.Ones) or any(len(ch) < 2 or ch[-1] != last or sc for _, sc, ch in parts):
        return None
    rows = E.add(*(E.mul(E.Num(c), *ch[:-1]) for c, _, ch in parts))
    return E.mul(E.tp(last), push_transposes(E.tp(rows)))


def ones_first(e: Expr) -> Expr:
    """uᵀ1 = 1ᵀu for a 1×1 product of a transposed vector and the all-ones (J4): the sum of u's
    entries, written as the textbook writes it, 1ᵀ(Xw + b1 − y)."""

    if not e.is_scalar:
        return e

    def visit(n: Expr):
        if isinstance(n, E.MatMul) and n.is_scalar and len(n.chain) == 2:
            u, one = n.chain
            if isinstance(one, E.Ones) and isinstance(u, E.Transpose) and not isinstance(u.arg, E.Sym):  # pᵀ1 stays
                return E.mul(E.Num(n.coeff), *n.scalars, E.tp(one), u.arg)
        return None

    return E.transform(e, visit)


def _tidy_sum(terms: list[Expr]) -> Expr:
    """A sum whose terms share a coefficient sign: −A − B stays a sum, a common rational is taken out."""
    coeffs = [split_coeff(t)[0] for t in terms]
    if all(c == coeffs[0] for c in coeffs) and coeffs[0] != 1:
        c = coeffs[0]
        return E.mul(E.Num(c), E.add(*(split_coeff(t)[1] for t in terms)))
    return E.add(*terms)


# ----------------------------------------------------------------------------- S4, S5, S6, S7, S9


def symmetric(e: Expr, names: set[str]) -> Expr:
    """Aᵀ = A and A⁻ᵀ = A⁻¹ for symmetric A (S4)."""

    def visit(n: Expr):
        if isinstance(n, E.Transpose):
            a = n.arg
            if isinstance(a, E.Sym) and a.name in names:
                return a
            if isinstance(a, E.Inverse) and isinstance(a.arg, E.Sym) and a.arg.name in names:
                return a
        return None

    return E.transform(e, visit)


def built_symmetric(e: Expr, names: frozenset[str]) -> Expr:
    """Mᵀ = M for a matrix symmetric by construction: XᵀX, UᵀSU, A + Aᵀ, (XᵀX)⁻¹ (S13)."""

    def visit(n: Expr):
        if isinstance(n, E.Transpose) and is_symmetric(n.arg, names):
            return n.arg
        return None

    return E.transform(e, visit)


def _monomials(e: Expr) -> list[tuple[Fraction, Counter]] | None:
    """`e` as a sum of c·(elementwise product of atoms); None when it is no such sum."""
    if isinstance(e, E.Ones):
        return [(Fraction(1), Counter())]
    if isinstance(e, E.Add):
        out = []
        for t in e.terms:
            m = _monomials(t)
            if m is None:
                return None
            out += m
        return out
    if isinstance(e, E.Num):
        return [(e.value, Counter())]
    if isinstance(e, E.MatMul) and not e.scalars and len(e.chain) == 1:
        inner = _monomials(e.chain[0])
        return None if inner is None else [(e.coeff * c, m) for c, m in inner]
    scalar_product = isinstance(e, E.MatMul) and e.is_scalar and not e.chain  # (1 − y)·σ
    if scalar_product or isinstance(e, E.Hadamard):
        out = [(e.coeff if scalar_product else Fraction(1), Counter())]
        for f in e.scalars if scalar_product else e.factors:
            m = _monomials(f)
            if m is None or len(out) * len(m) > 64:
                return None
            out = [(c1 * c2, m1 + m2) for c1, m1 in out for c2, m2 in m]
        return out
    return [(Fraction(1), Counter({e: 1}))]


def _collected(monomials: list[tuple[Fraction, Counter]]) -> dict[frozenset, Fraction]:
    """Like monomials added up (zero sums kept), in order of first appearance."""
    collected: dict[frozenset, Fraction] = {}
    for c, m in monomials:
        key = frozenset(m.items())
        collected[key] = collected.get(key, Fraction(0)) + c
    return collected


def _has_hadamard(t: Expr) -> bool:
    return isinstance(t, E.Hadamard) or (isinstance(t, E.MatMul) and len(t.chain) == 1
                                         and isinstance(t.chain[0], E.Hadamard))


def _has_inner_sum(t: Expr) -> bool:
    return isinstance(t, E.MatMul) and not t.scalars and len(t.chain) == 1 and isinstance(t.chain[0], E.Add)


def sums_expanded(e: Expr) -> Expr:
    """c(a + b) = ca + cb inside a sum, where that lets terms cancel: a − (a + x) − x = a − a − x − x (T7)."""
    return _expand_where_cancelling(e, lambda n: not any(_has_hadamard(t) for t in n.terms)
                                    and any(_has_inner_sum(t) for t in n.terms))


def hadamard_expand(e: Expr) -> Expr:
    """(a − b) ⊙ c = a ⊙ c − b ⊙ c and 1 ⊙ u = u, where expanding lets terms cancel (S14):
    (1 − y) ⊙ σ − y ⊙ (1 − σ) = σ − y."""
    return _expand_where_cancelling(e, lambda n: any(_has_hadamard(t) for t in n.terms))


def _expand_where_cancelling(e: Expr, applies) -> Expr:
    def visit(n: Expr):
        if not isinstance(n, E.Add) or n.is_scalar or not applies(n):
            return None
        # in the order the sum is printed (a leading minus moved back), so the expansion reads on
        negative = [isinstance(t, E.MatMul) and t.coeff < 0 for t in n.terms]
        ordered = n.terms if not negative[0] or all(negative) else tuple(
            [t for t, neg in zip(n.terms, negative) if not neg] + [t for t, neg in zip(n.terms, negative) if neg])
        monomials = _monomials(E.add(*ordered, shape=n.shape))
        if monomials is None:
            return None
        collected = _collected(monomials)
        nonzero = sum(1 for c in collected.values() if c != 0)
        if not (any(c == 0 for c in collected.values()) or nonzero < len(n.terms)):
            return None  # nothing cancels: the factored form reads better
        # the expanded sum, term by term as a teacher writes it; like terms are collected next (S2)
        terms = [E.mul(E.Num(c), _monomial(key, n.shape)) for c, key in
                 ((c, frozenset(m.items())) for c, m in monomials)]
        expanded = E.add(*terms, shape=n.shape)
        return expanded if expanded != n else None

    return E.transform(e, visit)


def _monomial(key: frozenset, shape) -> Expr:
    atoms = [a for a, k in sorted(key, key=lambda ak: str(ak[0])) for _ in range(k)]
    if shape == E.SCALAR:
        return E.mul(*atoms) if atoms else E.ONE
    return E.had(*atoms) if atoms else E.Ones(shape)


def scalar_coefficients(e: Expr) -> Expr:
    """aC + bC = (a + b)C for scalars a, b and one matrix chain C, where the scalars' sum cancels
    when multiplied out: (1 − y)σ x − y(1 − σ) x = (σ − y) x (S2)."""

    def visit(n: Expr):
        if not isinstance(n, E.Add) or n.is_scalar:
            return None
        groups: dict[tuple, list[Expr]] = {}
        for t in n.terms:
            c, scalars, chain = _chain_of(t)
            groups.setdefault(tuple(chain), []).append(E.mul(E.Num(c), *scalars) if scalars else E.Num(c))
        if len(groups) == len(n.terms):
            return None
        terms, changed = [], False
        for chain, parts in groups.items():
            monomials = _monomials(E.add(*parts)) if len(parts) > 1 else None
            collected = _collected(monomials) if monomials else {}
            if not any(c == 0 for c in collected.values()):
                terms += [E.mul(p, *chain) for p in parts]
                continue
            total = E.add(*(E.mul(E.Num(c), _monomial(k, E.SCALAR)) for k, c in collected.items() if c != 0))
            terms.append(E.mul(total, *chain))
            changed = True
        return E.add(*terms, shape=n.shape) if changed else None

    return E.transform(e, visit)


def hadamard_collect(e: Expr) -> Expr:
    """Like elementwise terms collected: σ − y⊙σ − y + y⊙σ = σ − y (S2)."""

    def visit(n: Expr):
        if not isinstance(n, E.Add) or n.is_scalar:
            return None
        monomials = []
        for t in n.terms:
            m = _monomials(t)
            if m is None or len(m) != 1:
                return None
            monomials += m
        collected = _collected(monomials)
        if len(collected) == len(monomials):
            return None
        terms = [E.mul(E.Num(c), _monomial(key, n.shape)) for key, c in collected.items() if c != 0]
        return E.add(*terms, shape=n.shape) if terms else E.zero(n.shape)

    return E.transform(e, visit)


def hadamard_factor(e: Expr) -> Expr:
    """A factor every term of an elementwise sum has, taken out: a ⊙ 1 − 2 a ⊙ x = a ⊙ (1 − 2x),
    σ − σ ⊙ σ = σ ⊙ (1 − σ) (S3)."""

    def visit(n: Expr):
        if not isinstance(n, E.Add) or n.is_scalar or not any(_has_hadamard(t) for t in n.terms):
            return None
        whole = _common_hadamard_factors(n)
        if whole is not None:
            return whole
        expanded = _monomials(n)
        if expanded is None:
            return None
        monomials = [(c, Counter(dict(key))) for key, c in _collected(expanded).items() if c != 0]
        if len(monomials) < 2 or any(isinstance(a, E.Eye) for _, m in monomials for a in m):
            return None  # I ⊙ G is G's diagonal: 2X⁻¹ − I ⊙ X⁻¹ stays as the Cookbook writes it
        common = monomials[0][1].copy()
        for _, m in monomials[1:]:
            common &= m
        if not common or any(isinstance(f, E.Eye) for _, m in monomials for f in m - common):
            return None  # 2X⁻¹ − I ⊙ X⁻¹ stays: X⁻¹ ⊙ (2·1 − I) hides the diagonal behind a ones-matrix
        rest = E.add(*(E.mul(E.Num(c), _monomial(frozenset((m - common).items()), n.shape)) for c, m in monomials),
                     shape=n.shape)
        out = E.had(_monomial(frozenset(common.items()), n.shape), rest)
        return out if _size(out) < _size(n) else None

    return E.transform(e, visit)


def _common_hadamard_factors(n: E.Add) -> Expr | None:
    """a ⊙ s ⊙ (1 − s) − b ⊙ s ⊙ (1 − s) = (a − b) ⊙ s ⊙ (1 − s): factors every term has as it
    stands, taken out before any is multiplied out."""
    parts = []
    for t in n.terms:
        c, sc, ch = _chain_of(t)
        if sc or len(ch) != 1:
            return None
        parts.append((c, list(ch[0].factors) if isinstance(ch[0], E.Hadamard) else [ch[0]]))
    common = Counter(parts[0][1])
    for _, fs in parts[1:]:
        common &= Counter(fs)
    if not common:
        return None
    rest = []
    for c, fs in parts:
        left = list((Counter(fs) - common).elements())
        if not left:
            return None
        rest.append(E.mul(E.Num(c), E.had(*left) if len(left) > 1 else left[0]))
    kept, budget = [], common.copy()
    for f in parts[0][1]:  # in the order the first term writes them
        if budget[f] > 0:
            kept.append(f)
            budget[f] -= 1
    inner = _tidy_sum(rest)
    leading = parts[0][1][0] in common  # the factors stay on the side the first term has them
    return E.had(*kept, inner) if leading else E.had(inner, *kept)


def probability_sums(e: Expr, names: frozenset[str]) -> Expr:
    """1ᵀp = pᵀ1 = 1 for a probability vector p (simplex or one-hot), and column by column for a
    matrix P whose columns are: 1ᵀP = 1ᵀ, Pᵀ1 = 1 (S15)."""

    def ones(f: Expr, transposed: bool) -> E.Ones | None:
        """The all-ones matrix `f` is (read transposed when it stands left of P), or None."""
        if isinstance(f, E.Transpose) and isinstance(f.arg, E.Ones):
            f, transposed = f.arg, not transposed
        if not isinstance(f, E.Ones):
            return None
        return E.Ones((f.shape[1], f.shape[0])) if transposed else f

    def is_p(f: Expr, transposed: bool) -> bool:
        if transposed:
            return isinstance(f, E.Transpose) and isinstance(f.arg, E.Sym) and f.arg.name in names
        return isinstance(f, E.Sym) and f.name in names

    def constant(shape) -> Expr:
        return E.ONE if shape == E.SCALAR else E.Ones(shape)

    def visit(n: Expr):
        if not isinstance(n, E.MatMul) or len(n.chain) < 2:
            return None
        chain = list(n.chain)
        for i in range(len(chain) - 1):
            a, b = chain[i], chain[i + 1]
            left, right = ones(a, False), ones(b, False)
            if left is not None and is_p(b, False):  # 1ᵀP = 1ᵀ (the ones' rows, P's columns)
                merged = constant((left.shape[0], b.shape[1]))
            elif right is not None and is_p(a, True):  # Pᵀ1 = 1
                merged = constant((a.shape[0], right.shape[1]))
            else:
                continue
            rest = chain[:i] + ([merged] if merged is not E.ONE else []) + chain[i + 2:]
            return E.mul(E.Num(n.coeff), *n.scalars, *rest) if (rest or n.scalars) else E.Num(n.coeff)
        return None

    return E.transform(e, visit)


def _chain_rewrite(e: Expr, pair: Callable[[Expr, Expr], list[Expr] | None]) -> Expr:
    """Rewrite adjacent chain factors (a, b) → pair(a, b) in every product, until none fits."""

    def visit(n: Expr):
        if not isinstance(n, E.MatMul) or len(n.chain) < 2:
            return None
        chain = list(n.chain)
        changed = False
        i = 0
        while i < len(chain) - 1:
            rep = pair(chain[i], chain[i + 1])
            if rep is not None:
                chain[i:i + 2] = rep
                changed = True
                i = max(i - 1, 0)
            else:
                i += 1
        if not changed:
            return None
        if not chain:
            chain = [E.Eye(n.shape[0])]
        return E.mul(E.Num(n.coeff), *n.scalars, *chain)

    return E.transform(e, visit)


def orthogonal(e: Expr, names: set[str]) -> Expr:
    """QᵀQ = QQᵀ = I (S5)."""

    def pair(a, b):
        for x, y in ((a, b), (b, a)):
            if isinstance(x, E.Transpose) and isinstance(x.arg, E.Sym) and x.arg.name in names and y == x.arg:
                return [E.Eye(a.shape[0])]
        return None

    return _chain_rewrite(e, pair)


def cancel_inverses(e: Expr) -> Expr:
    """AA⁻¹ = A⁻¹A = I (S6)."""

    def pair(a, b):
        if isinstance(b, E.Inverse) and b.arg == a or isinstance(a, E.Inverse) and a.arg == b:
            return [E.Eye(a.shape[0])]
        if isinstance(a, E.Transpose) and isinstance(b, E.Transpose):
            if isinstance(b.arg, E.Inverse) and b.arg.arg == a.arg or isinstance(a.arg, E.Inverse) and a.arg.arg == b.arg:
                return [E.Eye(a.shape[0])]
        return _product_inverse_pair(a, b)

    return _chain_rewrite(e, pair)


def _plain_product(m: Expr) -> tuple[Expr, ...] | None:
    return m.chain if isinstance(m, E.MatMul) and m.coeff == 1 and not m.scalars and len(m.chain) > 1 else None


def _product_inverse_pair(a: Expr, b: Expr) -> list[Expr] | None:
    """F(RF)⁻¹ = R⁻¹ and (FR)⁻¹F = R⁻¹ for a square F (then R is square, and both are invertible
    where RF is), with their transposes Fᵀ(FR)⁻ᵀ = R⁻ᵀ and (RF)⁻ᵀFᵀ = R⁻ᵀ: A'*inv(A*X*B)'*B' = inv(X)' (S6)."""
    if not (a.is_square and b.is_square):
        return None
    if isinstance(b, E.Inverse) and (ch := _plain_product(b.arg)) and ch[-1] == a:
        return [E.inv(E.mul(*ch[:-1]))]
    if isinstance(a, E.Inverse) and (ch := _plain_product(a.arg)) and ch[0] == b:
        return [E.inv(E.mul(*ch[1:]))]
    if isinstance(b, E.Transpose) and isinstance(b.arg, E.Inverse) and (ch := _plain_product(b.arg.arg)) \
            and transpose_of(ch[0]) == a:
        return [E.tp(E.inv(E.mul(*ch[1:])))]
    if isinstance(a, E.Transpose) and isinstance(a.arg, E.Inverse) and (ch := _plain_product(a.arg.arg)) \
            and transpose_of(ch[-1]) == b:
        return [E.tp(E.inv(E.mul(*ch[:-1])))]
    return None


def _base_exp(f: Expr) -> tuple[Expr, Expr]:
    if isinstance(f, E.Power):
        return f.base, f.exp
    return f, E.ONE


def fewer_signs(e: Expr) -> Expr:
    """A negative multiple of a sum with a negative term has the sign taken into the sum, where
    that leaves fewer minus signs: −(y − s)xᵀ = (s − y)xᵀ (distributivity, on the line that made it)."""

    def visit(n: Expr):
        if not (isinstance(n, E.MatMul) and n.coeff < 0):
            return None
        factors = [*n.scalars, *n.chain]
        for k, f in enumerate(factors):
            minus = sum(E.is_negative(t) for t in E.terms(f)) if isinstance(f, E.Add) else 0
            if isinstance(f, E.Add) and 2 * minus >= len(f.terms):
                flipped = E.add(*(E.neg(t) for t in f.terms), shape=f.shape)
                if sum(E.is_negative(t) for t in E.terms(flipped)) < minus + 1:  # the coefficient's minus counts
                    return E.mul(E.Num(-n.coeff), *factors[:k], flipped, *factors[k + 1:])
        return None

    return E.transform(e, visit)


def diagonal_products(e: Expr) -> Expr:
    """diag(a) diag(b) = diag(a ⊙ b) (S10)."""

    def pair(a, b):
        if isinstance(a, E.Func) and isinstance(b, E.Func) and a.name == b.name == "diag":
            return [E.fn("diag", E.had(a.arg, b.arg))]
        return None

    return _chain_rewrite(e, pair)


def _is_diag(f: Expr) -> bool:
    return isinstance(f, E.Func) and f.name == "diag"


def _diag_identity(f: Expr) -> Expr | None:
    """diag(1) = I, diag(u ⊘ u) = I, and the diagonal of an outer product diag(u vᵀ) = u ⊙ v."""
    if _is_diag(f) and (isinstance(f.arg, E.Ones) or (isinstance(f.arg, E.HadDiv) and f.arg.num == f.arg.den)):
        return E.Eye(f.shape[0])
    if isinstance(f, E.Func) and f.name == "diagvec" and isinstance(f.arg, E.MatMul) and len(f.arg.chain) == 2:
        u, v = f.arg.chain
        if u.shape[1] == 1 and v.shape[0] == 1:
            return E.mul(E.Num(f.arg.coeff), *f.arg.scalars, E.had(u, transpose_of(v)))
    return None


def _diag_pair(a: Expr, b: Expr) -> list[Expr] | None:
    """diag(a) diag(b) = diag(a ⊙ b); uᵀ diag(1 ⊘ u) = 1ᵀ and diag(1 ⊘ u) u = 1 for vectors u
    (a general diag(v) u stays: a Hessian differentiates it further, and cannot vectorise v ⊙ u)."""
    if _is_diag(a) and _is_diag(b):
        return [E.fn("diag", E.had(a.arg, b.arg))]
    if isinstance(a, E.Transpose) and a.arg.shape[1] == 1 and _is_diag(b):
        out = _ones_over_self(E.had(a.arg, b.arg))
        return [E.tp(out)] if isinstance(out, E.Ones) else None
    if isinstance(b, E.HadDiv) and b.shape[1] == 1 and not b.is_scalar:  # c ⊘ u after diag(u) or uᵀ
        if _is_diag(a) and a.arg == b.den:
            return [b.num]  # diag(u)(c ⊘ u) = c
        if isinstance(a, E.Transpose) and a.arg == b.den:
            return [E.tp(E.Ones(b.shape)), b.num]  # uᵀ(c ⊘ u) = 1ᵀc
    if _is_diag(a) and b.shape[1] == 1 and not b.is_scalar:
        out = _ones_over_self(E.had(a.arg, b))
        return [out] if isinstance(out, E.Ones) else None
    return None


def _ones_over_self(e: Expr) -> Expr:
    return E.Ones(e.shape) if isinstance(e, E.HadDiv) and e.num == e.den else e


def diagonal_algebra(e: Expr) -> Expr:
    """diag(a) + diag(b) = diag(a + b), diag(1) = I, and a product of a sum with a diagonal
    matrix multiplied out where that makes it shorter: (diag(s) − s sᵀ) diag(1 ⊘ s) = I − s 1ᵀ (S16)."""

    def visit(n: Expr):
        if isinstance(n, E.Func):
            return _diag_identity(n)
        if isinstance(n, E.Add):
            diags = [t for t in n.terms if _is_diag(t) or (isinstance(t, E.MatMul) and not t.scalars
                                                         and len(t.chain) == 1 and _is_diag(t.chain[0]))]
            if len(diags) < 2:
                return None
            inner = E.add(*(E.mul(E.Num(t.coeff), t.chain[0].arg) if isinstance(t, E.MatMul) else t.arg for t in diags))
            rest = [t for t in n.terms if t not in diags]
            return E.add(E.fn("diag", inner), *rest, shape=n.shape)
        if isinstance(n, E.MatMul) and len(n.chain) >= 2:
            chain = list(n.chain)
            for i in range(len(chain) - 1):
                a, b = chain[i], chain[i + 1]
                if isinstance(a, E.Add) and (_is_diag(b) or (isinstance(b, E.HadDiv) and any(
                        _is_diag(f) and f.arg == b.den for t in a.terms for f in E.walk(t)))):
                    terms = [_multiplied_out(t, b, right=True) for t in a.terms]
                elif _is_diag(a) and isinstance(b, E.Add):
                    terms = [_multiplied_out(t, a, right=False) for t in b.terms]
                else:
                    continue
                out = E.mul(E.Num(n.coeff), *n.scalars, *chain[:i], E.add(*terms), *chain[i + 2:])
                if _size(out) < _size(n):
                    return out
        return None

    return E.transform(e, visit)


def _multiplied_out(term: Expr, d: Expr, right: bool) -> Expr:
    """term·d (or d·term) with the diagonal rules of _diag_pair applied where they meet."""
    product = E.mul(term, d) if right else E.mul(d, term)
    out = _chain_rewrite(product, _diag_pair)
    return E.transform(out, lambda n: _diag_identity(n) if isinstance(n, E.Func) else None)


def _size(e: Expr) -> int:
    return sum(1 for _ in E.walk(e))


def _sigma_of(num: Expr, den: Expr) -> Expr | None:
    """σ(u) when num = eᵘ and den = 1 + eᵘ (1 the scalar one or the all-ones of u's shape), else None."""
    if isinstance(num, E.Func) and num.name == "exp" and isinstance(den, E.Add):
        one = E.ONE if num.is_scalar else E.Ones(num.shape)
        if len(den.terms) == 2 and set(den.terms) == {one, num}:
            return E.fn("sigma", num.arg)
    return None


def sigmoids(e: Expr) -> Expr:
    """exp(u) ⊘ (1 + exp(u)) = σ(u) (S11)."""

    def scalar_pair(n: E.MatMul):
        """eᵘ · (1 + eᵘ)⁻¹ among the scalar factors of a product, as σ(u)."""
        scalars = list(n.scalars)
        for i, a in enumerate(scalars):
            for j, b in enumerate(scalars):
                if i != j and isinstance(b, E.Power) and isinstance(b.exp, E.Num) and b.exp.value == -1:
                    sig = _sigma_of(a, b.base)
                    if sig is not None:
                        rest = [x for k, x in enumerate(scalars) if k not in (i, j)]
                        return E.mul(E.Num(n.coeff), sig, *rest, *n.chain)
        return None

    def visit(n: Expr):
        num, den = None, None
        if isinstance(n, E.HadDiv):
            num, den = n.num, n.den
        elif isinstance(n, E.MatMul) and len(n.scalars) >= 2:
            return scalar_pair(n)
        sig = _sigma_of(num, den)
        if sig is not None:
            return sig
        # (eᵘ ⊙ v) ⊘ (1 + eᵘ) = σ(u) ⊙ v: the logistic loss with labels ±1
        c, body = split_coeff(num) if num is not None else (Fraction(1), None)
        if isinstance(body, E.Hadamard):
            for k, f in enumerate(body.factors):
                sig = _sigma_of(f, den)
                if sig is not None:
                    return E.mul(E.Num(c), E.had(*body.factors[:k], sig, *body.factors[k + 1:]))
        # (eᵘ ⊙ eᵘ) ⊘ ((1 + eᵘ) ⊙ (1 + eᵘ)) = σ(u) ⊙ σ(u)
        if isinstance(num, E.Hadamard) and isinstance(den, E.Hadamard) and len(num.factors) == len(den.factors) == 2 \
                and num.factors[0] == num.factors[1] and den.factors[0] == den.factors[1]:
            sig = visit(E.hdiv(num.factors[0], den.factors[0]))
            if sig is not None:
                return E.had(sig, sig)
        return None

    return E.transform(e, visit)


def _summed_exp(b: Expr) -> Expr | None:
    """u when `b` is 1ᵀexp(u) (or sum(exp(u))) for a vector u, else None."""
    if isinstance(b, E.Func) and b.name == "sum" and isinstance(b.arg, E.Func) and b.arg.name == "exp":
        u = b.arg.arg
    elif (isinstance(b, E.MatMul) and b.coeff == 1 and not b.scalars and len(b.chain) == 2
          and isinstance(b.chain[0], E.Transpose) and isinstance(b.chain[0].arg, E.Ones)
          and isinstance(b.chain[1], E.Func) and b.chain[1].name == "exp"):
        u = b.chain[1].arg
    else:
        return None
    return u if u.shape[1] == 1 and not u.is_scalar else None


def softmax_definition(e: Expr) -> Expr:
    """exp(u)/(1ᵀexp(u)) = softmax(u), read back by the definition (R7): the gradient of
    log(sum(exp(x))) is softmax(x)."""

    def visit(n: Expr):
        if not isinstance(n, E.MatMul):
            return None
        for i, s in enumerate(n.scalars):
            if isinstance(s, E.Power) and isinstance(s.exp, E.Num) and s.exp.value == -1:
                u = _summed_exp(s.base)
                if u is not None and E.fn("exp", u) in n.chain:
                    j = n.chain.index(E.fn("exp", u))
                    chain = [*n.chain[:j], E.fn("softmax", u), *n.chain[j + 1:]]
                    return E.mul(E.Num(n.coeff), *n.scalars[:i], *n.scalars[i + 1:], *chain)
        return None

    return E.transform(e, visit)


def sigmoid_symmetry(e: Expr) -> Expr:
    """1 − σ(−u) = σ(u) (S19): the sigmoid of a negated argument, taken away from one."""

    def visit(n: Expr):
        if not isinstance(n, E.Add):
            return None
        terms = list(n.terms)
        one = E.ONE if n.is_scalar else E.Ones(n.shape)
        if one not in terms:
            return None
        for i, t in enumerate(terms):
            c, body = split_coeff(t)
            if c == -1 and isinstance(body, E.Func) and body.name == "sigma" and split_coeff(body.arg)[0] < 0:
                rest = [x for j, x in enumerate(terms) if j != i]
                rest.remove(one)
                return E.add(E.fn("sigma", E.neg(body.arg)), *rest, shape=n.shape)
        return None

    return E.transform(e, visit)


def _kink_pair(a: Expr, b: Expr) -> list[Expr] | None:
    """What a ⊙ b is by the algebra of step, relu, sign and abs of one argument u (None: nothing)."""
    def name(f: Expr) -> str | None:
        return f.name if isinstance(f, E.Func) else None

    for x, y in ((a, b), (b, a)):
        u = x.arg if isinstance(x, E.Func) else None
        if u is None or not (y == u or (isinstance(y, E.Func) and y.arg == u)):
            continue
        pair = (name(x), "u" if y == u else name(y))
        if pair in (("step", "step"), ("step", "relu")):  # step ⊙ step = step, step ⊙ relu = relu
            return [y if pair[1] == "relu" else x]
        if pair == ("step", "u"):
            return [E.fn("relu", u)]
        if pair == ("sign", "u"):
            return [E.fn("abs", u)]
        if pair == ("sign", "abs"):
            return [u]
        if pair == ("sign", "sign"):
            return []
    return None


def kink_algebra(e: Expr) -> Expr:
    """step(u) ⊙ step(u) = step(u), relu(u) ⊙ step(u) = relu(u), u ⊙ step(u) = relu(u),
    u ⊙ sign(u) = |u|, |u| ⊙ sign(u) = u, sign(u) ⊙ sign(u) = 1 where no entry of u is 0 (S18)."""

    def visit(n: Expr):
        if not isinstance(n, E.Hadamard):
            return None
        factors = list(n.factors)
        for i in range(len(factors)):
            for j in range(i + 1, len(factors)):
                merged = _kink_pair(factors[i], factors[j])
                if merged is not None:
                    rest = factors[:i] + merged + factors[i + 1:j] + factors[j + 1:]
                    return E.had(*rest) if rest else E.Ones(n.shape)
        return None

    return E.transform(e, visit)


def matrix_powers(e: Expr) -> Expr:
    """AA = A², AᵃAᵇ = Aᵃ⁺ᵇ for integer powers (S9)."""

    def pair(a, b):
        (ba, ea), (bb, eb) = _base_exp(a), _base_exp(b)
        if ba == bb and ba.is_square and isinstance(ea, E.Num) and isinstance(eb, E.Num):
            return [E.power(ba, E.Num(ea.value + eb.value))]
        return None

    return _chain_rewrite(e, pair)


def scalar_powers(e: Expr) -> Expr:
    """s^a s^b = s^(a+b) among the scalar factors of a product (S7)."""
    return E.transform(e, _scalar_powers_of)


def powers_and_denominators(e: Expr) -> Expr:
    """s^a s^b = s^(a+b), and s⁻¹ (1 + q/s)⁻¹ = (s + q)⁻¹, in every product (S7)."""

    def visit(n: Expr):
        if not isinstance(n, E.MatMul) or len(n.scalars) < 2:
            return None
        return _one_denominator(n) or _scalar_powers_of(n)

    return E.transform(e, visit)


def _scalar_powers_of(n: Expr) -> Expr | None:
    """n with the powers of each scalar base among its scalar factors combined (None: nothing to)."""
    if not isinstance(n, E.MatMul) or len(n.scalars) < 2:
        return None
    order: list[Expr] = []
    exps: dict[Expr, list[Expr]] = {}
    for s in n.scalars:
        base, exp = _base_exp(s)
        if base not in exps:
            order.append(base)
            exps[base] = []
        exps[base].append(exp)
    if len(order) == len(n.scalars):
        return None
    factors = []
    for base in order:
        es = exps[base]
        if all(isinstance(x, E.Num) for x in es):
            total: Expr = E.Num(sum((x.value for x in es), Fraction(0)))
        else:
            total = E.add(*es)
        factors.append(E.power(base, total))
    return E.mul(E.Num(n.coeff), *factors, *n.chain)


def _one_denominator(n: E.MatMul) -> Expr | None:
    """s⁻¹ (1 + q/s)⁻¹ = (s + q)⁻¹: a scalar denominator multiplied into another one that divides by
    it, so that the fractions inside cancel (the Student t: (ν + n)/(ν + (x − μ)ᵀΣ⁻¹(x − μ)))."""
    scalars = list(n.scalars)
    for i, a in enumerate(scalars):
        if not (isinstance(a, E.Power) and a.exp == E.Num(-1)):
            continue
        for j, b in enumerate(scalars):
            if j == i or not (isinstance(b, E.Power) and b.exp == E.Num(-1) and isinstance(b.base, E.Add)):
                continue
            if not any(isinstance(t, E.MatMul) and a in t.scalars for t in b.base.terms):
                continue
            merged = E.add(*(scalar_powers(E.mul(t, a.base)) for t in b.base.terms))
            rest = [x for k, x in enumerate(scalars) if k not in (i, j)]
            return E.mul(E.Num(n.coeff), E.power(merged, E.Num(-1)), *rest, *n.chain)
    return None


def _number_out(e: Expr) -> tuple[Fraction, Expr]:
    """(c, u) with e = c·u: the number of a product, or the one number every term of a sum has."""
    if isinstance(e, E.MatMul) and e.coeff != 1:
        return e.coeff, E.mul(*e.scalars, *e.chain)
    if isinstance(e, E.Add):
        coeffs = {t.coeff if isinstance(t, E.MatMul) else Fraction(1) for t in e.terms}
        if len(coeffs) == 1 and (c := coeffs.pop()) not in (1, -1):
            return c, E.add(*(E.mul(E.Num(1 / c), t) for t in e.terms), shape=e.shape)
    return Fraction(1), e


def numbers_out(e: Expr) -> Expr:
    """(cA)⁻¹ = c⁻¹A⁻¹, (cs)ᵏ = cᵏsᵏ and (ca) ⊙ b = c(a ⊙ b) for a number c and an integer k, so
    that numbers cancel: 2x/(2√(xᵀx)) = x/√(xᵀx), 2(2XᵀX + 2λI)⁻¹ = (XᵀX + λI)⁻¹ (S17)."""

    def visit(n: Expr):
        if isinstance(n, E.HadDiv):  # (ca) ⊘ (kb) = (c/k)(a ⊘ b): 2(x ⊘ (2√u)) = x ⊘ √u
            (cn, un), (cd, ud) = _number_out(n.num), _number_out(n.den)
            return E.mul(E.Num(cn / cd), E.hdiv(un, ud)) if (cn, cd) != (1, 1) else None
        if isinstance(n, E.Func) and n.name == "diag" and n.arg.shape[1] == 1:  # diag(cu) = c diag(u)
            c, u = _number_out(n.arg)
            return E.mul(E.Num(c), E.fn("diag", u)) if c != 1 else None
        if isinstance(n, E.Hadamard):  # (ca) ⊙ b = c(a ⊙ b)
            parts = [_number_out(f) if isinstance(f, E.MatMul) else (Fraction(1), f) for f in n.factors]
            c = Fraction(1)
            for k, _ in parts:
                c *= k
            return E.mul(E.Num(c), E.had(*(u for _, u in parts))) if any(k != 1 for k, _ in parts) else None
        if not isinstance(n, E.MatMul):
            return None
        coeff, changed = n.coeff, False
        scalars, chain = [], []
        for s in n.scalars:
            if isinstance(s, E.Power) and isinstance(s.exp, E.Num) and s.exp.value.denominator == 1:
                c, u = _number_out(s.base)
                if c != 1 and c > 0:
                    coeff, changed = coeff * c ** s.exp.value.numerator, True
                    s = E.power(u, s.exp)
            scalars.append(s)
        for f in n.chain:
            if isinstance(f, E.Inverse):
                c, u = _number_out(f.arg)
                if c != 1:
                    coeff, changed = coeff / c, True
                    f = E.inv(u)
            chain.append(f)
        return E.mul(E.Num(coeff), *scalars, *chain) if changed else None

    return E.transform(e, visit)


def sums_over_samples(e: Expr) -> Expr:
    """Σ_t A u_t B = A (Σ_t u_t) B for A, B free of t; a term free of t adds N times (S12)."""

    def visit(n: Expr):
        if not isinstance(n, E.SumOver):
            return None
        body, t = n.body, n.index
        if isinstance(body, E.MatMul):
            c, sc, ch = body.coeff, list(body.scalars), list(body.chain)
            free_sc = [s for s in sc if not E.uses_index(s, t)]
            lead = 0
            while lead < len(ch) - 1 and not E.uses_index(ch[lead], t):
                lead += 1
            tail = len(ch)
            while tail - 1 > lead and not E.uses_index(ch[tail - 1], t):
                tail -= 1
            if c != 1 or free_sc or lead > 0 or tail < len(ch):
                inner = E.mul(*(s for s in sc if E.uses_index(s, t)), *ch[lead:tail])
                return E.mul(E.Num(c), *free_sc, *ch[:lead], E.sumover(t, n.count, inner), *ch[tail:])
        return None

    return E.transform(e, visit)


def sums_factored(e: Expr) -> Expr:
    """Σ_t a_t C_t + Σ_t b_t C_t = Σ_t (a_t + b_t) C_t for scalars a_t, b_t and one chain C_t in
    every sum: Σ_t σ(wᵀx_t) x_t − Σ_t y_t x_t = Σ_t (σ(wᵀx_t) − y_t) x_t (S3)."""

    def visit(n: Expr):
        if not isinstance(n, E.Add):
            return None
        groups: dict[tuple, list[int]] = {}
        for k, t in enumerate(n.terms):
            _, body = split_coeff(t)
            if isinstance(body, E.SumOver):
                groups.setdefault((body.index, body.count), []).append(k)
        merged: dict[int, Expr] = {}
        for (index, count), members in groups.items():
            if len(members) < 2:
                continue
            parts = []
            for k in members:
                c, body = split_coeff(n.terms[k])
                parts.append(_chain_of(E.mul(E.Num(c), body.body)))
            chain = parts[0][2]
            if not chain or any(ch != chain for _, _, ch in parts):
                continue
            total = E.add(*(E.mul(E.Num(c), *sc) for c, sc, _ in parts))
            merged[members[0]] = E.sumover(index, count, E.mul(total, *chain))
            merged.update({k: None for k in members[1:]})
        if not merged:
            return None
        terms = [merged.get(k, t) for k, t in enumerate(n.terms)]
        return E.add(*(t for t in terms if t is not None), shape=n.shape)

    return E.transform(e, visit)


def hadamard_squares(e: Expr) -> Expr:
    """u ⊙ u = u^∘2 for an elementwise product of a sum with itself: 1 ⊘ ((b − Ax) ⊙ (b − Ax)) reads
    1 ⊘ (b − Ax)^∘2 (S2)."""

    def visit(n: Expr):
        if not isinstance(n, E.Hadamard) or len(n.factors) != 2 or n.factors[0] != n.factors[1]:
            return None
        return E.hpow(n.factors[0], Fraction(2)) if isinstance(n.factors[0], E.Add) else None

    return E.transform(e, visit)


def scalar_traces(e: Expr) -> Expr:
    """tr(a) = a for a scalar a (T0)."""
    return E.transform(e, lambda n: n.arg if isinstance(n, E.Func) and n.name == "tr" and n.arg.is_scalar else None)


def use_definitions(e: Expr, where: dict[str, Expr]) -> Expr:
    """Put `where:` names back where their definitions appear (S8)."""
    mapping = {definition: E.Sym(name, definition.shape, "where") for name, definition in where.items()}
    return E.substitute(e, mapping) if mapping else e


# ----------------------------------------------------------------------------- driver


def simplify_steps(g: Expr, assume: dict[str, set[str]], where: dict[str, Expr] | None = None) -> list[Step]:
    """Simplification steps for a gradient `g` (empty when nothing changes)."""
    sym = declared_symmetric(assume)
    orth = {n for n, a in assume.items() if "orthogonal" in a}
    passes: list[tuple[str, Callable[[Expr], Expr]]] = [
        ("S1", push_transposes),
        ("S6", cancel_inverses),
        ("S7", powers_and_denominators),
        ("S17", numbers_out),
        ("T0", scalar_traces),
        ("S12", sums_over_samples),
    ]
    if sym:
        passes.append(("S4", lambda x: symmetric(x, sym)))
    probability = frozenset(n for n, a in assume.items() if a & {"simplex", "onehot"})
    if probability:
        passes.append(("S15", lambda x: probability_sums(x, probability)))
    passes.append(("S13", lambda x: built_symmetric(x, sym)))
    if orth:
        passes.append(("S5", lambda x: orthogonal(x, orth)))
    passes += [("S14", hadamard_expand), ("T7", sums_expanded), ("S2", hadamard_collect), ("S2", collect), ("S2", scalar_coefficients), ("S3", hadamard_factor), ("S3", factor), ("S3", sums_factored), ("S9", matrix_powers), ("S10", diagonal_products), ("S16", diagonal_algebra), ("S11", sigmoids),
               ("S18", kink_algebra), ("S19", sigmoid_symmetry), ("S2", hadamard_squares), ("J4", ones_first),
               ("R7", softmax_definition)]
    if where:
        passes.append(("S8", lambda x: use_definitions(x, where)))
    steps: list[Step] = []
    e = g
    for _ in range(30):
        changed = False
        for rule, f in passes:
            new = f(e)
            if new != e:
                new = fewer_signs(new)  # −(y − s)xᵀ is written (s − y)xᵀ on the line that makes it
                steps.append(Step(new, (rule,)))
                e = new
                changed = True
        if not changed:
            break
    return steps

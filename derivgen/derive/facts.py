"""Facts about expressions: is this matrix symmetric? (DESIGN §3: results simplified using the
assumptions, and what follows from them.)

A declared assumption covers a name; these rules cover what is built from names: I, diag(u),
a constant all-ones square, UᵀU and UUᵀ, UᵀSU with S symmetric (any product that reads the same
transposed, outside in), sums of symmetric terms and sums that transposition only reorders
(A + Aᵀ), scalar multiples, transposes, inverses and powers of symmetric matrices, elementwise
products and functions of symmetric matrices. The answer is "symmetric" or "not known": a False
never claims a matrix is not symmetric.
"""

from __future__ import annotations

from collections import Counter

from .. import expr as E
from ..expr import Expr

SYMMETRIC_LIKE = frozenset({"symmetric", "spd", "diagonal"})


def declared_symmetric(assume: dict[str, set[str]]) -> frozenset[str]:
    """The names a problem declares symmetric (symmetric, spd or diagonal)."""
    return frozenset(n for n, a in assume.items() if a & SYMMETRIC_LIKE)


def is_symmetric(e: Expr, names: frozenset[str] | set[str]) -> bool:
    """Whether `e` is a symmetric matrix by the rules above, given the names declared symmetric."""
    if e.is_scalar or e.shape[0] != e.shape[1]:
        return False
    if isinstance(e, E.Sym):
        return e.name in names
    if isinstance(e, (E.Eye, E.Zero, E.Ones)):
        return True
    if isinstance(e, E.Func):
        if e.name == "diag":
            return True
        return e.name in E.ELEMENTWISE and is_symmetric(e.arg, names)
    if isinstance(e, (E.Transpose, E.Inverse)):
        return is_symmetric(e.arg, names)
    if isinstance(e, E.Power):
        return is_symmetric(e.base, names)
    if isinstance(e, E.Hadamard):
        return all(is_symmetric(f, names) for f in e.factors)
    if isinstance(e, E.HadDiv):
        return is_symmetric(e.num, names) and is_symmetric(e.den, names)
    if isinstance(e, E.HadPow):
        return is_symmetric(e.base, names)
    if isinstance(e, E.Add):
        if all(is_symmetric(t, names) for t in e.terms):
            return True
        return Counter(_transposed(t, names) for t in e.terms) == Counter(_canonical(t, names) for t in e.terms)
    if isinstance(e, E.MatMul):
        return _palindrome(list(e.chain), names)
    if isinstance(e, E.Kron):
        return is_symmetric(e.a, names) and is_symmetric(e.b, names)
    return False


def _palindrome(chain: list[Expr], names) -> bool:
    """A product that reads the same transposed: f₁ … fₖ with fᵢ = fₖ₊₁₋ᵢᵀ, the middle symmetric."""
    k = len(chain)
    for i in range(k // 2):
        if _canonical(chain[i], names) != _transposed(chain[k - 1 - i], names):
            return False
    return k % 2 == 0 or is_symmetric(chain[k // 2], names)


def _canonical(e: Expr, names) -> Expr:
    """`e` with a transpose of a symmetric matrix dropped (so that Sᵀ and S compare equal)."""
    if isinstance(e, E.Transpose) and is_symmetric(e.arg, names):
        return e.arg
    return e


def _transposed(e: Expr, names) -> Expr:
    """eᵀ in canonical form: (Aᵀ)ᵀ = A, and Sᵀ = S for a symmetric S."""
    if not e.is_scalar and is_symmetric(e, names):
        return e
    if isinstance(e, E.Transpose):
        return e.arg
    if isinstance(e, E.MatMul):
        return E.mul(E.Num(e.coeff), *e.scalars, *(_transposed(f, names) for f in reversed(e.chain)))
    return E.tp(e)

"""The expression tree: small immutable nodes that know their shape and keep the written order.

Every value is two-dimensional: a scalar has shape ``(1, 1)``, a column vector ``(n, 1)``, a
matrix ``(m, n)``. Dimensions are positive ints or symbol names (``"m"``).

Nodes are built through the smart constructors at the bottom of this module (`add`, `mul`,
`tp`, ...). They do only bookkeeping a reader never needs to see as a step: flattening nested
sums and products, folding numeric coefficients, dropping zero terms and identity factors.
Everything a student should see (collecting like terms, pushing transposes inward, applying
assumptions) is done by `derivgen.derive.simplify`, one rule per step.

A product is stored as ``MatMul(coeff, scalars, chain)``: a rational coefficient, scalar-valued
factors (which commute with everything) and a chain of non-scalar factors whose shapes conform.
``x'*A*x`` is the chain ``(x', A, x)``; ``(x'*y)*z`` is the scalar factor ``x'y`` times the chain
``(z,)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterator

from . import functions

Dim = int | str | tuple  # a tuple is a product of dimensions, e.g. ("m", "n") for mn
Shape = tuple[Dim, Dim]
SCALAR: Shape = (1, 1)


def is_scalar_shape(shape: Shape) -> bool:
    """True for the 1×1 shape."""
    return shape[0] == 1 and shape[1] == 1


def dim_mul(*dims: Dim) -> Dim:
    """The product of dimensions, canonical: ints folded, symbols sorted (`n·m` = `m·n`)."""
    coeff, syms = 1, []
    for d in dims:
        for x in (d if isinstance(d, tuple) else (d,)):
            if isinstance(x, int):
                coeff *= x
            else:
                syms.append(x)
    syms.sort()
    if not syms:
        return coeff
    if coeff == 1 and len(syms) == 1:
        return syms[0]
    return tuple(([coeff] if coeff != 1 else []) + syms)


def dim_str(d: Dim) -> str:
    return "".join(map(str, d)) if isinstance(d, tuple) else str(d)


def shape_str(shape: Shape) -> str:
    """`m×n`, `n×1` or `scalar`, for messages."""
    if is_scalar_shape(shape):
        return "scalar (1×1)"
    return f"{dim_str(shape[0])}×{dim_str(shape[1])}"


class Expr:
    """Base class of all nodes. Subclasses are frozen dataclasses; each node's hash is computed
    once (`_cache_hashes`): nodes are dictionary keys all through the engine and the evaluator,
    and a dataclass hash walks the whole subtree every time."""

    __slots__ = ("_h",)
    shape: Shape

    @property
    def is_scalar(self) -> bool:
        return is_scalar_shape(self.shape)

    @property
    def is_square(self) -> bool:
        return self.shape[0] == self.shape[1]

    def children(self) -> tuple["Expr", ...]:
        return ()

    def rebuild(self, children: tuple["Expr", ...]) -> "Expr":
        """The same node over new children (through the smart constructors)."""
        return self


# ----------------------------------------------------------------------------- leaves


@dataclass(frozen=True, slots=True)
class Sym(Expr):
    """A named quantity: a declared variable, a `where:` name, or a dimension used as a scalar."""

    name: str
    shape: Shape
    role: str = "var"  # "var" | "where" | "dim"
    index: str | None = None  # for a member x_t of an indexed family: its index t


@dataclass(frozen=True, slots=True)
class Dif(Expr):
    """The differential dX of a named quantity (a leaf)."""

    name: str
    shape: Shape


@dataclass(frozen=True, slots=True)
class Num(Expr):
    """An exact rational scalar."""

    value: Fraction
    shape: Shape = field(default=SCALAR, init=False)


@dataclass(frozen=True, slots=True)
class Ones(Expr):
    """The all-ones vector or matrix, written `1`."""

    shape: Shape


@dataclass(frozen=True, slots=True)
class Eye(Expr):
    """The identity matrix I of size n."""

    n: Dim
    shape: Shape = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "shape", (self.n, self.n))


@dataclass(frozen=True, slots=True)
class Zero(Expr):
    """The zero scalar, vector or matrix."""

    shape: Shape


# ----------------------------------------------------------------------------- composites


@dataclass(frozen=True, slots=True)
class Add(Expr):
    """A sum of two or more terms of one shape, in written order."""

    terms: tuple[Expr, ...]
    shape: Shape = field(compare=False)

    def children(self):
        return self.terms

    def rebuild(self, children):
        return add(*children, shape=self.shape)


@dataclass(frozen=True, slots=True)
class MatMul(Expr):
    """coeff · (scalar factors) · (chain of conforming non-scalar factors)."""

    coeff: Fraction
    scalars: tuple[Expr, ...]
    chain: tuple[Expr, ...]
    shape: Shape = field(compare=False)

    def children(self):
        return self.scalars + self.chain

    def rebuild(self, children):
        k = len(self.scalars)
        return mul(Num(self.coeff), *children[:k], *children[k:])


@dataclass(frozen=True, slots=True)
class Transpose(Expr):
    arg: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.arg,)

    def rebuild(self, children):
        return tp(children[0])


@dataclass(frozen=True, slots=True)
class Inverse(Expr):
    arg: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.arg,)

    def rebuild(self, children):
        return inv(children[0])


@dataclass(frozen=True, slots=True)
class Power(Expr):
    """`base^exp`: an integer matrix power of a square matrix, or any power of a scalar.

    `exp` is a `Num` or a scalar constant symbol (e.g. `k`)."""

    base: Expr
    exp: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.base, self.exp)

    def rebuild(self, children):
        return power(children[0], children[1])


@dataclass(frozen=True, slots=True)
class Hadamard(Expr):
    """Elementwise product of two or more factors of one shape."""

    factors: tuple[Expr, ...]
    shape: Shape = field(compare=False)

    def children(self):
        return self.factors

    def rebuild(self, children):
        return had(*children)


@dataclass(frozen=True, slots=True)
class HadDiv(Expr):
    """Elementwise quotient num ⊘ den."""

    num: Expr
    den: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.num, self.den)

    def rebuild(self, children):
        return hdiv(children[0], children[1])


@dataclass(frozen=True, slots=True)
class HadPow(Expr):
    """Elementwise power base^{⊙k} with a rational k."""

    base: Expr
    exp: Fraction
    shape: Shape = field(compare=False)

    def children(self):
        return (self.base,)

    def rebuild(self, children):
        return hpow(children[0], self.exp)


@dataclass(frozen=True, slots=True)
class Func(Expr):
    """A named function of one argument (see FUNCTIONS for the list and their shapes)."""

    name: str
    arg: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.arg,)

    def rebuild(self, children):
        return fn(self.name, children[0])


@dataclass(frozen=True, slots=True)
class Kron(Expr):
    """The Kronecker product A ⊗ B."""

    a: Expr
    b: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.a, self.b)

    def rebuild(self, children):
        return kron(children[0], children[1])


@dataclass(frozen=True, slots=True)
class Commutation(Expr):
    """The commutation matrix K with vec(Xᵀ) = K vec(X) for an m×n matrix X."""

    m: Dim
    n: Dim
    shape: Shape = field(init=False)

    def __post_init__(self):
        size = dim_mul(self.m, self.n)
        object.__setattr__(self, "shape", (size, size))


@dataclass(frozen=True, slots=True)
class SumOver(Expr):
    """Σ_{index=1}^{count} body: a sum over the samples of an indexed family (x_t, t = 1..N)."""

    index: str
    count: Dim
    body: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.body,)

    def rebuild(self, children):
        return sumover(self.index, self.count, children[0])


def uses_index(e: Expr, index: str) -> bool:
    return any(isinstance(n, Sym) and n.index == index for n in walk(e))


def sumover(index: str, count: Dim, body: Expr) -> Expr:
    """Σ_t body; a body that does not involve t is simply multiplied by the count."""
    if is_zero(body):
        return body
    if not uses_index(body, index):
        n = Sym(count, SCALAR, "dim") if isinstance(count, str) else Num(Fraction(count))
        return mul(n, body)
    return SumOver(index, count, body, body.shape)


@dataclass(frozen=True, slots=True)
class Eq(Expr):
    """An equation lhs = rhs (a line of a solution); its value is lhs − rhs."""

    lhs: Expr
    rhs: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.lhs, self.rhs)

    def rebuild(self, children):
        return Eq(children[0], children[1], children[0].shape)


@dataclass(frozen=True, slots=True)
class D(Expr):
    """The differential d(arg), not yet expanded."""

    arg: Expr
    shape: Shape = field(compare=False)

    def children(self):
        return (self.arg,)

    def rebuild(self, children):
        return D(children[0], children[0].shape)


# ----------------------------------------------------------------------------- functions

ELEMENTWISE = functions.ELEMENTWISE  # the registry (derivgen/functions.py) declares every function
FUNCTIONS = tuple(functions.FUNCTIONS)


def func_shape(name: str, arg_shape: Shape) -> Shape:
    """The result shape of `name(arg)` by its registry entry's shape rule; raises ValueError with
    a reason if `arg` doesn't fit."""
    try:
        rule = functions.FUNCTIONS[name].shape
    except KeyError:
        raise ValueError(f"unknown function {name}") from None
    r, c = arg_shape
    if rule == "elementwise":
        return arg_shape
    if rule == "square_to_scalar":
        if r != c:
            raise ValueError(f"{name} needs a square matrix")
        return SCALAR
    if rule == "to_scalar":
        return SCALAR
    if rule == "columnwise":  # of a vector; of a matrix, of each column
        return arg_shape
    if rule == "columns_to_row":
        return (1, c)
    if rule == "diag":
        if c != 1:
            raise ValueError("diag needs a column vector (it builds the diagonal matrix)")
        return (r, r)
    if rule == "diagvec":
        if r != c:
            raise ValueError("diagvec needs a square matrix")
        return (r, 1)
    if rule == "vec":
        return (dim_mul(r, c), 1)
    raise ValueError(f"no shape rule {rule!r} for {name}")  # pragma: no cover - tests/test_functions.py


# ----------------------------------------------------------------------------- smart constructors


class ShapeMismatch(ValueError):
    """Raised by constructors on non-conforming shapes (the parser turns it into ShapeError)."""


def num(value: int | Fraction | str) -> Num:
    return Num(Fraction(value))


ONE = Num(Fraction(1))
ZERO = Num(Fraction(0))


def is_zero(e: Expr) -> bool:
    return isinstance(e, Zero) or (isinstance(e, Num) and e.value == 0)


def zero(shape: Shape) -> Expr:
    return ZERO if is_scalar_shape(shape) else Zero(shape)


def add(*terms: Expr, shape: Shape | None = None) -> Expr:
    """Sum, flattened, without zero terms; numeric terms folded into one."""
    flat: list[Expr] = []
    for t in terms:
        if isinstance(t, Add):
            flat.extend(t.terms)
        elif not is_zero(t):
            flat.append(t)
        if shape is None:
            shape = t.shape
    if shape is None:
        raise ValueError("add() of nothing needs a shape")
    for t in flat:
        if t.shape != shape and not (is_scalar_shape(t.shape) and is_scalar_shape(shape)):
            raise ShapeMismatch(f"cannot add {shape_str(shape)} and {shape_str(t.shape)}")
    nums = [t for t in flat if isinstance(t, Num)]
    if len(nums) > 1:
        total = Num(sum((t.value for t in nums), Fraction(0)))
        rest = [t for t in flat if not isinstance(t, Num)]
        flat = rest + ([total] if total.value != 0 else [])
    if not flat:
        return zero(shape)
    if len(flat) == 1:
        return flat[0]
    return Add(tuple(flat), shape)


def _chain_shape(chain: list[Expr]) -> Shape:
    rows, cols = chain[0].shape
    for f in chain[1:]:
        if f.shape[0] != cols:
            raise ShapeMismatch(
                f"cannot multiply {rows}×{cols} by {shape_str(f.shape)}"
            )
        cols = f.shape[1]
    return (rows, cols)


def mul(*factors: Expr) -> Expr:
    """Product of factors in order; nested products flattened, coefficients folded.

    A sub-product whose chain is scalar-valued (``x'y``) stays a unit when other non-scalar
    factors surround it: it scales them, it does not join their chain."""
    coeff = Fraction(1)
    scalars: list[Expr] = []
    groups: list[list[Expr]] = []
    has_zero = False
    for f in factors:
        if isinstance(f, Eye) and is_scalar_shape(f.shape):
            continue  # the 1×1 identity is the number 1
        if isinstance(f, Num):
            coeff *= f.value
        elif isinstance(f, MatMul):
            coeff *= f.coeff
            scalars.extend(f.scalars)
            if f.chain:
                groups.append(list(f.chain))
        elif is_scalar_shape(f.shape):
            scalars.append(f)
        else:
            groups.append([f])
        if isinstance(f, Zero):
            has_zero = True
    if len(groups) > 1:
        kept = []
        all_scalar = all(is_scalar_shape(_chain_shape(g)) for g in groups)
        for k, g in enumerate(groups):
            if all_scalar and k == len(groups) - 1:
                kept.append(g)  # scalar chains side by side: the last one stays the chain
            elif is_scalar_shape(_chain_shape(g)):
                scalars.append(g[0] if len(g) == 1 else MatMul(Fraction(1), (), tuple(g), SCALAR))
            else:
                kept.append(g)
        groups = kept
    chain = [f for g in groups for f in g]
    shape = _chain_shape(chain) if chain else SCALAR
    if has_zero or coeff == 0:
        return zero(shape)
    if len(chain) > 1:
        chain = [f for f in chain if not isinstance(f, Eye)] or [chain[0]]
        chain = _merge_ones(chain)
    if not scalars and coeff == 1 and len(chain) == 1:
        return chain[0]
    if not chain and coeff == 1 and len(scalars) == 1:
        return scalars[0]
    if not chain and not scalars:
        return Num(coeff)
    return MatMul(coeff, tuple(scalars), tuple(chain), shape)


def _is_ones(f: Expr) -> bool:
    return isinstance(f, Ones) or (isinstance(f, Transpose) and isinstance(f.arg, Ones))


def _merge_ones(chain: list[Expr]) -> list[Expr]:
    """1·1ᵀ (ones times ones) is the all-ones matrix of the product's shape."""
    out: list[Expr] = []
    for f in chain:
        if out and _is_ones(out[-1]) and _is_ones(f) and out[-1].shape[1] == 1 == f.shape[0]:
            out[-1] = Ones((out[-1].shape[0], f.shape[1]))
        else:
            out.append(f)
    return out


def terms(e: Expr) -> tuple[Expr, ...]:
    """The terms of a sum; any other expression is its only term."""
    return e.terms if isinstance(e, Add) else (e,)


def is_negative(t: Expr) -> bool:
    """Whether a term is written with a minus: a negative multiple, or a negative number."""
    return (isinstance(t, MatMul) and t.coeff < 0) or (isinstance(t, Num) and t.value < 0)


def neg(e: Expr) -> Expr:
    return mul(Num(Fraction(-1)), e)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


def tp(e: Expr) -> Expr:
    """Transpose; only the bookkeeping cases (Aᵀᵀ = A, numbers, I, 0) are simplified here."""
    if isinstance(e, Transpose):
        return e.arg
    if isinstance(e, (Num, Eye)):
        return e
    if isinstance(e, Zero):
        return Zero((e.shape[1], e.shape[0]))
    if isinstance(e, Ones) and e.shape[0] != 1 and e.shape[1] != 1:
        return Ones((e.shape[1], e.shape[0]))
    if isinstance(e, Commutation):  # K_mnᵀ = K_nm
        return Commutation(e.n, e.m)
    return Transpose(e, (e.shape[1], e.shape[0]))


def inv(e: Expr) -> Expr:
    if not e.is_square:
        raise ShapeMismatch(f"cannot invert a non-square {shape_str(e.shape)} matrix")
    if isinstance(e, Num):
        if e.value == 0:
            raise ShapeMismatch("division by zero")
        return Num(1 / e.value)
    if isinstance(e, Eye):
        return e
    if isinstance(e, Inverse):
        return e.arg
    if is_scalar_shape(e.shape):
        return power(e, Num(Fraction(-1)))
    return Inverse(e, e.shape)


def power(base: Expr, exp: Expr) -> Expr:
    if not base.is_square:
        raise ShapeMismatch(f"a matrix power needs a square matrix, not {shape_str(base.shape)}")
    if isinstance(exp, Num):
        k = exp.value
        if k == 1:
            return base
        if k == 0:
            return ONE if base.is_scalar else Eye(base.shape[0])
        if isinstance(base, Num):
            if base.value == 0 and k < 0:
                raise ShapeMismatch("division by zero")
            if k.denominator == 1:
                return Num(base.value ** int(k))
        if not base.is_scalar:
            if k.denominator != 1:
                raise ShapeMismatch("a matrix power needs an integer exponent")
            if k == -1:
                return inv(base)
    if isinstance(base, Power) and isinstance(exp, Num) and isinstance(base.exp, Num) and base.is_scalar:
        return power(base.base, Num(base.exp.value * exp.value))
    return Power(base, exp, base.shape)


def had(*factors: Expr) -> Expr:
    """Elementwise product; on scalars it is the ordinary product."""
    flat: list[Expr] = []
    for f in factors:
        flat.extend(f.factors if isinstance(f, Hadamard) else (f,))
    shapes = {f.shape for f in flat}
    if len(shapes) > 1:
        a, b = list(shapes)[:2]
        raise ShapeMismatch(f"elementwise product of {shape_str(a)} and {shape_str(b)}")
    if flat[0].is_scalar:
        return mul(*flat)
    if any(isinstance(f, Zero) for f in flat):
        return Zero(flat[0].shape)
    flat = [f for f in flat if not isinstance(f, Ones)] or [flat[0]]
    if len(flat) == 1:
        return flat[0]
    for i, f in enumerate(flat):  # (1 ⊘ B) ⊙ C = C ⊘ B, and (A ⊘ B) ⊙ B = A
        if isinstance(f, HadDiv) and (isinstance(f.num, Ones) or f.den in flat[:i] + flat[i + 1:]):
            return hdiv(had(*flat[:i], *flat[i + 1:]), f.den) if isinstance(f.num, Ones) else had(
                f.num, *_without(flat[:i] + flat[i + 1:], f.den))
    return Hadamard(tuple(flat), flat[0].shape)


def _without(items: list[Expr], item: Expr) -> list[Expr]:
    out = list(items)
    out.remove(item)
    return out


def hdiv(a: Expr, b: Expr) -> Expr:
    if a.shape != b.shape:
        raise ShapeMismatch(f"elementwise quotient of {shape_str(a.shape)} and {shape_str(b.shape)}")
    if a.is_scalar:
        return mul(a, power(b, Num(Fraction(-1))))
    if isinstance(a, Zero):
        return a
    if isinstance(a, Hadamard) and b in a.factors:  # (b ⊙ c) ⊘ b = c
        rest = list(a.factors)
        rest.remove(b)
        return had(*rest)
    return HadDiv(a, b, a.shape)


def hpow(base: Expr, k: Fraction) -> Expr:
    k = Fraction(k)
    if base.is_scalar:
        return power(base, Num(k))
    if k == 1:
        return base
    if isinstance(base, Zero) and k > 0:
        return base
    return HadPow(base, k, base.shape)


def fn(name: str, arg: Expr) -> Expr:
    try:
        shape = func_shape(name, arg.shape)
    except ValueError as err:
        raise ShapeMismatch(f"{err}, but the argument is {shape_str(arg.shape)}") from None
    at_zero = functions.FUNCTIONS[name].at_zero
    if isinstance(arg, Zero) and at_zero:  # exp(0) = 1, tr(0) = 0, …
        return zero(shape) if at_zero == "zero" else (ONE if is_scalar_shape(shape) else Ones(shape))
    return Func(name, arg, shape)


def kron(a: Expr, b: Expr) -> Expr:
    """A ⊗ B; a scalar factor is an ordinary product, I₁ ⊗ B = B."""
    if a.is_scalar or b.is_scalar:
        return mul(a, b)
    if isinstance(a, Eye) and isinstance(b, Eye):
        return Eye(dim_mul(a.n, b.n))
    shape = (dim_mul(a.shape[0], b.shape[0]), dim_mul(a.shape[1], b.shape[1]))
    return Kron(a, b, shape)


def vec(a: Expr) -> Expr:
    """vec(A): the columns of A stacked; a column vector is its own vec, and vec(uᵀ) = u."""
    if a.shape[1] == 1:
        return a
    if a.shape[0] == 1:
        if isinstance(a, Transpose):
            return a.arg
        if isinstance(a, Func) and a.name in ELEMENTWISE and isinstance(a.arg, Transpose):
            return fn(a.name, a.arg.arg)
    return fn("vec", a)


def commutation(m: Dim, n: Dim) -> Expr:
    """K with vec(Xᵀ) = K vec(X) for an m×n X; for a vector it is the identity."""
    if m == 1 or n == 1:
        size = dim_mul(m, n)
        return ONE if size == 1 else Eye(size)
    return Commutation(m, n)


def dif(e: Expr) -> D:
    return D(e, e.shape)


# ----------------------------------------------------------------------------- traversal


def walk(e: Expr) -> Iterator[Expr]:
    """All nodes, parents before children."""
    yield e
    for c in e.children():
        yield from walk(c)


def transform(e: Expr, f: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild bottom-up, replacing each node n by f(n) when f returns something."""
    kids = e.children()
    if kids:
        new = tuple(transform(c, f) for c in kids)
        if any(a is not b for a, b in zip(new, kids)):
            e = e.rebuild(new)
    out = f(e)
    return e if out is None else out


def transform_top(e: Expr, f: Callable[[Expr], Expr | None]) -> Expr:
    """Replace the outermost nodes where f returns something (no descent into replacements)."""
    out = f(e)
    if out is not None:
        return out
    kids = e.children()
    if not kids:
        return e
    new = tuple(transform_top(c, f) for c in kids)
    if all(a is b for a, b in zip(new, kids)):
        return e
    return e.rebuild(new)


def symbols(e: Expr) -> set[str]:
    """Names of the Sym leaves."""
    return {n.name for n in walk(e) if isinstance(n, Sym)}


def difs(e: Expr) -> set[str]:
    """Names of the differential leaves dX."""
    return {n.name for n in walk(e) if isinstance(n, Dif)}


def has_dif(e: Expr, name: str | None = None) -> bool:
    for n in walk(e):
        if isinstance(n, Dif) and (name is None or n.name == name):
            return True
    return False


def substitute(e: Expr, mapping: dict[Expr, Expr]) -> Expr:
    """Replace every occurrence of the keys (structural equality)."""
    return transform_top(e, lambda n: mapping.get(n))


def _cache_hashes() -> None:
    """Give every node class a hash computed once per node (the dataclass one, memoised)."""

    def cached(generated):
        def __hash__(self):
            try:
                return self._h
            except AttributeError:
                h = generated(self)
                object.__setattr__(self, "_h", h)
                return h

        return __hash__

    stack = list(Expr.__subclasses__())
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if "__hash__" in cls.__dict__ and cls.__dict__["__hash__"] is not None:
            cls.__hash__ = cached(cls.__dict__["__hash__"])


_cache_hashes()

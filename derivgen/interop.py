"""Interchange with SymPy: derivgen expressions as SymPy matrix expressions.

`to_sympy(expr)` turns a derivgen expression tree (a problem's function, a `where:` definition,
a gradient, a step of a derivation) into a SymPy expression built from
`sympy.matrices.expressions`, so that results can be taken further in SymPy: printed in its
formats, simplified, substituted, compared with SymPy's own matrix calculus, or evaluated::

    from derivgen.interop import to_sympy
    from derivgen.pipeline import build_context, solve
    from derivgen.problem import load_problem

    solved = solve(load_problem("problems/n001_trace_axbxtc.yaml"))
    f = to_sympy(solved.context.function)          # Trace(A*X*B*X.T*C)
    g = to_sympy(solved.derivations[0].result)     # C*A*X*B + A.T*C.T*X*B.T

SymPy is needed only here, and only when these functions are called: `import derivgen` never
imports it (install it with ``pip install sympy``).

SymPy's own matrix derivatives of converted functions are not always right: SymPy 1.14 returns
0 for ``log(Determinant(X)).diff(X)`` and for ``.diff`` of a sum of scalar terms
(``(Trace(X) + Trace(X*A)).diff(X)`` is 0), and misses quotient rules, without warning. `bench/bench.py` shows which example problems it gets wrong.

The mapping:

=================================  ==============================================================
derivgen                           SymPy
=================================  ==============================================================
matrix / vector name ``X``         ``MatrixSymbol("X", rows, cols)``; a vector is ``n×1``
scalar name (``[]``)               ``Symbol(name, real=True)``
dimension ``n`` (shape or scalar)  ``Symbol("n", integer=True, positive=True)``, or the int
                                   given in ``sizes``
number                             ``Rational``
``1``, ``I``, ``0``                ``OneMatrix``, ``Identity``, ``ZeroMatrix`` (1, 1, 0 on scalars)
sum, product, ``'``, ``inv``       ``MatAdd`` / ``Add``, ``MatMul`` / ``Mul``, ``Transpose``,
                                   ``Inverse``
``A^k``                            ``MatPow`` (``Pow`` on a scalar)
``A .* B``                         ``HadamardProduct``
``A ./ B``, ``A .^ k``             ``HadamardProduct(A, HadamardPower(B, -1))``,
                                   ``HadamardPower(A, k)``
``tr``, ``det``                    ``Trace``, ``Determinant``
``logdet``                         ``log(Determinant(X))`` — see the note below
``sum(A)``                         ``Trace(OneMatrix(1, m) * A * OneMatrix(n, 1))``
``norm(A)``                        ``sqrt(Trace(A.T * A))`` (Frobenius / Euclidean)
``sqrt``, ``exp`` elementwise      ``HadamardPower(A, 1/2)``, ``HadamardPower(E, A)``
``sigma``, ``tanh`` elementwise    ``HadamardPower(1 + HadamardPower(E, -A), -1)``,
                                   ``2 * HadamardPower(1 + HadamardPower(E, -2A), -1) - 1``
``softmax(z)``, ``logsumexp(z)``   ``HadamardPower(E, z) / (1ᵀ e^z)``, ``log(1ᵀ e^z)``
``diag(x)``, ``diagvec(A)``        ``DiagMatrix(x)``, ``DiagonalOf(A)``
other elementwise functions        none without applyfunc (``log sin cos tan arctan log1p
                                   softplus abs sign relu step``): `UnsupportedError` (see below)
``dX`` (a differential leaf)       ``MatrixSymbol("dX", …)`` / ``Symbol("dX")``
=================================  ==============================================================

Conventions worth knowing:

- **Scalars are SymPy scalars.** derivgen stores every value as a 2-D array and a scalar as 1×1;
  SymPy keeps scalars (``Symbol``, ``Trace``, ``Determinant``) apart from matrix expressions and
  refuses to add a 1×1 matrix to a scalar. Every scalar-valued node therefore converts to a
  SymPy scalar: a 1×1 matrix product such as ``x'*A*x`` becomes ``Trace(x.T*A*x)``, which is
  exact (the trace of a 1×1 matrix is its entry) and is the form SymPy's matrix calculus
  differentiates: ``to_sympy(f).diff(to_sympy(X))``.
- **logdet.** derivgen's ``logdet(X)`` is ``log|det X|``; it converts to
  ``log(Determinant(X))``, which is the same number where ``det X > 0`` and differs by the
  constant ``iπ`` where ``det X < 0`` (so derivatives agree). On a scalar it is ``log(Abs(x))``.
- **Elementwise functions** are written without ``applyfunc`` (``ElementwiseApplyFunction``):
  through ``HadamardPower`` with the base ``E`` where an exact form exists. The others (``log``,
  ``sin``, ``abs``, …) have none and raise `UnsupportedError`. With ``elementwise="applyfunc"``
  every elementwise function (also inside ``softmax`` and ``logsumexp``) becomes
  ``ElementwiseApplyFunction`` instead (``A.applyfunc(exp)``): SymPy's generic form, which its
  matrix calculus handles in some cases where it cannot handle ``HadamardPower(E, A)``.
- **where: names** stay symbols unless ``where=`` (a mapping name → definition, as in
  ``Context.where``) is given, in which case they are replaced by their definitions.

`evaluate_sympy` computes the value of such an expression (and of the results of SymPy's
``diff``) with NumPy at given arrays, for numeric checks.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping

import numpy as np

from . import expr as E
from . import functions as registry
from .errors import UnsupportedError
from .expr import Expr

__all__ = ["to_sympy", "inline_where", "evaluate_sympy", "IllShapedError"]


def inline_where(e: Expr, where: Mapping[str, Expr]) -> Expr:
    """`e` with every `where:` name replaced by its definition (recursively, last name first)."""
    for name in reversed(list(where)):
        definition = where[name]
        e = E.substitute(e, {E.Sym(name, definition.shape, "where"): definition})
    return e


def to_sympy(
    expr: Expr,
    sizes: Mapping[str, int] | None = None,
    *,
    where: Mapping[str, Expr] | None = None,
    elementwise: str = "hadamard",
):
    """The SymPy expression of a derivgen expression (see the module docstring for the mapping).

    sizes: optional concrete sizes for dimension symbols (``{"n": 3}``); dimensions not given
    stay SymPy symbols. where: optional `where:` definitions to inline before converting.
    elementwise: "hadamard" (default, no applyfunc) or "applyfunc" (see the module docstring).

    Scalar-valued expressions give SymPy scalars, all others SymPy matrix expressions with the
    same shape. Raises `UnsupportedError` for what has no SymPy counterpart (elementwise `log`
    of a matrix, an unexpanded differential `d(…)`).
    """
    if where:
        expr = inline_where(expr, where)
    if elementwise not in ("hadamard", "applyfunc"):
        raise ValueError(f"elementwise must be 'hadamard' or 'applyfunc', not {elementwise!r}")
    return _Converter(dict(sizes or {}), elementwise)(expr)


class _Converter:
    def __init__(self, sizes: dict[str, int], elementwise: str = "hadamard"):
        import sympy

        self.sp = sympy
        self.sizes = sizes
        self.applyfunc = elementwise == "applyfunc"
        self.dispatch = {
            E.Sym: self.sym, E.Dif: self.dif, E.Num: self.num, E.Ones: self.ones, E.Eye: self.eye,
            E.Zero: self.zero, E.Add: self.add, E.MatMul: self.matmul, E.Transpose: self.transpose,
            E.Inverse: self.inverse, E.Power: self.power, E.Hadamard: self.hadamard,
            E.HadDiv: self.haddiv, E.HadPow: self.hadpow, E.Func: self.func, E.D: self.unexpanded,
        }
        self.cache: dict[Expr, Any] = {}

    def __call__(self, e: Expr):
        out = self.cache.get(e)
        if out is None:
            handler = self.dispatch.get(type(e))
            if handler is None:
                raise UnsupportedError(f"no SymPy counterpart for a {type(e).__name__} node")
            out = handler(e)
            if e.is_scalar:
                out = self.scalar(out)
            self.cache[e] = out
        return out

    # -- helpers

    def dim(self, d):
        if isinstance(d, int):
            return self.sp.Integer(d)
        if d in self.sizes:
            return self.sp.Integer(self.sizes[d])
        return self.sp.Symbol(d, integer=True, positive=True)

    def shape(self, e: Expr):
        return self.dim(e.shape[0]), self.dim(e.shape[1])

    def scalar(self, out):
        """A SymPy scalar for a scalar-valued node: a 1×1 matrix expression becomes its trace."""
        from sympy.matrices.expressions import MatrixExpr

        if isinstance(out, MatrixExpr):
            return self.sp.Trace(out)
        if isinstance(out, self.sp.MatrixBase):
            return out[0, 0]
        return out

    def ones_row(self, n):
        return self.sp.OneMatrix(1, n)

    def total(self, m):
        """Sum of all entries of a matrix expression (a scalar)."""
        r, c = m.shape
        return self.sp.Trace(self.sp.OneMatrix(1, r) * m * self.sp.OneMatrix(c, 1))

    def exp_of(self, m):
        if self.applyfunc:
            return self.elementwise("exp", m)
        return self.sp.HadamardPower(self.sp.E, m)

    def elementwise(self, name: str, m):
        """`name` applied to each entry of `m`, as ElementwiseApplyFunction (applyfunc)."""
        from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

        sp = self.sp
        t = sp.Dummy("t")
        return ElementwiseApplyFunction(sp.Lambda(t, registry.FUNCTIONS[name].sympy(sp, t)), m)

    def recip(self, m):
        return self.sp.HadamardPower(m, -1)

    # -- leaves

    def sym(self, e: E.Sym):
        if e.role == "dim":
            return self.dim(e.name)
        if e.is_scalar:
            return self.sp.Symbol(e.name, real=True)
        return self.sp.MatrixSymbol(e.name, *self.shape(e))

    def dif(self, e: E.Dif):
        if e.is_scalar:
            return self.sp.Symbol("d" + e.name, real=True)
        return self.sp.MatrixSymbol("d" + e.name, *self.shape(e))

    def num(self, e: E.Num):
        v = Fraction(e.value)
        return self.sp.Rational(v.numerator, v.denominator)

    def ones(self, e: E.Ones):
        return self.sp.Integer(1) if e.is_scalar else self.sp.OneMatrix(*self.shape(e))

    def eye(self, e: E.Eye):
        return self.sp.Integer(1) if e.is_scalar else self.sp.Identity(self.dim(e.n))

    def zero(self, e: E.Zero):
        return self.sp.Integer(0) if e.is_scalar else self.sp.ZeroMatrix(*self.shape(e))

    def unexpanded(self, e: E.D):
        raise UnsupportedError("an unexpanded differential d(…) has no SymPy counterpart; expand it first")

    # -- composites

    def add(self, e: E.Add):
        out = self(e.terms[0])
        for t in e.terms[1:]:
            out = out + self(t)
        return out

    def matmul(self, e: E.MatMul):
        scale = self.sp.Rational(e.coeff.numerator, e.coeff.denominator)
        for s in e.scalars:
            scale = scale * self(s)
        if not e.chain:
            return scale
        chain = [self(f) for f in e.chain]
        if len(chain) == 1:
            product = chain[0]
        else:
            product = self.sp.MatMul(*chain).doit(deep=False)
        if e.is_scalar:  # c·(x'Ax) is c·Trace(x'Ax), not Trace(c·x'Ax): the scalars stay outside
            product = self.scalar(product)
        if scale == 1:
            return product
        return scale * product

    def transpose(self, e: E.Transpose):
        arg = self(e.arg)
        if e.arg.is_scalar:
            return arg
        return self.sp.Transpose(arg)

    def inverse(self, e: E.Inverse):
        arg = self(e.arg)
        if e.arg.is_scalar:
            return 1 / arg
        return self.sp.Inverse(arg)

    def power(self, e: E.Power):
        base, k = self(e.base), self(e.exp)
        if e.base.is_scalar:
            return self.sp.Pow(base, k)
        return self.sp.MatPow(base, k)

    def hadamard(self, e: E.Hadamard):
        factors = [self(f) for f in e.factors]
        if e.is_scalar:
            return self.sp.Mul(*factors)
        return self.sp.HadamardProduct(*factors)

    def haddiv(self, e: E.HadDiv):
        num, den = self(e.num), self(e.den)
        if e.is_scalar:
            return num / den
        if isinstance(e.num, E.Ones):
            return self.recip(den)
        return self.sp.HadamardProduct(num, self.recip(den))

    def hadpow(self, e: E.HadPow):
        base = self(e.base)
        k = self.sp.Rational(e.exp.numerator, e.exp.denominator)
        if e.is_scalar:
            return self.sp.Pow(base, k)
        return self.sp.HadamardPower(base, k)

    def func(self, e: E.Func):
        sp = self.sp
        name, arg = e.name, self(e.arg)
        if e.arg.is_scalar:
            return self.scalar_func(name, arg)
        if name == "tr":
            return sp.Trace(arg)
        if name == "det":
            return sp.Determinant(arg)
        if name == "logdet":
            return sp.log(sp.Determinant(arg))
        if name == "sum":
            return self.total(arg)
        if name == "norm":
            return sp.sqrt(sp.Trace(sp.Transpose(arg) * arg))
        if self.applyfunc and name in E.ELEMENTWISE:
            return self.elementwise(name, arg)
        if name == "sqrt":
            return sp.HadamardPower(arg, sp.Rational(1, 2))
        if name == "exp":
            return self.exp_of(arg)
        if name == "sigma":
            return self.recip(sp.OneMatrix(*arg.shape) + self.exp_of(-arg))
        if name == "tanh":
            ones = sp.OneMatrix(*arg.shape)
            return 2 * self.recip(ones + self.exp_of(-2 * arg)) - ones
        if name == "softmax" and e.arg.shape[1] != 1:  # of each column: w ⊙ (1 (1ᵀw)^⊙-1)
            w = self.exp_of(arg)
            k = w.shape[0]
            return sp.HadamardProduct(w, sp.OneMatrix(k, 1) * self.recip(sp.OneMatrix(1, k) * w))
        if name == "softmax":
            w = self.exp_of(arg)
            return w / self.total(w)
        if name == "logsumexp" and e.arg.shape[1] != 1:  # a row: log of each column's 1ᵀeᶻ
            sums = sp.OneMatrix(1, arg.shape[0]) * self.exp_of(arg)
            if not self.applyfunc:
                raise UnsupportedError(
                    "the column-wise logsumexp of a matrix has no applyfunc-free SymPy counterpart",
                    hint="to_sympy(..., elementwise='applyfunc') writes it with ElementwiseApplyFunction(log, …)")
            return self.elementwise("log", sums)
        if name == "logsumexp":
            return sp.log(self.total(self.exp_of(arg)))
        if name == "diag":
            from sympy.matrices.expressions.diagonal import DiagMatrix

            return DiagMatrix(arg)
        if name == "diagvec":
            from sympy.matrices.expressions.diagonal import DiagonalOf

            return DiagonalOf(arg)
        if name in E.ELEMENTWISE:
            raise UnsupportedError(
                f"the elementwise {name} of a matrix or vector has no applyfunc-free SymPy counterpart",
                hint=f"to_sympy(..., elementwise='applyfunc') writes it as ElementwiseApplyFunction({name}, …)",
            )
        raise UnsupportedError(f"the function {name} has no SymPy counterpart")

    def scalar_func(self, name: str, x):
        """The function of a scalar, by the registry's SymPy counterpart (derivgen/functions.py)."""
        counterpart = registry.FUNCTIONS[name].sympy
        if counterpart is None:
            raise UnsupportedError(f"the function {name} has no SymPy counterpart")
        return counterpart(self.sp, x)


# ----------------------------------------------------------------------------- numeric values


def evaluate_sympy(sexpr, values: Mapping[str, Any], sizes: Mapping[str, int] | None = None) -> np.ndarray:
    """The value of a SymPy (matrix) expression as a 2-D float array (a scalar as 1×1).

    values: arrays (or floats) by symbol name, vectors as ``(n, 1)`` arrays; sizes: ints for
    dimension symbols. Handles what `to_sympy` produces and the usual results of SymPy's matrix
    `diff` (including array expressions such as ``ArrayDiagonal``, by SymPy's own ``doit``).
    Raises ValueError for what cannot be evaluated (an unevaluated ``Derivative``, a symbol
    without a value), and its subclass `IllShapedError` for an expression whose shapes do not fit
    at the given sizes (a sum, product or elementwise product of mismatched matrices). The value is complex only when SymPy's is (``log`` of a negative number).
    """
    return _SympyEvaluator(values, dict(sizes or {}))(sexpr)


class _SympyEvaluator:
    def __init__(self, values: Mapping[str, Any], sizes: dict[str, int]):
        import sympy

        self.sp = sympy
        self.values = {k: v for k, v in values.items()}
        self.sizes = sizes

    def size(self, d) -> int:
        d = self.sp.sympify(d)
        d = d.subs({s: self.sizes[s.name] for s in d.free_symbols if s.name in self.sizes})
        if d.free_symbols:
            raise ValueError(f"no size given for {', '.join(sorted(s.name for s in d.free_symbols))}")
        return int(d)

    def __call__(self, e) -> np.ndarray:
        out = self.value(e)
        out = np.asarray(out)
        if out.ndim == 0:
            out = out.reshape(1, 1)
        elif out.ndim == 1:
            out = out.reshape(-1, 1)
        if np.iscomplexobj(out) and np.all(np.abs(out.imag) <= 1e-12 * (1 + np.abs(out.real))):
            out = out.real
        return out

    def value(self, e):
        sp = self.sp
        from sympy.matrices.expressions import diagonal, hadamard
        from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

        if isinstance(e, sp.MatrixSymbol):
            if e.name not in self.values:
                raise ValueError(f"no value given for {e.name}")
            v = np.asarray(self.values[e.name], dtype=float)
            return v.reshape(-1, 1) if v.ndim == 1 else v
        if isinstance(e, sp.Symbol):
            if e.name in self.values:
                return float(np.asarray(self.values[e.name]).reshape(-1)[0])
            if e.name in self.sizes:
                return float(self.sizes[e.name])
            raise ValueError(f"no value given for {e.name}")
        if e is sp.I:
            return 1j
        if e.is_Number or isinstance(e, sp.NumberSymbol):
            return float(e)
        if isinstance(e, sp.OneMatrix):
            return np.ones((self.size(e.shape[0]), self.size(e.shape[1])))
        if isinstance(e, sp.ZeroMatrix):
            return np.zeros((self.size(e.shape[0]), self.size(e.shape[1])))
        if isinstance(e, sp.Identity):
            return np.eye(self.size(e.shape[0]))
        if isinstance(e, sp.MatrixBase):
            return np.array(e.evalf(), dtype=complex)
        if isinstance(e, sp.MatAdd) or isinstance(e, sp.Add):
            return _sum([self.value(a) for a in e.args], "sum")
        if isinstance(e, sp.MatMul):
            out = None
            for a in e.args:
                v = self.value(a)
                if out is None:
                    out = v
                elif np.ndim(out) == 2 and np.ndim(v) == 2:
                    if out.shape[1] != v.shape[0]:
                        raise IllShapedError(f"product of {_shape(out)} and {_shape(v)} in {_short(e)}")
                    out = out @ v
                else:
                    out = out * v
            return out
        if isinstance(e, sp.Mul):
            out = 1.0
            for a in e.args:
                out = out * self.value(a)
            return out
        if isinstance(e, sp.Transpose):
            return np.asarray(self.value(e.arg)).T
        if isinstance(e, sp.Inverse):
            return np.linalg.inv(self.value(e.arg))
        if isinstance(e, sp.MatPow):
            base, k = self.value(e.base), self.value(e.exp)
            k = int(round(float(np.real(k))))
            if np.ndim(base) == 0:
                return base ** k
            return np.linalg.matrix_power(np.linalg.inv(base), -k) if k < 0 else np.linalg.matrix_power(base, k)
        if isinstance(e, sp.Pow):
            base, k = self.value(e.base), self.value(e.exp)
            if np.ndim(base) == 2:  # a power of a matrix written as Pow
                k = int(round(float(np.real(k))))
                return np.linalg.matrix_power(np.linalg.inv(base), -k) if k < 0 else np.linalg.matrix_power(base, k)
            if np.real(base) < 0 and not float(np.real(k)).is_integer():
                base = complex(base)  # as SymPy: (-x)^(1/2) is imaginary
            return base ** k
        if isinstance(e, sp.Trace):
            return np.trace(self.value(e.arg))
        if isinstance(e, sp.Determinant):
            return np.linalg.det(self.value(e.arg))
        if isinstance(e, hadamard.HadamardProduct):
            return _elementwise_product([self.value(a) for a in e.args], e)
        if isinstance(e, hadamard.HadamardPower):
            return np.power(self.value(e.base), self.value(e.exp))
        if isinstance(e, ElementwiseApplyFunction):
            t = sp.Dummy("t")
            f = sp.lambdify(t, e.function(t), modules="numpy")
            return np.vectorize(f, otypes=[complex])(self.value(e.expr))
        if isinstance(e, diagonal.DiagMatrix):
            return np.diag(np.asarray(self.value(e.args[0])).reshape(-1))
        if isinstance(e, diagonal.DiagonalOf):
            return np.diag(self.value(e.args[0])).reshape(-1, 1).copy()
        if isinstance(e, sp.log):
            x = self.value(e.args[0])
            return np.log(x + 0j) if np.any(np.real(x) < 0) else np.log(x)
        if isinstance(e, sp.exp):
            return np.exp(self.value(e.args[0]))
        if isinstance(e, sp.Abs):
            return np.abs(self.value(e.args[0]))
        if isinstance(e, sp.tanh):
            return np.tanh(self.value(e.args[0]))
        if isinstance(e, sp.sign):
            return np.sign(self.value(e.args[0]))
        return self.generic(e)

    def generic(self, e):
        """Anything else (array expressions from SymPy's diff): children as explicit values, SymPy's doit."""
        sp = self.sp
        if isinstance(e, sp.Derivative) or e.has(sp.Derivative):
            raise ValueError("the expression holds an unevaluated Derivative")
        if not e.args:
            raise ValueError(f"cannot evaluate {e!r}")
        args = []
        for a in e.args:
            if isinstance(a, (sp.Tuple, tuple)) or (isinstance(a, sp.Integer) and not a.free_symbols):
                args.append(a)  # index specifications of array expressions
                continue
            v = np.asarray(self.value(a))
            if v.ndim == 0:
                args.append(sp.Float(float(np.real(v))))
            else:
                args.append(sp.ImmutableDenseNDimArray(np.real(v).tolist()) if v.ndim > 2
                            else sp.ImmutableMatrix(np.real(v).tolist()))
        try:
            out = e.func(*args).doit()
            if not isinstance(out, (sp.MatrixBase, sp.NDimArray)) and hasattr(out, "as_explicit"):
                out = out.as_explicit()
            if isinstance(out, (sp.MatrixBase, sp.NDimArray)):
                return np.array(out.tolist(), dtype=complex)
            return complex(out)
        except Exception as exc:  # noqa: BLE001 - whatever SymPy raises, the value is unknown
            raise ValueError(f"cannot evaluate {type(e).__name__}: {exc}") from None


class IllShapedError(ValueError):
    """The expression combines matrices whose shapes do not fit (at the given sizes)."""


def _shape(v) -> str:
    return "×".join(map(str, np.shape(v))) or "scalar"


def _short(e) -> str:
    text = str(e)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_same(values, what: str, e=None) -> None:
    shapes = {np.shape(v) for v in values if np.ndim(v) == 2}
    if len(shapes) > 1:
        raise IllShapedError(f"{what} of {' and '.join(sorted(_shape(np.empty(s)) for s in shapes))}"
                             + (f" in {_short(e)}" if e is not None else ""))


def _sum(values, what: str):
    _check_same(values, what)
    out = None
    for v in values:
        out = v if out is None else out + v
    return out


def _elementwise_product(values, e):
    _check_same(values, "elementwise product", e)
    out = 1.0
    for v in values:
        out = out * v
    return out

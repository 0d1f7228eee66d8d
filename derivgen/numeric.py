"""Numeric evaluation of expression trees with NumPy (used by the verifier).

Every value is a 2-D float array; a scalar is a (1, 1) array. Differentials `dX` are looked up
in `env` under the key ``("d", "X")``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from . import expr as E
from . import functions
from .expr import Expr
from .limits import MAX_CHECK_SIZE


class Evaluator:
    """Evaluates expressions against an environment of arrays (and dimension sizes)."""

    def __init__(self, env: dict, sizes: dict[str, int]):
        self.env = env
        self.sizes = sizes
        self.cache: dict[Expr, np.ndarray] = {}

    def __call__(self, e: Expr) -> np.ndarray:
        out = self.cache.get(e)
        if out is None:
            out = _DISPATCH[type(e)](self, e)
            self.cache[e] = out
        return out

    def size(self, d) -> int:
        return check_size(d, self.sizes)

    def commutation(self, e):
        m, n = self.size(e.m), self.size(e.n)
        k = np.zeros((m * n, m * n))
        for i in range(m):
            for j in range(n):
                k[i * n + j, j * m + i] = 1.0  # vec(Xᵀ)[i*n + j] = X[i, j] = vec(X)[j*m + i]
        return k

    def sym(self, e):
        if e.role == "dim":
            return np.array([[float(self.sizes[e.name])]])
        if e.index is not None:  # a sample of a family: column t of the stacked samples
            k = self.env[("index", e.index)]
            return self.env[e.name][:, [k]]
        return self.env[e.name]

    def sumover(self, e):
        total = None
        for k in range(self.size(e.count)):
            value = Evaluator({**self.env, ("index", e.index): k}, self.sizes)(e.body)
            total = value if total is None else total + value
        return total

    def dif(self, e):
        return self.env[("d", e.name)]

    def d(self, e):
        """An unexpanded d(U): its value comes from the caller's `("d(...)",)` hook (the verifier's
        finite difference of U along the direction), which sees the indices of the sums around it."""
        hook = self.env.get(("d(...)",))
        if hook is None:
            raise ValueError("an unexpanded differential cannot be evaluated")
        return hook(e.arg, self.env)

    def num(self, e):
        return np.array([[float(e.value)]])

    def ones(self, e):
        return np.ones((self.size(e.shape[0]), self.size(e.shape[1])))

    def eye(self, e):
        return np.eye(self.size(e.n))

    def zero(self, e):
        return np.zeros((self.size(e.shape[0]), self.size(e.shape[1])))

    def add(self, e):
        out = self(e.terms[0])
        for t in e.terms[1:]:
            out = out + self(t)
        return out

    def matmul(self, e):
        scale = float(e.coeff)
        for s in e.scalars:
            scale = scale * self(s)[0, 0]
        if not e.chain:
            return np.array([[scale]])
        out = self(e.chain[0])
        for f in e.chain[1:]:
            out = out @ self(f)
        return scale * out

    def transpose(self, e):
        return self(e.arg).T

    def power(self, e):
        base = self(e.base)
        k = self(e.exp)[0, 0]
        if e.base.is_scalar:
            return base ** k
        k = int(round(k))
        if k < 0:
            return np.linalg.matrix_power(np.linalg.inv(base), -k)
        return np.linalg.matrix_power(base, k)

    def hadamard(self, e):
        out = self(e.factors[0])
        for f in e.factors[1:]:
            out = out * self(f)
        return out

    def func(self, e):
        """The registry's value of the function (derivgen/functions.py), as a 2-D array."""
        return np.asarray(functions.FUNCTIONS[e.name].value(self(e.arg)), dtype=float)


#: node type -> how an Evaluator computes it (built once, not per evaluator)
_DISPATCH = {
    E.Sym: Evaluator.sym, E.Dif: Evaluator.dif, E.Num: Evaluator.num, E.Ones: Evaluator.ones, E.Eye: Evaluator.eye,
    E.Zero: Evaluator.zero, E.Add: Evaluator.add, E.MatMul: Evaluator.matmul, E.Transpose: Evaluator.transpose,
    E.Inverse: lambda self, e: np.linalg.inv(self(e.arg)), E.Power: Evaluator.power,
    E.Hadamard: Evaluator.hadamard, E.HadDiv: lambda self, e: self(e.num) / self(e.den),
    E.HadPow: lambda self, e: self(e.base) ** float(e.exp), E.Func: Evaluator.func, E.D: Evaluator.d,
    E.Kron: lambda self, e: np.kron(self(e.a), self(e.b)), E.Commutation: Evaluator.commutation,
    E.Eq: lambda self, e: self(e.lhs) - self(e.rhs), E.SumOver: Evaluator.sumover,
}


def check_size(d, sizes: dict) -> int:
    """The size at which dimension `d` is evaluated.

    A symbol has the size drawn for it (`sizes["n"]`); a product is the product of its factors.
    An integer is used as written, unless `sizes` gives it a stand-in (the verifier checks a
    dimension declared as 100000 at a small size, `sizes[100000]`): then an integer above
    `limits.MAX_CHECK_SIZE` that is a multiple of one with a stand-in (`vec` of a 100000×3
    matrix has 300000 entries) is that stand-in times the rest."""
    if isinstance(d, tuple):
        return int(np.prod([check_size(x, sizes) for x in d]))
    if isinstance(d, str):
        return sizes[d]
    if d in sizes:
        return sizes[d]
    if d > MAX_CHECK_SIZE:
        for base in sorted((k for k in sizes if isinstance(k, int)), reverse=True):
            if d % base == 0:
                return sizes[base] * check_size(d // base, sizes)
    return d


def evaluate(e: Expr, env: dict, sizes: dict[str, int]) -> np.ndarray:
    """Value of `e` (a 2-D array) for the given variable values and dimension sizes."""
    return Evaluator(env, sizes)(e)

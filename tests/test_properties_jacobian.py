"""Property-based tests (hypothesis) of Jacobians, matrix-by-matrix derivatives and Hessians.

The companion of `test_properties.py` (gradients) for DESIGN §3 item 6. Strategies build random
*well-shaped* expression texts, grown top-down from a target shape, over three families of
variables whose dimensions are distinct symbols:

    vector family:  x: n×1  X: m×n  A: p×n  B: n×n  C: n×n  a: n×1  b: m×1  s: scalar
    matrix family:  X: m×n  A: p×m  B: n×p  C: n×n  x: n×1  b: m×1  s: scalar
    square family:  X: n×n  A: p×n  B: n×p  C: n×n  x: n×1  s: scalar     (X invertible)

(B may be assumed symmetric where it is square, drawn per case.) The vector family yields
VECTOR-valued functions (n×1, m×1, p×1) of x, X and the constants: products with constants
(`A*v`, `B'*v`, `X'*v`, `inv(C)*v`, `C^-1*v`), sums, differences, negation and scalar multiples
(`2*`, `1/2*`, `s*`, `/2`), transposes where they fit (`(v'*M)'`), `.*`, `./` by a positive
vector or scalar, `.^2`, `exp` (of moderate arguments), `sigma`, `tanh`, `log`/`sqrt` of
positive things, `softmax`, `diag(u)*v`, `1 - v`, scalar factors in front and behind
(`(a'*x)*v`, `v*(x'*a)`, `sum(u)*v`, `tr(M)*v`, `v/(u'*u + 1)`), outer products `u*(w'*v)`. The
matrix and square families yield MATRIX-valued functions of X (and of the constants):
`A*X*B`-like products, `X'`, `X'*X`, `X .* X`, `X ./ pos`, `exp(X)`, `sigma tanh`, `X*C`,
`s*X`, `tr(X)*C`, `I + M`, `diag(v)`, `M^2` and, in the square family, `inv(X)`, `X^-1`,
`inv(X')`. Every function uses the family's x (resp. X); the variable of the derivative is drawn
among those in f (x or X half the time). Arguments of `exp` are "tame" (products of at most two
variables) and inverses are of the plain square variables, sampled well-conditioned
(`R/√n + 2I`), so values stay moderate and finite differences accurate. Sizes are small and
distinct (m=5, n=4, p=2: not the verifier's assignment, so the two checks do not share a blind
spot). SCALAR functions of x for Hessians wrap vectors of the vector family (`a'*v`, `sum(v)`,
`norm(v)^2`, `v'*B*v`, `logsumexp(v)`, `sum(log(1 + exp(v)))` with a tame v, `sigma(a'*v)`,
`u'*softmax(v)`, the cross-entropy `-u'*log(softmax(v))`) or are grown directly at the scalar
shape (inner products, `sum`, `tr`, `norm(.)^2`, `u'*M*u`, `logsumexp`, `sigma`, ...).

Properties (derandomized, so CI sees the same examples every time):

1. `derive_jacobian(f, wrt, …, layout)`, in both layouts, raises a `DerivgenError` or returns a
   result that evaluates to the test's own 4-point central finite-difference Jacobian (column k
   = ∂ vec f / ∂ (vec W)ₖ, columns stacked; the transpose in denominator layout), entry by
   entry, at our own random point; and `verify_jacobian` passes exactly when that check passes.
   Never another exception, never a wrong result.
2. Hessians (`order: 2` through `pipeline.solve`): the gradient matches first differences and
   the Hessian matches the test's own second differences of f (finite differences of a
   finite-difference gradient) entry by entry, and is numerically symmetric. `solve` may refuse
   with a `DerivgenError`, but a `VerificationError` other than "f could not be evaluated" fails
   the test: the verifier then stopped a wrong result, or rejected a right one.
3. The JSON `numpy` code of Jacobian and Hessian results (`pipeline.document`), evaluated with
   vectors as (n, 1) arrays, scalars as floats and dimension sizes as ints, returns the value of
   the result. (A problem the pipeline refuses or crashes on has no code to check: crashes are
   the business of properties 1 and 2.)

Regression cases found by these properties follow at the end, as plain parametrized tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st

from derivgen import expr as E
from derivgen.derive import Context, derive_gradient
from derivgen.derive.jacobian import derive_jacobian
from derivgen.errors import DerivgenError, VerificationError
from derivgen.numeric import evaluate
from derivgen.parse import Scope, parse_expr
from derivgen.pipeline import document, solve
from derivgen.printing import text
from derivgen.problem import load_problem_text
from derivgen.verify import verify_jacobian


# ----------------------------------------------------------------------------- the families


@dataclass(frozen=True)
class Family:
    name: str
    variables: dict  # name -> shape
    key: str          # the variable every function uses
    invertible: tuple[str, ...]  # square variables allowed under inv / negative powers
    targets: tuple    # shapes of the functions drawn in this family

    @property
    def dims(self) -> tuple:
        return tuple(sorted({d for sh in self.variables.values() for d in sh if isinstance(d, str)}))


VECTOR = Family(
    "vector",
    {"x": ("n", 1), "X": ("m", "n"), "A": ("p", "n"), "B": ("n", "n"), "C": ("n", "n"),
     "a": ("n", 1), "b": ("m", 1), "s": (1, 1)},
    "x", ("C",), (("n", 1), ("n", 1), ("m", 1), ("p", 1)),
)
MATRIX = Family(
    "matrix",
    {"X": ("m", "n"), "A": ("p", "m"), "B": ("n", "p"), "C": ("n", "n"), "x": ("n", 1), "b": ("m", 1), "s": (1, 1)},
    "X", ("C",), (("m", "n"), ("m", "n"), ("n", "m"), ("n", "n"), ("m", "m"), ("p", "p"), ("p", "n"), ("m", 1)),
)
SQUARE = Family(
    "square",
    {"X": ("n", "n"), "A": ("p", "n"), "B": ("n", "p"), "C": ("n", "n"), "x": ("n", 1), "s": (1, 1)},
    "X", ("X", "C"), (("n", "n"), ("n", "n"), ("p", "n"), ("n", "p"), ("p", "p"), ("n", 1)),
)
FAMILIES = {f.name: f for f in (VECTOR, MATRIX, SQUARE)}

# Distinct sizes, a different assignment from the verifier's (first appearance: 3, 4, 5).
SIZES = {"m": 5, "n": 4, "p": 2}
LAYOUTS = ("denominator", "numerator")

H = 1e-3        # finite-difference step (per entry, 4-point central stencil)
RTOL = 1e-6     # largest entry error accepted, relative to the largest entry ...
FLOOR = 1e-4    # ... or to this floor times (1 + largest |f|): round-off of the differences
H_RTOL = 1e-5   # Hessians: second differences are noisier
H_FLOOR = 1e-3

# No explain phase: on a failure it re-runs the (slow) failing case some hundred times.
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])


def make_scope(family: Family) -> Scope:
    scope = Scope()
    for name, shape in family.variables.items():
        scope.declare(name, shape)
    scope.dims = set(family.dims)
    return scope


def size(d) -> int:
    if isinstance(d, tuple):
        return int(np.prod([size(x) for x in d]))
    return d if isinstance(d, int) else SIZES[d]


def numeric_shape(shape) -> tuple[int, int]:
    return size(shape[0]), size(shape[1])


def sample(family: Family, rng: np.random.Generator, assume_: dict) -> dict[str, np.ndarray]:
    """Random values satisfying the assumptions; invertible squares well-conditioned."""
    env = {}
    for name, shape in family.variables.items():
        r, c = numeric_shape(shape)
        v = rng.standard_normal((r, c))
        if "symmetric" in assume_.get(name, set()):
            v = (v + v.T) / 2
        if name in family.invertible:
            v = v / np.sqrt(r) + 2.0 * np.eye(r)
        env[name] = v
    return env


def value(e: E.Expr, env: dict) -> np.ndarray:
    with np.errstate(all="ignore"):
        return evaluate(e, env, SIZES)


# ----------------------------------------------------------------------------- the generator

SUM, PROD, UNARY, POW, POST, ATOM = range(1, 7)  # how tightly a piece of text binds


@dataclass(frozen=True)
class Piece:
    s: str
    prec: int


def at(p: Piece, min_prec: int) -> str:
    """The text of `p`, parenthesised if it binds more loosely than its place needs."""
    return p.s if p.prec >= min_prec else f"({p.s})"


def _direct(shape, variables) -> list[Piece]:
    """Variables of this shape and transposes of (non-scalar) variables of the transposed shape."""
    out = [Piece(n, ATOM) for n, sh in variables.items() if sh == shape]
    out += [Piece(n + "'", POST) for n, sh in variables.items() if (sh[1], sh[0]) == shape and sh != (1, 1)]
    return out


def _shapes(family: Family):
    dims = family.dims + (1,)
    return [(r, c) for r in dims for c in dims]


for _family in FAMILIES.values():  # every shape is a variable, a transpose or a product of two
    for _shape in _shapes(_family):
        assert _direct(_shape, _family.variables) or any(
            _direct((_shape[0], k), _family.variables) and _direct((k, _shape[1]), _family.variables)
            for k in _family.dims + (1,)), (_family.name, _shape)


class Gen:
    """Draws one well-shaped expression text of a given shape (hypothesis-driven)."""

    def __init__(self, draw, family: Family):
        self.draw = draw
        self.family = family
        self.variables = family.variables
        self.all_dims = family.dims + (1,)

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def direct(self, shape) -> list[Piece]:
        return _direct(shape, self.variables)

    def leaf(self, shape) -> Piece:
        direct = self.direct(shape)
        if direct:
            keyed = [p for p in direct if p.s.rstrip("'") == self.family.key]
            if keyed and self.draw(st.booleans()):  # the key (x or X) half the time it fits
                return self.pick(keyed)
            return self.pick(direct)
        k = self.pick([k for k in self.all_dims if self.direct((shape[0], k)) and self.direct((k, shape[1]))])
        return self.product(self.leaf((shape[0], k)), self.leaf((k, shape[1])))

    @staticmethod
    def product(a: Piece, b: Piece, op: str = "*") -> Piece:
        return Piece(f"{at(a, PROD)}{op}{at(b, UNARY)}", PROD)

    def inverses(self, r) -> list[Piece]:
        out = []
        for v in self.family.invertible:
            if self.variables[v] == (r, r):
                out += [Piece(f"inv({v})", ATOM), Piece(f"{v}^-1", POW), Piece(f"inv({v}')", ATOM)]
        return out

    def expr(self, shape, depth: int, tame: bool = False) -> Piece:
        if tame:
            depth = min(depth, 1)  # products of at most two leaves: moderate entries
        if depth <= 0:
            return self.leaf(shape)
        r, c = shape
        scalar = shape == (1, 1)
        vector = c == 1 and not scalar
        square = r == c and not scalar
        ops = ["leaf", "leaf", "mul", "mul", "add", "sub", "scale", "sigma", "tanh"]
        if not scalar:
            ops += ["tp"]
        if not tame:
            ops += ["mul", "exp", "logsqrt", "factor", "quotient"]
            if not scalar:
                ops += ["had", "had", "hdiv", "hpow2", "ones"]
        if square and self.inverses(r):
            ops += ["inv", "inv"]
        if square and not tame:
            ops += ["eye", "diag", "trscale", "square"]
        if vector and not tame:
            ops += ["softmax", "diagmul", "diagmul", "outer"]
            if self.inverses(r):
                ops += ["invmul", "invmul"]
        if scalar and not tame:
            ops += ["inner", "inner", "sum", "norm2", "quad", "tr", "logsumexp"]
        op = self.pick(ops)
        d = depth - 1

        def sub(sh=shape, dd=d):
            return self.expr(sh, dd, tame)

        if op == "leaf":
            return self.leaf(shape)
        if op == "mul":
            if tame:
                ks = [k for k in self.all_dims if self.direct((r, k)) and self.direct((k, c))]
                if not ks:
                    return self.leaf(shape)
                k = self.pick(ks)
                return self.product(self.leaf((r, k)), self.leaf((k, c)))
            k = self.pick(list(self.all_dims))
            return self.product(sub((r, k)), sub((k, c)))
        if op in ("add", "sub"):
            a, b = sub(), sub()
            return Piece(f"{at(a, SUM)} {'+' if op == 'add' else '-'} {at(b, PROD)}", SUM)
        if op == "scale":
            e = sub()
            how = self.pick(["neg", "half", "div4"] if tame else ["2", "half", "s", "neg", "div2"])
            if how == "neg":
                return Piece("-" + at(e, UNARY), UNARY)
            if how == "half":
                return Piece("1/2*" + at(e, UNARY), PROD)
            if how in ("div2", "div4"):
                return Piece(at(e, PROD) + ("/2" if how == "div2" else "/4"), PROD)
            return Piece(f"{how}*{at(e, UNARY)}", PROD)
        if op == "tp":  # (M')' where M' fits: e.g. (v'*B)' for B'*v
            e = sub((c, r))
            if self.draw(st.booleans()):
                return Piece(at(e, POST) + "'", POST)
            return Piece(at(e, POST) + "^T", POW)
        if op in ("sigma", "tanh"):
            return Piece(f"{op}({sub().s})", ATOM)
        if op == "exp":
            return Piece(f"exp({self.expr(shape, d, tame=True).s})", ATOM)
        if op == "logsqrt":
            return Piece(f"{self.pick(['log', 'sqrt'])}({self.positive(shape, d)})", ATOM)
        if op == "factor":  # a scalar factor in front of or behind: (a'*x)*v, v*(x'*a), s*v
            k = self.expr((1, 1), min(d, 1), tame=self.draw(st.booleans()))
            e = sub()
            if self.draw(st.booleans()):
                return Piece(f"{at(k, UNARY) if k.prec >= POW else '(' + k.s + ')'}*{at(e, UNARY)}", PROD)
            return Piece(f"{at(e, PROD)}*{at(k, UNARY)}", PROD)
        if op == "quotient":
            v = self.leaf((self.pick(self.family.dims), 1))
            return Piece(f"{at(sub(), PROD)}/({at(v, POST)}'*{at(v, UNARY)} + 1)", PROD)
        if op == "had":
            return self.product(sub(), sub(), " .* ")
        if op == "hdiv":  # by a positive thing of the same shape, or by a positive scalar
            den = self.positive(shape if self.draw(st.booleans()) else (1, 1), d)
            return Piece(f"{at(sub(), PROD)} ./ {den}", PROD)
        if op == "hpow2":
            return Piece(at(sub(), POST) + ".^2", POW)
        if op == "ones":
            e = sub()
            return Piece(self.pick([f"{at(e, SUM)} + 1", f"1 - {at(e, PROD)}"]), SUM)
        if op == "inv":
            return self.pick(self.inverses(r))
        if op == "invmul":
            return self.product(self.pick(self.inverses(r)), sub())
        if op == "eye":
            e = sub()
            form = self.pick(["I + e", "e - 2*I", "1/2*I - e"])
            return Piece(form.replace("e", at(e, SUM) if form.startswith("e") else at(e, PROD)), SUM)
        if op == "diag":
            return Piece(f"diag({sub((r, 1)).s})", ATOM)
        if op == "trscale":  # tr(M)*e, e*tr(M)
            t = Piece(f"tr({sub((self.pick(self.family.dims),) * 2).s})", ATOM)
            e = sub()
            return self.product(t, e) if self.draw(st.booleans()) else self.product(e, t)
        if op == "square":
            return Piece(at(self.expr(shape, d, tame=True), POST) + "^2", POW)
        if op == "softmax":
            return Piece(f"softmax({sub().s})", ATOM)
        if op == "diagmul":  # diag(u)*v
            return self.product(Piece(f"diag({sub().s})", ATOM), sub())
        if op == "outer":  # u*(w'*v)
            k = self.pick(list(self.family.dims))
            w, v = sub((k, 1)), sub((k, 1))
            return Piece(f"{at(sub(), PROD)}*({at(w, POST)}'*{at(v, UNARY)})", PROD)
        # scalars
        if op == "inner":  # u'*v
            k = self.pick(list(self.family.dims))
            u, v = sub((k, 1)), sub((k, 1))
            return Piece(f"{at(u, POST)}'*{at(v, UNARY)}", PROD)
        if op == "sum":
            return Piece(f"sum({sub(self.pick(_shapes(self.family)[:-1])).s})", ATOM)
        if op == "norm2":
            return Piece(f"norm({sub(self.pick(_shapes(self.family)[:-1])).s})^2", POW)
        if op == "quad":  # u'*M*u
            k = self.pick(list(self.family.dims))
            u, m = sub((k, 1)), sub((k, k))
            return Piece(f"{at(u, POST)}'*{at(m, UNARY)}*{at(u, UNARY)}", PROD)
        if op == "tr":
            k = self.pick(list(self.family.dims))
            return Piece(f"tr({sub((k, k)).s})", ATOM)
        if op == "logsumexp":
            return Piece(f"logsumexp({sub((self.pick(self.family.dims), 1)).s})", ATOM)
        raise AssertionError(op)  # pragma: no cover

    def positive(self, shape, depth: int) -> str:
        """A parenthesised or atomic text of this shape whose entries are all positive."""
        e = self.expr(shape, depth, tame=True)
        form = self.pick(["exp", "sq", "hpow"])
        if form == "exp":
            return f"exp({e.s})"
        if shape == (1, 1):
            return f"({at(e, POST)}^2 + 1)"
        if form == "sq":
            return f"({at(e, PROD)} .* {at(e, UNARY)} + 1)"
        return f"({at(e, POST)}.^2 + 1)"

    def with_key(self, shape) -> Piece:
        """A simple term of this shape that uses the family's key variable (x or X)."""
        key = self.family.key
        kr, kc = self.variables[key]
        options = [(key, (kr, kc)), (key + "'", (kc, kr))]
        text_, (kr, kc) = self.pick(options)
        piece = Piece(text_, POST if text_.endswith("'") else ATOM)
        r, c = shape
        if kr != r:
            piece = self.product(self.leaf((r, kr)), piece)
        if kc != c:
            piece = self.product(piece, self.leaf((kc, c)))
        return piece


def _ensure_key(g: Gen, family: Family, shape, piece: Piece) -> Piece:
    """`piece`, plus (or times sigma of) a term with the key variable if it has none."""
    if family.key in E.symbols(parse_expr(piece.s, make_scope(family))):
        return piece
    key = g.with_key(shape)
    if g.draw(st.booleans()):
        return Piece(f"{at(piece, SUM)} + {at(key, PROD)}", SUM)
    return Piece(f"{at(piece, PROD)} .* {at(Piece(f'sigma({key.s})', ATOM), UNARY)}", PROD)


@st.composite
def nonscalar_functions(draw, families=("vector", "vector", "matrix", "square")):
    """(family name, text) of a vector- or matrix-valued function that uses x (or X)."""
    family = FAMILIES[draw(st.sampled_from(families), label="family")]
    shape = draw(st.sampled_from(family.targets), label="shape")
    g = Gen(draw, family)
    piece = g.expr(shape, draw(st.integers(1, 3), label="depth"))
    return family.name, _ensure_key(g, family, shape, piece).s


@st.composite
def scalar_functions_of_x(draw):
    """The text of a scalar function of the vector x (vector family), for Hessians."""
    g = Gen(draw, VECTOR)
    depth = draw(st.integers(1, 2), label="depth")
    wrapper = draw(st.sampled_from(["direct", "inner", "sum", "norm2", "quad", "logsumexp", "softplus", "sigma",
                                    "softmax", "xent"]))
    if wrapper == "direct":
        piece = g.expr((1, 1), depth + 1)
    else:
        k = draw(st.sampled_from(VECTOR.dims))
        v = g.expr((k, 1), depth, tame=wrapper == "softplus")  # no exp(exp(...)): it overflows
        if wrapper == "inner":
            u = g.leaf((k, 1))
            piece = Piece(f"{at(u, POST)}'*{at(v, UNARY)}", PROD)
        elif wrapper == "quad":
            m = g.leaf((k, k))
            piece = Piece(f"{at(v, POST)}'*{at(m, UNARY)}*{at(v, UNARY)}", PROD)
        elif wrapper == "sigma":
            u = g.leaf((k, 1))
            piece = Piece(f"sigma({at(u, POST)}'*{at(v, UNARY)})", ATOM)
        elif wrapper == "softmax":  # u'*softmax(v)
            u = g.leaf((k, 1))
            piece = Piece(f"{at(u, POST)}'*softmax({v.s})", PROD)
        elif wrapper == "xent":  # cross-entropy -u'*log(softmax(v))
            u = g.leaf((k, 1))
            piece = Piece(f"-{at(u, POST)}'*log(softmax({v.s}))", UNARY)
        elif wrapper == "norm2":
            piece = Piece(f"norm({v.s})^2", POW)
        elif wrapper == "softplus":
            piece = Piece(f"sum(log(1 + exp({v.s})))", ATOM)
        else:
            piece = Piece(f"{wrapper}({v.s})", ATOM)
    return _ensure_key(g, VECTOR, (1, 1), piece).s


# ----------------------------------------------------------------------------- the independent checks


def stencil(fun, x0: np.ndarray, k: int, h: float = H) -> np.ndarray:
    """4-point central difference of vec fun along the k-th entry of vec x0."""
    e = np.zeros(x0.size)
    e[k] = h
    e = e.reshape(x0.shape, order="F")
    vals = [vec(fun(x0 + t * e)) for t in (2.0, 1.0, -1.0, -2.0)]
    return (-vals[0] + 8.0 * vals[1] - 8.0 * vals[2] + vals[3]) / (12.0 * h)


def vec(a) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1, 1, order="F")


def fd_jacobian(fun, x0: np.ndarray, h: float = H) -> np.ndarray:
    """Column k = ∂ vec fun / ∂ (vec x)ₖ (numerator layout), by finite differences."""
    return np.hstack([stencil(fun, x0, k, h) for k in range(x0.size)])


def fd_hessian(f, x0: np.ndarray) -> np.ndarray:
    """Second differences: the finite-difference Jacobian of the finite-difference gradient."""
    return fd_jacobian(lambda x: fd_jacobian(f, x).T, x0, h=2 * H)


@dataclass
class Check:
    ok: bool
    error: float
    detail: str


def compare(got: np.ndarray, want: np.ndarray, floor: float, rtol: float) -> Check:
    """Entry by entry: the largest |got - want|, relative to the largest entry (or the floor)."""
    if got.shape != want.shape:
        return Check(False, np.inf, f"shape {got.shape}, the finite differences have {want.shape}")
    if not np.all(np.isfinite(got)):
        return Check(False, np.inf, "the result is not finite")
    diff = np.abs(got - want)
    denom = max(float(np.max(np.abs(want), initial=0.0)), float(np.max(np.abs(got), initial=0.0)), floor)
    err = float(np.max(diff, initial=0.0)) / denom
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    return Check(err <= rtol, err, f"worst entry {worst}: result {got[worst]:.8g}, "
                                   f"finite differences {want[worst]:.8g}" if diff.size else "")


def build(family: Family, function_text: str, assume_: dict | None = None) -> Context:
    f = parse_expr(function_text, make_scope(family))  # the generator is well-shaped: it parses
    return Context(f, dict(family.variables), {}, {k: set(v) for k, v in (assume_ or {}).items()})


def _note(msg: str) -> None:
    if currently_in_test_context():
        note(msg)


def _event(msg: str) -> None:
    if currently_in_test_context():
        event(msg)


def _discard(why: str) -> None:
    if not currently_in_test_context():
        pytest.skip(why)
    event(f"discarded: {why}")
    assume(False)


def present(family: Family, function_text: str) -> list[str]:
    return sorted(E.symbols(parse_expr(function_text, make_scope(family))) & set(family.variables))


# ----------------------------------------------------------------------------- property 1: Jacobians


def run_jacobian_case(family_name: str, function_text: str, wrt: str, seed: int = 0, assume_: dict | None = None,
                      layouts=LAYOUTS) -> list:
    """The whole property for one function and variable; returns the derivations made."""
    family = FAMILIES[family_name]
    ctx = build(family, function_text, assume_)
    assert not ctx.function.is_scalar
    env = sample(family, np.random.default_rng(seed), ctx.assume)
    f0 = value(ctx.function, env)
    if not np.all(np.isfinite(f0)):
        _discard("f is not finite at the sampled point")
    with np.errstate(all="ignore"):
        want = fd_jacobian(lambda w: value(ctx.function, {**env, wrt: w}), env[wrt])
    if not np.all(np.isfinite(want)):
        _discard("f is not finite near the sampled point")
    floor = FLOOR * (1.0 + float(np.max(np.abs(f0))))
    out = []
    for layout in layouts:
        try:
            derivation = derive_jacobian(ctx.function, wrt, family.variables[wrt], ctx.where, ctx.assume, layout=layout)
        except DerivgenError as err:  # UnsupportedError & co.: a clean refusal is acceptable
            _event(f"engine refused ({layout}): {type(err).__name__}")
            _note(f"{layout}: {type(err).__name__}: {err.message}")
            continue
        result = derivation.result
        _note(f"{layout}: {text(result)}")
        assert derivation.layout == layout
        assert derivation.kind == "jacobian"
        got = value(result, env)
        assert got.shape == numeric_shape(result.shape), (
            f"the result is {E.shape_str(result.shape)} but evaluates to {got.shape}")
        check = compare(got if layout == "numerator" else got.T, want, floor, RTOL)
        try:
            verify_jacobian(ctx, derivation)
            verified, why = True, ""
        except VerificationError as err:
            verified, why = False, err.message
        assert check.ok == verified, (
            f"{layout}: verify_jacobian {'passed' if verified else 'failed'} ({why}) but the independent "
            f"check {'passed' if check.ok else 'failed'} (rel. error {check.error:.2e}; {check.detail})")
        assert check.ok, f"{layout}: wrong Jacobian {text(result)} (rel. error {check.error:.2e}; {check.detail})"
        _event(f"{family_name} family, wrt {'key' if wrt == family.key else 'other'}: right")
        out.append(derivation)
    return out


@settings(max_examples=400, **SETTINGS)
@given(data=st.data(), function=nonscalar_functions())
def test_jacobian_is_right_or_a_clean_error(data, function):
    family_name, function_text = function
    family = FAMILIES[family_name]
    note(f"{family_name} family: f = {function_text}")
    names = present(family, function_text)
    wrt = family.key if data.draw(st.booleans(), label="wrt is the key") else data.draw(st.sampled_from(names), label="wrt")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    symmetric_b = family.variables["B"][0] == family.variables["B"][1] and data.draw(st.booleans(), label="B symmetric")
    run_jacobian_case(family_name, function_text, wrt, seed, {"B": {"symmetric"}} if symmetric_b else {})


# ----------------------------------------------------------------------------- problems through the pipeline


def problem_yaml(family: Family, function_text: str, wrt: str, layout: str, order: int = 1,
                 assume_: dict | None = None) -> str:
    def dims(shape):
        r, c = shape
        return "[]" if (r, c) == (1, 1) else f"[{r}]" if c == 1 else f"[{r}, {c}]"

    variables = ", ".join(f"{n}: {dims(sh)}" for n, sh in family.variables.items())
    lines = [f"variables: {{{variables}}}", f"function: \"{function_text}\"", f"wrt: [{wrt}]", f"layout: {layout}"]
    if order == 2:
        lines.append("order: 2")
    if assume_:
        lines.append("assume: {" + ", ".join(f"{n}: [{', '.join(sorted(a))}]" for n, a in assume_.items()) + "}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- property 2: Hessians


def run_hessian_case(function_text: str, seed: int = 0, layout: str = "denominator", assume_: dict | None = None):
    """`order: 2` through the pipeline: the gradient and the Hessian against our own differences."""
    family = VECTOR
    src = problem_yaml(family, function_text, "x", layout, 2, assume_)
    ctx = build(family, function_text, assume_)
    env = sample(family, np.random.default_rng(seed), ctx.assume)

    def f(x):
        return value(ctx.function, {**env, "x": x})

    f0 = f(env["x"])
    with np.errstate(all="ignore"):
        grad_fd = fd_jacobian(f, env["x"]).T
        hess_fd = fd_hessian(f, env["x"])
    if not (np.all(np.isfinite(f0)) and np.all(np.isfinite(hess_fd))):
        _discard("f is not finite near the sampled point")
    try:
        solved = solve(load_problem_text(src))
    except VerificationError as err:
        if "could not be evaluated" in err.message:  # f not finite at the verifier's points: a clean refusal
            _event("verifier: f not finite at its points")
            return None
        # the verifier stopped a wrong result, or raised a false alarm: both are bugs
        raise AssertionError(f"the pipeline's verifier failed: {err.message}; "
                             f"{_diagnose(ctx, env, grad_fd, hess_fd, float(abs(f0[0, 0])))}") from None
    except DerivgenError as err:
        _event(f"engine refused: {type(err).__name__}")
        _note(f"{type(err).__name__}: {err.message}")
        return None
    kinds = [d.kind for d in solved.derivations]
    assert kinds == ["gradient", "hessian"], kinds
    gradient, hessian = solved.derivations
    _note(f"gradient: {text(gradient.result)}")
    _note(f"Hessian: {text(hessian.result)}")
    g = value(gradient.result, env)
    g = g.T if layout == "numerator" else g
    check = compare(g, grad_fd, FLOOR * (1.0 + abs(float(f0[0, 0]))), RTOL)
    assert check.ok, f"wrong gradient {text(gradient.result)} (rel. error {check.error:.2e}; {check.detail})"
    hv = value(hessian.result, env)
    n = size("n")
    assert hv.shape == (n, n), f"the Hessian evaluates to shape {hv.shape}, not {(n, n)}"
    scale = max(float(np.max(np.abs(hv))), 1.0)
    assert np.max(np.abs(hv - hv.T)) <= 1e-9 * scale, f"the Hessian {text(hessian.result)} is not symmetric"
    check = compare(hv, hess_fd, H_FLOOR * (1.0 + abs(float(f0[0, 0]))), H_RTOL)
    assert check.ok, f"wrong Hessian {text(hessian.result)} (rel. error {check.error:.2e}; {check.detail})"
    _event("Hessian right")
    return solved


def _diagnose(ctx: Context, env, grad_fd, hess_fd, f0: float) -> str:
    """After a VerificationError in the pipeline: was the engine wrong, or the verifier?"""
    try:
        gradient = derive_gradient(ctx, "x")
        g = compare(value(gradient.result, env), grad_fd, FLOOR * (1 + f0), RTOL)
        if not g.ok:
            return f"the engine's gradient {text(gradient.result)} is wrong ({g.detail})"
        hessian = derive_jacobian(gradient.result, "x", ("n", 1), {}, ctx.assume, kind="hessian")
        h = compare(value(hessian.result, env), hess_fd, H_FLOOR * (1 + f0), H_RTOL)
        if not h.ok:
            return f"the engine's Hessian {text(hessian.result)} is wrong ({h.detail})"
        return f"gradient {text(gradient.result)} and Hessian {text(hessian.result)} are right: a false alarm"
    except DerivgenError as err:
        return f"re-deriving raised {type(err).__name__}: {err.message}"


@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), function_text=scalar_functions_of_x())
def test_hessian_matches_second_differences(data, function_text):
    note(f"f = {function_text}")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    symmetric_b = data.draw(st.booleans(), label="B symmetric")
    run_hessian_case(function_text, seed, layout, {"B": {"symmetric"}} if symmetric_b else None)


# ----------------------------------------------------------------------------- property 3: NumPy code


def run_numpy_case(family_name: str, function_text: str, wrt: str, layout: str, order: int = 1, seed: int = 0):
    """The JSON `numpy` of every result computes the result's value (vectors (n, 1), scalars floats)."""
    family = FAMILIES[family_name]
    src = problem_yaml(family, function_text, wrt, layout, order)
    try:
        solved = solve(load_problem_text(src))
    except DerivgenError as err:
        _event(f"pipeline refused: {type(err).__name__}")
        return None
    except Exception as exc:  # noqa: BLE001 - a crash of the engine is properties 1 and 2's business
        _event(f"pipeline crashed: {type(exc).__name__} (see the regressions)")
        _note(f"the pipeline crashed: {type(exc).__name__}: {exc}")
        return None
    doc = document(solved)
    env = sample(family, np.random.default_rng(seed), {})
    names = {k: (float(v[0, 0]) if family.variables[k] == (1, 1) else v) for k, v in env.items()}
    for derivation, result in zip(solved.derivations, doc["results"]):
        code = result["numpy"]
        _note(f"{derivation.kind}: {text(derivation.result)}  →  {code}")
        want = value(derivation.result, env)
        with np.errstate(all="ignore"):
            got = eval(code, {"np": np, **names, **SIZES})  # noqa: S307 - the code derivgen generated for us
        if derivation.result.is_scalar:
            assert isinstance(got, float), f"{code}: a scalar result gives {type(got).__name__}, not a float"
            got = np.array([[got]])
        got = np.asarray(got, dtype=float)
        assert got.shape == want.shape, f"{code}: shape {got.shape}, the result has {want.shape}"
        if np.all(np.isfinite(want)):
            tol = 1e-9 * (1.0 + float(np.max(np.abs(want), initial=0.0)))
            assert np.allclose(got, want, rtol=1e-9, atol=tol), f"{code}: another value than {text(derivation.result)}"
        _event(f"numpy code of a {derivation.kind}: right")
    return solved


@settings(max_examples=120, **SETTINGS)
@given(data=st.data(), function=nonscalar_functions())
def test_numpy_code_of_jacobians_computes_them(data, function):
    family_name, function_text = function
    family = FAMILIES[family_name]
    note(f"{family_name} family: f = {function_text}")
    names = present(family, function_text)
    wrt = family.key if data.draw(st.booleans(), label="wrt is the key") else data.draw(st.sampled_from(names), label="wrt")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    run_numpy_case(family_name, function_text, wrt, layout, 1, data.draw(st.integers(0, 2**16), label="seed"))


@settings(max_examples=80, **SETTINGS)
@given(data=st.data(), function_text=scalar_functions_of_x())
def test_numpy_code_of_hessians_computes_them(data, function_text):
    note(f"f = {function_text}")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    run_numpy_case("vector", function_text, "x", layout, 2, data.draw(st.integers(0, 2**16), label="seed"))


# ----------------------------------------------------------------------------- regressions
# Cases the properties found, pinned down. A case that fails today carries
# xfail(strict=True) with the bug as its reason: once the bug is fixed it XPASSes, which fails
# the run until the mark is removed. The passing neighbours show what does work.


def bug(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


@pytest.mark.parametrize("family, function, wrt", [
    ("vector", "A*x", "x"),
    ("vector", "(a'*x)*x", "x"),
    ("vector", "x*(x'*a)", "x"),
    ("vector", "softmax(A*x)", "A"),
    ("vector", "diag(x)*a", "x"),
    ("vector", "inv(C)*x", "C"),
    ("vector", "s*x", "s"),
    ("vector", "exp(s*x)", "s"),
    ("vector", "(x*x')*a", "x"),
    ("vector", "(X .* X)*x", "X"),
    ("matrix", "A*X*B", "X"),
    ("matrix", "X'*X", "X"),
    ("matrix", "X .* X", "X"),
    ("square", "inv(X)", "X"),
    ("square", "tr(X)*C", "X"),
    ("square", "X^2", "X"),
    ("square", "inv(X')*C", "X"),
])
def test_jacobian_regression(family, function, wrt):
    """Supported cases: derived in both layouts, right, and verified."""
    assert len(run_jacobian_case(family, function, wrt)) == 2


@pytest.mark.parametrize("family, function, wrt", [
    # ∂ vec F / ∂x for a matrix- or row-valued F and a vector x is not supported: a clean refusal
    ("matrix", "b*x'", "x"),
    ("matrix", "x*x'", "x"),
    ("matrix", "X*diag(x)", "x"),
    ("matrix", "diag(x)", "x"),
    ("matrix", "x'*C", "x"),
    # A matrix- or row-valued f and a vector variable: the engine takes the path of vector
    # functions (`vector = wrt_shape[1] == 1` in derive_jacobian, whatever the shape of f), whose
    # J1 builds diag(U) of a matrix U and whose J2 moves a scalar factor behind a matrix: an
    # internal ShapeMismatch (a ValueError, not a DerivgenError; the CLI shows an internal error)
    ("matrix", "tanh(x')", "x"),
    ("matrix", "exp(b*x')", "x"),
    ("matrix", "X .* (b*x')", "x"),
    ("matrix", "sigma(X*diag(x))", "x"),
    ("matrix", "X*(x'*x)", "x"),
    ("matrix", "(b'*b)*X", "b"),
    # ... and a scalar variable: d(s*X)/ds comes out as the m×n matrix X (not vec X, mn×1) and
    # verify_jacobian crashes comparing it with the mn×1 finite differences (ValueError)
    ("matrix", "s*X", "s"),
    ("matrix", "exp(s*X)", "s"),
    # a vector-valued f whose variable sits inside an elementwise function of a MATRIX: same J1
    ("vector", "exp(a*x')*a", "x"),
    ("vector", "(B .* (x*x'))*a", "x"),
    # a row vector d(exp(x))ᵀ = (exp(x) ⊙ dx)ᵀ inside a product: J1 builds diag of a 1×n row
    # (found through the Hessian of sum(softmax(exp(x))), whose gradient has this form)
    ("vector", "a*(exp(x)'*a)", "x"),
    ("vector", "(a*x')*a", "x"),
    ("vector", "a*exp(x)'*a", "x"),
    ("vector", "(a*exp(x)')*a", "x"),
])
def test_jacobian_is_right_or_refused_cleanly(family, function, wrt):
    """The property on one case: the engine may refuse with a DerivgenError, never crash."""
    run_jacobian_case(family, function, wrt)


@pytest.mark.parametrize("function", [
    "x'*B*x", "logsumexp(A*x)", "sum(log(1 + exp(A*x)))", "norm(softmax(A*x))^2", "norm(softmax(x))^2",
    # a right Hessian rejected by verify_jacobian (relative error 2.1e-06 > 1e-06 in the first
    # line of J): with its sizes (n=3, m=4, p=5) the argument X*A'*A*x is large, and the 4-point
    # differences of the gradient with its fixed step 1e-3 are off by truncation (with a step of
    # 1e-4, round-off makes a line of dF fail instead). Our own second differences agree with it.
    ("norm(softmax(X*A'*(A*x)))^2"),
    # the same on a steep sigmoid: the Hessian (first line of J, 1.8e-06) and already the
    # gradient (`verify`, line 5 of df, 2.7e-06) of a right derivation are rejected
    "sigma((A*a)'*(A*x))", "sigma(20*a'*x)",
    ("sigma((A*a)'*(A*x*((A*a)'*(A*a))))"),
    ("sigma((A*a)'*(A*x .* (A*a) .* (A*a*s)))"),
    # f overflows next to the verifier's point (exp(exp(A*x)) with A*x ≈ 7): the check reports
    # "relative error nan > 1e-06 ... a bug in derivgen" instead of drawing another point or
    # saying that f could not be evaluated
    "sum(log(1 + exp(exp(x))))",
    "sum(exp(exp(A*x)))",
    # the Hessian crashes (ShapeMismatch) where the gradient has a row vector (u ⊙ dx)ᵀ in a
    # product: see a*exp(x)'*a above
    "a'*softmax(2*x)", "a'*softmax(diag(a)*x)",
    "sum(softmax(exp(x)))", "a'*softmax(x .* a)",  # J1 on a row: dxᵀ ⊙ uᵀ = dxᵀ diag(u)
])
def test_hessian_regression(function):
    assert run_hessian_case(function) is not None

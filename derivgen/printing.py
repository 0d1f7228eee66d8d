"""Printers: LaTeX (for handouts), text in the expression syntax (re-parseable), NumPy code.

Each printer is a class with one method per node type, found through a dict from node class
to method, and the same precedence scheme: a child is parenthesised when it binds more
loosely than its place needs.
"""

from __future__ import annotations

import contextlib
import contextvars
import keyword
import re
from fractions import Fraction

from . import expr as E
from . import functions
from .expr import Expr

GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi",
    "Omega", "varepsilon", "vartheta", "varphi",
}

# precedence: how tightly a node binds
P_ADD, P_MUL, P_UNARY, P_POST, P_ATOM = 1, 2, 3, 4, 5


#: Name suffixes printed as accents: `y_hat` → \\hat{y} (ŷ), `x_bar` → \\bar{x}, `X_tilde` → \\tilde{X}.
ACCENTS = {"hat": ("\\hat", "\u0302"), "bar": ("\\bar", "\u0304"), "tilde": ("\\tilde", "\u0303")}

#: Names with a LaTeX symbol of their own (besides the Greek letters).
SYMBOLS = {"ell": "\\ell"}


def _accent(name: str) -> tuple[str, str | None, str]:
    """`mu_hat_t` → (`mu`, `hat`, `t`); a name without an accent suffix → (name, None, "")."""
    parts = name.split("_")
    for i, part in enumerate(parts[1:], 1):
        if part in ACCENTS and all(parts[:i]):
            return "_".join(parts[:i]), part, "_".join(parts[i + 1:])
    return name, None, ""


def name_latex(name: str) -> str:
    """`mu` → `\\mu`, `W1` → `W_{1}`, `x_t` → `x_{t}`, `Sigma` → `\\Sigma`, `y_hat` → `\\hat{y}`,
    `mu_bar_t` → `\\bar{\\mu}_{t}`."""
    stem, accent, rest = _accent(name)
    if accent is not None:
        out = f"{ACCENTS[accent][0]}{{{name_latex(stem)}}}"
        return out + ("_{" + (name_latex(rest) if rest in GREEK else rest) + "}" if rest else "")
    base, sub = name, ""
    if "_" in name:
        base, sub = name.split("_", 1)
    else:
        m = re.fullmatch(r"([A-Za-z]+?)([0-9]+)", name)
        if m:
            base, sub = m.group(1), m.group(2)
    if base in GREEK:
        out = "\\" + base
    elif base in SYMBOLS:
        out = SYMBOLS[base]
    elif len(base) == 1:
        out = base
    else:
        out = "\\mathit{" + base + "}"
    if sub:
        out += "_{" + (name_latex(sub) if sub.isalpha() and sub in GREEK else sub) + "}"
    return out


def name_unicode(name: str) -> str:
    """A name as plain text for prose: `mu` → μ, `Sigma` → Σ, `x_t` → x_t, `y_hat` → ŷ."""
    import unicodedata

    stem, accent, rest = _accent(name)
    if accent is not None:
        out = name_unicode(stem) + ACCENTS[accent][1]
        return unicodedata.normalize("NFC", out) + ("_" + name_unicode(rest) if rest else "")
    if name in SYMBOLS:
        return "ℓ" if name == "ell" else name
    base, sep, sub = name.partition("_")
    if base in GREEK and not base.startswith("var"):
        case = "CAPITAL" if base[0].isupper() else "SMALL"
        letter = {"lambda": "LAMDA", "Lambda": "LAMDA"}.get(base, base.upper())
        try:
            base = unicodedata.lookup(f"GREEK {case} LETTER {letter}")
        except KeyError:
            pass
    return base + sep + sub


# names the generated NumPy code uses itself: a variable of that name would shadow them
_CODE_NAMES = frozenset({"np", "int", "float", "range", "sum"})


def python_name(name: str) -> str:
    """A variable's name in NumPy code: a Python keyword, or a name the code itself uses (`np`,
    `int`, `float`, `range`, `sum`), gets a trailing underscore (`lambda_`, `np_`)."""
    return name + "_" if keyword.iskeyword(name) or name in _CODE_NAMES else name


def dim_text(d) -> str:
    return "*".join(map(str, d)) if isinstance(d, tuple) else str(d)


def dim_latex(d) -> str:
    if isinstance(d, tuple):
        return " ".join(dim_latex(x) for x in d)
    return str(d) if isinstance(d, int) else name_latex(d)


def shape_latex(dims: tuple) -> str:
    """The shape as written in the Given table: `m \\times n`, `n`, or `1` for a scalar."""
    if len(dims) == 0:
        return "1"
    return " \\times ".join(dim_latex(d) for d in dims)


def fraction_latex(q: Fraction) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    return f"\\frac{{{q.numerator}}}{{{q.denominator}}}"


def paren(inner: str, open_: str = "(", close: str = ")") -> str:
    """Parentheses that grow only around tall content (fractions, sums)."""
    if "\\frac" in inner or "\\sum" in inner or "\\boxed" in inner:
        return f"\\left{open_}{inner}\\right{close}"
    return f"{open_}{inner}{close}"


def bracket(inner: str) -> str:
    return paren(inner, "[", "]")


def precedence(e: Expr) -> int:
    if isinstance(e, E.Add):
        return P_ADD
    if isinstance(e, E.MatMul):
        return P_UNARY if e.coeff < 0 else P_MUL
    if isinstance(e, (E.Hadamard, E.HadDiv, E.Kron)):
        return P_MUL
    if isinstance(e, E.Num):
        return P_ATOM if e.value >= 0 and e.value.denominator == 1 else P_MUL
    if isinstance(e, (E.Transpose, E.Inverse, E.Power, E.HadPow)):
        return P_POST
    return P_ATOM


def _definite(e: Expr) -> bool:
    """True when a term has its shape without help: it can size a bare `1`, `I` or `0` beside it."""
    if e.is_scalar:
        return False
    if isinstance(e, (E.Sym, E.Dif, E.Kron, E.Commutation)):
        return True
    if isinstance(e, (E.Num, E.Ones, E.Eye, E.Zero)):
        return False
    if isinstance(e, E.MatMul):
        return any(_definite(f) for f in e.chain)
    return any(_definite(c) for c in e.children())


def _constant_only(e: Expr) -> bool:
    return not _definite(e)


def leading_positive(terms: tuple[Expr, ...]) -> tuple[Expr, ...]:
    """Terms reordered so that a sum does not start with a minus when it has a positive term."""
    if E.is_negative(terms[0]) and not all(E.is_negative(t) for t in terms):
        return tuple(t for t in terms if not E.is_negative(t)) + tuple(t for t in terms if E.is_negative(t))
    return terms


def _is_differential(part: str) -> bool:
    return part.startswith("\\mathrm{d}")


def join_factors(parts: list[str]) -> str:
    """Factors side by side; a thin space before and after a differential (`A\\,\\mathrm{d}X\\,B`)."""
    out = ""
    for i, p in enumerate(parts):
        if i:
            out += "\\," if _is_differential(p) or _is_differential(parts[i - 1]) else " "
        out += p
    return out


def _then(parts: list[str]) -> str:
    """The factors that follow a fraction: a thin space before a differential."""
    if not parts:
        return ""
    return ("\\," if _is_differential(parts[0]) else " ") + join_factors(parts)


#: The names of the variables assumed positive definite while a problem is printed: their
#: log-determinant is written `\\log\\det X` (the determinant is positive), not `\\log\\lvert\\det X\\rvert`.
_positive_definite: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "derivgen_positive_definite", default=frozenset())


@contextlib.contextmanager
def assuming(positive_definite) -> "contextlib.AbstractContextManager[None]":
    """Print `logdet` of the named (symmetric positive definite) variables as `\\log\\det`."""
    token = _positive_definite.set(frozenset(positive_definite))
    try:
        yield
    finally:
        _positive_definite.reset(token)


def _positive_det(e: Expr) -> bool:
    """True when det(e) is positive by assumption: e is (the inverse or transpose of) an spd variable."""
    while isinstance(e, (E.Transpose, E.Inverse)):
        e = e.arg
    return isinstance(e, E.Sym) and e.name in _positive_definite.get()


def _open_function(e: Expr) -> bool:
    """A function printed without brackets around its argument (`\\det X`): followed by another
    factor it would seem to take that one too (`\\det X X^{-1}`), so there it gets parentheses."""
    return isinstance(e, E.Func) and (
        (e.name == "det" and precedence(e.arg) >= P_ATOM)
        or (e.name == "logdet" and _positive_det(e.arg) and precedence(e.arg) >= P_ATOM))


def split_denominator(e: E.MatMul) -> tuple[list[Expr], list[Expr]]:
    """Scalar factors with a negative exponent go below a fraction bar: (num factors, den factors)."""
    num, den = [], []
    for s in e.scalars:
        if isinstance(s, E.Power) and s.base.is_scalar and isinstance(s.exp, E.Num) and s.exp.value < 0:
            den.append(E.power(s.base, E.Num(-s.exp.value)))
        else:
            num.append(s)
    return num, den


class LatexPrinter:
    """Expression → LaTeX for math mode (KaTeX, MathJax and TeX all accept it)."""

    T = "^{\\top}"

    def __init__(self):
        self.dispatch = {
            E.Sym: self.sym, E.Dif: self.dif, E.Num: self.num, E.Ones: self.ones, E.Eye: self.eye,
            E.Zero: self.zero, E.Add: self.add, E.MatMul: self.matmul, E.Transpose: self.transpose,
            E.Inverse: self.inverse, E.Power: self.power, E.Hadamard: self.hadamard,
            E.HadDiv: self.haddiv, E.HadPow: self.hadpow, E.Func: self.func, E.D: self.d,
            E.Kron: self.kron, E.Commutation: self.commutation,
            E.Eq: lambda e: f"{self(e.lhs)} = {self(e.rhs)}", E.SumOver: self.sumover,
        }

    def __call__(self, e: Expr) -> str:
        return self.dispatch[type(e)](e)

    def sumover(self, e):
        body = self(e.body)
        if isinstance(e.body, (E.Add,)) or (isinstance(e.body, E.MatMul) and e.body.coeff < 0):
            body = paren(body)
        return f"\\sum_{{{name_latex(e.index)}=1}}^{{{dim_latex(e.count)}}} {body}"

    def kron(self, e):
        return f"{self.wrap(e.a, P_POST)} \\otimes {self.wrap(e.b, P_POST)}"

    def commutation(self, e):
        return f"K_{{{dim_latex(e.m)}{dim_latex(e.n)}}}"

    def wrap(self, e: Expr, min_prec: int, brackets: bool = False) -> str:
        s = self(e)
        if precedence(e) < min_prec:
            return bracket(s) if brackets else paren(s)
        return s

    def sym(self, e):
        return name_latex(e.name)

    def dif(self, e):
        return "\\mathrm{d}" + name_latex(e.name)

    def num(self, e):
        q = e.value
        return ("-" if q < 0 else "") + fraction_latex(abs(q))

    def ones(self, e):
        return "\\mathbf{1}"

    def eye(self, e):
        return "I"

    def zero(self, e):
        return "0"

    def add(self, e):
        terms = leading_positive(e.terms)
        out = self(terms[0])
        for t in terms[1:]:
            if isinstance(t, E.MatMul) and t.coeff < 0:
                out += " - " + self(E.neg(t))
            elif isinstance(t, E.Num) and t.value < 0:
                out += " - " + self.num(E.Num(-t.value))
            else:
                out += " + " + self(t)
        return out

    def factor(self, f: Expr) -> str:
        """A factor of a product: sums and Hadamard products get brackets, and so does a
        function written without them (`(\\det X)`) unless it is the last factor. An all-ones
        matrix in a product is written 𝟏𝟏ᵀ (a bare 𝟏 there reads as a vector)."""
        if isinstance(f, E.Ones) and f.shape[0] != 1 and f.shape[1] != 1:
            return "\\mathbf{1}\\mathbf{1}^{\\top}"
        if _open_function(f):
            return paren(self(f))
        if isinstance(f, (E.Hadamard, E.HadDiv)):
            return bracket(self(f))
        if isinstance(f, (E.MatMul, E.Kron, E.SumOver)):
            return paren(self(f))
        return self.wrap(f, P_POST)

    def last_factor(self, f: Expr) -> str:
        """The last factor of a product: a sum over samples needs no parentheses there."""
        if _open_function(f):
            return self(f)
        return self(f) if isinstance(f, E.SumOver) and not isinstance(f.body, E.Add) else self.factor(f)

    def matmul(self, e):
        num, den = split_denominator(e)
        sign = "-" if e.coeff < 0 else ""
        c = abs(e.coeff)
        parts = [self.factor(f) for f in num]
        chain = [self.factor(f) for f in e.chain]
        if chain:
            chain[-1] = self.last_factor(e.chain[-1])
        elif parts and not den:
            parts[-1] = self.last_factor(num[-1])
        if len(e.chain) == 1 and isinstance(e.chain[0], E.Kron) and not num and not den:
            chain = [self(e.chain[0])]  # −A ⊗ B: a number scales either factor, no brackets needed
        if den:
            if e.is_scalar:  # a scalar quotient: everything above the bar
                parts, chain = parts + chain, []
                num = num + list(e.chain)
            if len(parts) == 1 and c.numerator == 1 and isinstance(num[0], E.Add):
                parts = [self(num[0])]  # a lone sum above the bar needs no brackets: \frac{ν + n}{…}
            top = " ".join(([str(c.numerator)] if (c.numerator != 1 or not parts) else []) + parts)
            bottom = " ".join(([str(c.denominator)] if c.denominator != 1 else []) + [self(f) if len(den) == 1 else self.factor(f) for f in den])
            return sign + f"\\frac{{{top}}}{{{bottom}}}" + _then(chain)
        if c.denominator != 1 and parts and all(isinstance(f, E.Sym) for f in num):
            top = " ".join(([str(c.numerator)] if c.numerator != 1 else []) + parts)
            return sign + f"\\frac{{{top}}}{{{c.denominator}}}" + _then(chain)
        lead = [] if c == 1 else [fraction_latex(c)]
        return sign + join_factors(lead + parts + chain)

    def transpose(self, e):
        a = e.arg
        if isinstance(a, E.Inverse):
            return self.wrap(a.arg, P_ATOM) + "^{-\\top}"
        if isinstance(a, E.Dif):
            return self(a) + self.T
        return self.wrap(a, P_ATOM) + self.T

    def inverse(self, e):
        return self.wrap(e.arg, P_ATOM) + "^{-1}"

    def power(self, e):
        if isinstance(e.exp, E.Num) and e.exp.value == Fraction(1, 2) and e.base.is_scalar:
            return f"\\sqrt{{{self(e.base)}}}"
        base = self.wrap(e.base, P_ATOM)
        if isinstance(e.base, E.Func) and e.base.name not in ("norm",):
            base = paren(self(e.base))
        return f"{base}^{{{self(e.exp)}}}"

    def hadamard(self, e):
        return " \\odot ".join(self.wrap(f, P_ATOM) for f in e.factors)

    def haddiv(self, e):
        return f"{self.wrap(e.num, P_ATOM)} \\oslash {self.wrap(e.den, P_ATOM)}"

    def hadpow(self, e):
        return f"{self.wrap(e.base, P_ATOM)}^{{\\odot {fraction_latex(e.exp) if e.exp >= 0 else '-' + fraction_latex(-e.exp)}}}"

    def func(self, e):
        inner = self(e.arg)
        if e.name == "sqrt":
            return f"\\sqrt{{{inner}}}"
        if e.name == "norm":
            sub = "_F" if not (e.arg.shape[1] == 1) else ""
            return f"\\left\\lVert {inner} \\right\\rVert{sub}"
        if e.name == "det" and precedence(e.arg) >= P_ATOM:
            return f"\\det {inner}"
        if e.name == "logdet" and _positive_det(e.arg):
            return f"\\log\\det {inner}" if precedence(e.arg) >= P_ATOM else f"\\log\\det{paren(inner)}"
        if e.name == "logdet":
            return f"\\log\\left\\lvert \\det {self.wrap(e.arg, P_ATOM)} \\right\\rvert" if precedence(e.arg) >= P_ATOM else f"\\log\\left\\lvert \\det{paren(inner)} \\right\\rvert"
        if e.name == "abs" and e.arg.is_scalar:
            return f"\\left\\lvert {inner} \\right\\rvert"
        if e.name == "log1p":
            return f"\\log{paren(('1' if e.arg.is_scalar else self(E.Ones(e.arg.shape))) + ' + ' + inner)}"
        return f"{functions.FUNCTIONS[e.name].latex}{paren(inner)}"

    def d(self, e):
        a = e.arg
        if isinstance(a, (E.Sym,)):
            return "\\mathrm{d}" + self(a)
        if isinstance(a, E.Func):
            return "\\mathrm{d}" + self(a)
        return "\\mathrm{d}" + paren(self(a))


class TextPrinter:
    """Expression → the problem-file syntax (`A'*(A*x - b)`); parses back to the same value.

    `1`, `I` and `0` are written bare only where the parser sizes them from a neighbouring term
    of a sum (`1 - Y`, `A + I`); anywhere else they are written with their size (`ones(m, n)`,
    `eye(n)`)."""

    def __init__(self):
        self.sized = False  # inside a sum whose other terms give the constants their size
        self.dispatch = {
            E.Sym: lambda e: e.name, E.Dif: lambda e: "d" + e.name, E.Num: self.num,
            E.Ones: self.ones, E.Eye: self.eye, E.Zero: self.zero, E.Add: self.add,
            E.MatMul: self.matmul, E.Transpose: self.transpose, E.Inverse: self.inverse,
            E.Power: self.power, E.Hadamard: self.hadamard, E.HadDiv: self.haddiv,
            E.HadPow: self.hadpow, E.Func: self.func, E.D: lambda e: f"d({self(e.arg)})",
            E.Kron: lambda e: f"kron({self.unsized(e.a)}, {self.unsized(e.b)})",
            E.Commutation: lambda e: f"commutation({dim_text(e.m)}, {dim_text(e.n)})",
            E.Eq: lambda e: f"{self.unsized(e.lhs)} = {'0' if E.is_zero(e.rhs) else self.unsized(e.rhs)}",
            E.SumOver: lambda e: f"sum({e.index}, {self.unsized(e.body)})",
        }

    def __call__(self, e: Expr) -> str:
        return self.dispatch[type(e)](e)

    def unsized(self, e: Expr) -> str:
        """Print e where nothing around it gives a bare constant its size."""
        saved, self.sized = self.sized, False
        try:
            return self(e)
        finally:
            self.sized = saved

    def ones(self, e):
        return "1" if self.sized else self.sized_ones(e)

    def eye(self, e):
        return "I" if self.sized else f"eye({dim_text(e.n)})"

    def zero(self, e):
        if self.sized:
            return "0"
        return f"0*{self.sized_ones(E.Ones(e.shape))}"

    def wrap(self, e, min_prec):
        s = self(e)
        if isinstance(e, E.Kron):  # written kron(A, B): a call, never in need of brackets
            return s
        return f"({s})" if precedence(e) < min_prec else s

    def num(self, e):
        q = e.value
        if q.denominator == 1:
            return str(q.numerator)
        return f"{q.numerator}/{q.denominator}"

    def add(self, e):
        terms = leading_positive(e.terms)
        saved = self.sized
        self.sized = not e.is_scalar and any(not _constant_only(t) for t in terms)
        try:
            # a bare `1` or `I` is sized by the term beside it: in `I - 1 + 2*a*a'` the first two
            # have nothing to take a size from, so the first is written with its size
            first_alone = len(terms) > 1 and _constant_only(terms[0]) and _constant_only(terms[1])
            out = self.unsized(terms[0]) if first_alone else self(terms[0])
            for t in terms[1:]:
                if isinstance(t, E.MatMul) and t.coeff < 0:
                    out += " - " + self.wrap(E.neg(t), P_MUL + 1 if isinstance(E.neg(t), E.Add) else P_MUL)
                elif isinstance(t, E.Num) and t.value < 0:
                    out += " - " + self.num(E.Num(-t.value))
                else:
                    out += " + " + self(t)
        finally:
            self.sized = saved
        return out

    def factor(self, f):
        if isinstance(f, (E.MatMul, E.Hadamard, E.HadDiv, E.Add)) or (isinstance(f, E.Num) and (f.value < 0 or f.value.denominator != 1)):
            return f"({self(f)})"
        if isinstance(f, E.Ones):  # inside a product a bare `1` would be sized by its neighbours
            return self.sized_ones(f)
        if isinstance(f, E.Transpose) and isinstance(f.arg, E.Ones):
            return self.sized_ones(f.arg) + "'"
        if not f.is_scalar and not isinstance(f, E.Eye):
            saved, self.sized = self.sized, False  # a chain factor's own constants are not sized by the sum
            try:
                return self.wrap(f, P_POST)
            finally:
                self.sized = saved
        return self.wrap(f, P_POST)

    @staticmethod
    def sized_ones(f: E.Ones) -> str:
        r, c = f.shape
        return f"ones({dim_text(r)})" if c == 1 else f"ones({dim_text(r)}, {dim_text(c)})"

    def top(self, e: Expr) -> str:
        """The whole expression: a lone constant is written with its size."""
        if isinstance(e, E.Ones):
            return self.sized_ones(e)
        if isinstance(e, E.Eye):
            return f"eye({dim_text(e.n)})"
        if isinstance(e, E.Zero):
            return f"0*ones({dim_text(e.shape[0])}, {dim_text(e.shape[1])})" if e.shape[1] != 1 else f"0*ones({dim_text(e.shape[0])})"
        return self(e)

    def matmul(self, e):
        num, den = split_denominator(e)
        c = abs(e.coeff)
        parts = []
        if c.numerator != 1 or (not num and not e.chain):
            parts.append(str(c.numerator))
        parts += [self.factor(f) for f in num] + [self.factor(f) for f in e.chain]
        out = "*".join(parts) if parts else "1"
        dens = ([str(c.denominator)] if c.denominator != 1 else []) + [self.factor(f) for f in den]
        for d in dens:
            out += "/" + d
        return ("-" if e.coeff < 0 else "") + out

    def transpose(self, e):
        if isinstance(e.arg, E.Inverse):
            return self(e.arg) + "'"
        return self.wrap(e.arg, P_ATOM) + "'"

    def inverse(self, e):
        return f"inv({self.unsized(e.arg)})"

    def power(self, e):
        if not e.base.is_scalar:  # a matrix power: its base is not sized by a surrounding sum
            base = e.base.name if isinstance(e.base, E.Sym) else f"({self.unsized(e.base)})"
            return f"{base}^{self(e.exp)}"
        exp = self(e.exp)
        if isinstance(e.exp, E.Num) and (e.exp.value < 0 or e.exp.value.denominator != 1):
            exp = f"({exp})"
        return f"{self.wrap(e.base, P_ATOM)}^{exp}"

    def hadamard(self, e):
        return " .* ".join(self.wrap(f, P_POST) for f in e.factors)

    def haddiv(self, e):
        num = self.sized_ones(e.num) if isinstance(e.num, E.Ones) else self.wrap(e.num, P_POST)  # `1 ./ M` reads 1 as a number
        return f"{num} ./ {self.wrap(e.den, P_POST)}"

    def hadpow(self, e):
        q = e.exp
        exp = str(q.numerator) if q.denominator == 1 and q >= 0 else f"({q.numerator}/{q.denominator})" if q.denominator != 1 else f"({q.numerator})"
        return f"{self.wrap(e.base, P_ATOM)}.^{exp}"

    def func(self, e):
        name = "diag" if e.name == "diagvec" else e.name
        inner = self(e.arg) if e.name in E.ELEMENTWISE else self.unsized(e.arg)
        return f"{name}({inner})"


class NumpyPrinter:
    """Expression → a Python expression over `np` and the variable names.

    Vectors are (n, 1) arrays, scalars floats or (1, 1) arrays; `where:` names are replaced by
    their definitions; a dimension symbol becomes the size of a variable that has it."""

    def __init__(self, dim_source: dict[str, str], where: dict[str, Expr] | None = None):
        self.dim_source = dim_source
        self.where = where or {}
        self.dispatch = {
            E.Sym: self.sym, E.Num: self.num, E.Ones: self.ones, E.Eye: self.eye, E.Zero: self.zero,
            E.Add: self.add, E.MatMul: self.matmul, E.Transpose: self.transpose,
            E.Inverse: lambda e: f"np.linalg.inv({self(e.arg)})", E.Power: self.power,
            E.Hadamard: lambda e: " * ".join(self.atom(f) for f in e.factors),
            E.HadDiv: lambda e: f"{self.atom(e.num)} / {self.atom(e.den)}",
            E.HadPow: lambda e: f"{self.atom(e.base)} ** {self.numlit(e.exp)}", E.Func: self.func,
            E.Kron: lambda e: f"np.kron({self(e.a)}, {self(e.b)})",
            E.Commutation: lambda e: (f"(lambda m, n: np.eye(m * n)[np.arange(m * n).reshape(m, n, order='F').ravel()])"
                                      f"({self.dim(e.m)}, {self.dim(e.n)})"),
            # a list of the terms summed by NumPy: the code uses no builtins (no sum, no range)
            E.SumOver: lambda e: (f"np.sum([{self(e.body)} for {python_name(e.index)} in np.arange({self.dim(e.count)})]"
                                  ", axis=0)"),
        }

    def __call__(self, e: Expr) -> str:
        return self.dispatch[type(e)](e)

    def atom(self, e: Expr) -> str:
        s = self(e)
        if isinstance(e, (E.Sym, E.Ones, E.Eye, E.Zero, E.Func, E.Inverse)) and not (isinstance(e, E.Sym) and e.name in self.where):
            return s
        if isinstance(e, E.Num) and e.value >= 0:
            return s
        return f"({s})"

    def dim(self, d) -> str:
        if isinstance(d, tuple):
            return " * ".join(self.dim(x) for x in d)
        return str(d) if isinstance(d, int) else self.dim_source[d]

    def sym(self, e):
        if e.name in self.where:
            return f"({self(self.where[e.name])})"
        if e.role == "dim":
            return self.dim(e.name)
        if e.index is not None:  # a family is passed with its samples as columns
            return f"{python_name(e.name)}[:, [{python_name(e.index)}]]"
        return python_name(e.name)

    @staticmethod
    def numlit(q: Fraction) -> str:
        q = Fraction(q)
        return str(q.numerator) if q.denominator == 1 else f"({q.numerator}/{q.denominator})"

    def num(self, e):
        return self.numlit(e.value)

    def ones(self, e):
        return f"np.ones(({self.dim(e.shape[0])}, {self.dim(e.shape[1])}))"

    def eye(self, e):
        return f"np.eye({self.dim(e.n)})"

    def zero(self, e):
        return f"np.zeros(({self.dim(e.shape[0])}, {self.dim(e.shape[1])}))"

    def add(self, e):
        return " + ".join(self.atom(t) if isinstance(t, E.Add) else self(t) for t in e.terms)

    def matmul(self, e):
        parts = []
        if e.coeff != 1:
            parts.append(self.numlit(e.coeff) if e.coeff > 0 else f"({self.numlit(e.coeff)})")
        parts += [self.atom(s) for s in e.scalars]
        if e.chain:
            parts.append(" @ ".join(self.atom(f) for f in e.chain))
            if len(e.chain) > 1 and parts[:-1]:
                parts[-1] = f"({parts[-1]})"
        return " * ".join(parts)

    def transpose(self, e):
        return f"{self.atom(e.arg)}.T"

    def power(self, e):
        if e.base.is_scalar:
            return f"{self.atom(e.base)} ** {self.atom(e.exp)}"
        if isinstance(e.exp, E.Num) and e.exp.value.denominator == 1:
            return f"np.linalg.matrix_power({self(e.base)}, {e.exp.value.numerator})"
        return f"np.linalg.matrix_power({self(e.base)}, np.int64(np.round({self(e.exp)})))"

    def func(self, e):
        return functions.FUNCTIONS[e.name].numpy.format(a=self(e.arg))


latex = LatexPrinter()
_text_printer = TextPrinter()


def text(e: Expr) -> str:
    """An expression in the problem-file syntax; it parses back to the same shape and value."""
    return _text_printer.top(e)

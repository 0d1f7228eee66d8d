"""The functions of the expression language, each declared once.

An entry says everything derivgen needs to know about a function: how it is written and what
shape it gives (`shape`, a rule `expr.func_shape` applies), its differential (in the problem
syntax, see below) with the rule's id, names and formula for the catalogue, how it prints as
LaTeX and as NumPy code, its value (NumPy), its SymPy counterpart, its value at zero, its
domain and its kinks. The parser, the printers, the evaluator, the engine, `interop`, the
verifier and the problem validator read this table; `tests/test_functions.py` checks that
every entry is complete.

Differentials are written in derivgen's own syntax over `U` (the argument), `dU` (its
differential) and `F` (the function's value, `F = f(U)`): `F .* (1 - F) .* dU` is the sigmoid's
rule. The engine parses a template at the argument's shape and substitutes. Where the form
depends on the argument, `differential` maps "scalar", "vector" or "matrix" to its template and
"any" to the rest.

This module imports nothing from derivgen, so that every other module may import it (and the
autograder export can ship it as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

#: the shape rules `expr.func_shape` knows: argument shape → result shape
SHAPES = ("elementwise", "square_to_scalar", "to_scalar", "columnwise", "columns_to_row", "diag", "diagvec", "vec")


@dataclass(frozen=True)
class Function:
    """One function of the expression language (see the module docstring for the fields' forms)."""

    name: str
    shape: str  # one of SHAPES
    rule: str  # id of its differential rule in the catalogue
    rule_name: tuple[str, str] | None  # (English, Chinese); None when another entry declares the rule
    formula: str | None  # the rule in LaTeX (math mode)
    differential: Mapping[str, str]  # "any" | "scalar" | "vector" | "matrix" -> template over U, dU, F
    latex: str  # the operator in LaTeX, applied as `\op(arg)`; `printing.LATEX_FORMS` draws the special ones
    numpy: str  # NumPy code with `{a}` for the argument's code
    value: Callable[[np.ndarray], np.ndarray]  # on a 2-D array (elementwise) or as `numeric` calls it
    sympy: Callable | None  # (sympy module, scalar argument) -> its SymPy value; None: no counterpart
    at_zero: str | None = None  # "zero" | "one": f(0) is the zero (or all-ones) of its shape
    domain: str | None = None  # template whose entries must be positive (`U` for log, `1 + U` for log1p)
    kink: str | None = None  # template whose entries must not be 0 (not differentiable there)
    user: bool = True  # may be written in problem files (diagvec is `diag` of a square matrix)
    linear: bool = False  # a linear map: d f(U) = f(dU), folded into the line that needs it (detail: normal)
    summary: str = ""  # what it is, for messages and the README table
    #: (id, English, Chinese, formula) of the rule for a matrix argument, where it differs (column-wise softmax)
    matrix_rule: tuple[str, str, str, str] | None = None

    @property
    def elementwise(self) -> bool:
        return self.shape == "elementwise"

    def rule_for(self, kind: str) -> str:
        """The id of the rule its differential cites for an argument of this kind."""
        return self.matrix_rule[0] if kind == "matrix" and self.matrix_rule else self.rule

    def template(self, kind: str) -> str:
        """The differential template for an argument of kind "scalar", "vector" or "matrix"."""
        return self.differential.get(kind) or self.differential["any"]


_d, _T = "\\mathrm{d}", "^{\\top}"
_op = "\\operatorname"
_AE = "\\quad\\text{(where no entry of } U \\text{ is 0)}"  # the rules of functions with a kink at 0


def _sigma(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(a: np.ndarray) -> np.ndarray:
    w = np.exp(a - a.max(axis=0))
    return w / w.sum(axis=0)


def _scalar(v) -> np.ndarray:
    return np.array([[v]], dtype=float)


_ENTRIES = [
    # ------------------------------------------------------------------ scalar functions of matrices
    Function("tr", "square_to_scalar", "D4", ("differential of a trace", "迹的微分"),
             f"{_d}\\,{_op}{{tr}}(U) = {_op}{{tr}}({_d}U)", {"any": "tr(dU)"},
             f"{_op}{{tr}}", "np.trace({a})", lambda a: _scalar(np.trace(a)), lambda sp, x: x,
             at_zero="zero", linear=True, summary="trace"),
    Function("det", "square_to_scalar", "D6", ("differential of a determinant", "行列式的微分"),
             f"{_d}\\det U = \\det U\\,{_op}{{tr}}(U^{{-1}}{_d}U)", {"any": "F * tr(inv(U)*dU)"},
             "\\det", "np.linalg.det({a})", lambda a: _scalar(np.linalg.det(a)), lambda sp, x: x,
             summary="determinant"),
    Function("logdet", "square_to_scalar", "D7", ("differential of a log-determinant", "对数行列式的微分"),
             f"{_d}\\log\\lvert\\det U\\rvert = {_op}{{tr}}(U^{{-1}}{_d}U)", {"any": "tr(inv(U)*dU)"},
             "\\log\\det", "np.linalg.slogdet({a})[1]", lambda a: _scalar(np.linalg.slogdet(a)[1]),
             lambda sp, x: sp.log(sp.Abs(x)), summary="log |det|"),
    Function("sum", "to_scalar", "D22", ("differential of a sum of entries", "元素和的微分"),
             f"{_d}{_op}{{sum}}(U) = \\mathbf{{1}}{_T}({_d}U)\\mathbf{{1}}", {"any": "1'*dU*1", "scalar": "dU"},
             f"{_op}{{sum}}", "np.sum({a})", lambda a: _scalar(a.sum()), lambda sp, x: x,
             at_zero="zero", linear=True, summary="sum of all entries"),
    Function("norm", "to_scalar", "D18", ("differential of a norm", "范数的微分"),
             f"{_d}\\lVert U \\rVert = \\frac{{{_op}{{tr}}(U{_T}{_d}U)}}{{\\lVert U \\rVert}}",
             {"any": "(U'*dU) * F^-1", "matrix": "tr(U'*dU) * F^-1"},
             "\\lVert", "np.linalg.norm({a})", lambda a: _scalar(np.linalg.norm(a)), lambda sp, x: sp.Abs(x),
             at_zero="zero", summary="Euclidean / Frobenius norm"),
    # ------------------------------------------------------------------ functions of vectors
    Function("softmax", "columnwise", "D19", ("differential of softmax", "softmax 的微分"),
             f"{_d}{_op}{{softmax}}(z) = ({_op}{{diag}}(s) - s s{_T})\\,{_d}z,\\ s = {_op}{{softmax}}(z)",
             {"any": "(diag(F) - F*F')*dU", "matrix": "F .* dU - F .* (1*1'*(F .* dU))"},
             f"{_op}{{softmax}}",
             "(np.exp(({a}) - np.max({a}, axis=0)) / np.sum(np.exp(({a}) - np.max({a}, axis=0)), axis=0))",
             _softmax, lambda sp, x: sp.Integer(1), summary="softmax of a vector; of a matrix, of each column",
             matrix_rule=("D36", "differential of a column-wise softmax", "逐列 softmax 的微分",
                          f"{_d}S = S \\odot {_d}Z - S \\odot (\\mathbf{{1}}\\mathbf{{1}}{_T}(S \\odot {_d}Z)),\\ "
                          f"S = {_op}{{softmax}}(Z) \\text{{ of each column}}")),
    Function("logsumexp", "columns_to_row", "D20", ("differential of logsumexp", "logsumexp 的微分"),
             f"{_d}{_op}{{logsumexp}}(z) = {_op}{{softmax}}(z){_T}{_d}z", {"any": "softmax(U)'*dU", "matrix": "1'*(softmax(U) .* dU)"},
             f"{_op}{{logsumexp}}",
             "(np.max({a}, axis=0) + np.log(np.sum(np.exp(({a}) - np.max({a}, axis=0)), axis=0)))",
             lambda a: (a.max(axis=0) + np.log(np.exp(a - a.max(axis=0)).sum(axis=0)))[None, :], lambda sp, x: x,
             summary="log of the sum of exponentials of a vector; of a matrix, of each column (a row)",
             matrix_rule=("D37", "differential of a column-wise logsumexp", "逐列 logsumexp 的微分",
                          f"{_d}{_op}{{logsumexp}}(Z) = \\mathbf{{1}}{_T}({_op}{{softmax}}(Z) \\odot {_d}Z) \\text{{ (a row: one entry per column)}}")),
    # ------------------------------------------------------------------ structure
    Function("diag", "diag", "D21", ("differential of diag", "diag 的微分"),
             f"{_d}{_op}{{diag}}(u) = {_op}{{diag}}({_d}u)", {"any": "diag(dU)"},
             f"{_op}{{diag}}", "np.diag(np.ravel({a}))", lambda a: np.diag(a[:, 0]), lambda sp, x: x,
             at_zero="zero", linear=True, summary="the diagonal matrix of a vector (of a square matrix: its diagonal)"),
    Function("diagvec", "diagvec", "D21", None, None, {"any": "diag(dU)"},
             f"{_op}{{diag}}", "np.diag({a}).reshape(-1, 1)", lambda a: np.diag(a).reshape(-1, 1).copy(),
             lambda sp, x: x, at_zero="zero", linear=True, user=False, summary="the diagonal of a square matrix"),
    Function("vec", "vec", "D24", ("differential of vec", "向量化的微分"),
             f"{_d}{_op}{{vec}}(U) = {_op}{{vec}}({_d}U)", {"any": "vec(dU)"},
             f"{_op}{{vec}}", "np.reshape({a}, (-1, 1), order='F')", lambda a: a.reshape(-1, 1, order="F").copy(),
             None, at_zero="zero", linear=True, summary="the columns of a matrix stacked"),
    # ------------------------------------------------------------------ elementwise
    Function("exp", "elementwise", "D13", ("differential of exp", "指数函数的微分"),
             f"{_d}\\exp(U) = \\exp(U) \\odot {_d}U", {"any": "F .* dU"},
             "\\exp", "np.exp({a})", np.exp, lambda sp, x: sp.exp(x), at_zero="one", summary="exponential"),
    Function("log", "elementwise", "D14", ("differential of log", "对数函数的微分"),
             f"{_d}\\log(U) = {_d}U \\oslash U", {"any": "dU ./ U", "scalar": "U^-1 * dU"},
             "\\log", "np.log({a})", np.log, lambda sp, x: sp.log(x), domain="U", summary="natural logarithm"),
    Function("sigma", "elementwise", "D15", ("differential of the sigmoid", "sigmoid 的微分"),
             f"{_d}\\sigma(U) = \\sigma(U) \\odot (\\mathbf{{1}} - \\sigma(U)) \\odot {_d}U", {"any": "F .* (1 - F) .* dU"},
             "\\sigma", "(1 / (1 + np.exp(-({a}))))", _sigma, lambda sp, x: 1 / (1 + sp.exp(-x)),
             summary="logistic sigmoid 1/(1 + e^-u)"),
    Function("tanh", "elementwise", "D16", ("differential of tanh", "tanh 的微分"),
             f"{_d}\\tanh(U) = (\\mathbf{{1}} - \\tanh(U)^{{\\odot 2}}) \\odot {_d}U", {"any": "(1 - F.^2) .* dU"},
             "\\tanh", "np.tanh({a})", np.tanh, lambda sp, x: sp.tanh(x), at_zero="zero", summary="hyperbolic tangent"),
    Function("sqrt", "elementwise", "D17", ("differential of a square root", "平方根的微分"),
             f"{_d}\\sqrt{{U}} = {_d}U \\oslash (2\\sqrt{{U}})", {"any": "dU ./ (2*F)", "scalar": "(2*F)^-1 * dU"},
             "\\sqrt", "np.sqrt({a})", np.sqrt, lambda sp, x: sp.sqrt(x), at_zero="zero", domain="U",
             summary="square root"),
    Function("sin", "elementwise", "D26", ("differential of sin", "正弦函数的微分"),
             f"{_d}\\sin(U) = \\cos(U) \\odot {_d}U", {"any": "cos(U) .* dU"},
             "\\sin", "np.sin({a})", np.sin, lambda sp, x: sp.sin(x), at_zero="zero", summary="sine"),
    Function("cos", "elementwise", "D27", ("differential of cos", "余弦函数的微分"),
             f"{_d}\\cos(U) = -\\sin(U) \\odot {_d}U", {"any": "-(sin(U) .* dU)"},
             "\\cos", "np.cos({a})", np.cos, lambda sp, x: sp.cos(x), at_zero="one", summary="cosine"),
    Function("tan", "elementwise", "D28", ("differential of tan", "正切函数的微分"),
             f"{_d}\\tan(U) = (\\mathbf{{1}} + \\tan(U)^{{\\odot 2}}) \\odot {_d}U", {"any": "(1 + F.^2) .* dU"},
             "\\tan", "np.tan({a})", np.tan, lambda sp, x: sp.tan(x), at_zero="zero", summary="tangent"),
    Function("arctan", "elementwise", "D29", ("differential of arctan", "反正切函数的微分"),
             f"{_d}\\arctan(U) = {_d}U \\oslash (\\mathbf{{1}} + U^{{\\odot 2}})",
             {"any": "dU ./ (1 + U.^2)", "scalar": "(1 + U^2)^-1 * dU"},
             "\\arctan", "np.arctan({a})", np.arctan, lambda sp, x: sp.atan(x), at_zero="zero",
             summary="inverse tangent"),
    Function("log1p", "elementwise", "D30", ("differential of log(1 + u)", "log(1 + u) 的微分"),
             f"{_d}\\log(\\mathbf{{1}} + U) = {_d}U \\oslash (\\mathbf{{1}} + U)",
             {"any": "dU ./ (1 + U)", "scalar": "(1 + U)^-1 * dU"},
             "\\log", "np.log1p({a})", np.log1p, lambda sp, x: sp.log(1 + x), at_zero="zero", domain="1 + U",
             summary="log(1 + u), accurate near 0"),
    Function("softplus", "elementwise", "D31", ("differential of softplus", "softplus 的微分"),
             f"{_d}{_op}{{softplus}}(U) = \\sigma(U) \\odot {_d}U,\\ {_op}{{softplus}}(u) = \\log(1 + e^u)",
             {"any": "sigma(U) .* dU"},
             f"{_op}{{softplus}}", "np.logaddexp(0, {a})", lambda a: np.logaddexp(0.0, a),
             lambda sp, x: sp.log(1 + sp.exp(x)), summary="log(1 + e^u)"),
    Function("abs", "elementwise", "D32", ("differential of abs", "绝对值的微分"),
             f"{_d}{_op}{{abs}}(U) = {_op}{{sign}}(U) \\odot {_d}U{_AE}", {"any": "sign(U) .* dU"},
             f"{_op}{{abs}}", "np.abs({a})", np.abs, lambda sp, x: sp.Abs(x), at_zero="zero", kink="U",
             summary="absolute value"),
    Function("sign", "elementwise", "D33", ("differential of sign", "符号函数的微分"),
             f"{_d}{_op}{{sign}}(U) = 0{_AE}", {"any": "0 * dU"},
             f"{_op}{{sign}}", "np.sign({a})", np.sign, lambda sp, x: sp.sign(x), at_zero="zero", kink="U",
             summary="sign: -1, 0 or 1"),
    Function("relu", "elementwise", "D34", ("differential of ReLU", "ReLU 的微分"),
             f"{_d}{_op}{{relu}}(U) = {_op}{{step}}(U) \\odot {_d}U{_AE}", {"any": "step(U) .* dU"},
             f"{_op}{{relu}}", "np.maximum({a}, 0)", lambda a: np.maximum(a, 0.0), lambda sp, x: sp.Max(x, 0),
             at_zero="zero", kink="U", summary="max(u, 0)"),
    Function("step", "elementwise", "D35", ("differential of the unit step", "单位阶跃函数的微分"),
             f"{_d}{_op}{{step}}(U) = 0{_AE};\\ {_op}{{step}}(u) = 1 \\text{{ for }} u > 0,\\ 0 \\text{{ otherwise}}",
             {"any": "0 * dU"},
             f"{_op}{{step}}", "np.heaviside({a}, 0.0)", lambda a: np.heaviside(a, 0.0),
             lambda sp, x: sp.Heaviside(x, 0), at_zero="zero", kink="U", summary="1 where u > 0, else 0"),
]

#: every function by its name
FUNCTIONS: dict[str, Function] = {f.name: f for f in _ENTRIES}
ELEMENTWISE: tuple[str, ...] = tuple(f.name for f in _ENTRIES if f.elementwise)
#: names the parser reads as calls that are not functions of one argument (their own nodes)
CONSTRUCTORS: dict[str, str] = {
    "inv": "the inverse", "ones": "the all-ones vector or matrix", "eye": "the identity matrix",
    "kron": "the Kronecker product", "commutation": "the commutation matrix", "max": "max(A, 0), the ReLU",
}
#: the names a problem may call
USER_NAMES: tuple[str, ...] = tuple(sorted([f.name for f in _ENTRIES if f.user] + list(CONSTRUCTORS)))


def lookup(name: str) -> Function:
    """The entry for `name` (KeyError for an unknown one)."""
    return FUNCTIONS[name]

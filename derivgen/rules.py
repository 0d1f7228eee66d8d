"""The rule catalogue: every step of a derivation cites one or more of these rules.

Each rule has an id (its tag in handouts, e.g. `T3`), a name in English and Chinese and its
formula in LaTeX. Handouts end with an appendix of the rules their steps used, in catalogue
order.
"""

from __future__ import annotations

from dataclasses import dataclass

from .functions import FUNCTIONS


@dataclass(frozen=True)
class Rule:
    """One justification a step can cite."""

    id: str
    name: dict[str, str]  # language -> name
    formula: str  # LaTeX, for math mode (English words in its \text{…})
    group: str  # "rewrite", "differential", "trace", "identification", "simplification"

    def name_in(self, lang: str) -> str:
        return self.name.get(lang) or self.name["en"]

    def formula_in(self, lang: str) -> str:
        """The formula with the words of its \\text{…} in `lang` (`_PHRASES`)."""
        return translated(self.formula, lang)


#: The words inside the formulas' \text{…}, per language: (English, translation), the longest first
#: where one contains another. A formula whose words have no entry here keeps them in English
#: (tests/test_rules.py checks that every formula's words have one).
_PHRASES: dict[str, list[tuple[str, str]]] = {
    "zh": [
        ("\\text{ (commutation matrix } K)", "\\text{（交换矩阵 }K\\text{）}"),
        ("\\text{ (rows follow } x)", "\\text{（行对应 }x\\text{）}"),
        ("\\text{ (rows follow } f)", "\\text{（行对应 }f\\text{）}"),
        ("\\text{(where no entry of } U \\text{ is 0)}", "\\text{（}U\\text{ 的元素均不为 0 处）}"),
        ("\\text{ (a row: one entry per column)}", "\\text{（行向量：每列一个元素）}"),
        ("\\text{ when each column of } P \\text{ is one}", "\\text{，当 }P\\text{ 的每列之和为一}"),
        ("\\text{, the estimate found before}", "\\text{（先前求得的估计）}"),
        ("\\text{ for a probability vector }", "\\text{，对概率向量 }"),
        ("\\text{ for a number }", "\\text{，对常数 }"),
        ("\\text{ and invertible }", "\\text{ 及可逆矩阵 }"),
        ("\\text{ for a scalar }", "\\text{，对标量 }"),
        ("\\text{ for constant }", "\\text{，对常量 }"),
        ("\\text{ for scalars }", "\\text{，对标量 }"),
        ("\\text{ for scalar }", "\\text{，对标量 }"),
        ("\\text{ for symmetric }", "\\text{，对对称矩阵 }"),
        ("\\text{ for invertible }", "\\text{，对可逆矩阵 }"),
        ("\\text{ of each column}", "\\text{（逐列）}"),
        ("\\text{ is defined}", "\\text{ 已定义}"),
        ("\\text{ otherwise}", "\\text{（其他情况）}"),
        ("\\text{ where }", "\\text{，其中 }"),
        ("\\text{ for }", "\\text{，当 }"),
        ("\\text{ at }", "\\text{，其中 }"),
    ],
}


def translated(formula: str, lang: str) -> str:
    """`formula` with the words of its \\text{…} in `lang`, where `_PHRASES` has them."""
    for en, other in _PHRASES.get(lang, ()):
        formula = formula.replace(en, other)
    return formula


_d = "\\mathrm{d}"
_tr = "\\operatorname{tr}"
_T = "^{\\top}"

_RULES = [
    # rewrites of f before differentiating
    ("R1", "squared norm as a product", "范数平方写成内积", f"\\lVert u \\rVert^2 = u{_T} u,\\quad \\lVert A \\rVert_F^2 = {_tr}(A{_T} A)", "rewrite"),
    ("R2", "sum of entries", "元素求和", f"\\operatorname{{sum}}(A) = \\mathbf{{1}}{_T} A \\mathbf{{1}}", "rewrite"),
    ("R3", "log of softmax", "softmax 的对数", f"\\log\\operatorname{{softmax}}(z) = z - \\mathbf{{1}}\\operatorname{{logsumexp}}(z)", "rewrite"),
    ("R4", "determinant of a power", "幂的行列式", "\\det(X^k) = (\\det X)^k", "rewrite"),
    ("R5", "inner product of vecs", "向量化的内积", f"\\operatorname{{vec}}(A){_T}\\operatorname{{vec}}(B) = {_tr}(A{_T} B)", "rewrite"),
    ("R7", "softmax by its definition", "softmax 的定义", f"\\operatorname{{softmax}}(z) = \\frac{{\\exp(z)}}{{\\mathbf{{1}}{_T}\\exp(z)}}", "rewrite"),
    ("R6", "trace of a Kronecker product", "克罗内克积的迹", f"{_tr}(A \\otimes B) = {_tr}(A)\\,{_tr}(B)", "rewrite"),
    # differentials
    ("D0", "constants have zero differential", "常量的微分为零", f"{_d}A = 0 \\text{{ for constant }} A", "differential"),
    ("D1", "linearity of the differential", "微分的线性", f"{_d}(U + V) = {_d}U + {_d}V,\\quad {_d}(AUB) = A\\,{_d}U\\,B \\text{{ for constant }} A, B", "differential"),
    ("D2", "product rule", "乘积法则", f"{_d}(UV) = ({_d}U)V + U\\,{_d}V", "differential"),
    ("D3", "differential of a transpose", "转置的微分", f"{_d}(U{_T}) = ({_d}U){_T}", "differential"),
    ("D5", "differential of an inverse", "逆矩阵的微分", f"{_d}(U^{{-1}}) = -U^{{-1}}\\,{_d}U\\,U^{{-1}}", "differential"),
    ("D8", "differential of a matrix power", "矩阵幂的微分", f"{_d}(U^k) = \\sum_{{i=0}}^{{k-1}} U^i\\,{_d}U\\,U^{{k-1-i}}", "differential"),
    ("D9", "power rule for scalars", "标量幂法则", f"{_d}(s^a) = a\\,s^{{a-1}}{_d}s", "differential"),
    ("D10", "differential of a Hadamard product", "哈达玛积的微分", f"{_d}(U \\odot V) = {_d}U \\odot V + U \\odot {_d}V", "differential"),
    ("D11", "differential of an elementwise quotient", "逐元素商的微分", f"{_d}(U \\oslash V) = {_d}U \\oslash V - (U \\odot {_d}V) \\oslash (V \\odot V)", "differential"),
    ("D12", "differential of an elementwise power", "逐元素幂的微分", f"{_d}(U^{{\\odot a}}) = a\\,U^{{\\odot (a-1)}} \\odot {_d}U", "differential"),
    ("D23", "differential of a sum over samples", "对样本求和的微分", f"{_d}\\sum_t u_t = \\sum_t {_d}u_t", "differential"),
    ("D38", "quotient rule", "商的微分法则", f"{_d}\\frac{{u}}{{v}} = \\frac{{{_d}u\\,v - u\\,{_d}v}}{{v^2}} \\text{{ for scalars }} u, v", "differential"),
    ("D25", "differential of a Kronecker product", "克罗内克积的微分", f"{_d}(U \\otimes V) = {_d}U \\otimes V + U \\otimes {_d}V", "differential"),
    # trace normal form
    ("T0", "a scalar is its own trace", "标量等于其迹", f"a = {_tr}(a) \\text{{ for scalar }} a", "trace"),
    ("T1", "linearity of the trace", "迹的线性", f"{_tr}(A + B) = {_tr}A + {_tr}B,\\quad {_tr}(cA) = c\\,{_tr}A", "trace"),
    ("T2", "trace of a transpose", "转置的迹", f"{_tr}(A{_T}) = {_tr}(A)", "trace"),
    ("T3", "cyclic property", "迹的循环性质", f"{_tr}(ABC) = {_tr}(CAB)", "trace"),
    ("T4", "Hadamard product inside a trace", "迹中的哈达玛积", f"{_tr}(A{_T}(B \\odot C)) = {_tr}((A \\odot B){_T}C)", "trace"),
    ("T5", "elementwise quotient inside a trace", "迹中的逐元素商", f"{_tr}(A{_T}(B \\oslash C)) = {_tr}((A \\oslash C){_T}B)", "trace"),
    ("T6", "diagonal matrix inside a trace", "迹中的对角矩阵", f"{_tr}(A\\operatorname{{diag}}(u)) = \\operatorname{{diag}}(A){_T}u", "trace"),
    ("T7", "distributivity", "分配律", "A(B + C) = AB + AC", "trace"),
    ("T8", "a sum over samples inside the trace", "样本求和移入迹内", f"\\sum_t c\\,{_tr}(K_t\\,{_d}X) = {_tr}\\Big(\\Big(\\sum_t c\\,K_t\\Big){_d}X\\Big)", "trace"),
    # identification and chain rule
    ("I1", "identification of the gradient", "由微分识别梯度", f"{_d}f = {_tr}(G{_T}{_d}X) \\;\\Rightarrow\\; \\frac{{\\partial f}}{{\\partial X}} = G", "identification"),
    ("C1", "chain rule: substitute the differential", "链式法则：代入微分", f"{_d}f = {_tr}\\left(\\left(\\tfrac{{\\partial f}}{{\\partial Y}}\\right){_T}{_d}Y\\right),\\ {_d}Y = \\ldots", "identification"),
    # Jacobians, vectorisation, layouts
    ("J0", "identification of the Jacobian", "由微分识别雅可比矩阵", f"{_d}f = J\\,{_d}x \\;\\Rightarrow\\; J = \\frac{{\\partial f}}{{\\partial x^{{\\top}}}}", "identification"),
    ("J1", "Hadamard product as a diagonal matrix", "哈达玛积写成对角矩阵", "u \\odot v = \\operatorname{diag}(u)\\,v", "trace"),
    ("J2", "a scalar factor commutes", "标量因子可交换", f"(a{_T}{_d}x)\\,v = v\\,a{_T}{_d}x", "trace"),
    ("J3", "diagonal matrix of the differential", "微分的对角矩阵", f"\\operatorname{{diag}}({_d}x)\\,v = \\operatorname{{diag}}(v)\\,{_d}x", "trace"),
    ("J4", "a scalar equals its transpose", "标量等于其转置", f"{_d}x{_T}a = a{_T}{_d}x", "trace"),
    ("V1", "vec of a product", "乘积的向量化", "\\operatorname{vec}(P\\,X\\,Q) = (Q^{\\top} \\otimes P)\\operatorname{vec}X", "trace"),
    ("V2", "vec of a transpose", "转置的向量化", "\\operatorname{vec}(X^{\\top}) = K\\operatorname{vec}X \\text{ (commutation matrix } K)", "trace"),
    ("V3", "vec of a Hadamard product", "哈达玛积的向量化", "\\operatorname{vec}(U \\odot C) = \\operatorname{diag}(\\operatorname{vec}U)\\operatorname{vec}C", "trace"),
    ("V4", "vec is linear", "向量化是线性的", "\\operatorname{vec}(aA + bB) = a\\operatorname{vec}A + b\\operatorname{vec}B", "trace"),
    ("V5", "a trace as an inner product", "迹写成内积", f"{_tr}(K\\,{_d}X) = \\operatorname{{vec}}(K^{{\\top}}){_T}\\operatorname{{vec}}({_d}X)", "trace"),
    ("L1", "denominator layout", "分母布局", "\\frac{\\partial f}{\\partial x} = J^{\\top} \\text{ (rows follow } x)", "identification"),
    ("L2", "numerator layout", "分子布局", "\\frac{\\partial f}{\\partial x} = J \\text{ (rows follow } f)", "identification"),
    ("Y1", "gradient constrained to symmetric matrices", "对称约束下的梯度", "\\frac{\\partial f}{\\partial X}\\Big|_{X = X^{\\top}} = G + G^{\\top} - I \\odot G", "identification"),
    ("Y2", "gradient in the space of symmetric matrices", "对称矩阵空间中的梯度", "\\operatorname{sym}(G) = \\tfrac{1}{2}(G + G^{\\top})", "identification"),
    ("H1", "the Hessian is the Jacobian of the gradient", "黑塞矩阵是梯度的雅可比矩阵", "H = \\frac{\\partial}{\\partial x}\\left(\\frac{\\partial f}{\\partial x}\\right)", "identification"),
    # stationary points
    ("E0", "a stationary point", "驻点", "\\frac{\\partial f}{\\partial X} = 0", "solution"),
    ("E1", "collect the unknown on one side", "把未知量移到一边", "L X R + C = 0 \\;\\Leftrightarrow\\; L X R = -C", "solution"),
    ("E2", "multiply by the inverse", "两边乘以逆矩阵", "L X R = B \\;\\Rightarrow\\; X = L^{-1} B R^{-1}", "solution"),
    ("E3", "multiply both sides by the unknown", "两边同乘未知矩阵", "G(X) = 0 \\;\\Rightarrow\\; X\\,G(X)\\,X = 0 \\text{ for invertible } X", "solution"),
    ("E4", "inverse of a product", "乘积的逆", "(cAB)^{-1} = c^{-1}B^{-1}A^{-1}", "solution"),
    ("E5", "inner product of ones", "全一向量的内积", "\\mathbf{1}^{\\top}\\mathbf{1} = N \\text{ for } \\mathbf{1} \\in \\mathbb{R}^N", "solution"),
    ("E6", "cancel a common factor", "约去公因子", "c\\,F A = c\\,F B \\;\\Leftrightarrow\\; A = B \\text{ for a number } c \\neq 0 \\text{ and invertible } F", "solution"),
    ("E7", "divide by a scalar", "两边除以标量", "s X = B \\;\\Leftrightarrow\\; X = B / s \\text{ for a scalar } s \\neq 0", "solution"),
    ("E8", "substitute the estimate found", "代入已求得的估计", "\\hat{X} = g(Y) \\text{ at } Y = \\hat{Y} \\text{, the estimate found before}", "solution"),
    ("E9", "multiply on the left by the unknown", "两边左乘未知矩阵", "G(X) = 0 \\;\\Leftrightarrow\\; X\\,G(X) = 0 \\text{ for invertible } X", "solution"),
    # simplification
    ("S1", "transpose of a product", "乘积的转置", f"(AB){_T} = B{_T}A{_T},\\ (A + B){_T} = A{_T} + B{_T},\\ (A{_T}){_T} = A", "simplification"),
    ("S2", "collect like terms", "合并同类项", "aA + bA = (a + b)A", "simplification"),
    ("S3", "factor out a common factor", "提取公因子", "AB + AC = A(B + C),\\quad BA + CA = (B + C)A", "simplification"),
    ("S4", "symmetric matrix", "对称矩阵", f"A{_T} = A,\\ A^{{-\\top}} = A^{{-1}} \\text{{ for symmetric }} A", "simplification"),
    ("S5", "orthogonal matrix", "正交矩阵", f"Q{_T}Q = QQ{_T} = I", "simplification"),
    ("S6", "a matrix times its inverse", "矩阵与其逆相乘", "AA^{-1} = A^{-1}A = I", "simplification"),
    ("S7", "powers of a scalar", "标量的幂", "s^a s^b = s^{a+b}", "simplification"),
    ("S8", "use the definition", "代回定义", "\\sigma(WX) \\to Y \\text{ where } Y = \\sigma(WX) \\text{ is defined}", "simplification"),
    ("S9", "products of powers of a matrix", "矩阵幂的乘积", "A^a A^b = A^{a+b}", "simplification"),
    ("S12", "constants out of a sum over samples", "常量提出求和号", "\\sum_t A\\,u_t = A\\sum_t u_t,\\quad \\sum_t c = N c", "simplification"),
    ("S10", "product of diagonal matrices", "对角矩阵的乘积", "\\operatorname{diag}(a)\\operatorname{diag}(b) = \\operatorname{diag}(a \\odot b)", "simplification"),
    ("S11", "the logistic function", "logistic 函数", "\\exp(u) \\oslash (\\mathbf{1} + \\exp(u)) = \\sigma(u)", "simplification"),
    ("S13", "symmetric by construction", "构造上对称", f"(U{_T} S U){_T} = U{_T} S U,\\ (A + A{_T}){_T} = A + A{_T},\\ (M^{{-1}}){_T} = M^{{-1}} \\text{{ for symmetric }} S, M", "simplification"),
    ("S14", "elementwise products expanded", "逐元素乘积展开", "(a - b) \\odot c = a \\odot c - b \\odot c,\\quad \\mathbf{1} \\odot u = u", "simplification"),
    ("S15", "a probability vector sums to one", "概率向量之和为一", f"\\mathbf{{1}}{_T} p = p{_T}\\mathbf{{1}} = 1 \\text{{ for a probability vector }} p,\\ \\mathbf{{1}}{_T} P = \\mathbf{{1}}{_T} \\text{{ when each column of }} P \\text{{ is one}}", "simplification"),
    ("S16", "diagonal algebra", "对角矩阵运算", f"\\operatorname{{diag}}(a) + \\operatorname{{diag}}(b) = \\operatorname{{diag}}(a + b),\\ u{_T}\\operatorname{{diag}}(v) = (u \\odot v){_T},\\ \\operatorname{{diag}}(\\mathbf{{1}}) = I,\\ \\operatorname{{diag}}(u v{_T}) = u \\odot v", "simplification"),
    ("S18", "step, ReLU, sign and abs", "阶跃、ReLU、符号与绝对值函数", f"\\operatorname{{step}}(u) \\odot u = \\operatorname{{relu}}(u),\\ \\operatorname{{step}}(u)^{{\\odot 2}} = \\operatorname{{step}}(u),\\ \\operatorname{{sign}}(u) \\odot u = \\operatorname{{abs}}(u),\\ \\operatorname{{sign}}(u)^{{\\odot 2}} = \\mathbf{{1}}", "simplification"),
    ("S19", "symmetry of the sigmoid", "sigmoid 的对称性", "\\mathbf{1} - \\sigma(-u) = \\sigma(u)", "simplification"),
    ("S17", "numbers taken out", "提出数字因子", "(cA)^{-1} = c^{-1}A^{-1},\\quad (c\\,s)^k = c^k s^k,\\quad (cA) \\odot B = c(A \\odot B)", "simplification"),
]



def _catalogue() -> list[tuple]:
    """_RULES with the functions' differential rules (declared in derivgen/functions.py) among
    the differentials, in the order of their numbers."""
    declared = [(f.rule, *f.rule_name, f.formula, "differential") for f in FUNCTIONS.values() if f.rule_name]
    declared += [(*f.matrix_rule, "differential") for f in FUNCTIONS.values() if f.matrix_rule]
    differentials = sorted([r for r in _RULES if r[4] == "differential"] + declared, key=lambda r: int(r[0][1:]))
    first = next(i for i, r in enumerate(_RULES) if r[4] == "differential")
    rest = [r for r in _RULES if r[4] != "differential"]
    return rest[:first] + differentials + rest[first:]


RULES: dict[str, Rule] = {
    rid: Rule(rid, {"en": en, "zh": zh}, formula, group) for rid, en, zh, formula, group in _catalogue()
}
ORDER = {rid: i for i, rid in enumerate(RULES)}


def rules_list(ids, lang: str = "en") -> list[dict]:
    """The rules among `ids` as document entries (docs/schema.md), in catalogue order."""
    return [
        {"id": r.id, "name": r.name_in(lang), "names": dict(r.name), "formula": r.formula_in(lang), "group": r.group}
        for r in used(ids)
    ]


def used(rule_ids) -> list[Rule]:
    """The rules among `rule_ids`, once each, in catalogue order."""
    return [RULES[r] for r in sorted(set(rule_ids), key=ORDER.__getitem__)]

"""The fixed prose of the handouts, in English and Chinese, in one place.

Templates and renderers never spell out words themselves: they ask this catalogue by key.
Values may hold `str.format` fields (``{number}``, ``{err}``, ...), filled by `text`.
A key missing from a language falls back to English; a key unknown to English is a
`KeyError`, so a typo in a template fails loudly instead of printing nothing.

The values are plain text that is safe to put into Markdown as it is (no Markdown-active
characters), so templates may insert them unescaped.
"""

from __future__ import annotations

#: The languages handouts can be written in; the first is the fallback.
LANGUAGES: tuple[str, ...] = ("en", "zh")

_EN: dict[str, str] = {
    # notes under a result's heading (plain text: they go into every format)
    "note_gradient_numerator": "Numerator layout: the gradient is written as a row, the transpose of the denominator-layout result.",
    "note_jacobian_denominator": "Denominator layout: rows follow the variable {x}, columns follow f; this is the transpose of the Jacobian J read off from df = J d{x}.",
    "note_jacobian_numerator": "Numerator layout: rows follow f, columns follow the variable {x}; this is the Jacobian J read off from df = J d{x}.",
    "note_jacobian_vec": " Matrices are vectorised by stacking their columns (vec).",
    "note_hessian": "The Hessian is the Jacobian of the gradient ∂f/∂{x}, derived below from its differential.",
    "note_symmetric": "Gradient constrained to symmetric matrices: the entries of {x} on and above the diagonal are the independent variables (G + Gᵀ − I ⊙ G). A gradient step that keeps {x} symmetric uses (G + Gᵀ)/2, the gradient in the space of symmetric matrices.",
    "note_symmetric_space": "Gradient in the space of symmetric matrices (Frobenius inner product): (G + Gᵀ)/2, the steepest-ascent direction among symmetric {x}. The derivative with respect to the independent entries on and above the diagonal is G + Gᵀ − I ⊙ G instead.",
    "note_solution": "The stationary point: the gradient ∂f/∂{x} set to zero and solved for {x}; checked by evaluating the gradient there.",
    # document titles and headings
    "problem": "Problem",
    "problem_numbered": "Problem {number}",
    "problem_titled": "Problem {number}: {title}",
    "problem_sheet": "Problem sheet",
    "solution_set": "Solutions",
    "given": "Given",
    "solution": "Solution",
    "detail_line": "Steps at {detail} detail ({meaning}); a problem or set chooses with detail: brief, normal or full.",
    "detail_brief": "brief",
    "detail_normal": "normal",
    "detail_full": "full",
    "detail_meaning_brief": "each stage of the method in one line",
    "detail_meaning_normal": "one idea per line, bookkeeping folded into the line that uses it",
    "detail_meaning_full": "one rule per line",
    "result": "Result",
    "verification": "Verification",
    "rules_used": "Rules used",
    "answer_key": "Answer key",
    "notes": "Note for the instructor",
    # the sub-heading of each result; {x} is the variable, as math
    "heading_gradient": "Gradient with respect to {x}",
    "heading_jacobian": "Jacobian with respect to {x}",
    "heading_hessian": "Hessian with respect to {x}",
    "heading_solution": "Stationary point in {x}",
    # the line under a chain that names the rules its tags cite
    "legend_sep": " · ",
    # the Given table
    "variable": "Variable",
    "shape": "Shape",
    "assumptions": "Assumptions",
    "no_assumptions": "—",
    "scalar": "scalar",
    "vector": "vector",
    "matrix": "matrix",
    "shape_of_kind": "{shape} {kind}",
    "assume_symmetric": "symmetric",
    "assume_spd": "symmetric positive definite",
    "assume_invertible": "invertible",
    "assume_orthogonal": "orthogonal",
    "assume_diagonal": "diagonal",
    "assume_positive": "positive entries",
    "assume_nonnegative": "nonnegative entries",
    "assume_probability": "entries in (0, 1)",
    "assume_simplex": "a probability vector (entries ≥ 0, summing to 1)",
    "assume_onehot": "one-hot (one entry 1, the others 0)",
    "assume_simplex_columns": "columns are probability vectors (entries ≥ 0, each column summing to 1)",
    "assume_onehot_columns": "one-hot columns (one entry 1 in each column, the others 0)",
    "assume_full_column_rank": "full column rank",
    # sentences around the function
    "function_line": "The function is {function}.",
    "domain_line": "We assume {conditions}.",
    "kink_line": "The result holds wherever no entry of {arguments} is 0, that is almost everywhere (not differentiable at 0: {functions}).",
    "function_line_where": "The function is {function}, where {definitions}.",
    # under the results of the answer key, when they use names the problem defines
    "answer_where": "Here {definitions}.",
    "find": "Find {targets}.",
    # verification
    "verified": (
        "checked numerically at random values (sizes {sizes}; {points}, {checks}); "
        "largest relative error {err}, tolerance {tol}."
    ),
    "verified_no_sizes": (
        "checked numerically at random values ({points}, {checks}); "
        "largest relative error {err}, tolerance {tol}."
    ),
    "points_one": "{n} random point",
    "points_other": "{n} random points",
    "checks_one": "{n} check",
    "checks_other": "{n} checks",
    # failures
    "error": "Error",
    "failed_problem": "this problem could not be solved, so no solution is given.",
    "failed_verification": (
        "the result for {target} failed its numeric check "
        "(largest relative error {err}, tolerance {tol}), so it is not shown."
    ),
    "not_verified": "the result for {target} has not been checked numerically, so it is not shown.",
    # punctuation and lists
    "colon": ": ",
    "tag_sep": "; ",
    "list_sep": ", ",
    "list_last": " and ",
    "meta_sep": " · ",
    # HTML handouts: the foldable derivation of each result
    "derivation": "Derivation",
    "steps_one": "{n} step",
    "steps_other": "{n} steps",
}

_ZH: dict[str, str] = {
    "note_gradient_numerator": "分子布局：梯度写成行向量，即分母布局结果的转置。",
    "note_jacobian_denominator": "分母布局：行对应变量 {x}，列对应 f；即由 df = J d{x} 读出的雅可比矩阵 J 的转置。",
    "note_jacobian_numerator": "分子布局：行对应 f，列对应变量 {x}；即由 df = J d{x} 读出的雅可比矩阵 J。",
    "note_jacobian_vec": "矩阵按列堆叠向量化（vec）。",
    "note_hessian": "黑塞矩阵是梯度 ∂f/∂{x} 的雅可比矩阵，下面由其微分推导。",
    "note_symmetric": "对称约束下的梯度：{x} 对角线及其上方的元素是独立变量（G + Gᵀ − I ⊙ G）。保持 {x} 对称的梯度步使用 (G + Gᵀ)/2，即对称矩阵空间中的梯度。",
    "note_symmetric_space": "对称矩阵空间中的梯度（Frobenius 内积）：(G + Gᵀ)/2，即对称 {x} 中的最速上升方向。对对角线及其上方独立元素的导数则是 G + Gᵀ − I ⊙ G。",
    "note_solution": "驻点：令梯度 ∂f/∂{x} 为零并解出 {x}；在该点计算梯度加以检验。",
    "problem": "题目",
    "problem_numbered": "第 {number} 题",
    "problem_titled": "第 {number} 题：{title}",
    "problem_sheet": "习题",
    "solution_set": "习题解答",
    "given": "已知",
    "solution": "解答",
    "detail_line": "步骤详略：{detail}（{meaning}）；题目或题集可用 detail: brief、normal 或 full 选择。",
    "detail_brief": "简略",
    "detail_normal": "标准",
    "detail_full": "完整",
    "detail_meaning_brief": "方法的每个阶段一行",
    "detail_meaning_normal": "每行一个要点，零碎的演算并入用到它的那一行",
    "detail_meaning_full": "每行一条法则",
    "result": "结果",
    "verification": "验证",
    "rules_used": "所用法则",
    "answer_key": "答案",
    "notes": "教师备注",
    "heading_gradient": "关于 {x} 的梯度",
    "heading_jacobian": "关于 {x} 的雅可比矩阵",
    "heading_hessian": "关于 {x} 的黑塞矩阵",
    "heading_solution": "{x} 的驻点",
    "variable": "变量",
    "shape": "形状",
    "assumptions": "假设",
    "scalar": "标量",
    "vector": "向量",
    "matrix": "矩阵",
    "assume_symmetric": "对称",
    "assume_spd": "对称正定",
    "assume_invertible": "可逆",
    "assume_orthogonal": "正交",
    "assume_diagonal": "对角",
    "assume_positive": "元素为正",
    "assume_nonnegative": "元素非负",
    "assume_probability": "元素在 (0, 1) 内",
    "assume_simplex": "概率向量（元素非负，和为 1）",
    "assume_onehot": "独热向量（一个元素为 1，其余为 0）",
    "assume_simplex_columns": "各列为概率向量（元素非负，每列和为 1）",
    "assume_onehot_columns": "各列为独热向量（每列一个元素为 1，其余为 0）",
    "assume_full_column_rank": "列满秩",
    "function_line": "函数为 {function}。",
    "domain_line": "假设 {conditions}。",
    "kink_line": "结果在 {arguments} 没有零元素处成立，即几乎处处成立（在 0 处不可微：{functions}）。",
    "function_line_where": "函数为 {function}，其中 {definitions}。",
    "answer_where": "其中 {definitions}。",
    "find": "求 {targets}。",
    "verified": (
        "已在随机取值处作数值检验（尺寸 {sizes}；{points}，{checks}）；"
        "最大相对误差 {err}，容差 {tol}。"
    ),
    "verified_no_sizes": (
        "已在随机取值处作数值检验（{points}，{checks}）；"
        "最大相对误差 {err}，容差 {tol}。"
    ),
    "points_one": "{n} 个随机点",
    "points_other": "{n} 个随机点",
    "checks_one": "{n} 次比较",
    "checks_other": "{n} 次比较",
    "error": "错误",
    "failed_problem": "本题未能求解，因此不给出解答。",
    "failed_verification": (
        "{target} 的结果未通过数值检验（最大相对误差 {err}，容差 {tol}），因此不予给出。"
    ),
    "not_verified": "{target} 的结果未经数值检验，因此不予给出。",
    "colon": "：",
    "tag_sep": "；",
    "list_sep": "、",
    "list_last": "、",
    "derivation": "推导过程",
    "steps_one": "{n} 步",
    "steps_other": "{n} 步",
}

_CATALOGUES: dict[str, dict[str, str]] = {"en": _EN, "zh": _ZH}


def language(lang: str) -> str:
    """Return the supported language that `lang` names: ``"zh-CN"`` → ``"zh"``.

    Raises `ValueError` for a language derivgen has no catalogue for.
    """
    base = lang.replace("_", "-").split("-")[0].lower()
    if base not in _CATALOGUES:
        raise ValueError(f"unsupported language {lang!r}; derivgen writes {', '.join(LANGUAGES)}")
    return base


def catalogue(lang: str) -> dict[str, str]:
    """Return every key with its text in `lang` (English where `lang` has none), unformatted."""
    merged = dict(_EN)
    merged.update(_CATALOGUES[language(lang)])
    return merged


def text(key: str, lang: str, **fmt: object) -> str:
    """Return the text for `key` in `lang`, with `fmt` filled into its ``{fields}``.

    Falls back to English when `lang` lacks the key; raises `KeyError` when English lacks it too.
    """
    if key not in _EN:
        raise KeyError(f"no text {key!r} in the i18n catalogue")
    value = _CATALOGUES[language(lang)].get(key, _EN[key])
    return value.format(**fmt) if fmt else value


def plural(key: str, n: int, lang: str) -> str:
    """Return ``text(key + "_one")`` if ``n == 1``, else ``text(key + "_other")``; `n` filled in."""
    return text(f"{key}_one" if n == 1 else f"{key}_other", lang, n=n)



# --- the self-check box of the HTML pages (derivgen.selfcheck, static/derivgen-check.js) --------
# Kept apart from the handouts' prose: these texts go to the page's script as JSON (shown with
# textContent, never as HTML or Markdown) and may hold backticks and quotes. The slip hints are
# worded as `derivgen.judge` words them (tests/test_selfcheck.py compares the two), so that a
# student reads the same hint in the box, from `derivgen grade` and from the autograders.

_CHECK_EN: dict[str, str] = {
    "check_label": "Check your answer for {lhs}",
    "check_button": "Check",
    "check_help": "Type an expression with the problem's names: * matrix product, ' transpose, .* ./ elementwise, "
                  "tr inv det logdet diag exp log sigma softmax relu abs …, 1 I 0. Your browser compares it with the result "
                  "at random values; the solution is not on this page.",
    "check_help_sums": "A sum over the samples is written sum({index}, …), with {family} one sample inside it; "
                       "{count} is the number of samples.",
    "check_empty": "Type an expression first.",
    "check_right": "Right: your answer equals the result at {checked} random points.",
    "check_wrong": "Not equal to the result.",
    "check_counterexample": "At sizes {at} the relative error is {err}.",
    "check_problem_sizes": "the problem's sizes",
    "check_no_slip": "No usual slip (transpose, factor 2, sign, symmetric only, one size) explains it.",
    "check_stop": ".",
    "check_unreadable": "Cannot check this answer: {message}",
    "check_syntax": "cannot read it ({detail})",
    "check_implicit": "a missing operator in `{text}`: products are written with `*`, e.g. `2*x`, `A*B`",
    "check_construct": "`{text}` is not part of derivgen's expression syntax",
    "check_unknown_name": "unknown name '{name}'; the answer may use the problem's names: {names}",
    "check_function_name": "{name} is a function: write `{name}(...)`",
    "check_not_function": "{name} is a variable, not a function: products are written with `*`: `{name}*(...)`",
    "check_unsupported": "unsupported function '{name}'; supported: {names}",
    "check_max": "max is supported as max(A, 0), the elementwise maximum with zero (relu(A))",
    "check_arguments": "{name} takes {n} argument(s)",
    "check_sample": "{name} is one sample of a family indexed by {index}: use it inside a sum over the samples: `sum({index}, ...)`",
    "check_sum_index": "the first argument of sum(t, ...) must be an index declared under `indices:` (here: {indices}), "
                       "e.g. `sum({index}, ...)`",
    "check_sum_no_index": "the first argument of sum(t, ...) must be an index declared under `indices:`, and this problem "
                          "has none: sum(A) is the sum of the entries of A",
    "check_dimensions": "{name}(...) takes dimensions (a dimension letter or a positive integer)",
    "check_exponent": "the exponent of `{text}` must be a number, a scalar name or T",
    "check_multiply": "cannot multiply {a} ({sa}) by {b} ({sb})",
    "check_add": "cannot add {a} ({sa}) and {b} ({sb}): terms of a sum must have the same shape",
    "check_elementwise": "elementwise operation of {a} ({sa}) and {b} ({sb}): elementwise operations need equal shapes",
    "check_divide": "can only divide by a scalar, but {b} is {sb}: for elementwise division write `./`",
    "check_square": "{name} needs a square matrix, but {a} is {sa}",
    "check_vector": "{name} needs a vector, but {a} is {sa}",
    "check_shape": "the answer is {got}, but the result is {want}",
    "check_shape_transposed": "the answer is {got}, but the result is {want}: its transpose has the right shape "
                              "(is your answer in the other layout?)",
    "check_scalar": "scalar (1×1)",
    "slip_is": "your answer is {what}{qualifier}",
    "slip_factor2": "twice the result: a factor of 2 too many",
    "slip_half": "half the result: a factor of 2 missing",
    "slip_sign": "the result with the opposite sign",
    "slip_sign2": "minus twice the result: the sign and a factor of 2",
    "slip_sign_half": "minus half the result: the sign and a factor of 1/2",
    "slip_times": "{c} times the result",
    "slip_the_result": "the result",
    "slip_it": "it",
    "slip_transpose": "your answer is the transpose of the result (the other layout?){qualifier}",
    "slip_transpose_and": "your answer is the transpose of the result (the other layout?), and {what}{qualifier}",
    "slip_when_one": " when {names} is symmetric",
    "slip_when_many": " when {names} are symmetric",
    "slip_names_sep": ", ",
    "slip_square_matrices": "the square matrices",
    "slip_symmetric_one": "your answer is right only when {names} is symmetric; for a general matrix it differs "
                          "(A where A + A' is needed?)",
    "slip_symmetric_many": "your answer is right only when {names} are symmetric; for a general matrix it differs "
                           "(A where A + A' is needed?)",
    "slip_size_only": "your answer is right at sizes {right} but not at {wrong}: does it depend on a particular size?",
    "slip_size_times": "your answer is {d} times the result: a factor of {d} too many",
    "slip_size_divided": "your answer is the result divided by {d}: a factor of {d} missing",
    "slip_fixed_sizes": "fixed sizes",
}

_CHECK_ZH: dict[str, str] = {
    "check_label": "检查你对 {lhs} 的答案",
    "check_button": "检查",
    "check_help": "用题目中的名称输入表达式：* 矩阵乘法，' 转置，.* ./ 逐元素运算，"
                  "tr inv det logdet diag exp log sigma softmax relu abs …，1 I 0。浏览器在随机数值上把它与结果比较；本页不含解答。",
    "check_help_sums": "对样本的求和写作 sum({index}, …)，求和中的 {family} 是一个样本；{count} 是样本的个数。",
    "check_empty": "请先输入表达式。",
    "check_right": "正确：你的答案在 {checked} 个随机点上与结果相等。",
    "check_wrong": "与结果不相等。",
    "check_counterexample": "在尺寸 {at} 下相对误差为 {err}。",
    "check_problem_sizes": "题目给定的尺寸",
    "check_no_slip": "常见的错误（转置、因子 2、符号、仅对称成立、仅某一尺寸成立）都不能解释这一差别。",
    "check_stop": "。",
    "check_unreadable": "无法检查这个答案：{message}",
    "check_syntax": "无法读取（{detail}）",
    "check_implicit": "`{text}` 中缺少运算符：乘法要写 `*`，例如 `2*x`、`A*B`",
    "check_construct": "`{text}` 不属于 derivgen 的表达式语法",
    "check_unknown_name": "未知的名称 '{name}'；答案可以使用题目中的名称：{names}",
    "check_function_name": "{name} 是函数：请写 `{name}(...)`",
    "check_not_function": "{name} 是变量，不是函数：乘法要写 `*`：`{name}*(...)`",
    "check_unsupported": "不支持的函数 '{name}'；支持的函数：{names}",
    "check_max": "max 仅支持 max(A, 0)，即与零逐元素取最大（relu(A)）",
    "check_arguments": "{name} 接受 {n} 个参数",
    "check_sample": "{name} 是以 {index} 为下标的一族样本中的一个：请在对样本的求和中使用它：`sum({index}, ...)`",
    "check_sum_index": "sum(t, ...) 的第一个参数必须是 `indices:` 中声明的下标（这里是：{indices}），例如 `sum({index}, ...)`",
    "check_sum_no_index": "sum(t, ...) 的第一个参数必须是 `indices:` 中声明的下标，而这道题没有下标：sum(A) 是 A 的所有元素之和",
    "check_dimensions": "{name}(...) 的参数是维度（维度字母或正整数）",
    "check_exponent": "`{text}` 的指数必须是数、标量名称或 T",
    "check_multiply": "无法相乘：{a}（{sa}）乘 {b}（{sb}）",
    "check_add": "无法相加：{a}（{sa}）与 {b}（{sb}）；和的各项形状必须相同",
    "check_elementwise": "逐元素运算的 {a}（{sa}）与 {b}（{sb}）形状不同；逐元素运算需要相同的形状",
    "check_divide": "只能除以标量，而 {b} 是 {sb}：逐元素除法请写 `./`",
    "check_square": "{name} 需要方阵，而 {a} 是 {sa}",
    "check_vector": "{name} 需要向量，而 {a} 是 {sa}",
    "check_shape": "答案是 {got}，而结果是 {want}",
    "check_shape_transposed": "答案是 {got}，而结果是 {want}：它的转置形状正确（是否用了另一种布局？）",
    "check_scalar": "标量（1×1）",
    "slip_is": "你的答案是{what}{qualifier}",
    "slip_factor2": "结果的两倍：多了因子 2",
    "slip_half": "结果的一半：少了因子 2",
    "slip_sign": "符号相反的结果",
    "slip_sign2": "结果的负两倍：符号和因子 2 都不对",
    "slip_sign_half": "结果的负一半：符号和因子 1/2 都不对",
    "slip_times": "结果的 {c} 倍",
    "slip_the_result": "结果",
    "slip_it": "它",
    "slip_transpose": "你的答案是结果的转置（是否用了另一种布局？）{qualifier}",
    "slip_transpose_and": "你的答案是结果的转置（是否用了另一种布局？），并且是{what}{qualifier}",
    "slip_when_one": "（当 {names} 对称时）",
    "slip_when_many": "（当 {names} 对称时）",
    "slip_names_sep": "、",
    "slip_square_matrices": "各方阵",
    "slip_symmetric_one": "你的答案只在 {names} 对称时正确；对一般矩阵则不同（是否在需要 A + A' 的地方写了 A？）",
    "slip_symmetric_many": "你的答案只在 {names} 都对称时正确；对一般矩阵则不同（是否在需要 A + A' 的地方写了 A？）",
    "slip_size_only": "你的答案在尺寸 {right} 下正确，在 {wrong} 下不正确：它是否依赖某个特定尺寸？",
    "slip_size_times": "你的答案是结果的 {d} 倍：多了因子 {d}",
    "slip_size_divided": "你的答案是结果除以 {d}：少了因子 {d}",
    "slip_fixed_sizes": "固定尺寸",
}

_CHECK: dict[str, dict[str, str]] = {"en": _CHECK_EN, "zh": _CHECK_ZH}


def check_messages(lang: str) -> dict[str, str]:
    """The self-check box's texts in `lang` (English where `lang` has none), unformatted."""
    merged = dict(_CHECK_EN)
    merged.update(_CHECK[language(lang)])
    return merged

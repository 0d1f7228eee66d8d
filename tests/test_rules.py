"""Every rule of the catalogue (derivgen/rules.py), each shown at work on a small problem.

For each case the engine derives the gradient; the test then checks that

- the derivation cites the rules the case is meant to show (in `blocks[*].steps[*].rules`);
- the result agrees with this test's own central finite differences of f. f is evaluated from
  the parsed problem with `derivgen.numeric.evaluate` (evaluation, not differentiation), at
  random values drawn here that satisfy the assumptions, with a distinct size per dimension;
- every line of the gradient chain `∂f/∂X = G₁ = G₂ = …` has the value of the result, and every
  line of a rewrite chain `f = … = …` has the value of f.

A last group checks the catalogue itself: every id is shown by some case, every formula is
LaTeX that looks valid, every rule has an English and a Chinese name.
"""

from __future__ import annotations

import re
import textwrap
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

from derivgen import expr as E
from derivgen.numeric import evaluate
from derivgen.pipeline import solve
from derivgen.printing import text
from derivgen.problem import load_problem_text
from derivgen.rules import RULES, rules_list

try:  # `tests/` on sys.path (pytest's default rootdir-less import)
    from fd import check_gradient
except ModuleNotFoundError:  # `tests` imported as a package
    from tests.fd import check_gradient

SIZES = {"m": 3, "n": 4, "p": 5, "k": 2}
RTOL = 1e-6
TRIALS = 2


@dataclass(frozen=True)
class Case:
    """A small problem (YAML, as a user writes it) and the rules its derivation must cite."""

    name: str
    problem: str
    wrt: str
    rules: tuple[str, ...]


def case(name: str, problem: str, wrt: str, *rules: str) -> Case:
    return Case(name, textwrap.dedent(problem), wrt, rules)


CASES = [
    case("quadratic form", """
        variables: {x: [n], A: [n, n]}
        function: x'*A*x
        wrt: [x]
        """, "x", "D2", "D3", "T0", "T1", "T2", "I1", "S1", "S3"),
    case("quadratic form, symmetric", """
        variables: {x: [n], A: [n, n]}
        assume: {A: [symmetric]}
        function: x'*A*x
        wrt: [x]
        """, "x", "S4", "S2"),
    case("linear trace plus a constant", """
        variables: {X: [m, n], A: [n, m], B: [n, n]}
        function: tr(X*A) + tr(B)
        wrt: [X]
        """, "X", "D0", "D1", "D4", "T3"),
    case("trace of an inverse", """
        variables: {X: [n, n]}
        assume: {X: [invertible]}
        function: tr(inv(X))
        wrt: [X]
        """, "X", "D5", "S9"),
    case("determinant", """
        variables: {X: [n, n]}
        function: det(X)
        wrt: [X]
        """, "X", "D6"),
    case("log-determinant", """
        variables: {X: [n, n]}
        function: logdet(X)
        wrt: [X]
        """, "X", "D7"),
    case("trace of a matrix power", """
        variables: {X: [n, n]}
        function: tr(X^3)
        wrt: [X]
        """, "X", "D8", "S9", "S2"),
    case("power of a scalar", """
        variables: {x: [n]}
        function: (x'*x)^3
        wrt: [x]
        """, "x", "D9", "T7"),
    case("Hadamard product", """
        variables: {X: [m, n], A: [m, n]}
        function: sum(A .* X .* X)
        wrt: [X]
        """, "X", "D10", "R2", "T4"),
    case("elementwise quotient", """
        variables: {X: [m, n], A: [m, n]}
        assume: {X: [positive]}
        function: sum(A ./ X)
        wrt: [X]
        """, "X", "D11", "T5"),
    case("elementwise power", """
        variables: {X: [m, n], A: [m, n]}
        function: sum(A .* X.^3)
        wrt: [X]
        """, "X", "D12"),
    case("exp", """
        variables: {X: [m, n], a: [m], b: [n]}
        function: a'*exp(X*b)
        wrt: [X]
        """, "X", "D13"),
    case("log", """
        variables: {x: [n], a: [n]}
        assume: {x: [positive]}
        function: a'*log(x)
        wrt: [x]
        """, "x", "D14", "T5"),
    case("sigmoid", """
        variables: {W: [m, n], x: [n], a: [m]}
        function: a'*sigma(W*x)
        wrt: [W]
        """, "W", "D15"),
    case("tanh", """
        variables: {W: [m, n], x: [n], a: [m]}
        function: a'*tanh(W*x)
        wrt: [W]
        """, "W", "D16"),
    case("square root", """
        variables: {x: [n], a: [n]}
        assume: {x: [positive]}
        function: a'*sqrt(x)
        wrt: [x]
        """, "x", "D17"),
    case("Frobenius norm", """
        variables: {X: [m, n]}
        function: norm(X)
        wrt: [X]
        """, "X", "D18"),
    case("softmax", """
        variables: {z: [n], a: [n]}
        function: a'*softmax(z)
        wrt: [z]
        """, "z", "D19"),
    case("logsumexp", """
        variables: {z: [n]}
        function: logsumexp(z)
        wrt: [z]
        """, "z", "D20"),
    case("diagonal matrix of a vector", """
        variables: {x: [n], A: [n, n]}
        function: tr(A*diag(x))
        wrt: [x]
        """, "x", "D21", "T6"),
    case("diagonal of a matrix", """
        variables: {X: [n, n], a: [n]}
        function: a'*diag(X)
        wrt: [X]
        """, "X", "D21", "T6"),
    case("sum of entries through a definition", """
        variables: {X: [m, n]}
        where: {s: sum(X)}
        function: s^2
        wrt: [X]
        """, "X", "D22", "C1"),
    case("sine and cosine", """
        variables: {x: [n], a: [n]}
        function: a'*sin(x) + sum(cos(x))
        wrt: [x]
        """, "x", "D26", "D27"),
    case("tangent and arctangent", """
        variables: {x: [n], a: [n]}
        function: sum(tan(x/4)) + a'*arctan(x)
        wrt: [x]
        """, "x", "D28", "D29"),
    case("log(1 + u)", """
        variables: {x: [n]}
        function: sum(log1p(x .* x))
        wrt: [x]
        """, "x", "D30"),
    case("logistic loss through softplus", """
        variables: {X: [m, n], w: [n], y: [m]}
        function: sum(softplus(X*w)) - y'*X*w
        wrt: [w]
        """, "w", "D31"),
    case("least absolute deviations", """
        variables: {A: [m, n], x: [n], b: [m]}
        function: sum(abs(A*x - b))
        wrt: [x]
        """, "x", "D32"),
    case("sign times the variable", """
        variables: {x: [n]}
        function: sum(sign(x) .* x)
        wrt: [x]
        """, "x", "D33", "D10"),
    case("a ReLU layer", """
        variables: {W: [m, n], x: [n], a: [m]}
        function: a'*relu(W*x)
        wrt: [W]
        """, "W", "D34"),
    case("the unit step", """
        variables: {x: [n], a: [n]}
        function: a'*(step(x) .* x)
        wrt: [x]
        """, "x", "D35"),
    case("squared Frobenius norm", """
        variables: {X: [m, n], U: [n, p], V: [m, p]}
        function: norm(X*U - V)^2
        wrt: [X]
        """, "X", "R1"),
    case("softmax cross-entropy", """
        variables: {z: [n], p: [n]}
        function: -p'*log(softmax(z))
        wrt: [z]
        """, "z", "R3", "D20"),
    case("determinant of a power", """
        variables: {X: [n, n]}
        assume: {X: [invertible]}
        function: det(X^3)
        wrt: [X]
        """, "X", "R4", "S7"),
    case("inner product of vecs", """
        variables: {X: [m, n], A: [m, n]}
        function: vec(A)'*vec(X) + vec(X)'*vec(X)
        wrt: [X]
        """, "X", "R5"),
    case("trace of a Kronecker product", """
        variables: {X: [n, n], A: [m, m]}
        function: tr(kron(A, X))
        wrt: [X]
        """, "X", "R6"),
    case("Gram matrix, symmetric by construction", """
        variables: {X: [n, k]}
        function: logdet(X'*X)
        wrt: [X]
        """, "X", "S13", "D7"),
    case("binary cross-entropy, elementwise products expanded", """
        variables: {X: [m, n], w: [n], y: [m]}
        function: -y'*log(sigma(X*w)) - (1 - y)'*log(1 - sigma(X*w))
        wrt: [w]
        """, "w", "S14"),
    case("softmax cross-entropy with a probability vector", """
        variables: {z: [n], p: [n]}
        assume: {p: [simplex]}
        function: -p'*log(softmax(z))
        wrt: [z]
        """, "z", "S15"),
    case("softmax cross-entropy of a batch (one column per sample)", """
        variables: {Z: [n, p], Y: [n, p]}
        assume: {Y: [simplex]}
        function: -sum(Y .* log(softmax(Z)))
        wrt: [Z]
        """, "Z", "R3", "D37", "S15"),
    case("column-wise softmax", """
        variables: {Z: [n, p], A: [n, p]}
        function: tr(A'*softmax(Z))
        wrt: [Z]
        """, "Z", "D36"),
    case("half the squared ReLU", """
        variables: {A: [m, n], x: [n]}
        function: sum(relu(A*x).^2)/2
        wrt: [x]
        """, "x", "S18"),
    case("cross-entropy written with sigma(-x)", """
        variables: {x: [n], y: [n]}
        function: y'*log(sigma(x)) + (1 - y)'*log(sigma(-x))
        wrt: [x]
        """, "x", "S19"),
    case("sum of diagonal matrices", """
        variables: {x: [n], a: [n], b: [n]}
        function: x'*(diag(a) + diag(b))*x
        wrt: [x]
        """, "x", "S16"),
    case("numbers out of a power", """
        variables: {x: [n]}
        function: sqrt(x'*x)
        wrt: [x]
        """, "x", "S17"),
    case("sigmoid layer (chain rule)", """
        variables: {W: [m, n], X: [n, p], M: [m, m]}
        assume: {M: [symmetric]}
        where: {Y: sigma(W*X)}
        function: tr(Y'*M*Y)
        wrt: [W]
        """, "W", "C1", "S8", "S4"),
    case("orthogonal change of basis", """
        variables: {Q: [n, n], X: [n, n]}
        assume: {Q: [orthogonal]}
        function: tr(Q'*X*Q)
        wrt: [X]
        """, "X", "S5"),
    case("determinant of an inverse", """
        variables: {X: [n, n]}
        assume: {X: [invertible]}
        function: det(inv(X))
        wrt: [X]
        """, "X", "D5", "D6", "S6"),
    case("gradient with respect to a symmetric matrix", """
        variables: {x: [n], S: [n, n]}
        assume: {S: [spd]}
        function: x'*inv(S)*x
        wrt: [S]
        """, "S", "D5", "S4"),
]

CASE_IDS = [c.name for c in CASES]


# ----------------------------------------------------------------------------- values

def sample(shape: tuple, assumptions: set[str], rng: np.random.Generator) -> np.ndarray:
    """A value of `shape` (concrete sizes) that satisfies `assumptions`."""
    r, c = shape
    if "orthogonal" in assumptions:
        q, upper = np.linalg.qr(rng.standard_normal((r, r)))
        return q * np.sign(np.diag(upper))
    if "spd" in assumptions:
        a = rng.standard_normal((r, r))
        return a @ a.T / r + np.eye(r)
    if "positive" in assumptions:
        return rng.uniform(0.5, 2.0, (r, c))
    if "simplex" in assumptions:  # entries > 0, each column summing to 1
        a = rng.uniform(0.2, 1.0, (r, c))
        return a / a.sum(axis=0)
    a = rng.standard_normal((r, c))
    if "symmetric" in assumptions:
        return (a + a.T) / 2 + 2 * np.eye(r)
    if r == c and r > 1:  # well conditioned for inv/det/logdet, and not symmetric
        return a / np.sqrt(r) + 2 * np.eye(r)
    return a


def concrete(shape) -> tuple[int, int]:
    return tuple(SIZES[d] if isinstance(d, str) else d for d in shape)


@dataclass
class Solved:
    case: Case
    solved: object  # derivgen.pipeline.Solved

    @property
    def ctx(self):
        return self.solved.context

    @property
    def derivation(self):
        (d,) = [d for d in self.solved.derivations if d.wrt == self.case.wrt]
        return d

    def cited(self) -> set[str]:
        return {r for block in self.derivation.blocks for step in block.steps for r in step.rules}

    def point(self, trial: int) -> dict:
        rng = np.random.default_rng([zlib.crc32(self.case.name.encode()), trial])
        return {
            name: sample(concrete(shape), self.ctx.assume.get(name, set()), rng)
            for name, shape in self.ctx.variables.items()
        }

    def env(self, values: dict) -> dict:
        """The variables and the `where:` names, computed in order."""
        env = dict(values)
        for name, definition in self.ctx.where.items():
            env[name] = evaluate(definition, env, SIZES)
        return env

    def f(self, values: dict) -> float:
        return float(evaluate(self.ctx.function, self.env(values), SIZES)[0, 0])


@pytest.fixture(scope="module")
def solved() -> dict[str, Solved]:
    out = {}
    for c in CASES:
        problem = load_problem_text(c.problem, f"{c.name}.yaml", "case")
        out[c.name] = Solved(c, solve(problem, detail="full"))  # one rule per line: each rule shows
    return out


# ----------------------------------------------------------------------------- the cases

RULE_CASES = [(rule, c.name) for c in CASES for rule in c.rules]


@pytest.mark.parametrize("rule, name", RULE_CASES, ids=[f"{r}-{n}" for r, n in RULE_CASES])
def test_derivation_cites_the_rule(solved, rule, name):
    s = solved[name]
    assert rule in s.cited(), (
        f"{name}: expected a step citing {rule} ({RULES[rule].name['en']}); cited {sorted(s.cited())}")


@pytest.mark.parametrize("name", CASE_IDS)
def test_result_matches_own_finite_differences(solved, name):
    s = solved[name]
    wrt = s.case.wrt
    result = s.derivation.result
    assert result.shape == s.ctx.variables[wrt], f"{name}: result {text(result)} has shape {result.shape}"
    for trial in range(TRIALS):
        values = s.point(trial)
        grad = evaluate(result, s.env(values), SIZES)
        x = values[wrt]

        def f_of(v, values=values):
            return s.f({**values, wrt: v})

        rng = np.random.default_rng([zlib.crc32(name.encode()), 100 + trial])
        with np.errstate(all="raise"):
            checks = check_gradient(f_of, x, grad, rng, n_random=3)
        worst = max(checks, key=lambda c: c.error)
        assert worst.error < RTOL, (
            f"{name}: ∂f/∂{wrt} = {text(result)} disagrees with finite differences "
            f"({worst.label}: fd={worst.fd:.12g}, <G,V>={worst.claimed:.12g}, error {worst.error:.1e})")


@pytest.mark.parametrize("name", CASE_IDS)
def test_every_line_of_a_chain_has_the_same_value(solved, name):
    s = solved[name]
    values = s.point(0)
    env = s.env(values)
    result = evaluate(s.derivation.result, env, SIZES)
    f0 = s.f(values)
    for block in s.derivation.blocks:
        for k, step in enumerate(block.steps):
            if block.kind == "grad" and block.var == s.case.wrt:
                got = evaluate(step.expr, env, SIZES)
                np.testing.assert_allclose(
                    got, result, rtol=1e-9, atol=1e-12,
                    err_msg=f"{name}: line {k + 1} of ∂f/∂{block.var}: {text(step.expr)} {step.rules}")
            elif block.kind == "f":
                got = float(evaluate(step.expr, env, SIZES)[0, 0])
                assert got == pytest.approx(f0, rel=1e-9), f"{name}: line {k + 1} of f: {text(step.expr)}"


def test_the_engine_reads_the_same_f_as_the_test():
    """Guard against a sampler/evaluator mismatch: f of the quadratic form by hand."""
    c = CASES[0]
    s = Solved(c, solve(load_problem_text(c.problem, "q.yaml", "q")))
    values = s.point(0)
    x, a = values["x"], values["A"]
    assert s.f(values) == pytest.approx((x.T @ a @ x).item(), rel=1e-12)


# ----------------------------------------------------------------------------- the catalogue

def test_every_rule_is_shown_by_a_case():
    try:
        from test_jacobian import CITED as jacobian_rules
        from test_samples import CITED as sample_rules
        from test_solve import CITED as solve_rules
        from test_coursework import CITED as coursework_rules
        from test_detail import CITED as detail_rules
        from test_homework import CITED as homework_rules
    except ModuleNotFoundError:
        from tests.test_detail import CITED as detail_rules
        from tests.test_homework import CITED as homework_rules
        from tests.test_coursework import CITED as coursework_rules
        from tests.test_jacobian import CITED as jacobian_rules
        from tests.test_samples import CITED as sample_rules
        from tests.test_solve import CITED as solve_rules
    shown = ({rule for c in CASES for rule in c.rules} | jacobian_rules | solve_rules | sample_rules | coursework_rules
             | detail_rules | homework_rules)
    missing = [rid for rid in RULES if rid not in shown]
    assert not missing, f"rules without a case in tests/test_rules.py: {missing}"
    unknown = sorted(shown - set(RULES))
    assert not unknown, f"cases name rules that are not in the catalogue: {unknown}"


def test_catalogue_ids_are_unique_and_well_formed():
    assert list(RULES) == [r.id for r in RULES.values()]
    for rid in RULES:
        assert re.fullmatch(r"[A-Z][0-9]{1,2}", rid), rid
    groups = {r.group for r in RULES.values()}
    assert groups <= {"rewrite", "differential", "trace", "identification", "simplification", "solution"}
    for prefix, group in {"D": "differential", "T": "trace", "S": "simplification", "R": "rewrite", "E": "solution"}.items():
        for rid, rule in RULES.items():
            if rid.startswith(prefix):
                assert rule.group == group, f"{rid} is in group {rule.group}"


# The LaTeX commands a formula may use: all known to LaTeX (amsmath), MathJax and KaTeX.
KNOWN_COMMANDS = {
    "neq", "hat",
    "mathrm", "operatorname", "top", "lVert", "rVert", "lvert", "rvert", "left", "right", "quad",
    "text", "to", "otimes", "Big", "Leftrightarrow", "in", "mathbb", "frac", "tfrac", "sum", "odot", "oslash", "sqrt", "exp", "log", "tanh", "sigma",
    "sin", "cos", "tan", "arctan", "det", "mathbf", "Rightarrow", "ldots", "partial", ",", ";", " ",
}


def _strip_escaped_braces(formula: str) -> str:
    return formula.replace("\\{", "").replace("\\}", "")


@pytest.mark.parametrize("rid", list(RULES))
def test_rule_formula_is_valid_looking_latex(rid):
    formula = RULES[rid].formula
    assert formula.strip(), f"{rid} has no formula"
    assert "$" not in formula, f"{rid}: the formula is for math mode, without $"
    depth = 0
    for ch in _strip_escaped_braces(formula):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, f"{rid}: '}}' without '{{' in {formula}"
    assert depth == 0, f"{rid}: unbalanced braces in {formula}"
    lefts = len(re.findall(r"\\left(?![a-zA-Z])", formula))
    rights = len(re.findall(r"\\right(?![a-zA-Z])", formula))
    assert lefts == rights, f"{rid}: \\left/\\right do not pair up in {formula}"
    commands = set(re.findall(r"\\([A-Za-z]+|[^A-Za-z])", formula))
    unknown = commands - KNOWN_COMMANDS
    assert not unknown, f"{rid}: unexpected LaTeX command(s) {sorted(unknown)} in {formula}"
    assert not formula.rstrip().endswith("\\"), f"{rid}: formula ends with a backslash"
    for arg in re.findall(r"\\text\{([^{}]*)\}", formula):
        assert "\\" not in arg, f"{rid}: a command inside \\text{{{arg}}}"


CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("rid", list(RULES))
def test_rule_has_english_and_chinese_names(rid):
    rule = RULES[rid]
    en, zh = rule.name.get("en"), rule.name.get("zh")
    assert en and en.strip() == en and en.isascii(), f"{rid}: English name {en!r}"
    assert zh and zh.strip() == zh and CJK.search(zh), f"{rid}: Chinese name {zh!r}"
    assert en != zh
    assert rule.name_in("en") == en and rule.name_in("zh") == zh
    assert rule.name_in("fr") == en  # another language falls back to English


@pytest.mark.parametrize("rid", [r for r in RULES if "\\text" in RULES[r].formula])
def test_the_words_of_a_formula_are_in_the_handouts_language(rid):
    """A Chinese handout's appendix has no English words in its formulas ("for constant A")."""
    rule = RULES[rid]
    words = lambda f: [t for t in re.findall(r"\\text\{([^}]*)\}", f) if re.search(r"[A-Za-z]{2,}", t)]
    assert words(rule.formula), rid  # the English has words: the case is real
    zh = rule.formula_in("zh")
    assert not words(zh) and CJK.search(zh), f"{rid}: {zh}"
    assert zh.count("{") == zh.count("}") and rule.formula_in("en") == rule.formula
    assert [e for e in rules_list([rid], "zh")][0]["formula"] == zh


def test_rule_names_are_distinct():
    for lang in ("en", "zh"):
        names = [r.name[lang] for r in RULES.values()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        assert not dupes, f"rules share a {lang} name: {dupes}"


# ----------------------------------------------------------------------------- known bugs

@pytest.mark.parametrize("function", ["tr(A)", "x'*A*x"])
def test_gradient_of_a_function_constant_in_the_variable_is_zero(function):
    problem = load_problem_text(
        f"variables: {{A: [n, n], X: [n, n], x: [n]}}\nfunction: \"{function}\"\nwrt: [X]\n", "c.yaml", "c")
    d = solve(problem).derivations[0]
    assert isinstance(d.result, E.Zero) and d.result.shape == ("n", "n")

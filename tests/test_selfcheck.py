"""The self-check boxes of the HTML problem sheets (derivgen/selfcheck.py, static/derivgen-check.js).

- The points a page carries are right on their own: the result's value at each point is
  checked here by finite differences of f (tests/fd.py), not by the engine that derived it.
- The browser's checker (run under node, as the page runs it) judges answers exactly as
  `derivgen grade` does (`derivgen.answer.judge_answer`) at the same points, for every result of
  the example set: the result's own text is right; its transpose, its double, its negative and
  its half are wrong with the same slip, worded the same; a symmetric-only and a one-size-only
  answer are told. Its function table covers every function of the expression language.
- Sums over samples (`indices:`, a family `x_t`, `sum(t, …)`, the Gaussian MLE): the page
  carries each family's samples; the checker reads `sum(t, …)` as derivgen does, accepts the
  answers `derivgen grade` accepts and refuses the same ones with the same messages.
- `self_check:` is read and validated (problem and set); boxes appear on sheets, on solution
  pages only with `all`; the embedded JSON cannot close its <script>; math.js is shipped.

The browser itself (typing into the box in Chromium) is tested in tests/test_browser.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from derivgen import selfcheck
from derivgen.answer import judge_answer, read_answer
from derivgen.errors import DerivgenError
from derivgen.grade import answer_scope, points
from derivgen.i18n import check_messages
from derivgen.numeric import Evaluator
from derivgen.parse import USER_FUNCTIONS
from derivgen.pipeline import problem_document, solve
from derivgen.printing import text
from derivgen.problem import ProblemError, load_problem, load_set_config
from derivgen.verify import Checker

from fd import numerical_gradient, step_size

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = sorted((ROOT / "problems").glob("*.yaml"))
PROBLEMS = [p for p in PROBLEMS if p.name != "derivgen.yaml"]
STATIC = ROOT / "derivgen" / "static"
MATHJS = STATIC / "mathjs" / "math.js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        import os

        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("node not found", pytrace=False)
        pytest.skip("node not found (the self-check's script is run under node)")
    return node


def run_checker(cases: list[dict]) -> list[list[dict]]:
    """The verdicts of derivgen-check.js under node: one list per case (data, messages, answers)."""
    request = {"math": str(MATHJS), "cases": cases}
    out = subprocess.run([_node(), str(ROOT / "tests" / "js" / "selfcheck.cjs")], input=json.dumps(request),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def solved():
    """(problem, solved, [(derivation, self-check data)]) of every example problem."""
    out = []
    for path in PROBLEMS:
        problem = load_problem(path)
        s = solve(problem)
        results = [(d, selfcheck.result_data(problem, s.context, d)) for d, r in zip(s.derivations, s.reports) if r.passed]
        out.append((problem, s, [(d, data) for d, data in results if data is not None]))
    return out


def _values(data: dict, point: dict) -> dict:
    """A point's values as the verifier holds them: a family's samples side by side, one per column."""
    families = data.get("families", {})
    return {n: np.hstack([np.array(x, float) for x in v]) if n in families else np.array(v, float)
            for n, v in point["env"].items()}


def _python_points(data: dict) -> list[dict]:
    return [{"sizes": p["sizes"], "kind": p["kind"], "symmetrized": tuple(p.get("symmetrized", ())),
             "env": _values(data, p), "ref": np.array(p["ref"], float)}
            for p in data["points"]]


def _python_verdict(problem, s, derivation, data, answer: str) -> dict:
    try:
        expr = read_answer(answer, answer_scope(problem, s.context), derivation.result.shape)
    except DerivgenError as err:
        return {"status": "unreadable", "error": err.message}
    verdict = judge_answer(expr, _python_points(data))
    return {"status": "right" if verdict["correct"] else "wrong", **verdict}


# --- the points ------------------------------------------------------------------------------


def test_every_verified_result_of_the_examples_gets_points(solved) -> None:
    with_sums = 0
    for problem, s, results in solved:
        assert len(results) == sum(r.passed for r in s.reports), problem.id
        for derivation, data in results:
            general = [p for p in data["points"] if p["kind"] == "general"]
            assert len(general) == selfcheck.SIZE_SETS * selfcheck.POINTS_PER_SIZE
            assert len({json.dumps(p["sizes"], sort_keys=True) for p in general}) == selfcheck.SIZE_SETS
            assert set(data["names"]) >= set(problem.variables)
            assert set(data["dims"]) >= {n for n in problem.indices.values() if isinstance(n, str)}
            if not problem.indices:
                assert "indices" not in data and "families" not in data
                continue
            # sums over samples: the indices, the families, and N samples of each family's shape
            assert data["indices"] == dict(problem.indices)
            assert data["families"] == dict(answer_scope(problem, s.context).indexed)
            assert data["families"]
            for p in data["points"]:
                for family, index in data["families"].items():
                    count = problem.indices[index]
                    count = p["sizes"][count] if isinstance(count, str) else p.get("stand_ins", {}).get(str(count), count)
                    samples = p["env"][family]
                    assert len(samples) == count >= 2, (problem.id, family, p["sizes"])
                    rows = s.context.variables[family][0]
                    rows = p["sizes"][rows] if isinstance(rows, str) else rows
                    assert all(np.array(x).shape == (rows, 1) for x in samples)
                    assert len({json.dumps(x) for x in samples}) == count  # distinct samples
            # the values are those `derivgen grade` judges at (its sampler, the same seed)
            drawn = points(s.context, derivation, 0, selfcheck.SIZE_SETS, selfcheck.POINTS_PER_SIZE)
            assert len(drawn) == len(data["points"])
            for q, p in zip(drawn, data["points"]):
                for name, value in _values(data, p).items():
                    assert np.array_equal(value, np.asarray(q.env[name], float)), (problem.id, name)
            with_sums += 1
    assert with_sums >= 4  # the Gaussian MLE: ∂f/∂μ, μ̂, ∂f/∂Σ, Σ̂



def _f(s, sizes: dict, values: dict) -> float:
    env = Checker(s.context, sizes, values).env()
    return float(Evaluator(env, sizes)(s.context.function)[0, 0])


def _general_points(solved, kind: str):
    """(problem, derivation, point, its values, f of the variable there) for every general point
    the pages carry for results of `kind`."""
    for problem, s, results in solved:
        for derivation, data in results:
            if derivation.kind != kind:
                continue
            for p in data["points"]:
                if p["kind"] != "general":
                    continue
                values = {n: v for n, v in _values(data, p).items() if n in problem.variables}

                def f(x, values=values, sizes=p["sizes"], wrt=derivation.wrt, s=s):
                    return _f(s, sizes, {**values, wrt: x})

                yield problem, derivation, p, values, f


def test_embedded_gradients_agree_with_finite_differences_of_f(solved) -> None:
    """The value a page calls right is the gradient of f there: checked by finite differences of
    the problem's function (every entry of the variable), independently of the derivation."""
    checked = 0
    for problem, derivation, p, values, f in _general_points(solved, "gradient"):
        if derivation.symmetric:
            continue
        wrt = derivation.wrt
        g = numerical_gradient(f, values[wrt])
        ref = np.array(p["ref"], float)
        if derivation.layout == "numerator":
            ref = ref.T
        err = np.linalg.norm(g.reshape(ref.shape) - ref) / max(np.linalg.norm(ref), 1e-12)
        assert err < 1e-5, (problem.id, wrt, p["sizes"], err)
        checked += 1
    assert checked >= 60


def test_embedded_stationary_points_are_stationary_by_finite_differences_of_f(solved) -> None:
    """The value a page calls right for a solution (μ̂, Σ̂ of the Gaussian MLE, …) makes the
    gradient of f vanish there: finite differences of f alone, compared with the gradient at the
    point's own value of the variable (not a stationary point)."""
    checked = set()
    for problem, derivation, p, values, f in _general_points(solved, "solution"):
        wrt = derivation.wrt
        x_star = np.array(p["ref"], float).reshape(values[wrt].shape)
        # a step well inside the distance to a singular matrix (Σ̂ centred at μ̂ has rank N − 1)
        near = min(1.0, float(np.min(np.abs(np.linalg.eigvals(x_star))))) if x_star.shape[0] == x_star.shape[1] else 1.0
        at_solution = numerical_gradient(f, x_star, h=step_size(x_star) * near)
        elsewhere = numerical_gradient(f, values[wrt])
        assert np.linalg.norm(at_solution) < 1e-4 * np.linalg.norm(elsewhere), (problem.id, wrt, p["sizes"])
        checked.add((problem.id, wrt))
    assert {("n001_gaussian_mle", "mu"), ("n001_gaussian_mle", "Sigma")} <= checked


def test_the_page_carries_values_not_the_solution(solved) -> None:
    """Only numbers and the problem's own names: no formula of the result goes into a page."""
    for problem, s, results in solved:
        for derivation, data in results:
            blob = json.dumps(data)
            result_text = text(derivation.result)
            if len(result_text) > 3:
                assert result_text not in blob
            assert set(data) == {"shape", "names", "dims", "size_order", "points"} | ({"indices", "families"} if problem.indices else set())


# --- the browser's checker against derivgen grade -------------------------------------------


def _variants(derivation, data) -> list[str]:
    r = text(derivation.result)
    answers = [r, f"({r})'", f"2*({r})", f"-({r})", f"({r})/2", f"-2*({r})", f"3*({r})"]
    first, second = data["points"][0]["sizes"], data["points"][-1]["sizes"]
    moved = [d for d in first if second.get(d) != first[d]]
    if moved:  # right at the first sizes only
        answers.append(f"{moved[0]}/{first[moved[0]]}*({r})")
    return answers


def test_the_checker_judges_as_derivgen_grade_does(solved) -> None:
    cases, expected = [], []
    messages = check_messages("en")
    for problem, s, results in solved:
        for derivation, data in results:
            answers = _variants(derivation, data)
            cases.append({"data": data, "messages": messages, "answers": answers})
            expected.append([(problem, a, _python_verdict(problem, s, derivation, data, a)) for a in answers])
    got = run_checker(cases)
    slips_seen = set()
    for case, verdicts in zip(expected, got):
        for (problem, answer, want), verdict in zip(case, verdicts):
            where = f"{problem.id}: {answer}"
            assert verdict["status"] == want["status"], (where, verdict, want)
            if want["status"] == "wrong":
                assert [x["id"] for x in verdict["slips"]] == [x["id"] for x in want["slips"]], where
                assert [x["message"] for x in verdict["slips"]] == [x["message"] for x in want["slips"]], where
                # the worst point (among points whose errors tie to rounding, either may be named)
                assert verdict["counterexample"]["relative_error"] == pytest.approx(
                    want["counterexample"]["relative_error"], rel=1e-6), where
                slips_seen.update(x["id"] for x in want["slips"])
    assert {"transpose", "factor2", "half", "sign", "factor", "size_only"} <= slips_seen
    assert sum(v["status"] == "right" for vs in got for v in vs) >= len(got)  # every result's own text


def _one(path: str, answers: list[str], lang: str = "en") -> list[dict]:
    problem = load_problem(ROOT / "problems" / path)
    s = solve(problem)
    data = selfcheck.result_data(problem, s.context, s.derivations[0])
    return run_checker([{"data": data, "messages": check_messages(lang), "answers": answers}])[0]


# The Gaussian MLE, f = -N/2 logdet Σ - 1/2 Σ_t (x_t - μ)ᵀ Σ⁻¹ (x_t - μ): what students write for
# its four results, by (wrt, kind): the right answers in several forms, and the usual wrong ones.
GAUSSIAN = {
    ("mu", "gradient"): {
        "right": ["inv(Sigma)*sum(t, x_t - mu)", "inv(Sigma)*(sum(t, x_t) - N*mu)", "sum(t, inv(Sigma)*(x_t - mu))",
                  "Sigma^-1*sum(t, x_t) - N*inv(Sigma)*mu", "inv(Sigma)*sum(t, x_t - mu + 0)"],
        "wrong": ["-inv(Sigma)*sum(t, x_t - mu)",  # the sign
                  "inv(Sigma)*sum(t, x_t - mu)/N",  # a 1/N too many
                  "inv(Sigma)*sum(t, x_t)",  # μ dropped
                  "sum(t, x_t - mu)",  # Σ⁻¹ dropped
                  "2*inv(Sigma)*sum(t, x_t - mu)", "inv(Sigma)*sum(t, mu - x_t)/2"],
    },
    ("mu", "solution"): {
        "right": ["sum(t, x_t)/N", "sum(t, x_t/N)", "1/N*sum(t, x_t)", "sum(t, x_t)/sum(t, 1)"],
        "wrong": ["sum(t, x_t)",  # the 1/N missing
                  "mu",  # μ in place of μ̂
                  "-sum(t, x_t)/N", "sum(t, x_t)/(2*N)", "sum(t, x_t - mu)/N"],
    },
    ("Sigma", "gradient"): {
        "right": ["inv(Sigma)*sum(t, (x_t - mu)*(x_t - mu)')*inv(Sigma)/2 - N*inv(Sigma)/2",
                  "(inv(Sigma)*sum(t, (x_t - mu)*(x_t - mu)')*inv(Sigma) - N*inv(Sigma))/2",
                  "sum(t, inv(Sigma)*(x_t - mu)*(x_t - mu)'*inv(Sigma))/2 - N/2*inv(Sigma)"],
        "wrong": ["N*inv(Sigma)/2 - inv(Sigma)*sum(t, (x_t - mu)*(x_t - mu)')*inv(Sigma)/2",  # the sign
                  "inv(Sigma)*sum(t, (x_t - mu)'*(x_t - mu))*inv(Sigma)/2 - N*inv(Sigma)/2",  # (x-μ)ᵀ(x-μ) for the outer product
                  "inv(Sigma)*sum(t, (x_t - mu)*(x_t - mu)')*inv(Sigma) - N*inv(Sigma)",  # twice
                  "inv(Sigma)*sum(t, (x_t - mu)*(x_t - mu)')*inv(Sigma)/2 - inv(Sigma)/2",  # N missing
                  "sum(t, (x_t - mu)*(x_t - mu)')/2 - N*Sigma/2"],
    },
    ("Sigma", "solution"): {
        # Σ̂ is the joint stationary point, judged at μ = μ̂: the textbook's forms with the sample
        # mean spelled out are right, as is the result in μ
        "right": ["sum(t, (x_t - mu)*(x_t - mu)')/N", "sum(t, x_t*x_t' - x_t*mu' - mu*x_t' + mu*mu')/N",
                  "sum(t, x_t*x_t')/N - sum(t, x_t)*mu'/N - mu*sum(t, x_t)'/N + mu*mu'",
                  "sum(t, (x_t - sum(t, x_t)/N)*(x_t - sum(t, x_t)/N)')/N",
                  "sum(t, x_t*x_t')/N - mu*mu'", "sum(t, x_t*x_t')/N - sum(t, x_t)*sum(t, x_t)'/N^2"],
        "wrong": ["sum(t, (x_t - mu)*(x_t - mu)')",  # the 1/N missing
                  "sum(t, x_t*x_t')/N",  # the mean not taken out
                  "-sum(t, (x_t - mu)*(x_t - mu)')/N", "sum(t, (x_t - mu)*(x_t - mu)')/(N - 1)"],
    },
}

# Answers derivgen refuses for the Gaussian MLE, and the start of its message (the box's is the same)
GAUSSIAN_UNREADABLE = [
    ("mu", "inv(Sigma)*x_t", "x_t is one sample of a family indexed by t"),
    ("mu", "sum(x_t)", "x_t is one sample of a family indexed by t"),
    ("mu", "inv(Sigma)*sum(s, x_s - mu)", "the first argument of sum(t, ...) must be an index declared under `indices:`"),
    ("mu", "sum(mu, mu)", "the first argument of sum(t, ...) must be an index declared under `indices:`"),
    ("mu", "sum(N, x_t)", "the first argument of sum(t, ...) must be an index declared under `indices:`"),
    ("mu", "inv(Sigma)*sum(t, y_t - mu)", "unknown name 'y_t'"),
    ("mu", "t*mu", "unknown name 't'"),
    ("mu", "sum(t, t)*mu", "unknown name 't'"),
    ("mu", "sum(t, x_t*x_t)", "cannot multiply x_t (n×1) by x_t (n×1)"),
    ("mu", "sum(t, x_t - mu)'", "the answer is 1×n, but the result is n×1"),
    ("Sigma", "sum(t, (x_t - mu)'*(x_t - mu))/N", "the answer is scalar (1×1), but the result is n×n"),
    ("Sigma", "sum(t, x_t*mu)", "cannot multiply x_t (n×1) by mu (n×1)"),
]


@pytest.fixture(scope="module")
def gaussian():
    problem = load_problem(ROOT / "problems" / "n001_gaussian_mle.yaml")
    s = solve(problem)
    results = {(d.wrt, d.kind): (d, selfcheck.result_data(problem, s.context, d)) for d in s.derivations}
    return problem, s, results


def test_sums_over_samples_are_judged_as_derivgen_grade_judges_them(gaussian) -> None:
    problem, s, results = gaussian
    assert set(results) == set(GAUSSIAN)
    cases, expected = [], []
    for key, answers in GAUSSIAN.items():
        derivation, data = results[key]
        listed = answers["right"] + answers["wrong"]
        cases.append({"data": data, "messages": check_messages("en"), "answers": listed})
        expected.append([(key, a, "right" if a in answers["right"] else "wrong") for a in listed])
    for (key, answer, status), verdict in zip((e for case in expected for e in case),
                                              (v for vs in run_checker(cases) for v in vs)):
        derivation, data = results[key]
        want = _python_verdict(problem, s, derivation, data, answer)
        where = f"{key}: {answer}"
        assert want["status"] == status, (where, want)  # derivgen grade, at the page's points
        assert verdict["status"] == status, (where, verdict)
        if status == "wrong":
            assert [x["message"] for x in verdict["slips"]] == [x["message"] for x in want["slips"]], where
            assert verdict["counterexample"]["relative_error"] == pytest.approx(
                want["counterexample"]["relative_error"], rel=1e-6), where
    # and `derivgen grade` itself (its own, denser points) agrees
    from derivgen.grade import RIGHT, grade_problem

    for (wrt, kind), answers in GAUSSIAN.items():
        for answer in answers["right"][:1] + answers["wrong"][:2]:
            assert (grade_problem(problem, wrt, answer, kind).status == RIGHT) == (answer in answers["right"]), answer


def test_sums_over_samples_refused_with_derivgen_grade_s_messages(gaussian) -> None:
    problem, s, results = gaussian
    cases, wants = [], []
    for wrt, answer, fragment in GAUSSIAN_UNREADABLE:
        derivation, data = results[(wrt, "gradient")]
        want = _python_verdict(problem, s, derivation, data, answer)
        assert want["status"] == "unreadable" and want["error"].startswith(fragment), (answer, want)
        cases.append({"data": data, "messages": check_messages("en"), "answers": [answer]})
        wants.append(want["error"])
    for (wrt, answer, fragment), error, (verdict,) in zip(GAUSSIAN_UNREADABLE, wants, run_checker(cases)):
        assert verdict["status"] == "unreadable", (answer, verdict)
        assert verdict["message"].startswith("Cannot check this answer: " + fragment), (answer, verdict["message"])
        assert error.split(":")[0] in verdict["message"], (answer, error, verdict["message"])


def test_scalar_samples_and_a_count_that_is_a_number(tmp_path) -> None:
    # least squares over 5 samples (x_t, y_t): a family of scalars, and N = 5 written as a number
    path = tmp_path / "ls.yaml"
    path.write_text("variables:\n  x_t: [n]\n  y_t: []\n  w: [n]\nindices:\n  t: 5\n"
                    "function: sum(t, (y_t - w'*x_t)^2)\nwrt: [w]\n", encoding="utf-8")
    problem = load_problem(path)
    s = solve(problem)
    derivation = s.derivations[0]
    data = selfcheck.result_data(problem, s.context, derivation)
    assert data["indices"] == {"t": 5} and data["families"] == {"x_t": "t", "y_t": "t"}
    assert all(len(p["env"]["y_t"]) == 5 and np.shape(p["env"]["y_t"][0]) == (1, 1) for p in data["points"])
    answers = ["-2*sum(t, x_t*(y_t - x_t'*w))", "2*sum(t, x_t*x_t')*w - 2*sum(t, y_t*x_t)",
               "sum(t, x_t*(y_t - x_t'*w))", "5*w", "sum(t, y_t)*w", "y_t*w"]
    got = run_checker([{"data": data, "messages": check_messages("en"), "answers": answers}])[0]
    want = [_python_verdict(problem, s, derivation, data, a) for a in answers]
    assert [v["status"] for v in got] == [w["status"] for w in want] == [
        "right", "right", "wrong", "wrong", "wrong", "unreadable"]
    assert [x["id"] for x in got[2]["slips"]] == [x["id"] for x in want[2]["slips"]] == ["sign"]


def test_sum_of_entries_and_a_sum_over_no_index() -> None:
    # sum(A) stays the sum of the entries; sum(t, …) where the problem has no index is refused
    right, entries, refused = _one("n001_trace_axbxtc.yaml", [
        "A'*C'*X*B' + C*A*X*B", "A'*C'*X*B' + C*A*X*B + 0*sum(X)*X", "sum(t, X)"])
    assert right["status"] == "right" and entries["status"] == "right"
    assert refused["status"] == "unreadable"
    assert "the first argument of sum(t, ...) must be an index declared under `indices:`" in refused["message"]
    assert "sum(A) is the sum of the entries" in refused["message"]
    (zh,) = _one("n001_gaussian_mle.yaml", ["sum(x_t)"], "zh")
    assert "x_t 是以 t 为下标的一族样本中的一个" in zh["message"]


def test_the_sheet_of_the_gaussian_mle_has_its_boxes_and_not_its_solution(tmp_path) -> None:
    from derivgen.html import render_problem_html

    path = tmp_path / "gaussian.yaml"
    path.write_text((ROOT / "problems" / "n001_gaussian_mle.yaml").read_text(encoding="utf-8") + "self_check: true\n",
                    encoding="utf-8")
    doc = problem_document(path)
    assert all(r.get("self_check") for r in doc["results"])
    page = render_problem_html(doc, solutions=False)
    assert page.count('class="dg-selfcheck"') == 4
    assert page.count("A sum over the samples is written sum(t, …), with x_t one sample inside it; N is") == 4
    for r in doc["results"]:
        for form in (r.get("text"), r.get("latex"), r.get("numpy")):
            if form and len(form) > 3:
                assert form not in page, form
    for derivation in solve(load_problem(path)).derivations:
        assert text(derivation.result) not in page


def test_one_over_a_dimension_takes_its_size_from_where_it_stands() -> None:
    # `1/n` and `n*1` are the scalars beside a matrix, as derivgen reads them (`1/N*sum(t, x_t)` for μ̂)
    problem = load_problem(ROOT / "problems" / "n001_quadratic_form.yaml")
    s = solve(problem)
    derivation = s.derivations[0]
    data = selfcheck.result_data(problem, s.context, derivation)
    answers = ["1/n*n*(A + A')*x", "(A + A')*x*1/n*n", "n*(1/n)*(A + A')*x", "n*1*x", "(A + A')*x + 0/n",
               "A*x + A'*x + 0*n*1"]
    got = run_checker([{"data": data, "messages": check_messages("en"), "answers": answers}])[0]
    want = [_python_verdict(problem, s, derivation, data, a)["status"] for a in answers]
    assert [v["status"] for v in got] == want == ["right", "right", "right", "wrong", "right", "right"]


def test_right_only_for_symmetric_matrices_is_told() -> None:
    # x'Ax with a general A: the gradient is (A + A')x; 2*A*x is right only for symmetric A
    right, sym, wrong = _one("n001_quadratic_form.yaml", ["A*x + A'*x", "2*A*x", "A*x"])
    assert right["status"] == "right"
    assert sym["status"] == "wrong" and [s["id"] for s in sym["slips"]] == ["symmetric_only"]
    assert "right only when A is symmetric" in sym["hints"][-1]
    assert wrong["status"] == "wrong"


def test_the_constants_and_spellings_of_derivgen_syntax() -> None:
    # f = tr(A X B X' C): ∂f/∂X = A'C'XB' + CAXB, written in several ways derivgen accepts
    verdicts = _one("n001_trace_axbxtc.yaml", [
        "A'*C'*X*B' + C*A*X*B",
        "A^T*C^T*X*B^T + C*A*X*B",
        "(C*A)'*X*B' + C*A*X*B + 0",
        "A'*C'*X*B' + C*A*X*B + 0*1*1'",
        "(A'*C'*X*B' + C*A*X*B) .* 1",
        "1*(A'*C'*X*B') + I*C*A*X*B*I",
        "A'*C'*X*B' + C*A*X*B - 0.5*2*0*X",
    ])
    assert [v["status"] for v in verdicts] == ["right"] * len(verdicts), verdicts


@pytest.mark.parametrize("answer, fragment", [
    ("", "Type an expression first"),
    ("A*X*", "cannot read it"),
    ("2X", "missing operator"),
    ("Y*X", "unknown name 'Y'"),
    ("tr*X", "tr is a function"),
    ("X(2)", "X is a variable, not a function"),
    ("foo(X)", "unsupported function 'foo'"),
    ("X'", "its transpose has the right shape"),
    ("A*X", "the answer is p×n, but the result is m×n"),
    ("X*A", "cannot multiply X (m×n) by A (p×m)"),
    ("X + A", "cannot add"),
    ("X / A", "can only divide by a scalar"),
    ("tr(X)*X", "tr needs a square matrix"),
    ("X ? A : B", "not part of derivgen's expression syntax"),
    ("X[1, 2]", "not part of derivgen's expression syntax"),
    ("\"X\"", "not part of derivgen's expression syntax"),
    ("evaluate(\"1\")", "unsupported function 'evaluate'"),
    ("import(X)", "unsupported function 'import'"),
])
def test_unreadable_answers_get_a_message_not_an_exception(answer, fragment) -> None:
    (verdict,) = _one("n001_trace_axbxtc.yaml", [answer])
    assert verdict["status"] == "unreadable"
    assert fragment in verdict["message"], verdict["message"]


def test_chinese_messages() -> None:
    right, twice = _one("n001_trace_axbxtc.yaml", ["A'*C'*X*B' + C*A*X*B", "2*(A'*C'*X*B' + C*A*X*B)"], "zh")
    assert right["message"].startswith("正确")
    assert "结果的两倍" in twice["hints"][-1]


def test_the_function_table_covers_the_expression_language() -> None:
    script = ("const c = require(process.argv[1])(require(process.argv[2]));"
              "process.stdout.write(JSON.stringify(Object.keys(c.FUNCTIONS)))")
    out = subprocess.run([_node(), "-e", script, str(STATIC / "derivgen-check.js"), str(MATHJS)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert set(USER_FUNCTIONS) <= set(json.loads(out.stdout))


def test_the_math_instance_refuses_import_and_evaluate() -> None:
    script = ("const m = require(process.argv[2]); require(process.argv[1])(m);"  # the global math is untouched
              "const c = require(process.argv[1])(m);"
              "const v = c.check('import(X)', {points: [{sizes: {}, env: {X: [[1]]}, ref: [[1]]}], names: {X: ''}, dims: []}, "
              "new Proxy({}, {get: (t, k) => String(k) + ':{message}{name}'}));"
              "process.stdout.write(JSON.stringify(v))")
    out = subprocess.run([_node(), "-e", script, str(STATIC / "derivgen-check.js"), str(MATHJS)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "unreadable"


# --- the key, the pages, the assets ---------------------------------------------------------


def _problem(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("variables:\n  x: [n]\n  A: [n, n]\nfunction: x'*A*x\nwrt: [x]\n" + extra, encoding="utf-8")
    return path


@pytest.mark.parametrize("written, read", [("true", "sheets"), ("sheets", "sheets"), ("all", "all"), ("false", False)])
def test_the_key_is_read(tmp_path, written, read) -> None:
    assert load_problem(_problem(tmp_path, f"self_check: {written}\n")).options["self_check"] == read


def test_a_bad_value_is_an_error_with_a_hint(tmp_path) -> None:
    with pytest.raises(ProblemError) as info:
        load_problem(_problem(tmp_path, "self_check: sheet\n"))
    assert info.value.location.line == 6
    assert "did you mean 'sheets'" in (info.value.hint or "")


def test_the_set_key_is_read(tmp_path) -> None:
    (tmp_path / "derivgen.yaml").write_text("self_check: all\n", encoding="utf-8")
    assert load_set_config(tmp_path / "derivgen.yaml").self_check == "all"


def test_the_schema_knows_the_key(tmp_path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "derivgen" / "schema" / "problem.schema.json").read_text(encoding="utf-8"))
    for value in (True, False, "sheets", "all"):
        jsonschema.validate({"variables": {"x": ["n"]}, "function": "x'*x", "wrt": ["x"], "self_check": value}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"variables": {"x": ["n"]}, "function": "x'*x", "wrt": ["x"], "self_check": "yes"}, schema)


def _render(doc: dict, solutions: bool) -> str:
    from derivgen.html import render_problem_html

    return render_problem_html(doc, solutions=solutions)


def test_boxes_on_sheets_and_with_all_on_solution_pages_too(tmp_path) -> None:
    sheets = problem_document(_problem(tmp_path, "self_check: true\n"))
    assert sheets["results"][0]["self_check"]["points"]
    assert 'class="dg-selfcheck"' in _render(sheets, solutions=False)
    assert "dg-selfcheck" not in _render(sheets, solutions=True)
    assert "mathjs/math.js" in _render(sheets, solutions=False)
    both = problem_document(_problem(tmp_path, "self_check: all\n"))
    assert 'class="dg-selfcheck"' in _render(both, solutions=True)
    off = problem_document(_problem(tmp_path, ""))
    assert "self_check" not in off and "self_check" not in off["results"][0]
    assert "dg-selfcheck" not in _render(off, solutions=False)
    on_by_set = problem_document(_problem(tmp_path, ""), self_check="sheets")
    assert on_by_set["self_check"] == "sheets"
    assert problem_document(_problem(tmp_path, "self_check: false\n"), self_check="sheets").get("self_check") is None


def test_the_embedded_json_cannot_close_its_script(tmp_path) -> None:
    doc = problem_document(_problem(tmp_path, "self_check: true\n"))
    evil = "</script><script>alert(1)</script><!--"
    doc["results"][0]["self_check"]["names"][evil] = evil
    page = _render(doc, solutions=False)
    assert "alert(1)</script>" not in page and "<script>alert" not in page
    start = page.index('<script type="application/json" class="dg-selfcheck-data">') + len(
        '<script type="application/json" class="dg-selfcheck-data">')
    data = json.loads(page[start:page.index("</script>", start)])
    assert data["names"][evil] == evil  # the text survives, escaped for JSON only


def test_the_build_copies_math_js_only_when_a_page_needs_it(tmp_path) -> None:
    from derivgen.api import build

    plain = tmp_path / "plain"
    plain.mkdir()
    _problem(plain, "")
    build(plain, tmp_path / "out1", formats="html")
    assert not (tmp_path / "out1" / "derivgen-assets" / "mathjs").exists()
    checked = tmp_path / "checked"
    checked.mkdir()
    _problem(checked, "self_check: true\n")
    build(checked, tmp_path / "out2", formats="html")
    assets = tmp_path / "out2" / "derivgen-assets"
    assert (assets / "mathjs" / "math.js").read_bytes() == MATHJS.read_bytes()
    assert (assets / "mathjs" / "LICENSE").is_file() and (assets / "derivgen-check.js").is_file()
    assert 'class="dg-selfcheck"' in (tmp_path / "out2" / "sheet.html").read_text(encoding="utf-8")


def test_the_shipped_math_js_is_the_pinned_one() -> None:
    pinned = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))["packages"]["node_modules/mathjs"]["version"]
    assert json.loads((STATIC / "mathjs" / "package.json").read_text(encoding="utf-8"))["version"] == pinned
    source = ROOT / "node_modules" / "mathjs" / "lib" / "browser" / "math.js"
    if source.is_file():
        lines = [ln for ln in source.read_text(encoding="utf-8").splitlines() if not ln.startswith("//# sourceMappingURL=")]
        assert MATHJS.read_text(encoding="utf-8").splitlines() == lines
    assert "sourceMappingURL" not in MATHJS.read_text(encoding="utf-8")[-300:]


def test_documents_with_and_without_the_check_differ_only_by_it(tmp_path) -> None:
    path = _problem(tmp_path, "")
    off, on = problem_document(path), problem_document(path, self_check="sheets")
    on.pop("self_check")
    for r in on["results"]:
        r.pop("self_check")
    assert off == on


def test_the_box_names_sizes_in_the_order_derivgen_grade_does(gaussian) -> None:
    """The page's JSON sorts its keys (N before n); the box still says "n=…, N=…", as grade does."""
    problem, s, results = gaussian
    derivation, data = results[("mu", "solution")]
    paged = json.loads(json.dumps(data, sort_keys=True))  # what the page carries
    assert list(paged["points"][0]["sizes"]) == ["N", "n"] and paged["size_order"] == ["n", "N"]
    (verdict,), = run_checker([{"data": paged, "messages": check_messages("en"), "answers": ["sum(t, x_t)"]}])
    assert verdict["status"] == "wrong"
    assert list(verdict["counterexample"]["sizes"]) == ["n", "N"]
    assert any(re.search(r"n=\d+, N=\d+", h) for h in verdict["hints"]), verdict["hints"]

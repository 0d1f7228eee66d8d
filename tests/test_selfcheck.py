"""The self-check boxes of the HTML problem sheets (derivgen/selfcheck.py, static/derivgen-check.js).

- The points a page carries are right on their own: the result's value at each point is
  checked here by finite differences of f (tests/fd.py), not by the engine that derived it.
- The browser's checker (run under node, as the page runs it) judges answers exactly as
  `derivgen grade` does (`derivgen.answer.judge_answer`) at the same points, for every result of
  the example set: the result's own text is right; its transpose, its double, its negative and
  its half are wrong with the same slip, worded the same; a symmetric-only and a one-size-only
  answer are told. Its function table covers every function of the expression language.
- `self_check:` is read and validated (problem and set); boxes appear on sheets, on solution
  pages only with `all`; the embedded JSON cannot close its <script>; math.js is shipped.

The browser itself (typing into the box in Chromium) is tested in tests/test_browser.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from derivgen import selfcheck
from derivgen.answer import judge_answer, read_answer
from derivgen.errors import DerivgenError
from derivgen.grade import answer_scope
from derivgen.i18n import check_messages
from derivgen.numeric import Evaluator
from derivgen.parse import USER_FUNCTIONS
from derivgen.pipeline import problem_document, solve
from derivgen.printing import text
from derivgen.problem import ProblemError, load_problem, load_set_config
from derivgen.verify import Checker

from fd import numerical_gradient

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


def _python_points(data: dict) -> list[dict]:
    return [{"sizes": p["sizes"], "kind": p["kind"], "symmetrized": tuple(p.get("symmetrized", ())),
             "env": {n: np.array(v, float) for n, v in p["env"].items()}, "ref": np.array(p["ref"], float)}
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
    for problem, s, results in solved:
        if problem.indices:  # sums over samples, sum(t, …): not offered by the box
            assert not results
            continue
        assert len(results) == sum(r.passed for r in s.reports), problem.id
        for derivation, data in results:
            general = [p for p in data["points"] if p["kind"] == "general"]
            assert len(general) == selfcheck.SIZE_SETS * selfcheck.POINTS_PER_SIZE
            assert len({json.dumps(p["sizes"], sort_keys=True) for p in general}) == selfcheck.SIZE_SETS
            assert set(data["names"]) >= set(problem.variables)


def _f(s, sizes: dict, values: dict) -> float:
    env = Checker(s.context, sizes, values).env()
    return float(Evaluator(env, sizes)(s.context.function)[0, 0])


def test_embedded_gradients_agree_with_finite_differences_of_f(solved) -> None:
    """The value a page calls right is the gradient of f there: checked by finite differences of
    the problem's function (every entry of the variable), independently of the derivation."""
    checked = 0
    for problem, s, results in solved:
        for derivation, data in results:
            if derivation.kind != "gradient" or derivation.symmetric:
                continue
            for p in data["points"]:
                if p["kind"] != "general":
                    continue
                values = {n: np.array(p["env"][n], float) for n in problem.variables}
                wrt = derivation.wrt

                def f(x, values=values, sizes=p["sizes"], wrt=wrt):
                    return _f(s, sizes, {**values, wrt: x})

                g = numerical_gradient(f, values[wrt])
                ref = np.array(p["ref"], float)
                if derivation.layout == "numerator":
                    ref = ref.T
                err = np.linalg.norm(g.reshape(ref.shape) - ref) / max(np.linalg.norm(ref), 1e-12)
                assert err < 1e-5, (problem.id, wrt, p["sizes"], err)
                checked += 1
    assert checked >= 60


def test_the_page_carries_values_not_the_solution(solved) -> None:
    """Only numbers and the problem's own names: no formula of the result goes into a page."""
    for problem, s, results in solved:
        for derivation, data in results:
            blob = json.dumps(data)
            result_text = text(derivation.result)
            if len(result_text) > 3:
                assert result_text not in blob
            assert set(data) == {"shape", "names", "dims", "points"}


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

"""`derivgen grade`: right and wrong answers for every example problem, slips, errors, the CLI.

The wrong answers are made here from each verified result's own text: doubled, halved,
sign-flipped, transposed (when that changes the value), and the symmetric-only form (every
`A'` of a general square matrix written `A`, when that changes the value). Each must be
rejected with its slip named; the result's own text, and two rewritings of it, must be accepted.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

from derivgen import grade as G
from derivgen.cli import main
from derivgen.judge import TOLERANCE
from derivgen.pipeline import solve
from derivgen.printing import text
from derivgen.problem import load_problem, load_problem_text

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = sorted(p for p in (ROOT / "problems").glob("*.yaml") if p.name != "derivgen.yaml")
N002 = str(ROOT / "problems" / "n002_quadratic_symmetric.yaml")


@lru_cache(maxsize=None)
def _solved(path: Path):
    problem = load_problem(path)
    return problem, solve(problem)


def _results():
    for path in PROBLEMS:
        problem, solved = _solved(path)
        for d in solved.derivations:
            yield pytest.param(path, d.wrt, d.kind, id=f"{path.stem}-{d.wrt}-{d.kind}")


def _grade(path: Path, wrt: str, kind: str, answer: str) -> G.Grade:
    problem, _ = _solved(path)
    return G.grade_problem(problem, wrt, answer, kind)


def _result(path: Path, wrt: str, kind: str):
    problem, solved = _solved(path)
    derivation = next(d for d in solved.derivations if d.wrt == wrt and d.kind == kind)
    return derivation, solved.context


# ----------------------------------------------------------------------------- every example


@pytest.mark.parametrize("path, wrt, kind", list(_results()))
def test_every_result_grades_right_for_its_own_text_and_wrong_for_its_slips(path, wrt, kind):
    derivation, ctx = _result(path, wrt, kind)
    own = text(derivation.result)
    for right in (own, f"(({own})')'", f"1*({own})"):
        g = _grade(path, wrt, kind, right)
        assert g.error is None, f"cannot read a right answer {right!r}: {g.error.render()}"
        assert g.status == G.RIGHT, (right, g.report())
        assert g.checked >= 9 and len(g.sizes) == 3
    wrong = {"factor2": f"2*({own})", "half": f"({own})/2", "sign": f"-({own})"}
    shape = derivation.result.shape
    if shape[0] == shape[1] and shape != (1, 1):
        wrong["transpose"] = f"({own})'"
    symmetric_form = own
    for name in G._symmetrizable(ctx):
        symmetric_form = re.sub(rf"\b{name}'", name, symmetric_form)
    if symmetric_form != own:
        wrong["symmetric_only"] = symmetric_form
    for slip, answer in wrong.items():
        g = _grade(path, wrt, kind, answer)
        assert g.error is None, g.error.render()
        if slip == "transpose" and g.status == G.RIGHT:
            continue  # a symmetric result (a Hessian, x*x'): its transpose is right
        assert g.status == G.WRONG, (slip, answer)
        assert slip in [s["id"] for s in g.slips], (slip, answer, g.slips)
        assert g.counterexample["relative_error"] > TOLERANCE


def test_the_transpose_and_symmetric_only_slips_are_exercised():
    """The examples do contain non-symmetric square results and general square matrices."""
    transposable = symmetric = 0
    for path in PROBLEMS:
        _, solved = _solved(path)
        for d in solved.derivations:
            own = text(d.result)
            if d.result.shape[0] == d.result.shape[1] and d.result.shape != (1, 1):
                transposable += _grade(path, d.wrt, d.kind, f"({own})'").status == G.WRONG
            forms = [re.sub(rf"\b{n}'", n, own) for n in G._symmetrizable(solved.context)]
            symmetric += any(f != own for f in forms)
    assert transposable >= 5
    assert symmetric >= 8


@pytest.mark.parametrize("answer, slip", [
    ("sum(t, x_t)", "your answer is N times the result: a factor of N too many"),  # the 1/N of the mean forgotten
    ("sum(t, x_t)/N^2", "your answer is the result divided by N: a factor of N missing"),
])
def test_a_factor_that_is_a_size_is_named(answer, slip):
    g = _grade(ROOT / "problems" / "n001_gaussian_mle.yaml", "mu", "solution", answer)
    assert g.status == G.WRONG and [s["message"] for s in g.slips] == [slip]
    assert _grade(ROOT / "problems" / "n001_gaussian_mle.yaml", "mu", "solution", "3*sum(t, x_t)/N").slips[0]["id"] == "factor"


# ----------------------------------------------------------------------------- the examples


def test_done_means(capsys):
    assert main(["grade", N002, "--wrt", "x", "--answer", "2*A*x"]) == 0
    assert capsys.readouterr().out.startswith("right:")
    assert main(["grade", N002, "--wrt", "x", "--answer", "A*x"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("wrong:") and "factor of 2" in out and "counterexample: at sizes n=" in out
    assert main(["grade", N002, "--wrt", "x", "--answer", "2*A*y"]) == 2
    err = capsys.readouterr().err
    assert "<answer>:1:5: unknown name 'y'" in err
    assert "    2*A*y\n        ^" in err
    assert "hint: the answer may use the problem's names: x, A, n" in err


def test_the_solution_is_printed_only_when_asked(capsys):
    assert main(["grade", N002, "--wrt", "x", "--answer", "A*x"]) == 1
    assert "2*A*x" not in capsys.readouterr().out
    assert main(["grade", N002, "--wrt", "x", "--answer", "A*x", "--json"]) == 1
    out = capsys.readouterr().out
    assert "2*A*x" not in out and "solution" not in json.loads(out)
    assert main(["grade", N002, "--wrt", "x", "--answer", "A*x", "--show-solution"]) == 1
    assert "solution: 2*A*x" in capsys.readouterr().out
    assert main(["grade", N002, "--wrt", "x", "--answer", "A*x", "--json", "--show-solution"]) == 1
    assert json.loads(capsys.readouterr().out)["solution"] == "2*A*x"


def test_json_verdicts(capsys):
    assert main(["grade", N002, "--wrt", "x", "--answer=-2*A*x", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "wrong" and data["status"] == 1
    assert [s["id"] for s in data["slips"]] == ["sign"]
    assert set(data["counterexample"]) >= {"sizes", "relative_error"}
    assert main(["grade", N002, "--wrt", "x", "--answer", "2*A*", "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "error" and data["error"]["location"] == "<answer>:1:5"


def test_symmetric_only_for_a_general_matrix():
    g = G.grade_file(ROOT / "problems" / "n001_quadratic_form.yaml", "x", "2*A*x")
    assert g.status == G.WRONG
    assert [s["id"] for s in g.slips] == ["symmetric_only"] and g.slips[0]["names"] == ["A"]
    assert G.grade_file(ROOT / "problems" / "n001_quadratic_form.yaml", "x", "A*x + A'*x").status == G.RIGHT


def test_wrong_shape_and_layout_are_status_2():
    g = G.grade_file(N002, "x", "x'*A")
    assert g.status == G.UNREADABLE
    assert "the answer is 1×n, but the result is n×1" in g.error.message
    assert "transpose has the right shape" in g.error.hint
    g = G.grade_file(N002, "x", "A")
    assert g.status == G.UNREADABLE and "n×n" in g.error.message


def test_constants_take_the_result_shape():
    assert G.grade_file(ROOT / "problems" / "n002_trace.yaml", "X", "I").status == G.RIGHT
    assert G.grade_file(ROOT / "problems" / "n002_trace.yaml", "X", "0").status == G.WRONG


def test_right_only_at_one_size():
    problem = load_problem_text("variables:\n  x: [n]\nfunction: x'*x\nwrt: [x]\n", "p.yaml", "p")
    g = G.grade_problem(problem, "x", "(n - 1)*x")  # 2x only where n = 3
    assert g.status == G.WRONG
    assert [s["id"] for s in g.slips] == ["size_only"]
    assert g.slips[0]["right_at"] == [{"n": 3}]


def test_where_names_and_families_can_be_used():
    g = G.grade_file(ROOT / "problems" / "n000_chain_axb.yaml", "X", text(_result(ROOT / "problems" / "n000_chain_axb.yaml", "X", "gradient")[0].result))
    assert g.status == G.RIGHT
    mle = ROOT / "problems" / "n001_gaussian_mle.yaml"
    assert G.grade_file(mle, "mu", "sum(t, x_t)/N", "solution").status == G.RIGHT
    assert G.grade_file(mle, "mu", "sum(t, x_t)", "solution").status == G.WRONG


def test_unknown_variable_and_kind_are_errors(capsys):
    assert main(["grade", N002, "--wrt", "z", "--answer", "2*A*x"]) == 2
    assert "no variable 'z'" in capsys.readouterr().err
    assert main(["grade", N002, "--wrt", "x", "--answer", "2*A*x", "--kind", "hessian"]) == 2
    assert "no hessian" in capsys.readouterr().err


def test_an_answer_past_the_limits_is_a_located_error():
    g = G.grade_file(N002, "x", "exp(" * 100 + "x" + ")" * 100)
    assert g.status == G.UNREADABLE and g.error.location.file == "<answer>"
    g = G.grade_file(N002, "x", "x" + "+x" * 100000)
    assert g.status == G.UNREADABLE and g.error.location.file == "<answer>"


def test_points_are_deterministic_and_distinct_in_size():
    derivation, ctx = _result(ROOT / "problems" / "n001_trace_axbxtc.yaml", "X", "gradient")
    a, b = G.points(ctx, derivation, 0), G.points(ctx, derivation, 0)
    assert all((p.ref == q.ref).all() for p, q in zip(a, b))
    sizes = [p.sizes for p in a if p.kind == "general"]
    assert len({tuple(s.items()) for s in sizes}) == 3
    assert all(len(set(s.values())) == len(s) for s in sizes)  # a distinct size per dimension

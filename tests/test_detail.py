"""`detail:` — brief, normal (the default) and full steps.

The line counts of the example set are bounded (the notes' granularity), and every line shown
at every detail level is checked here by numbers alone: each line of `df = …` evaluated with
dX = V (an unexpanded d(U) by a finite difference of U) against a finite difference of f along
V, each `∂f/∂X = G` line by ⟨G, V⟩. No derivative the engine computed enters the check.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

from derivgen import expr as E
from derivgen.derive.detail import DETAILS
from derivgen.errors import ProblemError
from derivgen.numeric import Evaluator
from derivgen.pipeline import document, problem_document, solve
from derivgen.problem import load_problem, load_problem_text
from derivgen.verify import SIZES, Checker, Sampler, dimension_sizes

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
sys.path.insert(0, str(ROOT / "bench"))

from steps import counts, line_count  # noqa: E402  (bench/steps.py: the measurement)

PATHS = sorted(p for p in PROBLEMS.glob("*.yaml") if p.name != "derivgen.yaml")


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, int]]:
    return {level: counts(PROBLEMS, level) for level in DETAILS}


def test_median_lines_per_result_at_each_detail(measured):
    medians = {level: statistics.median(c.values()) for level, c in measured.items()}
    assert medians["normal"] <= 7, medians
    assert medians["brief"] <= medians["normal"] < medians["full"], medians


def test_a_coarser_detail_never_shows_more_lines(measured):
    """For derivatives; solving at normal detail may take a line more than at full, where the
    teacher cancels a common factor (E6) and puts in μ̂ (E8) rather than inverting (−N/2·I)."""
    for key, full in measured["full"].items():
        # the softmax Jacobian is derived from softmax(z) = exp(z)/(1ᵀexp(z)) below full detail,
        # where full quotes D19, whose formula is the answer itself
        if "/solution:" not in key and key not in ("n002_jacobian_softmax/jacobian:z", "ext_hessian_logsumexp/hessian:z"):
            assert measured["brief"][key] <= measured["normal"][key] <= full, key


@pytest.mark.parametrize("key", ["n001_trace_axbxtc/gradient:X", "n001_gaussian_mle/gradient:mu"])
def test_the_notes_examples_take_at_most_eight_lines(measured, key):
    assert measured["normal"][key] <= 8, measured["normal"][key]


def test_full_is_one_rule_per_line():
    """At full detail no line cites a folded rule and no trace-form line moves two terms at once."""
    for path in PATHS:
        problem = load_problem(path)
        problem.options["detail"] = "full"
        for d in solve(problem).derivations:
            for block in d.blocks:
                for step in block.steps:
                    assert not step.folded, (path.name, step)


def test_normal_is_the_default_and_the_handout_says_so():
    doc = problem_document(PROBLEMS / "n001_trace_axbxtc.yaml")
    assert doc["detail"] == "normal"
    from derivgen.render import render_problem_md

    md = render_problem_md(doc)
    assert "Steps at normal detail" in md
    full = load_problem(PROBLEMS / "n001_trace_axbxtc.yaml")
    full.options["detail"] = "full"
    doc_full = document(solve(full))
    assert doc_full["detail"] == "full" and "Steps at full detail" in render_problem_md(doc_full)
    assert len(doc_full["results"][0]["steps"]) > len(doc["results"][0]["steps"])
    assert doc_full["results"][0]["text"] == doc["results"][0]["text"]


def test_detail_is_read_from_the_problem_and_the_set(tmp_path):
    text = "variables: {x: [n], A: [n, n]}\nfunction: x'*A*x\nwrt: [x]\n"
    assert load_problem_text(text + "detail: brief\n").options["detail"] == "brief"
    with pytest.raises(ProblemError) as err:
        load_problem_text(text + "detail: terse\n")
    assert "detail" in str(err.value) and "brief" in str(err.value)
    (tmp_path / "p.yaml").write_text(text)
    (tmp_path / "derivgen.yaml").write_text("title: T\ndetail: full\n")
    assert problem_document(tmp_path / "p.yaml")["detail"] == "full"
    (tmp_path / "q.yaml").write_text(text + "detail: brief\n")
    assert problem_document(tmp_path / "q.yaml")["detail"] == "brief"  # the problem's own wins
    assert problem_document(tmp_path / "q.yaml", detail="full")["detail"] == "full"  # show --detail wins


def test_show_of_a_set_takes_detail(tmp_path, capsys):
    """`derivgen show DIR --detail full` shows every problem of the set at full detail."""
    from derivgen.cli import main

    (tmp_path / "p.yaml").write_text("variables: {X: [n, n], A: [n, n], B: [n, n], C: [n, n]}\n"
                                     "function: tr(A*X*B*X'*C)\nwrt: [X]\n")
    shown = {}
    for detail in ("brief", "full"):
        assert main(["show", str(tmp_path), "--detail", detail]) == 0
        shown[detail] = capsys.readouterr().out.count("\n")
    assert shown["full"] > shown["brief"] + 2


def test_merged_lines_cite_what_they_fold():
    problem = load_problem(PROBLEMS / "n001_gaussian_mle.yaml")
    d = solve(problem).derivations[0]
    steps = [s for b in d.blocks for s in b.steps]
    assert any("D0" in s.folded for s in steps)  # the constant −N/2 log det Σ falls away on a D1 line
    assert all(s.rules for s in steps[1:])  # every line after the first cites a rule
    assert any({"J4", "S2"} <= set(s.rules) for s in steps)  # like terms collected in the differential


# ----------------------------------------------------------------------------- every line, by numbers


def _fd(g, h=1e-4):
    """Central difference of g(t) at 0 (fourth order)."""
    return (g(-2 * h) - 8 * g(-h) + 8 * g(h) - g(2 * h)) / (12 * h)


def _check_lines(path: Path, detail: str) -> int:
    problem = load_problem(path)
    problem.options["detail"] = detail
    solved = solve(problem)
    ctx = solved.context
    rng = np.random.default_rng(7)
    sizes = dimension_sizes(ctx, SIZES)
    values = Sampler(ctx, sizes, rng).point()
    checker = Checker(ctx, sizes, values)
    checked = 0
    for d in solved.derivations:
        if d.kind != "gradient":
            continue
        x = d.wrt
        v = rng.standard_normal(values[x].shape)
        v /= np.linalg.norm(v)

        def env_at(t, x=x, v=v):
            return checker.env({x: values[x] + t * v})

        def f_at(t):
            return float(Evaluator(env_at(t), sizes)(ctx.function)[0, 0])

        df = _fd(f_at)
        dys = {y: _fd(lambda t, y=y: env_at(t)[y]) for y in ctx.where}

        def pending(u, env):
            indices = {k: w for k, w in env.items() if isinstance(k, tuple) and k[0] == "index"}
            return _fd(lambda t: Evaluator({**env_at(t), **indices}, sizes)(u))

        env = {**env_at(0), ("d", x): v, **{("d", y): w for y, w in dys.items()}, ("d(...)",): pending}
        for block in d.blocks:
            for step in block.steps:
                got = Evaluator(env, sizes)(step.expr)
                if block.kind == "f":
                    want = f_at(0)
                elif block.kind == "df":
                    want = df
                elif block.kind == "dY":
                    want = dys[block.var]
                elif block.kind == "grad" and block.var == x:
                    got, want = np.sum(got * v), df
                else:
                    continue  # ∂f/∂Y for a where-name Y: its dY is checked through the chain lines
                scale = 1e-5 * (1 + abs(f_at(0)))
                err = np.linalg.norm(np.asarray(got) - np.asarray(want)) / max(np.linalg.norm(want), scale)
                assert err < 1e-5, (path.name, detail, block.kind, step)
                checked += 1
    return checked


@pytest.mark.parametrize("detail", DETAILS)
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_every_shown_line_holds_by_finite_differences(path, detail):
    checked = _check_lines(path, detail)
    if load_problem(path).function.text and "gradient" in {d.kind for d in solve(load_problem(path)).derivations}:
        assert checked > 0


def test_line_count_is_what_the_handout_shows():
    problem = load_problem(PROBLEMS / "n001_trace_axbxtc.yaml")
    solved = solve(problem)
    doc = document(solved)
    assert line_count(solved.derivations[0]) == len(doc["results"][0]["steps"])


CITED = {"D38", "J4", "R7"}  # rules shown by the cases below (tests/test_rules.py counts them)


def test_a_quotient_takes_the_quotient_rule_then_its_parts():
    """xᵀAx/(xᵀx): d(u/v) = (du v − u dv)/v² first (D38), not the product rule over four factors."""
    problem = load_problem(PROBLEMS / "ext_rayleigh_quotient.yaml")
    d = solve(problem).derivations[0]
    df = d.blocks[0].steps
    assert df[1].rules == ("D38",)
    assert sum(isinstance(n, E.D) for n in E.walk(df[1].expr)) == 2  # d(xᵀAx) and d(xᵀx), still to expand
    assert df[2].rules[0] == "D2"
    full = load_problem(PROBLEMS / "ext_rayleigh_quotient.yaml")
    full.options["detail"] = "full"
    assert "D38" not in solve(full).derivations[0].rule_ids()  # full keeps one product rule over all factors


def test_powers_are_combined_where_they_appear():
    problem = load_problem(PROBLEMS / "n001_det_power.yaml")
    d = solve(problem).derivations[0]
    from derivgen.printing import text

    lines = [text(s.expr) for b in d.blocks for s in b.steps]
    assert "3*det(X)^3*tr(inv(X)*dX)" in lines and not any("det(X)^2*det(X)" in line for line in lines)


def test_the_softmax_jacobian_is_derived_not_quoted():
    from derivgen.printing import text

    d = solve(load_problem(PROBLEMS / "n002_jacobian_softmax.yaml")).derivations[0]
    rules = d.rule_ids()
    assert "D19" not in rules and {"R7", "D38", "D13", "S8"} <= set(rules)
    assert text(d.result) == "diag(softmax(z)) - softmax(z)*softmax(z)'"
    assert d.blocks[0].kind == "f" and text(d.blocks[0].steps[1].expr) == "exp(z)/(ones(n)'*exp(z))"


def test_like_terms_inside_a_trace_are_collected_in_the_differential():
    """tr(dUᵀA + AᵀdU) = 2 tr(AᵀdU) (T2, S2) before the trace moves, as for ‖XU − V‖²."""
    from derivgen.printing import text

    d = solve(load_problem(PROBLEMS / "n003_norm_xu_v.yaml")).derivations[0]
    df = next(b for b in d.blocks if b.kind == "df").steps
    hit = [s for s in df if {"T2", "S2"} <= set(s.rules)]
    assert hit and text(hit[0].expr) == "2*tr((X*U - V)'*dX*U)"
    assert text(d.result) == "2*(X*U - V)*U'"


def test_brief_solving_collects_then_solves(measured):
    """At brief, ∇ = 0 is solved in two moves: the unknown collected on one side, then solved for."""
    solutions = [k for k in measured["normal"] if "/solution:" in k]
    assert solutions
    for key in solutions:
        assert measured["brief"][key] <= measured["normal"][key], key
    assert sum(measured["brief"][k] < measured["normal"][k] for k in solutions) >= len(solutions) // 2
    problem = load_problem(PROBLEMS / "ext_ridge_regression.yaml")
    problem.options["detail"] = "brief"
    d = next(d for d in solve(problem).derivations if d.kind == "solution")
    rules = [s.rules for b in d.blocks for s in b.steps]
    assert rules[0] == ("E0",) and ("T7", "E1") in rules and rules[-1][0] == "E2"


def test_no_sign_is_carried_inside_a_sum_over_samples():
    """−½ Σ_t (−uₜ) is written ½ Σ_t uₜ on the line the inverse's differential makes it (D5)."""
    from derivgen.printing import text

    d = next(d for d in solve(load_problem(PROBLEMS / "n001_gaussian_mle.yaml")).derivations
             if d.kind == "gradient" and d.wrt == "Sigma")
    lines = [text(s.expr) for b in d.blocks for s in b.steps]
    assert not any("sum(t, -" in line or "sum(t, tr(-" in line for line in lines), lines
    assert any("S12" in s.folded for b in d.blocks for s in b.steps)

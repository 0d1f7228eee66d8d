"""The verifier: it must reject wrong results and wrong steps, and a failure never reaches a page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from derivgen import expr as E
from derivgen.cli import main
from derivgen.derive import Context, Derivation, derive_gradient
from derivgen.derive.model import Block, Step
from derivgen.errors import VerificationError
from derivgen.parse import Scope, parse_expr
from derivgen.verify import Sampler, dimension_sizes, verify


def context(function: str, variables: dict, assume: dict | None = None, where: dict | None = None) -> Context:
    scope = Scope()
    for name, shape in variables.items():
        scope.declare(name, shape)
        scope.dims |= {d for d in shape if isinstance(d, str)}
    defs = {}
    for name, text in (where or {}).items():
        defs[name] = parse_expr(text, scope)
        scope.declare(name, defs[name].shape, "where")
    return Context(parse_expr(function, scope), dict(variables), defs, {k: set(v) for k, v in (assume or {}).items()})


TRACE = ("tr(A*X*B*X'*C)", {"A": ("p", "m"), "X": ("m", "n"), "B": ("n", "n"), "C": ("m", "p")})


def test_correct_derivation_passes_with_distinct_sizes():
    ctx = context(*TRACE)
    report = verify(ctx, derive_gradient(ctx, "X"))
    assert report.passed and report.max_rel_error < 1e-8
    assert len(set(report.sizes.values())) == len(report.sizes) == 3
    assert report.trials == 3 and report.checks > 10


@pytest.mark.parametrize(
    "wrong",
    [
        "A'*C'*X*B' + A'*C'*X*B",  # the notes' kind of slip: a transpose lost on B
        "A'*C'*X*B'",  # a term missing
        "2*(A'*C'*X*B' + C*A*X*B)",  # a factor too many
    ],
)
def test_wrong_result_is_rejected(wrong):
    ctx = context(*TRACE)
    good = derive_gradient(ctx, "X")
    scope = Scope()
    for name, shape in ctx.variables.items():
        scope.declare(name, shape)
    bad = parse_expr(wrong, scope)
    blocks = good.blocks[:-1] + [Block("grad", "X", [Step(bad, ("I1",))])]
    with pytest.raises(VerificationError):
        verify(ctx, Derivation("X", blocks, bad))


def test_a_wrong_intermediate_step_is_rejected():
    ctx = context("x'*A*x", {"x": ("n", 1), "A": ("n", "n")})
    good = derive_gradient(ctx, "x")
    df = good.blocks[0]
    # replace the line tr(x'A'dx) + tr(x'A dx) by tr(x'A dx) + tr(x'A dx): wrong unless A is symmetric
    i = next(k for k, s in enumerate(df.steps) if "T2" in s.rules)
    scope = Scope()
    scope.declare("x", ("n", 1))
    scope.declare("A", ("n", "n"))
    x, a = parse_expr("x", scope), parse_expr("A", scope)
    dx = E.Dif("x", ("n", 1))
    term = E.fn("tr", E.mul(E.tp(x), a, dx))
    steps = list(df.steps)
    steps[i] = Step(E.add(term, term), steps[i].rules)
    blocks = [Block("df", None, steps)] + good.blocks[1:]
    with pytest.raises(VerificationError, match="step"):
        verify(ctx, Derivation("x", blocks, good.result))


@pytest.mark.parametrize(
    "assumption, check",
    [
        ("symmetric", lambda a: np.allclose(a, a.T)),
        ("spd", lambda a: np.allclose(a, a.T) and np.linalg.eigvalsh(a).min() > 0),
        ("orthogonal", lambda a: np.allclose(a.T @ a, np.eye(len(a)))),
        ("diagonal", lambda a: np.allclose(a, np.diag(np.diag(a)))),
        ("positive", lambda a: (a > 0).all()),
        ("invertible", lambda a: abs(np.linalg.det(a)) > 1e-3),
    ],
)
def test_sampler_respects_assumptions(assumption, check):
    ctx = context("tr(S)", {"S": ("n", "n")}, {"S": [assumption]})
    sampler = Sampler(ctx, dimension_sizes(ctx), np.random.default_rng(1))
    for _ in range(5):
        assert check(sampler.point()["S"])


def test_symmetric_variable_keeps_the_unconstrained_gradient():
    # f = x'Sx with S symmetric: ∂f/∂S = x xᵀ (every entry independent, as in the Matrix Cookbook)
    ctx = context("x'*S*x", {"x": ("n", 1), "S": ("n", "n")}, {"S": ["symmetric"]})
    d = derive_gradient(ctx, "S")
    verify(ctx, d)
    values = Sampler(ctx, dimension_sizes(ctx), np.random.default_rng(0)).point()
    from derivgen.numeric import evaluate

    g = evaluate(d.result, values, dimension_sizes(ctx))
    assert np.allclose(g, values["x"] @ values["x"].T)


def test_undefined_function_is_a_clear_error():
    # log of a general matrix's entries is undefined at random values unless they are positive:
    # the verifier retries with positive values, so this passes
    ctx = context("sum(log(X))", {"X": ("m", "n")})
    assert verify(ctx, derive_gradient(ctx, "X")).passed


def test_failed_verification_never_reaches_a_page(tmp_path, monkeypatch, capsys):
    (tmp_path / "p.yaml").write_text("variables: {x: [n], A: [n, n]}\nfunction: x'*A*x\nwrt: [x]\n")
    (tmp_path / "q.yaml").write_text("variables: {x: [n]}\nfunction: x'*x\nwrt: [x]\n")
    import derivgen.pipeline as pipeline

    real = pipeline.derive_gradient

    def sabotaged(ctx, wrt, *detail):
        d = real(ctx, wrt, *detail)
        if "A" in ctx.variables:  # drop the Aᵀx half of (A + Aᵀ)x
            wrong = E.mul(E.Sym("A", ("n", "n")), E.Sym("x", ("n", 1)))
            d.blocks[-1].steps.append(Step(wrong, ("S2",)))
            d.result = wrong
        return d

    monkeypatch.setattr(pipeline, "derive_gradient", sabotaged)
    out = tmp_path / "out"
    assert main(["build", str(tmp_path), "-o", str(out), "--format", "md,json"]) == 1
    err = capsys.readouterr().err
    assert "numeric check failed" in err and "p.yaml" in err
    assert not (out / "p.json").exists() and not (out / "p.md").exists()  # a failed problem is published nowhere
    assert "A x" not in (out / "solutions.md").read_text()
    assert json.loads((out / "q.json").read_text())["ok"] is True  # the other problem still builds
    # the instructor's own copy (--placeholders): an error page, still no result
    assert main(["build", str(tmp_path), "-o", str(out), "--format", "md,json", "--placeholders"]) == 1
    doc = json.loads((out / "p.json").read_text())
    assert doc["ok"] is False and doc["results"] == []
    md = (out / "p.md").read_text()
    assert "\\boxed" not in md and "A x" not in md.split("Error")[-1]


def test_a_line_with_an_unexpanded_differential_is_checked_too():
    """tr(d(A X B Xᵀ C)) is evaluated by a finite difference of A X B Xᵀ C: a wrong one fails."""
    from derivgen.pipeline import build_context
    from derivgen.problem import load_problem

    ctx = build_context(load_problem(Path(__file__).resolve().parent.parent / "problems" / "n001_trace_axbxtc.yaml"))
    d = derive_gradient(ctx, "X", "full")
    line = d.blocks[0].steps[1]
    assert any(isinstance(n, E.D) for n in E.walk(line.expr))
    checks = verify(ctx, d).checks
    d.blocks[0].steps[1] = Step(E.fn("tr", E.dif(E.mul(E.Num(2), line.expr.arg.arg))), line.rules)
    with pytest.raises(VerificationError, match="step 2 of block 1"):
        verify(ctx, d)
    assert checks > 3 * sum(len(b.steps) for b in d.blocks) - 3 * 2  # every line, pending ones included

"""Problem → typed expressions → derivations → verification → document (the dict templates render).

`problem_document` never raises for bad input: a problem that fails becomes a document with
`ok: false` and the error, so that one bad file never stops a set.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from . import expr as E
from .derive import Context, Derivation, derive_gradient
from .errors import DerivgenError, Location, UnsupportedError
from .parse import Scope, parse_expr, shape_from_dims
from .printing import NumpyPrinter, latex, name_latex, shape_latex, text
from .problem import Problem, load_problem
from .rules import RULES, used
from .verify import Report, verify

LHS = {
    "f": ("f", "f"),
    "df": ("df", "\\mathrm{d}f"),
}


@dataclass
class Solved:
    """A problem with its context, derivations and verification reports."""

    problem: Problem
    context: Context
    derivations: list[Derivation]
    reports: list[Report]


def build_context(problem: Problem) -> Context:
    """Parse and shape-check the function and the `where:` definitions of a problem."""
    scope = Scope()
    for name, dims in problem.variables.items():
        scope.declare(name, shape_from_dims(dims))
        scope.dims |= {d for d in dims if isinstance(d, str)}
    where: dict[str, E.Expr] = {}
    for name, source in problem.where:
        definition = parse_expr(source, scope)
        scope.declare(name, definition.shape, "where")
        where[name] = definition
    function = parse_expr(problem.function, scope)
    variables = {name: shape_from_dims(dims) for name, dims in problem.variables.items()}
    assume = {name: set(a) for name, a in problem.assume.items()}
    return Context(function, variables, where, assume)


def solve(problem: Problem, seed: int = 0) -> Solved:
    """Derive and verify every result of a problem; raises DerivgenError on the first failure."""
    ctx = build_context(problem)
    derivations, reports = [], []
    for i, wrt in enumerate(problem.wrt):
        where = problem.locations.get(f"wrt.{i}") or problem.function.location
        try:
            if not ctx.function.is_scalar:
                raise UnsupportedError(
                    f"the function is {E.shape_str(ctx.function.shape)}, not a scalar: a gradient needs a scalar function",
                    problem.function.location,
                    "wrap it in tr(...), sum(...) or norm(...)^2 to get a scalar",
                )
            derivation = derive_gradient(ctx, wrt)
            reports.append(verify(ctx, derivation, seed=seed + i))
        except DerivgenError as err:
            raise err.with_location(where) from None
        derivations.append(derivation)
    return Solved(problem, ctx, derivations, reports)


# ----------------------------------------------------------------------------- documents


def dim_sources(problem: Problem) -> dict[str, str]:
    """For each dimension symbol, NumPy code for its size (`X.shape[0]`)."""
    out: dict[str, str] = {}
    for name, dims in problem.variables.items():
        for axis, d in enumerate(dims):
            if isinstance(d, str) and d not in out:
                out[d] = f"{name}.shape[{axis}]"
    return out


def _lhs(block, ctx: Context) -> tuple[str, str]:
    if block.kind in LHS:
        return LHS[block.kind]
    if block.kind == "dY":
        return f"d{block.var}", "\\mathrm{d}" + name_latex(block.var)
    return f"df/d{block.var}", f"\\frac{{\\partial f}}{{\\partial {name_latex(block.var)}}}"


def _steps(derivation: Derivation, ctx: Context) -> list[dict]:
    steps = []
    for block in derivation.blocks:
        lhs_text, lhs_latex = _lhs(block, ctx)
        for k, step in enumerate(block.steps):
            steps.append({
                "lhs": lhs_text if k == 0 else None,
                "lhs_latex": lhs_latex if k == 0 else None,
                "block": block.kind,
                "latex": latex(step.expr),
                "text": text(step.expr),
                "rules": list(step.rules),
            })
    return steps


def _numpy(problem: Problem, ctx: Context, result: E.Expr, wrt: str) -> str:
    code = NumpyPrinter(dim_sources(problem), ctx.where)(result)
    shape = ctx.variables[wrt]
    if E.is_scalar_shape(shape):
        return f"float(np.asarray({code}).item())"
    if isinstance(result, (E.Eye, E.Ones, E.Zero)) or not _has_variable(result):
        return code
    return f"np.broadcast_to({code}, ({_dims(problem, shape)})).copy()" if _may_be_scalar(result) else code


def _has_variable(e: E.Expr) -> bool:
    return any(isinstance(n, E.Sym) for n in E.walk(e))


def _may_be_scalar(e: E.Expr) -> bool:
    return e.is_scalar


def _dims(problem: Problem, shape) -> str:
    src = dim_sources(problem)
    return ", ".join(str(d) if isinstance(d, int) else src[d] for d in shape)


def rules_list(ids, lang: str = "en") -> list[dict]:
    return [
        {"id": r.id, "name": r.name_in(lang), "names": dict(r.name), "formula": r.formula, "group": r.group}
        for r in used(ids)
    ]


def _variables(problem: Problem) -> list[dict]:
    out = []
    for name, dims in problem.variables.items():
        kind = "scalar" if len(dims) == 0 else "vector" if len(dims) == 1 else "matrix"
        out.append({
            "name": name, "latex": name_latex(name), "shape": list(dims), "shape_latex": shape_latex(dims),
            "kind": kind, "assumptions": list(problem.assume.get(name, ())),
        })
    return out


def document(solved: Solved, lang: str = "en") -> dict:
    """The problem document (docs/schema.md) of a solved problem."""
    problem, ctx = solved.problem, solved.context
    results = []
    all_rules: list[str] = []
    for derivation, report in zip(solved.derivations, solved.reports):
        all_rules += derivation.rule_ids()
        results.append({
            "wrt": derivation.wrt,
            "wrt_latex": name_latex(derivation.wrt),
            "kind": derivation.kind,
            "lhs_latex": f"\\frac{{\\partial f}}{{\\partial {name_latex(derivation.wrt)}}}",
            "latex": latex(derivation.result),
            "text": text(derivation.result),
            "numpy": _numpy(problem, ctx, derivation.result, derivation.wrt),
            "steps": _steps(derivation, ctx),
            "verification": report.as_dict(),
        })
    return {
        **_header(problem),
        "ok": True,
        "error": None,
        "where": [
            {"name": n, "latex": name_latex(n), "text": text(d), "expr_latex": latex(d)} for n, d in ctx.where.items()
        ],
        "function": {"text": problem.function.text, "latex": latex(ctx.function)},
        "results": results,
        "rules": rules_list(all_rules, lang),
    }


def _header(problem: Problem) -> dict:
    return {
        "id": problem.id,
        "source": problem.path,
        "title": problem.title or problem.id,
        "statement": problem.statement,
        "variables": _variables(problem),
    }


def error_document(problem_id: str, source: str | None, err: DerivgenError, problem: Problem | None = None) -> dict:
    """The document of a problem that failed: its error, no results."""
    head = _header(problem) if problem is not None else {
        "id": problem_id, "source": source, "title": problem_id, "statement": "", "variables": [],
    }
    return {
        **head,
        "ok": False,
        "error": {
            "message": err.message,
            "location": str(err.location) if err.location else None,
            "hint": err.hint,
            "rendered": err.render(),
            "kind": type(err).__name__,
        },
        "where": [],
        "function": None,
        "results": [],
        "rules": [],
    }


def problem_document(path: str | Path, lang: str = "en") -> dict:
    """Load, solve and document one problem file; failures become an error document."""
    path = Path(path)
    problem = None
    try:
        problem = load_problem(path)
        return document(solve(problem), lang)
    except DerivgenError as err:
        return error_document(path.stem, str(path), err, problem)
    except Exception as exc:  # a bug: reported as such, never a traceback for the user
        err = DerivgenError(
            f"internal error ({type(exc).__name__}: {exc})",
            Location(str(path)),
            "this is a bug in derivgen; please report it with the problem file. Details:\n"
            + "".join(traceback.format_exception_only(type(exc), exc)).strip(),
        )
        return error_document(path.stem, str(path), err, problem)

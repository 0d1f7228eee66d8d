"""Problem → typed expressions → derivations → verification → document (the dict templates render).

`problem_document` never raises for bad input: a problem that fails becomes a document with
`ok: false` and the error, so that one bad file never stops a set.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import expr as E
from .derive import Context, Derivation, derive_gradient
from .derive.detail import DEFAULT as DEFAULT_DETAIL
from . import limits
from .errors import DerivgenError, Location, UnsupportedError
from .limits import LimitError
from .parse import Scope, parse_expr, shape_from_dims
from .printing import NumpyPrinter, latex, name_latex, python_name, shape_latex, text
from .problem import Problem, load_problem
from .rules import RULES, rules_list, used
from .verify import Report, kinks, verify

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


def variable_scope(problem: Problem) -> Scope:
    """The names a problem's expressions may use before its `where:` definitions: its variables
    (with their shapes), dimension symbols, indices and indexed families (`x_t`)."""
    scope = Scope()
    for name, dims in problem.variables.items():
        scope.declare(name, shape_from_dims(dims))
        scope.dims |= {d for d in dims if isinstance(d, str)}
    scope.indices = dict(problem.indices)
    scope.dims |= {n for n in problem.indices.values() if isinstance(n, str)}
    for name in problem.variables:
        base, _, index = name.rpartition("_")
        if base and index in problem.indices:
            scope.indexed[name] = index
    return scope


def build_context(problem: Problem) -> Context:
    """Parse and shape-check the function and the `where:` definitions of a problem."""
    scope = variable_scope(problem)
    where: dict[str, E.Expr] = {}
    for name, source in problem.where:
        definition = parse_expr(source, scope)
        scope.declare(name, definition.shape, "where")
        where[name] = definition
    function = parse_expr(problem.function, scope)
    variables = {name: shape_from_dims(dims) for name, dims in problem.variables.items()}
    assume = {name: set(a) for name, a in problem.assume.items()}
    families = {name: problem.indices[index] for name, index in scope.indexed.items()}
    positive = [parse_expr(c[1], scope) for c in problem.domain if c[0] == "positive"]
    orders = [c[1:] for c in problem.domain if c[0] == "order"]
    for name, words in problem.assume.items():  # full column rank: at least as many rows as columns
        rows, cols = problem.variables[name][:2] if len(problem.variables[name]) == 2 else (None, None)
        if "full_column_rank" in words and isinstance(rows, str) and isinstance(cols, str) and rows != cols:
            orders.append((rows, ">=", cols))
    return Context(function, variables, where, assume, families, positive, orders)


def solve(problem: Problem, seed: int = 0, layout: str = "denominator", detail: str = DEFAULT_DETAIL) -> Solved:
    """Derive and verify every result of a problem; raises DerivgenError on the first failure.

    A scalar f gives one gradient per variable (and, with `order: 2`, its Hessian); a vector- or
    matrix-valued f gives one Jacobian per variable. `layout` and `detail` (how fine the steps
    are: brief, normal, full) are the set's defaults; the problem's own `layout:` and `detail:`
    win."""
    ctx = build_context(problem)
    layout = problem.options.get("layout", layout)
    detail = problem.options.get("detail", detail)
    order = problem.options.get("order", 1)
    derivations, reports = [], []
    estimates: dict[str, E.Expr] = {}  # stationary points found so far (μ̂ before Σ̂)
    for i, wrt in enumerate(problem.wrt):
        where = problem.locations.get(f"wrt.{i}") or problem.function.location
        try:
            for derivation, verifier in _derivations(problem, ctx, wrt, layout, order, detail, estimates):
                reports.append(verifier(ctx, derivation, seed=seed + i))
                derivations.append(derivation)
        except DerivgenError as err:
            raise err.with_location(where) from None
    return Solved(problem, ctx, derivations, reports)


def _derivations(problem: Problem, ctx: Context, wrt: str, layout: str, order: int, detail: str = DEFAULT_DETAIL,
                 estimates: dict | None = None):
    """(derivation, verifier) pairs for one variable, in the order a handout shows them."""
    from .derive.jacobian import derive_jacobian
    from .derive.layout import numerator_gradient, symmetric_gradient
    from .verify import verify_jacobian

    if not ctx.function.is_scalar:
        if order == 2:
            raise UnsupportedError(
                f"a Hessian needs a scalar function, but f is {E.shape_str(ctx.function.shape)}",
                problem.function.location,
                "remove `order: 2` to get the Jacobian of f",
            )
        yield (derive_jacobian(ctx.function, wrt, ctx.variables[wrt], ctx.where, ctx.assume, layout, detail=detail),
               verify_jacobian)
        return
    gradient = derive_gradient(ctx, wrt, detail)
    convention = problem.options.get("constrain_symmetric")
    if convention and ctx.assume.get(wrt, set()) & {"symmetric", "spd", "diagonal"}:
        gradient = symmetric_gradient(gradient, ctx, "entries" if convention is True else convention)
    if layout == "numerator":
        gradient = numerator_gradient(gradient, ctx)
    yield gradient, verify
    if problem.options.get("solve"):
        from .derive.jacobian import _inline
        from .derive.solve import solve_stationary
        from .verify import verify_solution

        g = _inline(_gradient_expr(gradient), ctx.where)
        found = dict(estimates) if estimates is not None else {}
        solution = solve_stationary(g, wrt, ctx.variables[wrt], ctx.assume, detail, found)
        yield solution, lambda c, d, seed=0: verify_solution(c, d, g, seed, found)
        if estimates is not None and wrt not in E.symbols(solution.result):
            estimates[wrt] = solution.result
    if order == 2:  # for a matrix variable, the Hessian over the entries of vec X
        g = _gradient_expr(gradient)
        yield (derive_jacobian(g, wrt, ctx.variables[wrt], ctx.where, ctx.assume, layout, kind="hessian", detail=detail),
               verify_jacobian)


def _gradient_expr(gradient: Derivation) -> E.Expr:
    """The denominator-layout gradient of a gradient derivation (what a Hessian differentiates)."""
    result = gradient.result
    if gradient.layout == "numerator":
        from .derive.simplify import push_transposes

        result = push_transposes(E.tp(result))
    return result


# ----------------------------------------------------------------------------- documents


def dim_sources(problem: Problem, unknown: str | None = None) -> dict[str, str]:
    """For each dimension symbol, NumPy code for its size (`X.shape[0]`); read off the other
    variables first when there is an `unknown` (a stationary point's code is not given it)."""
    out: dict[str, str] = {}
    for name, dims in sorted(problem.variables.items(), key=lambda item: item[0] == unknown):
        for axis, d in enumerate(dims):
            if isinstance(d, str) and d not in out:
                out[d] = f"{python_name(name)}.shape[{axis}]"
    for name in problem.variables:  # a family x_t is passed with its N samples as columns
        base, _, index = name.rpartition("_")
        count = problem.indices.get(index) if base else None
        if isinstance(count, str) and count not in out:
            out[count] = f"{name}.shape[1]"
    return out


def result_lhs(kind: str, wrt: str, shape, layout: str, f_shape=E.SCALAR, symmetric: bool = False) -> tuple[str, str]:
    """The left-hand side of a result, as text and LaTeX, by kind and layout."""
    x = name_latex(wrt)
    if kind == "solution":
        return f"{wrt}*", f"\\hat{{{x}}}"
    matrix = shape[1] != 1 or f_shape[1] != 1
    if kind == "hessian":
        if shape[1] != 1:
            return (f"∂²f/∂vec({wrt})∂vec({wrt})'",
                    f"\\frac{{\\partial^2 f}}{{\\partial \\operatorname{{vec}} {x}\\,\\partial (\\operatorname{{vec}} {x})^{{\\top}}}}")
        return f"∂²f/∂{wrt}∂{wrt}'", f"\\frac{{\\partial^2 f}}{{\\partial {x}\\,\\partial {x}^{{\\top}}}}"
    if kind == "jacobian" and matrix:
        num, den = "\\operatorname{vec} f", f"\\operatorname{{vec}} {x}"
        if layout == "numerator":
            return f"∂vec(f)/∂vec({wrt})'", f"\\frac{{\\partial {num}}}{{\\partial ({den})^{{\\top}}}}"
        return f"∂vec(f)/∂vec({wrt})", f"\\frac{{\\partial {num}}}{{\\partial {den}}}"
    if layout == "numerator":
        return f"∂f/∂{wrt}'", f"\\frac{{\\partial f}}{{\\partial {x}^{{\\top}}}}"
    if symmetric:
        return f"∂f/∂{wrt} (symmetric)", f"\\left.\\frac{{\\partial f}}{{\\partial {x}}}\\right|_{{\\mathrm{{sym}}}}"
    return f"∂f/∂{wrt}", f"\\frac{{\\partial f}}{{\\partial {x}}}"


def result_note(derivation: Derivation, ctx: Context, lang: str) -> str | None:
    """What a reader must know about a result's kind and layout (from the prose catalogue)."""
    from . import i18n
    from .printing import name_unicode

    x = name_unicode(derivation.wrt)
    if derivation.kind == "solution":
        return i18n.text("note_solution", lang, x=x)
    if derivation.kind == "hessian":
        return i18n.text("note_hessian", lang, x=x)
    if derivation.kind == "jacobian":
        note = i18n.text(f"note_jacobian_{derivation.layout}", lang, x=x)
        if ctx.variables[x][1] != 1 or ctx.function.shape[1] != 1:
            note += i18n.text("note_jacobian_vec", lang)
        return note
    if derivation.symmetric:
        return i18n.text("note_symmetric_space" if derivation.symmetric == "space" else "note_symmetric", lang, x=x)
    if derivation.layout == "numerator":
        return i18n.text("note_gradient_numerator", lang)
    return None


def _lhs(block, ctx: Context, derivation: Derivation) -> tuple[str, str]:
    x = derivation.wrt
    shape = ctx.variables[x]
    if block.kind in LHS:
        return LHS[block.kind]
    if block.kind == "dY":
        return f"d{block.var}", "\\mathrm{d}" + name_latex(block.var)
    if block.kind == "dF":
        if derivation.kind == "hessian":
            return f"d(∂f/∂{x})", f"\\mathrm{{d}}\\frac{{\\partial f}}{{\\partial {name_latex(x)}}}"
        return LHS["df"]
    if block.kind == "vecdF":
        if derivation.kind == "hessian":
            return f"vec(d(∂f/∂{x}))", f"\\operatorname{{vec}}\\mathrm{{d}}\\frac{{\\partial f}}{{\\partial {name_latex(x)}}}"
        return "vec(df)", "\\operatorname{vec}(\\mathrm{d}f)"
    if block.kind == "jac":
        if derivation.kind == "hessian" and derivation.layout == "numerator" or derivation.kind == "jacobian":
            return result_lhs(derivation.kind, x, shape, "numerator", ctx.function.shape)
        return "J", "J"
    if block.kind == "solve":
        return None, None  # every line is an equation
    if block.kind in ("jacT", "gradT", "gradS"):
        return result_lhs(derivation.kind, x, shape, derivation.layout, ctx.function.shape, derivation.symmetric)
    return f"∂f/∂{block.var}", f"\\frac{{\\partial f}}{{\\partial {name_latex(block.var)}}}"


def _steps(derivation: Derivation, ctx: Context) -> list[dict]:
    steps = []
    for block in derivation.blocks:
        if block.kind == "solve":
            steps += _equation_steps(block, derivation.wrt,
                                     derivation.shown if derivation.shown is not None else derivation.result)
            continue
        lhs_text, lhs_latex = _lhs(block, ctx, derivation)
        for k, step in enumerate(block.steps):
            steps.append({
                "lhs": lhs_text if k == 0 else None,
                "lhs_latex": lhs_latex if k == 0 else None,
                "block": block.kind,
                "latex": latex(step.expr),
                "text": text(step.expr),
                "rules": list(step.rules),
                **({"folded": list(step.folded)} if step.folded else {}),
            })
    return steps


def _equation_steps(block, wrt: str, result: E.Expr | None = None) -> list[dict]:
    """A solution: `∂f/∂X = 0`, then each equivalent equation on its own line after ⟺; the last
    line, `X̂ = result`, is marked `is_result` (the handout boxes it there rather than repeat it)."""
    out = [{"lhs": f"∂f/∂{wrt}", "lhs_latex": f"\\frac{{\\partial f}}{{\\partial {name_latex(wrt)}}}", "rel": "=",
            "block": "solve", "latex": "0", "text": "0", "rules": list(block.steps[0].rules)}]
    for k, step in enumerate(block.steps):
        eq = step.expr
        out.append({"lhs": None, "lhs_latex": None, "rel": "\\Leftrightarrow", "block": "solve",
                    "latex": latex(eq), "text": text(eq), "rules": [] if k == 0 else list(step.rules)})
    last = block.steps[-1].expr
    if isinstance(last, E.Eq) and last.rhs == result and isinstance(last.lhs, E.Sym) and last.lhs.name == f"{wrt}_hat":
        out[-1]["is_result"] = True
    return out


def _numpy(problem: Problem, ctx: Context, result: E.Expr, wrt: str, solution: bool = False) -> str:
    code = NumpyPrinter(dim_sources(problem, wrt if solution else None), ctx.where)(result)
    shape = result.shape
    if E.is_scalar_shape(shape):
        return f"np.asarray({code}, dtype=np.float64).item()"  # a Python float; np.float64, as the code runs with no builtins
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


def _variables(problem: Problem) -> list[dict]:
    out = []
    for name, dims in problem.variables.items():
        kind = "scalar" if len(dims) == 0 else "vector" if len(dims) == 1 else "matrix"
        out.append({
            "name": name, "latex": name_latex(name), "shape": list(dims), "shape_latex": shape_latex(dims),
            "kind": kind, "assumptions": list(problem.assume.get(name, ())),
        })
    return out


def document(solved: Solved, lang: str = "en", self_check: str | bool = False) -> dict:
    """The problem document (docs/schema.md) of a solved problem, in `lang`; the function is
    called by the problem's `name:` (f when it has none), an spd variable's log-determinant is
    printed `\\log\\det`. With the problem's `self_check:` (else `self_check`, the set's or the
    command line's) on, each verified result carries its self-check points (`derivgen.selfcheck`)."""
    from .printing import assuming

    spd = [name for name, a in solved.problem.assume.items() if "spd" in a]
    with assuming(spd):
        doc = _document(solved, lang)
    mode = solved.problem.options.get("self_check", self_check)
    if mode:
        from .selfcheck import result_data

        doc["self_check"] = mode
        for r, derivation in zip(doc["results"], solved.derivations):
            if r["verification"].get("passed") is True:
                data = result_data(solved.problem, solved.context, derivation)
                if data is not None:
                    r["self_check"] = data
    return _named(doc, solved.problem.name) if solved.problem.name else doc


_F_TEXT = re.compile(r"(?<![A-Za-z])(d?)f(?![A-Za-z])")
_F_LATEX = re.compile(r"(?<![A-Za-z\\])f(?![A-Za-z])")


def _named(doc: dict, name: dict) -> dict:
    """The document with the function's name in place of f in every left-hand side and note."""
    text, tex = name["text"], name["latex"]
    rename_text = lambda s: _F_TEXT.sub(lambda m: m.group(1) + text, s) if s else s  # noqa: E731
    rename_latex = lambda s: _F_LATEX.sub(lambda m: tex, s) if s else s  # noqa: E731
    for r in doc["results"]:
        r["lhs"], r["lhs_latex"], r["note"] = rename_text(r["lhs"]), rename_latex(r["lhs_latex"]), rename_text(r["note"])
        for step in r["steps"]:
            step["lhs"], step["lhs_latex"] = rename_text(step["lhs"]), rename_latex(step["lhs_latex"])
    doc["function"]["name"], doc["function"]["name_latex"] = text, tex
    return doc


def _document(solved: Solved, lang: str) -> dict:
    problem, ctx = solved.problem, solved.context
    results = []
    all_rules: list[str] = []
    for derivation, report in zip(solved.derivations, solved.reports):
        all_rules += derivation.rule_ids()
        lhs_text, lhs_latex = result_lhs(derivation.kind, derivation.wrt, ctx.variables[derivation.wrt],
                                         derivation.layout, ctx.function.shape, derivation.symmetric)
        results.append({
            "wrt": derivation.wrt,
            "wrt_latex": name_latex(derivation.wrt),
            "kind": derivation.kind,
            "layout": derivation.layout,
            "symmetric": bool(derivation.symmetric),
            **({"symmetric_convention": derivation.symmetric} if derivation.symmetric else {}),
            "lhs": lhs_text,
            "lhs_latex": lhs_latex,
            "latex": latex(derivation.shown if derivation.shown is not None else derivation.result),
            "text": text(derivation.result),
            "numpy": _numpy(problem, ctx, derivation.result, derivation.wrt, derivation.kind == "solution"),
            "shape": [E.dim_str(d) if isinstance(d, tuple) else d for d in derivation.result.shape],
            "steps": _steps(derivation, ctx),
            "verification": report.as_dict(),
            "note": result_note(derivation, ctx, lang),
        })
    return {
        **_header(problem, lang),
        "ok": True,
        "error": None,
        "where": [
            {"name": n, "latex": name_latex(n), "text": text(d), "expr_latex": latex(d)} for n, d in ctx.where.items()
        ],
        "function": {"text": problem.function.text, "latex": latex(ctx.function), "name": "f", "name_latex": "f"},
        **({"domain": _domain(problem, ctx)} if problem.domain else {}),
        **_kinks(ctx),
        "results": results,
        "detail": solved.derivations[0].detail if solved.derivations else DEFAULT_DETAIL,
        "rules": rules_list(all_rules, lang),
    }


def _domain(problem: Problem, ctx: Context) -> list[dict]:
    """The `domain:` conditions as the handout states them: `n > k`, `b - A x > 0`."""
    out, positive = [], iter(ctx.positive)
    for condition in problem.domain:
        if condition[0] == "order":
            _, a, op, b = condition
            rel = "\\geq" if op == ">=" else ">"
            out.append({"text": f"{a} {op} {b}", "latex": f"{name_latex(str(a))} {rel} {name_latex(str(b))}"})
        else:
            e = next(positive)
            out.append({"text": f"{text(e)} > 0", "latex": f"{latex(e)} > 0"})
    return out


def _kinks(ctx: Context) -> dict:
    """`{"kinks": …}` where the function has kinks (abs, relu…): the functions, and the arguments
    that must have no zero entry for the result to hold; `{}` where it has none."""
    found = kinks(ctx)
    if not found:
        return {}
    return {"kinks": {"functions": list(dict.fromkeys(name for name, _ in found)),
                      "arguments": [{"text": text(a), "latex": latex(a)} for a in dict.fromkeys(a for _, a in found)]}}


def _header(problem: Problem, lang: str = "en") -> dict:
    """What a document says of its problem: title, statement and teacher notes in `lang`."""
    return {
        "id": problem.id,
        "source": problem.path,
        "title": problem.in_language("titles", lang) or problem.title or problem.id,
        "statement": problem.in_language("statements", lang) or problem.statement,
        "notes": problem.in_language("notes", lang),
        "variables": _variables(problem),
    }


def set_detail(path: Path) -> str:
    """The `detail:` of the set a problem file belongs to (its folder's set file), or the default."""
    from .problem import _set_config_of

    try:
        return _set_config_of(Path(path).parent).detail
    except DerivgenError:  # a broken set file is reported by the set's own build, not per problem
        return DEFAULT_DETAIL


def error_document(problem_id: str, source: str | None, err: DerivgenError, problem: Problem | None = None) -> dict:
    """The document of a problem that failed: its error, no results."""
    head = _header(problem) if problem is not None else {
        "id": problem_id, "source": source, "title": problem_id, "statement": "", "variables": [],
    }
    return {
        **head,
        "ok": False,
        "error": err.as_dict(),
        "where": [],
        "function": None,
        "results": [],
        "rules": [],
    }


def problem_document(path: str | Path, lang: str = "en", self_check: str | bool = False,
                     layout: str = "denominator", detail: str | None = None) -> dict:
    """Load, solve and document one problem file; failures become an error document. `layout`
    is the set's (`layout:` of derivgen.yaml); a problem's own `layout:` wins. `detail`, if
    given, overrides the problem's and the set's `detail:` (`derivgen show DIR --detail`).

    Work past the bounds of `derivgen.limits` is a located `LimitError`: a recursion too deep
    for the engine, a number too large for a float, an allocation that fails."""
    path = Path(path)
    problem = None
    try:
        problem = load_problem(path)
        if detail:
            problem.options["detail"] = detail
        return document(solve(problem, layout=layout, detail=set_detail(path)), lang, self_check)
    except DerivgenError as err:
        return error_document(path.stem, str(path), err, problem)
    except Exception as exc:  # a bug or a limit: reported as such, never a traceback for the user
        return error_document(path.stem, str(path), unexpected_error(exc, path, problem), problem)


def unexpected_error(exc: BaseException, path: str | Path, problem: Problem | None) -> DerivgenError:
    """The located error for an exception the engine did not expect: work past the bounds of
    `derivgen.limits` (a recursion too deep, a number too large, an allocation that fails) is a
    `LimitError`; anything else is a bug in derivgen, said so, with what happened."""
    path = Path(path)
    if isinstance(exc, (RecursionError, OverflowError, MemoryError)):
        return _limit_error(exc, path, problem)
    return DerivgenError(
        f"internal error ({type(exc).__name__}: {exc})",
        Location(str(path)),
        "this is a bug in derivgen; please report it with the problem file. Details:\n"
        + "".join(traceback.format_exception_only(type(exc), exc)).strip(),
    )


def _limit_error(exc: BaseException, path: Path, problem: Problem | None) -> LimitError:
    """The located error for work that went past what one problem may cost."""
    where = problem.function.location if problem is not None else Location(str(path), 1, 1)
    if isinstance(exc, RecursionError):
        return LimitError("the expressions of this problem are nested too deeply for derivgen", where,
                          f"write at most {limits.MAX_DEPTH} levels of nesting, or name parts under `where:`")
    if isinstance(exc, OverflowError):
        return LimitError("a number in this problem grows too large to compute with", where,
                          f"keep powers to at most {limits.MAX_POWER} and numbers small")
    from .worker import memory_limit

    return LimitError(f"this problem needs more memory than the limit of {memory_limit()} MB per problem", where,
                      "make it smaller: fewer or smaller variables, lower powers, fewer terms")

"""Reading a student's answer and judging its values: the part of grading that autograders ship.

It uses only the expression language (`parse`, `expr`, `numeric`, `errors`, `limits`) and
`judge`, all of which need NumPy and lark alone: the exports in `derivgen.export` copy these
modules (with a lark standalone parser in place of lark), so PrairieLearn and Gradescope read
and judge an answer exactly as `derivgen grade` does.
"""

from __future__ import annotations

import numpy as np

from . import expr as E
from .errors import ShapeError
from .judge import judge
from .numeric import Evaluator
from .parse import PlainSource, Scope, _NeedsContext, _Typer, parse_syntax

#: The file name answers are located in (`<answer>:1:5: unknown name 'y'`).
ANSWER_FILE = "<answer>"


def same_shape(a: E.Shape, b: E.Shape) -> bool:
    """Whether two shapes are the same (dimension products compared by their text, `mn`)."""
    return all(E.dim_str(x) == E.dim_str(y) for x, y in zip(a, b))


def parse_answer(text: str, scope: Scope, expected: E.Shape, file: str = ANSWER_FILE) -> E.Expr:
    """The typed expression of an answer; `1`, `I`, `0` standing alone take the result's shape.

    Raises ExprSyntaxError or ShapeError located in the answer (file `<answer>`, line 1)."""
    source = PlainSource(text, file)
    tree = parse_syntax(source)
    natural = None
    try:
        natural = _Typer(source, scope).top(tree)
        if same_shape(natural.shape, expected):
            return natural
    except ShapeError as err:
        if not err.message.startswith("cannot tell the size"):
            raise _answer_hint(err, scope) from None
    typer = _Typer(source, scope)
    typer._classify(tree)
    try:
        return typer.infer(tree, expected)
    except _NeedsContext as nc:
        if natural is not None:
            return natural
        raise ShapeError(f"cannot tell the size of `{typer.snippet(nc.node)}` here", typer.loc(nc.node),
                         "`1`, `I` and `0` take their size from their neighbours: write e.g. `1'*x`, `I - A`") from None
    except ShapeError as err:
        if natural is not None:
            return natural  # the shape check says what is wrong
        raise _answer_hint(err, scope) from None


def _answer_hint(err: ShapeError, scope: Scope) -> ShapeError:
    """An unknown name in an answer: list the names it may use (not "declare it")."""
    if err.message.startswith("unknown name") and (err.hint or "").startswith("declare"):
        names = ", ".join(list(scope.shapes) + sorted(scope.dims))
        err.hint = f"the answer may use the problem's names: {names}"
    return err


def check_shape(answer: E.Expr, shape: E.Shape, text: str, file: str = ANSWER_FILE) -> None:
    """ShapeError (at the answer's start) when the answer's shape is not the result's `shape`."""
    got = answer.shape
    if same_shape(got, shape):
        return
    hint = None
    if same_shape((got[1], got[0]), shape):
        hint = (f"its transpose has the right shape: here the result has the shape {E.shape_str(shape)} "
                f"(is your answer in the other layout?)")
    raise ShapeError(f"the answer is {E.shape_str(got)}, but the result is {E.shape_str(shape)}",
                     PlainSource(text, file).location_at(0), hint)


def read_answer(text: str, scope: Scope, shape: E.Shape, file: str = ANSWER_FILE) -> E.Expr:
    """Parse an answer and check its shape against the result's (located errors)."""
    expr = parse_answer(text, scope, shape, file)
    check_shape(expr, shape, text, file)
    return expr


def values_at(answer: E.Expr, points: list[dict]) -> list[np.ndarray]:
    """The answer's value at each point (`env`, `sizes`); NaN where it cannot be evaluated."""
    values = []
    for p in points:
        try:
            with np.errstate(all="ignore"):
                got = np.asarray(Evaluator(p["env"], p["sizes"])(answer), float)
        except (np.linalg.LinAlgError, ValueError, KeyError, ZeroDivisionError, OverflowError, TypeError):
            got = np.full(np.shape(p["ref"]), np.nan)
        values.append(got)
    return values


def judge_answer(answer: E.Expr, points: list[dict]) -> dict:
    """`judge.judge` of the answer at `points` (dicts with env, sizes, ref, kind, symmetrized)."""
    got = values_at(answer, points)
    return judge([{**p, "got": g} for p, g in zip(points, got)])


def feedback(verdict: dict) -> str:
    """One paragraph for a student: the verdict, the counterexample and the likely slips."""
    if verdict["correct"]:
        return f"Right: your answer equals the result at {verdict['checked']} random points."
    parts = ["Not equal to the result."]
    c = verdict.get("counterexample")
    if c:
        at = ", ".join(f"{k}={v}" for k, v in c["sizes"].items()) or "the problem's sizes"
        parts.append(f"At sizes {at} the relative error is {c['relative_error']:.2g}.")
    for slip in verdict.get("slips", []):
        text = slip["message"]
        parts.append(text[0].upper() + text[1:] + ".")
    return " ".join(parts)


def scope_from(data: dict) -> Scope:
    """A Scope from its JSON form (`scope_data`)."""
    scope = Scope()
    for name, shape in data["shapes"].items():
        scope.declare(name, shape_from_json(shape), data["roles"].get(name, "var"))
    scope.dims = set(data["dims"])
    scope.indices = dict(data.get("indices", {}))
    scope.indexed = dict(data.get("indexed", {}))
    return scope


def scope_data(scope: Scope) -> dict:
    """The JSON form of a Scope."""
    return {"shapes": {n: shape_json(s) for n, s in scope.shapes.items()}, "roles": dict(scope.roles),
            "dims": sorted(scope.dims), "indices": dict(scope.indices), "indexed": dict(scope.indexed)}


def shape_json(shape: E.Shape) -> list:
    return [list(d) if isinstance(d, tuple) else d for d in shape]


def shape_from_json(shape: list) -> E.Shape:
    return tuple(tuple(d) if isinstance(d, list) else d for d in shape)  # type: ignore[return-value]

"""The self-check of the HTML handouts (DESIGN §7, issue 10): what a page carries to judge an
answer offline, in the browser.

Under each result of a problem sheet (``self_check: true``; ``all``: solution pages too) the
page has a box where a student types an expression in derivgen's syntax. The browser
(``static/derivgen-check.js``, with math.js's parser) evaluates it at a few random points and
judges it as `derivgen.judge` does, with the same slip hints. The page carries, per result,
only those points: the values of the names an answer may use (variables and `where:` names)
and the value of the *verified* result there, evaluated numerically from its expression tree
by `derivgen.grade.points` — the sampler the verifier and `derivgen grade` use (sizes distinct
per dimension, values satisfying the assumptions, a non-symmetric matrix where the problem
assumes no symmetry, and symmetrized copies so that "right only for symmetric matrices" can be
told). Never the solution's text or formula.

Two sets of sizes with two points each (plus their symmetrized copies) tell the usual slips
apart; the page stays small.

Sums over samples (`indices: {t: N}`, a family `x_t: [n]`, `sum(t, …)`): the data names the
indices (`indices`: t → its count, a dimension symbol or an integer) and the families
(`families`: x_t → t); at each point a family's value is the list of its samples, one matrix per
sample (the columns of the stacked samples the verifier evaluates), and the count is in `sizes`
(a symbol) or the length of that list.
"""

from __future__ import annotations

import numpy as np

from . import expr as E
from . import i18n

#: Sets of sizes, and random points per set, that a page carries for each result.
SIZE_SETS = 2
POINTS_PER_SIZE = 2

#: The JavaScript the boxes need, next to the pages (copied by `derivgen.html.write_assets`).
SCRIPT = "derivgen-check.js"
MATHJS = "mathjs/math.js"


def _matrix(value) -> list[list[float]]:
    return np.asarray(value, float).reshape(np.shape(value) if np.ndim(value) == 2 else (1, 1)).tolist()


def _samples(value) -> list[list[list[float]]]:
    """A family's value (its samples side by side, one per column) as the list of its samples."""
    stacked = np.asarray(value, float)
    return [stacked[:, [k]].tolist() for k in range(stacked.shape[1])]


def result_data(problem, ctx, derivation, seed: int = 0) -> dict | None:
    """The self-check data of one result: its shape, the names an answer may use and the
    random points (sizes, kind, values of the names, the result's value); with sums over
    samples also the indices and families (see the module docstring). None when no point could
    be drawn."""
    from .grade import answer_scope, points

    scope = answer_scope(problem, ctx)
    names = list(scope.shapes)
    drawn = points(ctx, derivation, seed, SIZE_SETS, POINTS_PER_SIZE)
    if not any(p.kind == "general" for p in drawn):
        return None
    out_points = []
    for p in drawn:
        point = {
            "sizes": {k: int(v) for k, v in p.sizes.items() if isinstance(k, str)},
            "kind": p.kind,
            "env": {n: _samples(p.env[n]) if n in scope.indexed else _matrix(p.env[n]) for n in names},
            "ref": _matrix(p.ref),
        }
        stand_ins = {str(k): int(v) for k, v in p.sizes.items() if isinstance(k, int)}
        if stand_ins:
            point["stand_ins"] = stand_ins
        if p.symmetrized:
            point["symmetrized"] = list(p.symmetrized)
        out_points.append(point)
    data = {
        "shape": E.shape_str(derivation.result.shape),
        "names": {n: E.shape_str(scope.shapes[n]) for n in names},
        "dims": sorted(scope.dims),
        # the sizes in the order derivgen grade names them (the page's JSON sorts its keys)
        "size_order": list(out_points[0]["sizes"]) if out_points else [],
        "points": out_points,
    }
    if scope.indices:
        data["indices"] = {t: count if isinstance(count, int) else str(count) for t, count in scope.indices.items()}
        data["families"] = dict(scope.indexed)
    return data


def shown(doc, solutions: bool) -> bool:
    """Jinja test ``self_checked(solutions)``: whether a page of `doc` (a problem document, or a
    set document: any of its problems) carries self-check boxes. A problem sheet does when the
    problem's `self_check:` is on, a solution page when it is ``all``."""
    if not hasattr(doc, "get"):
        return False
    if "problems" in doc and "results" not in doc:
        return any(shown(d, solutions) for d in doc.get("problems") or [])
    wanted = doc.get("self_check")
    return (bool(wanted) and (not solutions or wanted == "all") and bool(doc.get("ok"))
            and any(r.get("self_check") for r in doc.get("results") or []))


def messages(lang: str) -> dict[str, str]:
    """The box's texts in `lang` (`derivgen.i18n.check_messages`), for the script: the verdict,
    the slip hints (worded as `derivgen.judge`'s), the errors."""
    return i18n.check_messages(lang)

"""Judging an answer by its values: equivalent to the result or not, and the likely slip.

This module needs NumPy and nothing of derivgen: `derivgen grade` uses it, and the autograder
exports (`derivgen.export`) ship a verbatim copy of it, so a student's answer is judged the
same way on the command line, in PrairieLearn and in Gradescope.

A *point* is one evaluation of the result and of the answer at random values: a dict with
`sizes` (dimension symbol → size), `kind` (``"general"``, or ``"symmetrized"`` when the square
matrices without a symmetry assumption were replaced by their symmetric parts), `ref` (the
result's value) and `got` (the answer's value), both 2-D arrays of one shape.
"""

from __future__ import annotations

import numpy as np

#: Largest relative error (‖got − ref‖ / max(‖got‖, ‖ref‖)) at which values count as equal.
#: Both sides are exact evaluations at well-conditioned points, so this can be tight.
TOLERANCE = 1e-7

#: Named factors: a constant c with got = c·ref, and what the slip is called.
FACTORS = ((2.0, "factor2", "twice the result: a factor of 2 too many"),
           (0.5, "half", "half the result: a factor of 2 missing"),
           (-1.0, "sign", "the result with the opposite sign"),
           (-2.0, "sign", "minus twice the result: the sign and a factor of 2"),
           (-0.5, "sign", "minus half the result: the sign and a factor of 1/2"))


def rel_error(got, ref) -> float:
    """‖got − ref‖ / max(‖got‖, ‖ref‖, tiny): 0 for equal values, about 2 for opposite ones."""
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    if got.shape != ref.shape:
        return float("inf")
    with np.errstate(all="ignore"):
        diff = float(np.linalg.norm(got - ref))
        denom = max(float(np.linalg.norm(got)), float(np.linalg.norm(ref)), 1e-300)
    err = diff / denom
    return err if np.isfinite(err) else float("inf")


def _all_close(pairs) -> tuple[bool, float]:
    errors = [rel_error(g, r) for g, r in pairs]
    worst = max(errors) if errors else float("inf")
    return bool(errors) and worst <= TOLERANCE, worst


def _ratio(pairs) -> float | None:
    """The constant c with got ≈ c·ref at every point, if there is one."""
    ratios = []
    for g, r in pairs:
        g, r = np.asarray(g, float), np.asarray(r, float)
        if g.shape != r.shape:
            return None
        rr = float(np.sum(r * r))
        if not rr > 0 or not np.isfinite(rr):
            return None
        ratios.append(float(np.sum(g * r)) / rr)
    if not ratios:
        return None
    c = ratios[0]
    if not all(abs(x - c) <= 1e-6 * max(1.0, abs(c)) for x in ratios):
        return None
    if not all(rel_error(g, c * np.asarray(r, float)) <= TOLERANCE for g, r in pairs):
        return None
    return c


def _factor_slip(c: float, qualifier: str = "") -> dict:
    for value, slip, text in FACTORS:
        if abs(c - value) <= 1e-6 * abs(value):
            return {"id": slip, "factor": value, "message": f"your answer is {text}{qualifier}"}
    return {"id": "factor", "factor": c, "message": f"your answer is {c:.6g} times the result{qualifier}"}


def _slips_at(pairs, qualifier: str = "") -> list[dict]:
    """Slips that explain every pair (got, ref): a constant factor, the transpose, or both."""
    slips = []
    c = _ratio(pairs)
    if c is not None and abs(c - 1.0) > 1e-6:
        slips.append(_factor_slip(c, qualifier))
    square = all(np.asarray(g).shape == np.asarray(g).T.shape for g, _ in pairs)
    if square and pairs and not all(rel_error(np.asarray(g).T, g) <= TOLERANCE for g, _ in pairs):
        flipped = [(np.asarray(g, float).T, r) for g, r in pairs]
        if _all_close(flipped)[0]:
            slips.append({"id": "transpose", "message": "your answer is the transpose of the result "
                                                          f"(the other layout?){qualifier}"})
        else:
            c = _ratio(flipped)
            if c is not None and abs(c - 1.0) > 1e-6:
                slip = _factor_slip(c, qualifier)
                slips.append({"id": "transpose", "factor": c,
                              "message": "your answer is the transpose of the result (the other layout?), and "
                                         + slip["message"].removeprefix("your answer is ").replace("the result", "it")})
    return slips


def _size_factor(general: list[dict], pairs) -> dict | None:
    """A factor that is one of the sizes (N times the result, or the result over N: the 1/N of a
    mean forgotten or written twice), told apart from a constant by sizes that differ between points."""
    per = [_ratio([pair]) for pair in pairs]
    if not per or any(c is None for c in per):
        return None
    names = set.intersection(*({k for k in p["sizes"] if isinstance(k, str)} for p in general))
    for d in sorted(names, key=str.casefold):
        values = [float(p["sizes"][d]) for p in general]
        if len(set(values)) < 2:
            continue
        for power, slip in ((1, "size_times"), (-1, "size_divided")):
            if all(abs(c - v ** power) <= 1e-6 * max(1.0, v ** power) for c, v in zip(per, values)):
                text = (f"{d} times the result: a factor of {d} too many" if power == 1
                        else f"the result divided by {d}: a factor of {d} missing")
                return {"id": slip, "size": d, "message": f"your answer is {text}"}
    return None


def _sizes_text(sizes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "fixed sizes"


def judge(points: list[dict]) -> dict:
    """The verdict on an answer from its values at `points` (see the module docstring).

    Returns ``{"correct", "slips", "counterexample", "checked"}``: `slips` lists what explains
    the difference (``id`` among factor2, half, sign, factor, transpose, size_times, size_divided,
    symmetric_only, size_only, and a ``message``), `counterexample` the sizes and relative error at the point
    where the answer is furthest from the result, `checked` how many points were compared.
    Nothing in it shows the result's values."""
    general = [p for p in points if p.get("kind", "general") == "general"]
    symmetrized = [p for p in points if p.get("kind") == "symmetrized"]
    pairs = [(p["got"], p["ref"]) for p in general]
    correct, worst = _all_close(pairs)
    out = {"correct": correct, "slips": [], "counterexample": None, "checked": len(general)}
    if correct:
        return out
    errors = [rel_error(g, r) for g, r in pairs]
    k = int(np.argmax([e if np.isfinite(e) else 1e300 for e in errors]))
    out["counterexample"] = {"sizes": dict(general[k]["sizes"]), "relative_error": errors[k],
                             "kind": "general"}
    slips = _slips_at(pairs)
    if not slips:
        size = _size_factor(general, pairs)
        if size is not None:
            slips.append(size)
    if not slips and symmetrized:
        sym_pairs = [(p["got"], p["ref"]) for p in symmetrized]
        names = sorted({n for p in symmetrized for n in p.get("symmetrized", ())})
        which = ", ".join(names) or "the square matrices"
        if _all_close(sym_pairs)[0]:
            slips.append({"id": "symmetric_only", "names": names,
                          "message": f"your answer is right only when {which} "
                                     f"{'is' if len(names) == 1 else 'are'} symmetric; "
                                     "for a general matrix it differs (A where A + A' is needed?)"})
        else:
            for slip in _slips_at(sym_pairs, f" when {which} {'is' if len(names) == 1 else 'are'} symmetric"):
                slips.append({**slip, "names": names})
    if not slips:
        groups: dict[tuple, list[bool]] = {}
        for p, e in zip(general, errors):
            groups.setdefault(tuple(sorted(p["sizes"].items())), []).append(e <= TOLERANCE)
        right = [dict(g) for g, ok in groups.items() if all(ok)]
        wrong = [dict(g) for g, ok in groups.items() if not all(ok)]
        if right and wrong:
            slips.append({"id": "size_only", "right_at": right, "wrong_at": wrong,
                          "message": f"your answer is right at sizes {_sizes_text(right[0])} but not at "
                                     f"{_sizes_text(wrong[0])}: does it depend on a particular size?"})
    out["slips"] = slips
    return out

"""derivgen's answer grader, shipped inside an autograder export: Python and NumPy only.

Written by `derivgen export`; it never imports derivgen. Next to it are copies of derivgen's
expression language (`parse`, `expr`, `numeric`, `errors`, `limits`), `answer` and `judge`,
and `_lark`, a lark standalone parser of derivgen's grammar, so an answer is read and judged
here exactly as `derivgen grade` does it.

A question's data (written by the export) holds, per variant, the names an answer may use
(`scope`) and per result its shape and the random points: the values of every name there and
the verified result's value (`ref`). The result's formula is not in it.
"""

from __future__ import annotations

import numpy as np

from .answer import feedback, judge_answer, read_answer, scope_from, shape_from_json
from .errors import DerivgenError


def points(result: dict) -> list[dict]:
    """The points of one result, as arrays."""
    return [{"sizes": dict(p["sizes"]), "kind": p.get("kind", "general"), "symmetrized": tuple(p.get("symmetrized", ())),
             "env": {k: np.array(v, dtype=float) for k, v in p["env"].items()},
             "ref": np.array(p["ref"], dtype=float)} for p in result["points"]]


def grade_answer(variant: dict, name: str, text) -> dict:
    """The verdict on the answer `text` for the result `name` of a variant:
    ``{"score": 1.0 or 0.0, "verdict": "right" | "wrong" | "unreadable" | "empty", "feedback", "slips"}``."""
    result = next((r for r in variant["results"] if r["name"] == name), None)
    if result is None:
        return {"score": 0.0, "verdict": "unreadable", "feedback": f"this question has no answer named {name!r}",
                "slips": []}
    text = "" if text is None else str(text)
    if not text.strip():
        return {"score": 0.0, "verdict": "empty", "feedback": "No answer was given.", "slips": []}
    try:
        expr = read_answer(text, scope_from(variant["scope"]), shape_from_json(result["shape"]))
    except DerivgenError as err:
        return {"score": 0.0, "verdict": "unreadable", "feedback": err.render(), "slips": []}
    except (RecursionError, OverflowError, MemoryError):
        return {"score": 0.0, "verdict": "unreadable", "feedback": "The answer is too large or too deeply nested to read.",
                "slips": []}
    verdict = judge_answer(expr, points(result))
    return {"score": 1.0 if verdict["correct"] else 0.0, "verdict": "right" if verdict["correct"] else "wrong",
            "feedback": feedback(verdict), "slips": [s["id"] for s in verdict["slips"]]}

"""Autograder exports: `derivgen export prairielearn|gradescope PATHS -o OUT`.

An export is a separate command rather than a `build --format`: what it writes is not a
handout of each problem but a course folder for another system (nested question folders, a
grader package, an autograder zip), it needs the verified results at random points rather
than rendered text, and build's flat output folder, cache manifest and stale-file removal do
not fit it.

Every export grades with Python and NumPy alone: it ships `derivgen_grader`, a package made of
copies of derivgen's expression language (`errors`, `limits`, `expr`, `parse`, `numeric`),
`answer` and `judge`, with a lark standalone parser of `grammar.lark` in place of lark, and a
small entry point (`runtime/grader.py`). A question's data holds the names and shapes an answer
may use and, for each result, the values of every name at random points (several sizes, the
verifier's sampler) with the verified result's value there — not its formula.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..students import EXPORT_TARGETS as FORMATS, MAX_EXPORT_VARIANTS
from ..errors import DerivgenError, Location
from ..output import write_atomic

PACKAGE = Path(__file__).resolve().parent.parent
RUNTIME = Path(__file__).resolve().parent / "runtime"
GRADER_PACKAGE = "derivgen_grader"
#: derivgen's modules the grader package copies (each needs only NumPy, lark and the others).
COPIED = ("errors", "limits", "functions", "expr", "parse", "numeric", "judge", "answer")
#: At most MAX_EXPORT_VARIANTS variants of one problem in a PrairieLearn question (seeded sample beyond);
#: FORMATS are the systems exported for. Both are declared with the command line, in derivgen.students.


class ExportError(DerivgenError):
    """An export could not be written."""


# ----------------------------------------------------------------------------- the grader package


def grader_package() -> dict[str, str]:
    """The files of the `derivgen_grader` package: file name → text."""
    files: dict[str, str] = {}
    for name in COPIED:
        text = (PACKAGE / f"{name}.py").read_text(encoding="utf-8")
        if name == "parse":
            text = _without_lark(text)
        files[f"{name}.py"] = text
    files["grammar.lark"] = (PACKAGE / "grammar.lark").read_text(encoding="utf-8")
    files["_lark_parser.py"] = standalone_parser()
    files["_lark.py"] = (RUNTIME / "_lark_shim.py").read_text(encoding="utf-8")
    files["grader.py"] = (RUNTIME / "grader.py").read_text(encoding="utf-8")
    files["__init__.py"] = ('"""derivgen\'s answer grader (Python and NumPy only), written by `derivgen export`."""\n\n'
                            "from .grader import grade_answer, points  # noqa: F401\n")
    for name, text in files.items():
        if name.endswith(".py") and re.search(r"^\s*(from derivgen|import derivgen)", text, re.M):
            raise ExportError(f"the grader file {name} would import derivgen", hint="this is a bug in derivgen")
    return files


def _without_lark(text: str) -> str:
    """parse.py with lark replaced by the standalone parser (`_lark`)."""
    new = re.sub(r"^import lark\n", "from . import _lark as lark\n", text, count=1, flags=re.M)
    new = re.sub(r"^from lark import ", "from ._lark import ", new, count=1, flags=re.M)
    if "import lark\n" in new.replace("from . import _lark as lark\n", "") or new == text:
        raise ExportError("cannot replace lark in the copy of parse.py", hint="this is a bug in derivgen")
    return new


def standalone_parser() -> str:
    """A lark standalone LALR parser of `grammar.lark` (the options `parse._parser` uses)."""
    import lark
    from lark.tools.standalone import gen_standalone

    grammar = (PACKAGE / "grammar.lark").read_text(encoding="utf-8")
    parser = lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)
    out = io.StringIO()
    gen_standalone(parser, out=out)
    return out.getvalue()


def write_package(folder: Path) -> None:
    """Write `derivgen_grader/` into `folder` (replacing an older one)."""
    target = folder / GRADER_PACKAGE
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    for name, text in grader_package().items():
        write_atomic(target / name, text)


# ----------------------------------------------------------------------------- question data


def _array(a) -> list:
    return np.asarray(a, dtype=float).tolist()


@dataclass
class Question:
    """One problem's exported data: its variants, each with its results' points."""

    id: str
    title: str
    source: str
    variants: list[dict] = field(default_factory=list)

    def data(self) -> dict:
        return {"id": self.id, "title": self.title, "source": self.source, "variants": self.variants}


def _result_names(derivations) -> list[str]:
    names, seen = [], set()
    for d in derivations:
        name = d.wrt if d.wrt not in seen else f"{d.wrt}_{d.kind}"
        seen.add(d.wrt)
        names.append(name)
    return names


def variant_data(problem, label: dict | None = None, seed: int = 0) -> dict:
    """The exported data of one (variant of a) problem: what it shows, what an answer may use,
    and each result's points. Raises the problem's DerivgenError when it cannot be derived."""
    from ..answer import scope_data, shape_json
    from ..grade import answer_scope, points
    from ..pipeline import document, solve

    solved = solve(problem)
    doc = document(solved)
    scope = answer_scope(problem, solved.context)
    results = []
    for name, derivation, result in zip(_result_names(solved.derivations), solved.derivations, doc["results"]):
        pts = points(solved.context, derivation, seed)
        results.append({
            "name": name, "wrt": derivation.wrt, "kind": derivation.kind, "lhs": result["lhs"],
            "lhs_latex": result["lhs_latex"], "shape": shape_json(derivation.result.shape), "note": result["note"],
            "points": [{"sizes": p.sizes, "kind": p.kind, "symmetrized": list(p.symmetrized),
                        "env": {k: _array(v) for k, v in p.env.items() if isinstance(k, str)},
                        "ref": _array(p.ref)} for p in pts],
        })
    return {
        "choice": label, "title": doc["title"], "statement": doc["statement"], "function_latex": doc["function"]["latex"],
        "where": [{"name": w["name"], "latex": w["latex"], "expr_latex": w["expr_latex"]} for w in doc["where"]],
        "variables": [{k: v for k, v in var.items() if k in ("name", "latex", "shape", "shape_latex", "assumptions")}
                      for var in doc["variables"]],
        "scope": scope_data(scope), "results": results,
    }


def collect(paths, seed: int = 0, variants: int | None = None, roster=None,
            errors: list | None = None) -> tuple[list[Question], dict | None]:
    """The questions of the problem files under `paths`, and who gets which variant (`roster`).

    A problem with `vary:` brings all its variants (at most MAX_EXPORT_VARIANTS, or `variants`,
    a seeded sample); with a roster, the variants its students get (`derivgen build --students`
    with the same seed gives them the same ones). A problem that fails is left out, its error
    appended to `errors`."""
    from ..problem import find_problems, load_problem_text
    from ..variants import numbered_choices, problem_variants, read_roster, student_choice

    errors = errors if errors is not None else []
    _, files = find_problems(paths, errors)
    students = read_roster(roster) if roster is not None else None
    questions: list[Question] = []
    assignment: dict[str, dict[str, int]] = {}
    for path in files:
        try:
            pv = problem_variants(path)
            if pv.vary is None:
                indices = [None]
            elif students is not None:
                indices = sorted({student_choice(pv, s, seed) for s in students})
            else:
                indices = sorted(set(numbered_choices(pv, min(variants or MAX_EXPORT_VARIANTS, pv.count), seed)))
            q = Question(pv.id, pv.id, Path(path).name)
            for index in indices:
                if index is None:
                    from ..problem import load_problem

                    problem, label = load_problem(path), None
                else:
                    problem = load_problem_text(pv.yaml(index), str(path), pv.id)
                    label = {"variant": index + 1, "of": pv.count, "choice": pv.vary.choice(index)}
                q.variants.append(variant_data(problem, label, seed))
            q.title = q.variants[0]["title"]
            if students is not None:
                for s in students:
                    index = student_choice(pv, s, seed) if pv.vary is not None else None
                    assignment.setdefault(s, {})[pv.id] = 0 if index is None else indices.index(index)
            questions.append(q)
        except DerivgenError as err:
            errors.append(err if err.location else err.with_location(Location(str(path))))
    return questions, (assignment if students is not None else None)


# ----------------------------------------------------------------------------- command line


def command(args, console) -> int:
    """`derivgen export`: 0 when every problem was exported, 1 when some failed, 2 when nothing could be."""
    errors: list[DerivgenError] = []
    try:
        questions, assignment = collect(args.paths, args.seed, args.variants, args.students, errors)
        out = Path(args.output)
        if args.target == "prairielearn":
            from .prairielearn import export

            written = export(questions, out / "prairielearn")
        else:
            from .gradescope import export

            written = export(questions, out / "gradescope", assignment)
    except DerivgenError as err:
        console.error(err.render(), action="export")
        return 2
    except OSError as exc:
        console.error(f"error: cannot write the export: {exc.strerror or exc}", action=None)
        return 2
    except ValueError as exc:  # a value JSON cannot hold (not finite) in a question's data
        console.error(f"error: cannot write the export: {exc}", action=None)
        return 2
    for err in errors:
        console.error(err.render(), action="export")
    console.info(f"exported {len(questions)} question{'s' if len(questions) != 1 else ''} for {args.target} "
                 f"({sum(len(q.variants) for q in questions)} variants, {len(written)} files) in {out / args.target}/"
                 + (f"; {len(errors)} failed" if errors else ""))
    return 1 if errors else 0


def dumps(data) -> str:
    """JSON for the export's data files (compact, exact floats)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

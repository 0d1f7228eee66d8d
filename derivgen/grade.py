"""Grading a student's answer: `derivgen grade FILE --wrt NAME --answer EXPR` (DESIGN §7).

The answer is parsed with the problem's names and shapes (the errors of problem files: a
location, a caret, a hint), its shape is checked against the verified result, and both are
evaluated at random values that satisfy the assumptions, drawn by the verifier's own sampler
(`derivgen.verify.Sampler`, `Checker`): several sets of sizes, a distinct size for each
dimension symbol, points where an inverse is ill-conditioned drawn again. `derivgen.judge`
then says whether the values agree and, when they do not, which usual slip explains the
difference — the transpose (layout), a factor of 2 or ½, the sign, right only for symmetric
matrices, right only at some sizes — and gives a counterexample (sizes and relative error),
never the solution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import expr as E
from .derive import Context, Derivation
from .errors import DerivgenError, Location
from .answer import judge_answer, read_answer
from .numeric import Evaluator
from .parse import Scope
from .pipeline import variable_scope
from .problem import Problem, load_problem

#: Exit statuses of `derivgen grade`.
RIGHT, WRONG, UNREADABLE = 0, 1, 2
SIZE_SETS = 3  # sets of sizes at which the answer is compared
POINTS_PER_SIZE = 3  # random points per set of sizes
MAX_CONDITION = 1e7  # a point where a matrix to invert is worse conditioned is drawn again
NO_SYMMETRY = {"symmetric", "spd", "diagonal", "orthogonal"}  # already symmetric, or must stay orthogonal


@dataclass
class Grade:
    """The verdict on one answer; `as_dict()` is what `--json` prints."""

    status: int  # RIGHT, WRONG or UNREADABLE
    wrt: str
    kind: str | None = None
    answer: str = ""
    slips: list[dict] = field(default_factory=list)
    counterexample: dict | None = None
    checked: int = 0
    sizes: list[dict] = field(default_factory=list)
    error: DerivgenError | None = None
    solution: str | None = None  # the result's text: shown only when asked

    @property
    def verdict(self) -> str:
        return {RIGHT: "right", WRONG: "wrong"}.get(self.status, "error")

    def as_dict(self, show_solution: bool = False) -> dict:
        out = {
            "verdict": self.verdict, "status": self.status, "wrt": self.wrt, "kind": self.kind,
            "answer": self.answer, "checked": self.checked, "sizes": self.sizes,
            "slips": self.slips, "counterexample": self.counterexample, "error": None,
        }
        if self.error is not None:
            out["error"] = self.error.as_dict()
        if show_solution:
            out["solution"] = self.solution
        return out

    def report(self, show_solution: bool = False) -> str:
        """The verdict as the command line prints it (an error is printed by the caller)."""
        what = f"∂f/∂{self.wrt}" if self.kind in ("gradient", None) else f"the {self.kind} for {self.wrt}"
        sizes = "; ".join(", ".join(f"{k}={v}" for k, v in s.items()) or "fixed" for s in self.sizes)
        lines = []
        if self.status == RIGHT:
            lines.append(f"right: the answer equals {what} (compared at {self.checked} random points, sizes {sizes})")
        elif self.status == WRONG:
            lines.append(f"wrong: the answer differs from {what}")
            c = self.counterexample
            if c:
                at = ", ".join(f"{k}={v}" for k, v in c["sizes"].items()) or "the problem's sizes"
                lines.append(f"  counterexample: at sizes {at} the relative error is {c['relative_error']:.2g}")
            for slip in self.slips:
                lines.append(f"  likely slip: {slip['message']}")
            if not self.slips:
                lines.append("  no usual slip (transpose, factor 2, sign, symmetric only, one size) explains it")
        if show_solution and self.solution is not None:
            lines.append(f"  solution: {self.solution}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- parsing the answer


def answer_scope(problem: Problem, ctx: Context) -> Scope:
    """The names an answer may use: the problem's variables, dimensions and `where:` names
    (with the shapes `pipeline.build_context` gave them)."""
    scope = variable_scope(problem)
    for name, definition in ctx.where.items():
        scope.declare(name, definition.shape, "where")
    return scope


# ----------------------------------------------------------------------------- points


@dataclass
class Point:
    """Values of every name (variables and `where:`) at one random point, and the result there."""

    sizes: dict[str, int]
    env: dict
    ref: np.ndarray
    kind: str = "general"
    symmetrized: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"sizes": self.sizes, "env": self.env, "ref": self.ref, "kind": self.kind,
                "symmetrized": self.symmetrized}


def _size_sets(ctx: Context) -> list[dict[str, int]]:
    """Candidate sets of sizes: the verifier's first, then shifted and permuted ones."""
    from . import verify

    base = verify.choose_sizes(ctx)
    dims = list(base)
    taken = {d for shape in ctx.variables.values() for d in shape if isinstance(d, int)}

    def assign(pool) -> dict[str, int]:
        free = [s for s in pool if s not in taken] + [s for s in range(13, 40) if s not in taken]
        return {d: free[i] for i, d in enumerate(dims)}

    candidates = [base, {d: v + 2 for d, v in base.items()}]
    if len(dims) > 1:
        candidates.append({d: base[dims[(i + 1) % len(dims)]] for i, d in enumerate(dims)})
    candidates += [assign(verify.SOLUTION_SIZES), assign(tuple(reversed(verify.SOLUTION_SIZES))),
                   {d: v + 1 for d, v in base.items()}, {d: v + 3 for d, v in base.items()}]
    for shift in (0, 2, 4):  # tall first (a solution's AᵀA needs more rows than columns), then wide
        for order in (True, False):
            ordered = sorted((v + shift for v in base.values()), reverse=order)
            candidates.append(dict(zip(dims, ordered)))
    out: list[dict[str, int]] = []
    for c in candidates:
        if c not in out:
            out.append(c)
    return out


def _symmetrizable(ctx: Context) -> list[str]:
    """Square matrix variables with no symmetry of their own: where `2*A*x` and `(A + A')*x` differ."""
    return [name for name, shape in ctx.variables.items()
            if shape[0] == shape[1] and not E.is_scalar_shape(shape) and name not in ctx.families
            and not (ctx.assume.get(name, set()) & NO_SYMMETRY)]


#: What evaluating at a random point may raise where the point is unfit for comparing answers.
_UNFIT = (np.linalg.LinAlgError, ValueError, KeyError, ZeroDivisionError, OverflowError)


def _put_estimates(values: dict, sizes: dict, estimates: dict[str, E.Expr]) -> bool:
    """Put the estimates found before in for their variables (Σ̂ is compared at μ = μ̂, the joint
    stationary point, as it is verified); False where one cannot be evaluated (an unfit point)."""
    for name, estimate in estimates.items():
        try:
            with np.errstate(all="ignore"):
                values[name] = Evaluator(values, sizes)(estimate)
        except _UNFIT:
            return False
    return True


def _evaluate(ctx: Context, sampler, values: dict, result: E.Expr,
              inverted: list[E.Expr]) -> tuple[dict, np.ndarray] | None:
    """(env, result value) at `values`, or None where the point is unfit (the verifier's
    `Sampler.defect`, with the stricter MAX_CONDITION: a matrix the problem or the result inverts
    ill-conditioned, a log argument not positive, an argument at a kink) or f or the result is
    not finite there. `inverted`: the matrices `result` inverts (`verify.inverted_parts`)."""
    from .verify import Checker

    if sampler.defect(values, condition_limit=MAX_CONDITION, also=inverted) is not None:
        return None
    try:
        with np.errstate(all="ignore"):
            env = Checker(ctx, sampler.sizes, values).env()
            evaluator = Evaluator(env, sampler.sizes)
            f = evaluator(ctx.function)
            ref = evaluator(result)
    except _UNFIT:
        return None
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(ref))):
        return None
    return env, np.asarray(ref, float)


def points(ctx: Context, derivation: Derivation, seed: int = 0, size_sets: int = SIZE_SETS,
           per_size: int = POINTS_PER_SIZE) -> list[Point]:
    """Random points for comparing answers with `derivation.result`: `per_size` at each of
    `size_sets` sets of sizes (general values), plus the same points with the square matrices
    that carry no symmetry replaced by their symmetric parts (kind "symmetrized")."""
    from .verify import Sampler, inverted_parts

    inverted = inverted_parts([derivation.result])[0]  # invertible at every point, as the problem's own
    out: list[Point] = []
    sets = 0
    symmetric_names = _symmetrizable(ctx)
    for k, sizes in enumerate(_size_sets(ctx)):
        if sets == size_sets:
            break
        rng = np.random.default_rng([seed, k])
        sampler = Sampler(ctx, sizes, rng)
        found: list[Point] = []
        for attempt in range(4 * per_size):
            if sum(p.kind == "general" for p in found) == per_size:
                break
            values = sampler.point(positive=attempt >= 2)
            if not _put_estimates(values, sampler.sizes, derivation.estimates):
                continue
            evaluated = _evaluate(ctx, sampler, values, derivation.result, inverted)
            if evaluated is not None:
                found.append(Point(dict(sizes), evaluated[0], evaluated[1]))
                if symmetric_names:
                    sym = {**values, **{n: (values[n] + values[n].T) / 2 for n in symmetric_names}}
                    evaluated = _evaluate(ctx, sampler, sym, derivation.result, inverted)
                    if evaluated is not None:
                        found.append(Point(dict(sizes), evaluated[0], evaluated[1], "symmetrized",
                                           tuple(symmetric_names)))
        if sum(p.kind == "general" for p in found) == per_size:
            out += found
            sets += 1
    return out


# ----------------------------------------------------------------------------- grading


def select(problem: Problem, derivations: list[Derivation], wrt: str, kind: str | None = None) -> Derivation:
    """The result to grade: the first one for `wrt` (of `kind` when given)."""
    if wrt not in problem.variables:
        raise DerivgenError(f"the problem has no variable {wrt!r}", problem.locations.get("wrt"),
                            f"results are for: {', '.join(problem.wrt)}")
    for d in derivations:
        if d.wrt == wrt and (kind is None or d.kind == kind):
            return d
    kinds = sorted({d.kind for d in derivations if d.wrt == wrt})
    if not kinds:
        raise DerivgenError(f"the problem asks for no result with respect to {wrt!r}", problem.locations.get("wrt"),
                            f"results are for: {', '.join(problem.wrt)}")
    raise DerivgenError(f"the problem has no {kind} with respect to {wrt!r}", problem.locations.get("wrt"),
                        f"choose among: {', '.join(kinds)}")


def grade_problem(problem: Problem, wrt: str, answer: str, kind: str | None = None, seed: int = 0) -> Grade:
    """Grade `answer` against the verified result of `problem` for `wrt`.

    An answer that cannot be read or has the wrong shape gives status UNREADABLE with its
    located error; a problem that cannot be derived raises its DerivgenError."""
    from .pipeline import solve
    from .printing import text as result_text

    solved = solve(problem)
    derivation = select(problem, solved.derivations, wrt, kind)
    grade = Grade(UNREADABLE, wrt, derivation.kind, answer, solution=result_text(derivation.result))
    try:
        expr = read_answer(answer, answer_scope(problem, solved.context), derivation.result.shape)
    except DerivgenError as err:
        grade.error = err
        return grade
    pts = points(solved.context, derivation, seed)
    verdict = judge_answer(expr, [p.as_dict() for p in pts])
    grade.status = RIGHT if verdict["correct"] else WRONG
    grade.slips, grade.counterexample, grade.checked = verdict["slips"], verdict["counterexample"], verdict["checked"]
    seen: list[dict] = []
    for p in pts:
        if p.sizes not in seen:
            seen.append(p.sizes)
    grade.sizes = seen
    return grade


def grade_file(path: str | Path, wrt: str, answer: str, kind: str | None = None, seed: int = 0,
               variant: int | None = None, student: str | None = None, variant_seed: int = 0) -> Grade:
    """Grade `answer` for the problem file at `path` (see `grade_problem`): the file as written,
    or its variant number `variant` (1-based), or the variant `student` gets from
    `derivgen build --students … --seed variant_seed`."""
    if variant is None and student is None:
        return grade_problem(load_problem(path), wrt, answer, kind, seed)
    from .problem import load_problem_text
    from .variants import problem_variants, student_choice

    pv = problem_variants(path)
    if pv.vary is None:
        raise DerivgenError(f"{Path(path).name} has no variants (no `vary:`)", Location(str(path)),
                            "grade it without --variant or --student")
    index = student_choice(pv, student, variant_seed) if student is not None else variant - 1
    if not 0 <= index < pv.count:
        raise DerivgenError(f"{Path(path).name} has {pv.count} variants, not {variant}", Location(str(path)),
                            f"choose a variant between 1 and {pv.count}")
    return grade_problem(load_problem_text(pv.yaml(index), str(path), pv.id), wrt, answer, kind, seed)


# ----------------------------------------------------------------------------- command line


def command(args, console) -> int:
    """`derivgen grade`: prints the verdict; returns 0 right, 1 wrong, 2 unreadable or ungradable."""
    try:
        grade = grade_file(args.file, args.wrt, args.answer, args.kind, args.seed, args.variant, args.student, args.seed)
    except DerivgenError as err:
        if args.json:
            console.info(json.dumps({"verdict": "error", "status": UNREADABLE, "error": err.as_dict()},
                                    ensure_ascii=False))
        else:
            console.error(err.render(), action="grade")
        return UNREADABLE
    if args.json:
        console.info(json.dumps(grade.as_dict(args.show_solution), indent=2, ensure_ascii=False))
    elif grade.error is not None:
        console.error(grade.error.render(), action="read the answer:")
    else:
        console.info(grade.report(args.show_solution))
    return grade.status

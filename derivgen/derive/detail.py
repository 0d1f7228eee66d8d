"""How fine a derivation's steps are: the `detail:` setting (`brief`, `normal`, `full`).

The engine always works one rule at a time (`full`: every rule application is a line). At a
coarser detail consecutive lines of one stage are merged, so that a line shows one idea as the
course notes do: a merged line is the last of the lines it stands for, so it is still a true
equation and is checked numerically like any other (derivgen.verify), and it cites the rules
of the lines it replaces. Rules that are bookkeeping rather than an idea — a constant's zero
differential (D0), d(Uᵀ) = (dU)ᵀ (D3), a scalar is its own trace (T0), a transpose pushed
inward (S1) — are recorded as `folded` on the line that used them instead of as its tags.

`normal` (the default), by stage:

- differential: linear maps (d of a sum or a constant multiple, of a transpose, of a trace, of
  diag/sum/vec, of a sum over samples — D1, D3, D4, D21–D24) applied in a row are one line,
  with the constants that fall away (D0); those that resolve the d(…) a rule has just made
  (d(x − μ)ᵀ = −dμᵀ after the product rule) go with that rule's line;
- trace form: every term takes its next move on the same line (the cyclic property on one,
  a transpose on another); moving a scalar into the trace (T0, T1) goes with the next move,
  and powers that a rotation puts side by side (S9) go with it;
- identification: `df = tr(Gᵀ dX)` with G's transposes pushed inward is read off in the line
  `∂f/∂X = G` itself, which also applies the declared symmetry (S4, S13);
- like terms are collected where they appear: scalar terms of the differential that are one
  another's transpose (J4), and terms of the trace form once the assumptions are applied.

`brief` merges each stage into one line: the expanded differential, the trace form, the
gradient read off, the gradient simplified; a stationary point is solved in two moves after the
equation is set up, collecting the unknown on one side (T7, E1) and solving for it (E6, E7,
E2 and what tidies the solution), as in `∇ = 0 ⟺ (AᵀA + λI)x = Aᵀb ⟺ x̂ = …`.
"""

from __future__ import annotations

from typing import Iterable

from .model import Step

DETAILS = ("brief", "normal", "full")
DEFAULT = "normal"

BOOKKEEPING = frozenset({"D0", "D3", "T0", "S1"})
LINEAR = frozenset({"D0", "D1", "D3", "D4", "D21", "D22", "D23", "D24"})  # linear maps and constants
INTO_TRACE = frozenset({"T0", "T1"})  # goes with the move after it
HADAMARD_MOVES = frozenset({"T4", "T5", "T6"})  # 1ᵀ(A ⊙ dU)1 = tr(Aᵀ dU): the rotation before goes with them
WITH_MOVE = frozenset({"S9"})  # goes with the move before it: tr(X dX X) = tr(X X dX) = tr(X² dX)
ASSUMPTIONS = frozenset({"S1", "S4", "S13", "T0"})  # go with the line before them (the identification)


def check(detail: str) -> str:
    """`detail` itself, or ValueError naming the choices."""
    if detail not in DETAILS:
        raise ValueError(f"unknown detail {detail!r}: choose one of {', '.join(DETAILS)}")
    return detail


def merged(steps: list[Step]) -> Step:
    """One line standing for `steps` (in order): the last expression, their rules once each."""
    rules: list[str] = []
    for s in steps:
        for r in (*s.rules, *s.folded):
            if r not in rules:
                rules.append(r)
    cited = {r for s in steps for r in s.rules}  # what a line folded stays folded
    shown = tuple(r for r in rules if r in cited and r not in BOOKKEEPING) or tuple(rules[:1])
    return Step(steps[-1].expr, shown, tuple(r for r in rules if r not in shown))


def _groups_to_steps(groups: Iterable[list[Step]]) -> list[Step]:
    return [g[0] if len(g) == 1 else merged(g) for g in groups]


def differential(steps: list[Step], detail: str) -> list[Step]:
    """The lines that expand `d(…)` (derive.differential.Expander.steps), at `detail`."""
    if detail == "full" or len(steps) < 2:
        return steps
    if detail == "brief":
        return [merged(steps)]
    groups: list[list[Step]] = []
    for s in steps:
        rules = set(s.rules)
        if groups and rules <= LINEAR:  # with the run before it, or with the rule that made its d(…)
            groups[-1].append(s)
        else:
            groups.append([s])
    return _groups_to_steps(groups)


def trace_form(steps: list[Step], detail: str, split_first: bool) -> list[Step]:
    """The lines that bring a differential to Σ tr(Kᵢ dVᵢ) (derive.trace.normal_form).

    `split_first`: the first line splits the differential into terms (kept as its own line where
    it multiplies out, T7; tr(A + B) = tr A + tr B goes with the move after it)."""
    if detail == "full" or not steps:
        return steps
    if detail == "brief":
        line = merged(steps)
        return [] if set(line.rules) | set(line.folded) <= {"T0"} else [line]
    groups: list[list[Step]] = []
    pending: list[Step] = []
    for k, s in enumerate(steps):
        if set(s.rules) <= INTO_TRACE and k < len(steps) - 1:
            # splitting tr(A + B) into its terms is bookkeeping of the move after it (folded T1);
            # a split that multiplies out (T7) stays a line of its own
            pending.append(Step(s.expr, (), s.rules + s.folded) if split_first and k == 0 else s)
            continue
        if groups and not pending and set(s.rules) <= WITH_MOVE:
            groups[-1].append(s)
            continue
        groups.append(pending + [s])
        pending = []
    if groups and set(groups[-1][-1].rules) <= {"T0"} and len(groups[-1]) == 1:
        groups.pop()  # df = aᵀdx is read off as it stands (∂f/∂x = a): tr(aᵀdx) adds nothing
    joined: list[list[Step]] = []
    for g in groups:  # a rotation that only sets up the Hadamard/diag rule goes with it
        if joined and set(joined[-1][-1].rules) == {"T3"} and set(g[0].rules) & HADAMARD_MOVES:
            joined[-1].extend(g)
        else:
            joined.append(g)
    return _groups_to_steps(joined)


def simplification(first: Step, steps: list[Step], detail: str) -> list[Step]:
    """The identification line `first` (∂f/∂X = G) and the simplification of G after it."""
    if detail == "full" or not steps:
        return [first, *steps]
    if detail == "brief":
        return [first, merged(steps)] if len(steps) > 1 else [first, *steps]
    groups: list[list[Step]] = [[first]]
    for s in steps:
        if set(s.rules) <= ASSUMPTIONS:
            groups[-1].append(s)
        else:
            groups.append([s])
    return _groups_to_steps(groups)


COLLECT = frozenset({"T7", "E5", "E1"})  # brief solving: the unknown brought to one side


def solving(steps: list[Step], detail: str) -> list[Step]:
    """The lines that solve ∂f/∂X = 0 (derive.solve), at `detail`: at `brief` the moves that
    collect the unknown are one line and the moves that solve for it another (the estimates put
    in, E8, and multiplying by the unknown, E3 and E9, stay lines of their own)."""
    if detail != "brief":
        return steps
    groups: list[list[Step]] = []
    kind = None
    for k, s in enumerate(steps):
        rules = set(s.rules)
        now = (None if k == 0 or rules & {"E0", "E3", "E8", "E9"} or not rules
               else "collect" if rules <= COLLECT else "solve")
        if now is not None and now == kind:
            groups[-1].append(s)
        else:
            groups.append([s])
        kind = now
    return _groups_to_steps(groups)


def with_folded(step: Step, *rules: str) -> Step:
    """`step` that also used `rules` (bookkeeping done on its line)."""
    extra = tuple(r for r in rules if r not in step.rules and r not in step.folded)
    return Step(step.expr, step.rules, step.folded + extra) if extra else step

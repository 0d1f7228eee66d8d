#!/usr/bin/env python
"""How many lines a derivation shows: the median over the example set, per detail level.

    python bench/steps.py                  # table: median and largest line count per detail level
    python bench/steps.py --each           # also every result's count
    python bench/steps.py --json out.json  # the figures as JSON

A result's line count is the number of lines its derivation shows: every line of every block
(`df = d(…)`, each `= …`, `∂f/∂X = …`), as the handout prints them. Each problem of the set is
solved (derived and verified) at each detail level through `derivgen.pipeline.solve`, so a
count is only taken of derivations that passed their numeric checks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derivgen.pipeline import solve  # noqa: E402
from derivgen.problem import load_problem  # noqa: E402

LEVELS = ("brief", "normal", "full")


def line_count(derivation) -> int:
    """The lines a derivation shows (the rendered chain, every block)."""
    return sum(len(block.steps) for block in derivation.blocks)


def counts(problems: Path, detail: str) -> dict[str, int]:
    """`problem-id/kind:wrt` → line count, for every result of the set at one detail level."""
    out: dict[str, int] = {}
    for path in sorted(problems.glob("*.yaml")):
        if path.name == "derivgen.yaml":
            continue
        problem = load_problem(path)
        problem.options["detail"] = detail
        solved = solve(problem)
        for d in solved.derivations:
            out[f"{problem.id}/{d.kind}:{d.wrt}"] = line_count(d)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default=str(ROOT / "problems"))
    ap.add_argument("--each", action="store_true", help="print every result's count")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    figures = {}
    for level in LEVELS:
        c = counts(Path(args.problems), level)
        figures[level] = {"median": statistics.median(c.values()), "max": max(c.values()), "results": len(c), "each": c}
    print(f"{'detail':8} {'results':>7} {'median':>7} {'max':>5}")
    for level in LEVELS:
        f = figures[level]
        print(f"{level:8} {f['results']:7d} {f['median']:7g} {f['max']:5d}")
    if args.each:
        keys = figures["full"]["each"]
        print()
        print(f"{'result':60} " + " ".join(f"{lv:>6}" for lv in LEVELS))
        for k in keys:
            print(f"{k:60} " + " ".join(f"{figures[lv]['each'].get(k, 0):6d}" for lv in LEVELS))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

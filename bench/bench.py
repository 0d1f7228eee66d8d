#!/usr/bin/env python
"""Benchmark derivgen against SymPy's matrix calculus on the example problems.

    python bench/bench.py                 # full run
    python bench/bench.py --quick         # fewer repetitions
    python bench/bench.py --json out.json # also write the figures as JSON

For each problem in problems/ and each variable in its `wrt:` list:

- derivgen: parse (load_problem + build_context), derive (derive_gradient) and verify (verify),
  each the median of several timed repetitions after one warm-up;
- SymPy: `f.diff(X)` on the same function converted with `derivgen.interop.to_sympy` (where:
  names inlined; a scalar f is a SymPy scalar, e.g. `Trace(x.T*A*x)`, as SymPy's matrix calculus
  expects), with SymPy's cache cleared before each timed call, under a per-case timeout;
- whether SymPy's answer is right: it is evaluated at random values (concrete sizes) and compared
  with central finite differences of f, where f is evaluated by `derivgen.numeric.evaluate`
  (evaluation only: no derivgen derivative is involved in the judgement).

Then the wall time of a cold `derivgen build problems/ -o <tmp> --format md,json` subprocess.
See bench/README.md for the columns and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derivgen import expr as E  # noqa: E402
from derivgen.derive import derive_gradient  # noqa: E402
from derivgen.derive.jacobian import derive_jacobian  # noqa: E402
from derivgen.errors import DerivgenError  # noqa: E402
from derivgen.interop import IllShapedError, evaluate_sympy, inline_where, to_sympy  # noqa: E402
from derivgen.numeric import evaluate  # noqa: E402
from derivgen.pipeline import build_context  # noqa: E402
from derivgen.problem import load_problem  # noqa: E402
from derivgen.verify import Sampler, dimension_sizes, verify, verify_jacobian  # noqa: E402

RATIO_TARGET = 0.2
CLI_TARGET_S = 2.0
CHECK_RTOL = 1e-6     # SymPy's gradient vs finite differences, relative (Frobenius) error
CHECK_POINTS = 2      # random points at which SymPy's answer is checked
FD_STEP = 1e-4


# ----------------------------------------------------------------------------- timing helpers


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so that SymPy's `except Exception` cannot swallow it."""


def _alarm(signum, frame):
    raise Timeout()


def run_with_timeout(fn, seconds: float):
    """fn() or Timeout after `seconds` (SIGALRM: SymPy is pure Python, the alarm interrupts it)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def median_ms(fn, reps: int) -> float:
    """Median wall time of fn() in ms over `reps` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# ----------------------------------------------------------------------------- checking SymPy


def fd_gradient(f_expr, values: dict, sizes: dict, wrt: str) -> np.ndarray:
    """Entrywise 4-point central differences of f (evaluated by derivgen.numeric) in `wrt`."""
    base = values[wrt]
    grad = np.zeros_like(base)

    def f_at(x):
        return float(evaluate(f_expr, {**values, wrt: x}, sizes)[0, 0])

    h = FD_STEP * max(1.0, float(np.sqrt(np.mean(base * base))))
    for idx in np.ndindex(base.shape):
        e = np.zeros_like(base)
        e[idx] = h
        grad[idx] = (-f_at(base + 2 * e) + 8 * f_at(base + e) - 8 * f_at(base - e) + f_at(base - 2 * e)) / (12 * h)
    return grad


def sample_points(ctx, f_expr, sizes: dict, count: int, seed: int) -> list[dict]:
    """Random values satisfying the assumptions, where f is finite (as derivgen's verifier samples)."""
    rng = np.random.default_rng(seed)
    sampler = Sampler(ctx, sizes, rng)
    points, attempts = [], 0
    while len(points) < count and attempts < 20:
        attempts += 1
        values = sampler.point(positive=attempts > 2)
        with np.errstate(all="ignore"):
            try:
                f0 = evaluate(f_expr, values, sizes)
            except np.linalg.LinAlgError:
                continue
        if np.all(np.isfinite(f0)):
            points.append(values)
    return points


def judge_sympy(answer, ctx, f_expr, wrt: str, sizes: dict, seed: int) -> tuple[str, str, float | None]:
    """('yes' | 'no' | 'n/a', reason, worst relative error) for SymPy's gradient `answer`."""
    import sympy

    if answer.has(sympy.Derivative):
        return "n/a", "SymPy left an unevaluated Derivative", None
    points = sample_points(ctx, f_expr, sizes, CHECK_POINTS, seed)
    if not points:
        return "n/a", "f not finite at random values", None
    worst = 0.0
    for values in points:
        want = fd_gradient(f_expr, values, sizes, wrt)
        try:
            with np.errstate(all="ignore"):
                got = evaluate_sympy(answer, values, sizes)
        except IllShapedError as exc:
            return "no", f"SymPy's answer is ill-shaped: {exc}", None
        except (ValueError, TypeError, np.linalg.LinAlgError) as exc:
            return "n/a", f"SymPy's answer cannot be evaluated: {exc}", None
        if answer == 0 and got.shape == (1, 1):
            got = np.broadcast_to(got, want.shape)  # SymPy's scalar 0 stands for the zero matrix
        if got.shape != want.shape:
            return "no", f"shape {got.shape[0]}×{got.shape[1]}, gradient is {want.shape[0]}×{want.shape[1]}", None
        if np.iscomplexobj(got):
            got = got.real
        err = float(np.linalg.norm(got - want)) / max(float(np.linalg.norm(want)), float(np.linalg.norm(got)), 1e-12)
        worst = max(worst, err)
    if worst <= CHECK_RTOL:
        return "yes", "", worst
    return "no", f"relative error {worst:.2g} against finite differences", worst


# ----------------------------------------------------------------------------- one case


@dataclass
class Row:
    problem: str
    wrt: str
    parse_ms: float | None = None
    derive_ms: float | None = None
    verify_ms: float | None = None
    sympy_ms: float | None = None
    sympy_correct: str = "n/a"          # yes | no | n/a
    sympy_form: str = "hadamard"        # the to_sympy spelling of elementwise functions used
    sympy_note: str = ""
    sympy_answer: str = ""
    sympy_error: float | None = None
    derivgen_error: str = ""
    # informational, for cases .diff did not get right: SymPy's other spelling, Derivative(f, X).doit()
    sympy_doit_correct: str | None = None
    sympy_doit_note: str = ""

    @property
    def derive_verify_ms(self) -> float | None:
        if self.derive_ms is None or self.verify_ms is None:
            return None
        return self.derive_ms + self.verify_ms

    @property
    def ratio(self) -> float | None:
        if self.derive_verify_ms is None or not self.sympy_ms or self.sympy_correct not in ("yes", "no"):
            return None
        return self.derive_verify_ms / self.sympy_ms

    def as_dict(self) -> dict:
        d = asdict(self)
        d["derive_verify_ms"] = self.derive_verify_ms
        d["ratio"] = self.ratio
        return d


@dataclass
class Attempt:
    """SymPy on one spelling of f: its answer, time and verdict."""

    form: str
    ms: float | None = None
    answer: object = None
    correct: str = "n/a"
    note: str = ""
    error: float | None = None


RANK = {"yes": 0, "no": 1, "n/a": 2}


def uses_elementwise(e) -> bool:
    """True if `e` applies an elementwise function to a matrix or vector (two SymPy spellings)."""
    return any(
        isinstance(n, E.Func) and n.name in E.ELEMENTWISE + ("softmax", "logsumexp") and not n.arg.is_scalar for n in E.walk(e)
    )


def sympy_attempt(form: str, f_expr, ctx, wrt: str, reps: int, timeout: float, seed: int) -> Attempt:
    from sympy.core.cache import clear_cache

    att = Attempt(form)
    try:
        f_sym = to_sympy(f_expr, elementwise=form)
        x_sym = to_sympy(E.Sym(wrt, ctx.variables[wrt]))
    except DerivgenError as err:
        att.note = f"no SymPy form: {err.message}"
        return att

    def diff():
        att.answer = f_sym.diff(x_sym)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clear_cache()
            t0 = time.perf_counter()
            run_with_timeout(diff, timeout)  # first (cold) call: also the timeout probe
            times = [(time.perf_counter() - t0) * 1e3]
            for _ in range(reps if times[0] < 2000 else 0):  # a slow case is timed once
                clear_cache()
                t0 = time.perf_counter()
                run_with_timeout(diff, timeout)
                times.append((time.perf_counter() - t0) * 1e3)
            att.ms = statistics.median(times[1:] or times)
    except Timeout:
        att.note = f"timeout after {timeout:g} s"
        return att
    except Exception as exc:  # noqa: BLE001 - SymPy's failure is a result here
        att.note = f"SymPy raised {type(exc).__name__}: {str(exc)[:80]}"
        return att
    sizes = dimension_sizes(ctx)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            att.correct, att.note, att.error = run_with_timeout(
                lambda: judge_sympy(att.answer, ctx, f_expr, wrt, sizes, seed), 4 * timeout
            )
    except Timeout:
        att.correct, att.note = "n/a", "evaluating SymPy's answer timed out"
    return att


def sympy_case(row: Row, ctx, wrt: str, reps: int, timeout: float, seed: int) -> None:
    """SymPy's `f.diff(X)`; where f has elementwise functions, the better of its two spellings."""
    f_expr = inline_where(ctx.function, ctx.where)
    forms = ["hadamard"] + (["applyfunc"] if uses_elementwise(f_expr) else [])
    attempts = []
    for form in forms:
        attempts.append(sympy_attempt(form, f_expr, ctx, wrt, reps, timeout, seed))
        if attempts[-1].correct == "yes":
            break
    best = min(attempts, key=lambda a: RANK[a.correct])
    row.sympy_form = best.form
    row.sympy_ms, row.sympy_correct, row.sympy_error = best.ms, best.correct, best.error
    row.sympy_answer = "" if best.answer is None else str(best.answer)
    notes = [f"{a.form}: {a.note or 'right'}" for a in attempts] if len(attempts) > 1 else [best.note]
    row.sympy_note = "; ".join(n for n in notes if n)
    if row.sympy_correct != "yes" and best.ms is not None:
        f_sym = to_sympy(f_expr, elementwise=best.form)
        x_sym = to_sympy(E.Sym(wrt, ctx.variables[wrt]))
        row.sympy_doit_correct, row.sympy_doit_note = doit_case(
            f_sym, x_sym, ctx, f_expr, wrt, dimension_sizes(ctx), timeout, seed
        )


def doit_case(f_sym, x_sym, ctx, f_expr, wrt, sizes, timeout, seed) -> tuple[str, str]:
    """Verdict on `Derivative(f, X).doit()`, which in SymPy 1.14 differs from `f.diff(X)` on sums."""
    import sympy

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answer = run_with_timeout(lambda: sympy.Derivative(f_sym, x_sym).doit(), timeout)
            verdict, note, _ = run_with_timeout(lambda: judge_sympy(answer, ctx, f_expr, wrt, sizes, seed), 4 * timeout)
    except Timeout:
        return "n/a", "timeout"
    except Exception as exc:  # noqa: BLE001
        return "n/a", f"SymPy raised {type(exc).__name__}: {str(exc)[:80]}"
    return verdict, note


def bench_problem(path: Path, reps: int, sympy_reps: int, timeout: float) -> list[Row]:
    rows: list[Row] = []
    try:
        problem = load_problem(path)
        ctx = build_context(problem)
    except DerivgenError as err:
        return [Row(path.stem, "-", derivgen_error=err.message)]
    parse_ms = median_ms(lambda: build_context(load_problem(path)), reps)
    for i, wrt in enumerate(problem.wrt):
        row = Row(path.stem, wrt, parse_ms=parse_ms)
        rows.append(row)
        try:
            if ctx.function.is_scalar:
                derive = lambda: derive_gradient(ctx, wrt)  # noqa: E731
                check = verify
            else:  # a vector- or matrix-valued f: its Jacobian (SymPy's side is not compared)
                derive = lambda: derive_jacobian(ctx.function, wrt, ctx.variables[wrt], ctx.where, ctx.assume)  # noqa: E731
                check = verify_jacobian
            derivation = derive()
            row.derive_ms = median_ms(derive, reps)
            check(ctx, derivation, seed=i)
            row.verify_ms = median_ms(lambda: check(ctx, derivation, seed=i), reps)
        except DerivgenError as err:
            row.derivgen_error = err.message
        if ctx.function.is_scalar:
            sympy_case(row, ctx, wrt, sympy_reps, timeout, seed=1000 + i)
        else:
            row.sympy_correct, row.sympy_note = "n/a", "a Jacobian: not compared with SymPy"
    return rows


# ----------------------------------------------------------------------------- the CLI build


def cli_commands(problems: Path, out: str) -> dict[str, list[str]]:
    args = ["build", str(problems), "-o", out, "--format", "md,json"]
    inline = [sys.executable, "-c", "import sys; from derivgen.cli import main; sys.exit(main(sys.argv[1:]))"]
    commands = {}
    script = shutil.which("derivgen")
    if script:
        commands["console script"] = [script, *args]
    commands["python -c"] = [*inline, *args]
    return commands


def bench_cli(problems: Path, runs: int) -> dict:
    results = {}
    for label, _ in cli_commands(problems, "OUT").items():
        times, statuses = [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="derivgen-bench-") as tmp:
                cmd = cli_commands(problems, tmp)[label]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                times.append(time.perf_counter() - t0)
                statuses.append(proc.returncode)
        results[label] = {
            "command": " ".join(cli_commands(problems, "<tmp>")[label]),
            "best_s": min(times), "median_s": statistics.median(times), "runs": runs,
            "times_s": times, "exit_status": statuses,
        }
    return results


# ----------------------------------------------------------------------------- report


def fmt(v, spec=".2f", none="—") -> str:
    return none if v is None else format(v, spec)


def summarise(rows: list[Row], cli: dict) -> dict:
    ok = [r for r in rows if r.derive_verify_ms is not None]
    per_problem: dict[str, float] = {}
    for r in ok:
        per_problem[r.problem] = per_problem.get(r.problem, 0.0) + r.derive_verify_ms
    answered = [r for r in rows if r.sympy_ms is not None and r.sympy_correct in ("yes", "no")]
    right = [r for r in answered if r.sympy_correct == "yes"]
    sympy_per_problem: dict[str, float] = {}
    for r in answered:
        sympy_per_problem[r.problem] = sympy_per_problem.get(r.problem, 0.0) + r.sympy_ms

    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None

    primary = cli.get("console script") or cli.get("python -c") or {}
    return {
        "cases": len(rows),
        "problems": len({r.problem for r in rows}),
        "derivgen_failures": sum(1 for r in rows if r.derivgen_error),
        "median_derive_verify_ms_per_problem": med(per_problem.values()),
        "median_derive_verify_ms_per_case": med(r.derive_verify_ms for r in ok),
        "median_parse_ms_per_problem": med({r.problem: r.parse_ms for r in rows}.values()),
        "median_sympy_ms_per_problem": med(sympy_per_problem.values()),
        "median_sympy_ms_per_case": med(r.sympy_ms for r in answered),
        "median_sympy_ms_per_case_right": med(r.sympy_ms for r in right),
        "median_ratio_sympy_right": med(r.ratio for r in right),
        "median_ratio_sympy_answered": med(r.ratio for r in answered),
        "ratio_target": RATIO_TARGET,
        "sympy_right": len(right),
        "sympy_wrong": sum(1 for r in rows if r.sympy_correct == "no"),
        "sympy_na": sum(1 for r in rows if r.sympy_correct == "n/a"),
        "cli_best_s": primary.get("best_s"),
        "cli_median_s": primary.get("median_s"),
        "cli_target_s": CLI_TARGET_S,
    }


def print_report(rows: list[Row], summary: dict, cli: dict, env: dict) -> None:
    head = ("problem", "wrt", "parse", "derive", "verify", "der+ver", "SymPy diff", "ratio", "SymPy right?")
    table = []
    for r in rows:
        table.append((
            r.problem, r.wrt, fmt(r.parse_ms), fmt(r.derive_ms), fmt(r.verify_ms), fmt(r.derive_verify_ms),
            fmt(r.sympy_ms), fmt(r.ratio, ".3f"),
            r.sympy_correct + (" [applyfunc]" if r.sympy_form == "applyfunc" and r.sympy_ms is not None else "")
            + (" (derivgen failed)" if r.derivgen_error else ""),
        ))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    right_align = {2, 3, 4, 5, 6, 7}

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right_align else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(f"derivgen vs SymPy {env['sympy']} — Python {env['python']}, NumPy {env['numpy']}, "
          f"{env['cpus']} CPUs, {env['reps']} reps (derivgen) / {env['sympy_reps']} (SymPy)")
    print("times in ms (medians); ratio = derivgen (derive+verify) / SymPy diff\n")
    print(line(head))
    print(line(["-" * w for w in widths]))
    for cells in table:
        print(line(cells))
    notes = [r for r in rows if r.sympy_correct != "yes" or r.derivgen_error]
    if notes:
        print("\nSymPy not right / not available:")
        for r in notes:
            what = r.sympy_correct if not r.derivgen_error else "derivgen"
            said = r.sympy_answer if len(r.sympy_answer) <= 100 else r.sympy_answer[:97] + "..."
            extra = f"\n      SymPy says: {said}" if r.sympy_correct == "no" and r.sympy_answer else ""
            print(f"  {r.problem} / {r.wrt}: {what}: {r.derivgen_error or r.sympy_note}{extra}")
            if r.sympy_doit_correct is not None:
                doit = {"yes": "right", "no": "wrong", "n/a": "n/a"}[r.sympy_doit_correct]
                print(f"      Derivative(f, {r.wrt}).doit() instead: {doit}"
                      f"{': ' + r.sympy_doit_note if r.sympy_doit_note else ''}")
    s = summary
    print("\nsummary")
    failures = f", {s['derivgen_failures']} derivgen failures" if s["derivgen_failures"] else ""
    print(f"  cases (problem × wrt)                         {s['cases']} in {s['problems']} problems{failures}")
    print(f"  median derivgen parse per problem             {fmt(s['median_parse_ms_per_problem'])} ms")
    print(f"  median derivgen derive+verify per problem     {fmt(s['median_derive_verify_ms_per_problem'])} ms"
          f"  (per case {fmt(s['median_derive_verify_ms_per_case'])} ms)")
    print(f"  median SymPy diff per problem it answered     {fmt(s['median_sympy_ms_per_problem'])} ms"
          f"  (per case {fmt(s['median_sympy_ms_per_case'])} ms; "
          f"per case it got right {fmt(s['median_sympy_ms_per_case_right'])} ms)")
    r1, r2 = s["median_ratio_sympy_right"], s["median_ratio_sympy_answered"]
    verdict = "n/a" if r1 is None else ("meets" if r1 <= RATIO_TARGET else "MISSES")
    print(f"  median ratio, cases SymPy got right           {fmt(r1, '.3f')}  (target ≤ {RATIO_TARGET}: {verdict})")
    print(f"  median ratio, all cases SymPy answered        {fmt(r2, '.3f')}")
    print(f"  SymPy answers: right {s['sympy_right']}, WRONG {s['sympy_wrong']}, "
          f"n/a (unsupported/failed/timeout) {s['sympy_na']}  of {s['cases']}")
    for label, c in cli.items():
        flag = "" if all(x == 0 for x in c["exit_status"]) else f"  EXIT STATUS {c['exit_status']}"
        verdict = "meets" if c["best_s"] < CLI_TARGET_S else "MISSES"
        print(f"  cold build ({label}): best {c['best_s']:.2f} s, median {c['median_s']:.2f} s of {c['runs']}"
              f"  (target < {CLI_TARGET_S:g} s: {verdict}){flag}")
        print(f"      {c['command']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Benchmark derivgen against SymPy on the example problems.")
    p.add_argument("--problems", type=Path, default=ROOT / "problems", help="problem directory (default: problems/)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--reps", type=int, help="timed repetitions for derivgen (default 15, quick 3)")
    p.add_argument("--sympy-reps", type=int, help="timed repetitions for SymPy (default 5, quick 2)")
    p.add_argument("--timeout", type=float, default=20.0, help="SymPy timeout per case in seconds (default 20)")
    p.add_argument("--cli-runs", type=int, help="cold CLI builds (default 3)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    reps = args.reps or (3 if args.quick else 15)
    sympy_reps = args.sympy_reps or (2 if args.quick else 5)
    cli_runs = args.cli_runs or 3

    import sympy

    env = {
        "python": platform.python_version(), "sympy": sympy.__version__, "numpy": np.__version__,
        "cpus": os.cpu_count(), "platform": platform.platform(), "reps": reps, "sympy_reps": sympy_reps,
        "timeout_s": args.timeout,
    }
    rows: list[Row] = []
    paths = sorted(args.problems.glob("*.yaml"))
    for path in paths:
        if path.name == "derivgen.yaml":
            continue
        rows.extend(bench_problem(path, reps, sympy_reps, args.timeout))
    cli = bench_cli(args.problems, cli_runs)
    summary = summarise(rows, cli)
    print_report(rows, summary, cli, env)
    if args.json:
        args.json.write_text(json.dumps(
            {"environment": env, "rows": [r.as_dict() for r in rows], "summary": summary, "cli": cli},
            indent=2, ensure_ascii=False,
        ) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The load benchmark: a set of 2000 small problems, built cold and rebuilt with no change.

A contributed problem bank can be large; a build of it must stay fast and small whatever
protections run per problem (worker processes, limits, signed cache). This script writes a
set of N distinct problems (default 2000) made from a dozen textbook shapes with varied
coefficients and sizes, then times, each as a fresh `derivgen build SET -o OUT --format md,json`
subprocess:

- the cold build (empty output folder): wall time and the peak resident memory of the build
  and all its worker processes (`resource.getrusage(RUSAGE_CHILDREN)` after each run: the
  largest single process, and their sum is not what this reports);
- the no-change rebuild (everything taken from the signed cache).

It is a script, not a test; the exit status says whether the targets hold (cold ≤ 1.25 × the
issue-11 baseline of 13.9 s, peak ≤ 150 MB per process, rebuild ≤ 1 s).

    python bench/load.py            # 2000 problems, cold ×1, rebuild ×3
    python bench/load.py -n 200     # a quick look
    python bench/load.py --json load.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (function, variables) pairs; `{k}` is a coefficient that makes every problem distinct.
SHAPES = [
    ("{k}*x'*A*x", {"x": ["n"], "A": ["n", "n"]}, ["x"]),
    ("tr(A*X*B) + {k}*tr(X)", {"X": ["m", "m"], "A": ["m", "m"], "B": ["m", "m"]}, ["X"]),
    ("norm(A*x - b)^2 + {k}*x'*x", {"x": ["n"], "A": ["m", "n"], "b": ["m"]}, ["x"]),
    ("{k}*logdet(X)", {"X": ["n", "n"]}, ["X"]),
    ("a'*exp({k}*x)", {"a": ["n"], "x": ["n"]}, ["x"]),
    ("tr(A*X*B*X') + {k}*sum(X)", {"X": ["m", "n"], "A": ["m", "m"], "B": ["n", "n"]}, ["X"]),
    ("sum(log(sigma({k}*X*w)))", {"X": ["m", "n"], "w": ["n"]}, ["w"]),
    ("{k}*tr(inv(X)*A)", {"X": ["n", "n"], "A": ["n", "n"]}, ["X"]),
    ("logsumexp(W*x) + {k}*x'*x", {"W": ["m", "n"], "x": ["n"]}, ["x"]),
    ("{k}*det(X)", {"X": ["n", "n"]}, ["X"]),
    ("tr(X'*X) / {k}", {"X": ["m", "n"]}, ["X"]),
    ("x'*A*y + {k}*y'*y", {"x": ["m"], "A": ["m", "n"], "y": ["n"]}, ["x", "y"]),
]


def write_set(folder: Path, n: int) -> None:
    """N problem files, each a shape with its own coefficient."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        function, variables, wrt = SHAPES[i % len(SHAPES)]
        k = i // len(SHAPES) + 2
        lines = [f"title: Load problem {i}", "variables:"]
        lines += [f"  {name}: [{', '.join(dims)}]" for name, dims in variables.items()]
        if "logdet" in function or "inv(X)" in function:
            lines += ["assume:", "  X: [spd]"]
        lines += [f"function: {function.format(k=k)}", f"wrt: [{', '.join(wrt)}]"]
        (folder / f"p{i:05d}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def derivgen_command() -> list[str]:
    """derivgen as this interpreter imports it (PYTHONPATH may point at another checkout)."""
    return [sys.executable, "-c", "import sys; from derivgen.cli import main; sys.exit(main())"]


def timed_build(set_dir: Path, out: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB of the largest process so far, last line printed) of one build."""
    start = time.perf_counter()
    proc = subprocess.run([*derivgen_command(), "build", str(set_dir), "-o", str(out), "--format", "md,json"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"load: the build failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak, proc.stdout.strip().splitlines()[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=2000, help="number of problems (default 2000)")
    p.add_argument("--rebuilds", type=int, default=3, help="no-change rebuilds to time (default 3)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="derivgen-load-"))
    try:
        set_dir, out = work / "set", work / "out"
        write_set(set_dir, args.n)
        env_cache = work / "cache-home"  # a fresh signing key: nothing from earlier runs is reused
        os.environ["XDG_CACHE_HOME"] = str(env_cache)
        cold, peak, line = timed_build(set_dir, out)
        print(f"cold build of {args.n} problems: {cold:.2f} s, peak RSS {peak:.0f} MB (largest process)")
        print(f"  {line}")
        rebuilds = []
        for _ in range(args.rebuilds):
            seconds, _, line = timed_build(set_dir, out)
            rebuilds.append(seconds)
        best = min(rebuilds)
        print(f"no-change rebuild: best {best:.2f} s of {len(rebuilds)} ({', '.join(f'{s:.2f}' for s in rebuilds)})")
        print(f"  {line}")
        figures = {"problems": args.n, "cold_s": cold, "peak_rss_mb": peak, "rebuild_best_s": best,
                   "rebuilds_s": rebuilds, "cpus": os.cpu_count()}
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        scale = args.n / 2000
        ok = cold <= 1.25 * 13.9 * scale + 1 and peak <= 150 and best <= 1.0
        print("targets: " + ("met" if ok else "NOT met") + f" (cold ≤ {1.25 * 13.9 * scale + 1:.1f} s, "
              "peak ≤ 150 MB, rebuild ≤ 1 s)")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

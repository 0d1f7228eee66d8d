#!/usr/bin/env python
"""Benchmark building the example set to every format: cold build, no-change rebuild, TeX alone.

    .venv/bin/python bench/formats.py                  # English, 3 runs of everything
    .venv/bin/python bench/formats.py --quick          # 1 run of everything
    .venv/bin/python bench/formats.py --lang zh        # the Chinese build (XeLaTeX) as well
    .venv/bin/python bench/formats.py --json f.json    # also write the figures as JSON
    .venv/bin/python bench/formats.py --profile        # also profile a cold build without pdf

A script, not a timed test. For each language, after one untimed warm-up (the first problem
alone to every format, so that TeX's files and fonts, node and Python's modules are in the OS's
cache: "cold" means an empty output directory, not an empty disk cache), N times (default 3,
`--quick` 1), interleaved so that a change in the machine's load hits every figure alike:

- **cold build**: `derivgen build problems/ -o <fresh empty dir> --format md,json,tex,pdf,html`
  as a subprocess (the real CLI: interpreter start, imports, every problem derived and
  verified, every file written, the PDFs compiled in parallel), wall time;
- **no-change rebuild**: the same command again on that directory, nothing changed; the CLI
  must report `0 files written`;
- **TeX alone**: the `.tex` documents derivgen compiles into PDFs (every `<id>.tex` with its
  `<id>.pdf`, `solutions.tex`, `sheet.tex`: the files the cold build wrote, the very documents
  its PDF jobs compiled), compiled in-process with `derivgen.pdf.compile_many` and its default
  workers, into a fresh directory: the TeX runs alone, run the way derivgen runs them;
- **cold build without pdf** (`--format md,json,tex,html`): the non-TeX part of the build;
- **edit-rebuild** (the instructor's loop): a set of the first `--edit-set` (default 8) problems
  of the set, built cold to every format, then one problem edited (a line appended to its file:
  it is derived, verified and rendered again, its outputs and the set's handouts rewritten, its
  PDF, `solutions.pdf`, `sheet.pdf` and `answers.pdf` compiled again) and the set rebuilt to
  every format; wall time of that rebuild (and, beside it, the small set's cold build and
  no-change rebuild).

Once per language, for context: the sequential sum of single `compile_pdf` runs of the same
documents. Each figure is a wall time; beside it, the CPU time (user + system) of the processes
involved — the CLI and its children, or the TeX runs — which tells a slow machine from a busy
one. The problem set is copied at the start and built from the copy (`--in-place` to build it
where it is), so problems added or edited meanwhile do not change the figures half-way; a
change of derivgen's own sources during the run is detected (its fingerprint) and reported.

Targets (from the issue): the no-change rebuild under 1 s; the cold build at most 1.5 × the TeX
runs alone. Verdicts use the best of the N runs (as bench/bench.py does); the medians are
reported as well. Exit status 0 when every target is met, 1 otherwise. See bench/README.md,
section "Formats".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALL_FORMATS = "md,json,tex,pdf,html"
NO_PDF_FORMATS = "md,json,tex,html"
RATIO_TARGET = 1.5       # cold build of all formats / TeX runs alone
REBUILD_TARGET_S = 1.0   # no-change rebuild
BUILD_TIMEOUT_S = 1800

INLINE = "import sys; from derivgen.cli import main; sys.exit(main(sys.argv[1:]))"
SUMMARY = re.compile(r"(\d+) files? written, (\d+) unchanged")


# ----------------------------------------------------------------------------- the CLI


def cli_prefix(kind: str) -> list[str]:
    """How to start the CLI: the console script of the checkout's venv, or `python -c`."""
    if kind == "script":
        for candidate in (ROOT / ".venv" / "bin" / "derivgen", Path(sys.executable).parent / "derivgen"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return [str(candidate)]
        found = shutil.which("derivgen")
        if found:
            return [found]
    return [sys.executable, "-c", INLINE]


def build_command(prefix: list[str], problems: Path, out: Path | str, formats: str, lang: str) -> list[str]:
    return [*prefix, "build", str(problems), "-o", str(out), "--format", formats, "--lang", lang]


def children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and theirs: latexmk's TeX runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_build(cmd: list[str]) -> dict:
    """One CLI run: wall time, CPU time (its own and its children's), exit status, files written."""
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=BUILD_TIMEOUT_S)
    seconds = time.perf_counter() - t0
    cpu = children_cpu() - cpu0
    found = SUMMARY.search(proc.stdout)
    return {
        "s": seconds,
        "cpu_s": cpu,
        "status": proc.returncode,
        "written": int(found.group(1)) if found else None,
        "unchanged": int(found.group(2)) if found else None,
        "output": (proc.stdout.strip() + ("\n" + proc.stderr.strip() if proc.stderr.strip() else ""))[-2000:],
    }


# ----------------------------------------------------------------------------- TeX alone


def tex_jobs(out: Path, lang: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(name, tex, lang) of every PDF the build compiled, from the .tex files it wrote.

    The `tex` format and the `pdf` format render the same document (`render_problem_tex`,
    `render_set_tex` with the same arguments), so `<x>.tex` is what was compiled into `<x>.pdf`.
    Returns the jobs and the PDFs without a .tex next to them (should be none).
    """
    pdfs = {p.stem for p in out.glob("*.pdf")}
    jobs = [(p.stem, p.read_text(encoding="utf-8"), lang) for p in sorted(out.glob("*.tex")) if p.stem in pdfs]
    missing = sorted(pdfs - {name for name, _, _ in jobs})
    return jobs, missing


def jobs_digest(jobs) -> str:
    h = hashlib.sha256()
    for name, tex, lang in jobs:
        h.update(f"{name}\0{lang}\0".encode())
        h.update(tex.encode())
    return h.hexdigest()[:16]


def time_tex_alone(jobs, where: Path) -> dict:
    """Compile every job with `compile_many` and its default workers, into `where`; wall time."""
    from derivgen.pdf import compile_many

    where.mkdir(parents=True)
    batch = [(tex, where / f"{name}.pdf", lang) for name, tex, lang in jobs]
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    errors = compile_many(batch)
    seconds = time.perf_counter() - t0
    cpu = children_cpu() - cpu0
    failed = [f"{name}: {err.message}" for (name, _, _), err in zip(jobs, errors) if err is not None]
    return {"s": seconds, "cpu_s": cpu, "failed": failed}


def time_sequential(jobs, where: Path) -> dict:
    """Each job on its own with `compile_pdf`, one after the other: per-job times and their sum."""
    from derivgen.errors import RenderError
    from derivgen.pdf import compile_pdf

    where.mkdir(parents=True)
    per_job, failed = {}, []
    for name, tex, lang in jobs:
        t0 = time.perf_counter()
        try:
            compile_pdf(tex, where / f"{name}.pdf", lang)
        except RenderError as err:
            failed.append(f"{name}: {err.message}")
        per_job[name] = time.perf_counter() - t0
    slowest = max(per_job, key=per_job.get) if per_job else None
    return {"sum_s": sum(per_job.values()), "max_s": per_job.get(slowest), "slowest": slowest,
            "median_s": statistics.median(per_job.values()) if per_job else None,
            "per_job_s": per_job, "failed": failed}


# ----------------------------------------------------------------------------- one language


def fingerprint() -> str:
    """derivgen's own fingerprint (its sources and templates), recomputed: a change during the
    run (someone editing derivgen) makes a rebuild rewrite everything, and is reported."""
    from derivgen.build import derivgen_fingerprint

    return derivgen_fingerprint.__wrapped__()


def stats(runs: list[dict]) -> dict:
    times = [r["s"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    return {"best_s": min(times), "median_s": statistics.median(times), "times_s": times, "runs": len(times),
            "cpu_median_s": statistics.median(cpu), "cpu_s": cpu}


def edit_set(problems: Path, n: int, where: Path, lang: str) -> tuple[Path, Path]:
    """A set of the first `n` problems of `problems` (in its order) in `where`; (the set, the problem to edit)."""
    from derivgen.problem import find_problems

    _, files = find_problems([problems])
    where.mkdir(parents=True)
    (where / "derivgen.yaml").write_text(f"title: Edit-rebuild benchmark ({n} problems)\nlanguage: {lang}\n",
                                         encoding="utf-8")
    chosen = [Path(shutil.copy2(f, where / f.name)) for f in files[:n]]
    return where, chosen[0]


def bench_edit(lang: str, problems: Path, n: int, runs: int, prefix: list[str], base: Path, log) -> dict:
    """The edit-rebuild loop on a set of `n` problems: cold build, no-change rebuild, then (timed)
    the rebuild after one problem is edited, `runs` times."""
    small, edited = edit_set(problems, n, base / "edit-set", lang)
    cold, same, edit, notes = [], [], [], []
    for rep in range(runs):
        out = base / f"edit-out-{rep}"
        cmd = build_command(prefix, small, out, ALL_FORMATS, lang)
        r = run_build(cmd)
        cold.append(r)
        if r["status"] != 0:
            notes.append(f"{n}-problem cold build {rep + 1} exited with {r['status']}:\n{r['output']}")
        r = run_build(cmd)
        same.append(r)
        with edited.open("a", encoding="utf-8") as f:  # a changed file: derived, rendered, compiled again
            f.write(f"# edited by bench/formats.py (run {rep + 1})\n")
        r = run_build(cmd)
        edit.append(r)
        if r["status"] != 0 or not r["written"]:
            notes.append(f"edit-rebuild {rep + 1}: exit {r['status']}, {r['written']} files written:\n{r['output']}")
        log(f"  [{lang} {rep + 1}/{runs}] {n}-problem set: cold {cold[-1]['s']:.2f} s, no-change {same[-1]['s']:.2f} s, "
            f"edit-rebuild {r['s']:7.2f} s  (exit {r['status']}, {r['written']} files written)")
        shutil.rmtree(out, ignore_errors=True)
    return {
        "problems": n,
        "edited": edited.name,
        "cold": stats(cold),
        "no_change": {**stats(same), "files_written": [x["written"] for x in same]},
        "edit_rebuild": {**stats(edit), "files_written": [x["written"] for x in edit],
                         "exit_status": [x["status"] for x in edit]},
        "notes": notes,
    }


def bench_language(lang: str, problems: Path, runs: int, prefix: list[str], sequential: bool, warm_up: bool,
                   log, edit_n: int = 8) -> dict:
    from derivgen.pdf import tex_available

    missing = tex_available(lang)
    if missing:
        return {"lang": lang, "skipped": f"cannot make PDFs: {missing}"}
    fp_start = fingerprint()
    cold, rebuild, tex, no_pdf = [], [], [], []
    digests, problems_found, notes = set(), {}, []
    jobs: list = []
    with tempfile.TemporaryDirectory(prefix=f"derivgen-formats-{lang}-") as tmp:
        base = Path(tmp)
        if warm_up:  # untimed: one problem to every format, so that TeX's files, its fonts (CJK ones
            # for zh), node and the Python modules are read from disk before the first timed run
            first = next((p for p in sorted(problems.glob("*.yaml")) if p.name != "derivgen.yaml"), None)
            if first is not None:
                r = run_build(build_command(prefix, first, base / "warm-up", ALL_FORMATS, lang))
                log(f"  [{lang}] warm-up (untimed): {first.name} to every format, {r['s']:.2f} s")
                shutil.rmtree(base / "warm-up", ignore_errors=True)
        for rep in range(runs):
            out = base / f"cold-{rep}"  # not created: the CLI makes it (a fresh, empty output dir)
            fp_cold = fingerprint()
            r = run_build(build_command(prefix, problems, out, ALL_FORMATS, lang))
            cold.append(r)
            log(f"  [{lang} {rep + 1}/{runs}] cold build            {r['s']:7.2f} s  "
                f"(exit {r['status']}, {r['written']} files written)")
            if r["status"] != 0:
                notes.append(f"cold build {rep + 1} exited with {r['status']}:\n{r['output']}")
            rep_jobs, missing_tex = tex_jobs(out, lang)
            digests.add(jobs_digest(rep_jobs))
            if rep == 0:
                if not rep_jobs:
                    return {"lang": lang, "skipped": f"the cold build compiled no PDF:\n{r['output']}"}
                jobs = rep_jobs
                problems_found = {
                    "files_written": r["written"],
                    "files_in_out": sum(1 for p in out.iterdir() if not p.name.startswith(".")),
                    "files_in_out_recursive": sum(1 for p in out.rglob("*") if p.is_file()
                                                  and ".derivgen-cache" not in p.relative_to(out).parts),
                    "pdfs": len(list(out.glob("*.pdf"))),
                    "problems": len(list(out.glob("*.json"))),
                }
                if missing_tex:
                    notes.append(f"PDFs without a .tex next to them (not in TeX alone): {missing_tex}")

            r = run_build(build_command(prefix, problems, out, ALL_FORMATS, lang))
            if r["written"] != 0 and fingerprint() != fp_cold:
                notes.append(f"rebuild {rep + 1}: derivgen's sources changed during the run "
                             f"({r['written']} files written); timed again")
                run_build(build_command(prefix, problems, out, ALL_FORMATS, lang))  # catch up
                r = run_build(build_command(prefix, problems, out, ALL_FORMATS, lang))
            rebuild.append(r)
            log(f"  [{lang} {rep + 1}/{runs}] no-change rebuild     {r['s']:7.2f} s  "
                f"(exit {r['status']}, {r['written']} files written, {r['unchanged']} unchanged)")

            t = time_tex_alone(jobs, base / f"tex-{rep}")
            tex.append(t)
            log(f"  [{lang} {rep + 1}/{runs}] TeX alone ({len(jobs)} PDFs)  {t['s']:7.2f} s"
                + (f"  FAILED: {t['failed'][:3]}" if t["failed"] else ""))

            r = run_build(build_command(prefix, problems, base / f"nopdf-{rep}", NO_PDF_FORMATS, lang))
            no_pdf.append(r)
            log(f"  [{lang} {rep + 1}/{runs}] cold build without pdf {r['s']:7.2f} s  "
                f"(exit {r['status']}, {r['written']} files written)")
            for d in (out, base / f"tex-{rep}", base / f"nopdf-{rep}"):
                shutil.rmtree(d, ignore_errors=True)
        edit = bench_edit(lang, problems, edit_n, runs, prefix, base, log) if edit_n else None
        seq = None
        if sequential and jobs:
            seq = time_sequential(jobs, base / "sequential")
            log(f"  [{lang}] TeX sequential: sum of {len(jobs)} single compiles {seq['sum_s']:.2f} s "
                f"(longest {seq['slowest']} {seq['max_s']:.2f} s)")
    if len(digests) > 1:
        notes.append("the .tex documents differed between cold builds (not deterministic?)")
    if fingerprint() != fp_start:
        notes.append("derivgen's sources changed during the run: the figures mix two versions")

    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    c, t, n, p = (stats(xs) for xs in (cold, tex, rebuild, no_pdf))
    ratio_best = c["best_s"] / t["best_s"]
    ratio_median = c["median_s"] / t["median_s"]
    t_failed = sorted({f for x in tex for f in x["failed"]})
    return {
        "lang": lang,
        "command": " ".join(build_command(prefix, problems, "<fresh dir>", ALL_FORMATS, lang)),
        "files": problems_found,
        "tex_jobs": len(jobs),
        "workers": workers,
        "cold": {**c, "exit_status": [x["status"] for x in cold], "files_written": [x["written"] for x in cold]},
        "tex_alone": {**t, "failed": t_failed},
        "ratio_best": ratio_best,
        "ratio_median": ratio_median,
        "ratio_target": RATIO_TARGET,
        "ratio_meets": ratio_best <= RATIO_TARGET and all(x["status"] == 0 for x in cold) and not t_failed,
        "non_tex_best_s": c["best_s"] - t["best_s"],
        "no_change": {**n, "exit_status": [x["status"] for x in rebuild],
                      "files_written": [x["written"] for x in rebuild]},
        "no_change_target_s": REBUILD_TARGET_S,
        "no_change_meets": n["best_s"] < REBUILD_TARGET_S
                           and all(x["written"] == 0 and x["status"] == 0 for x in rebuild),
        "cold_without_pdf": {**p, "exit_status": [x["status"] for x in no_pdf],
                             "files_written": [x["written"] for x in no_pdf]},
        "tex_sequential": seq,
        "edit": edit,
        "notes": notes,
    }


# ----------------------------------------------------------------------------- profile

PROFILE_CODE = """\
import cProfile, sys
prof = cProfile.Profile()
prof.enable()
from derivgen.cli import main
status = main(sys.argv[2:])
prof.disable()
prof.dump_stats(sys.argv[1])
sys.exit(status)
"""

#: Where the time of a build goes: (label, module, qualified name) of derivgen functions, or
#: (label, file suffix, function name) for the others; cumulative times.
PHASES = [
    ("imports (every module, first use)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("find_problems (the set file, the problem list)", "derivgen.problem", "find_problems"),
    ("derivgen_fingerprint (hash of derivgen's sources)", "derivgen.build", "derivgen_fingerprint"),
    ("Builder.document (per problem: cache or derive)", "derivgen.build", "Builder.document"),
    ("  Cache.document (read a cached document)", "derivgen.build", "Cache.document"),
    ("  problem_document (load + derive + verify)", "derivgen.pipeline", "problem_document"),
    ("    solve (derive + verify)", "derivgen.pipeline", "solve"),
    ("    verify", "derivgen.verify", "verify"),
    ("    document (the JSON document)", "derivgen.pipeline", "document"),
    ("  Cache.store_document", "derivgen.build", "Cache.store_document"),
    ("set_document (the set's document)", "derivgen.cli", "set_document"),
    ("Builder.write (every output: check, render, write)", "derivgen.build", "Builder.write"),
    ("  render_problem_md", "derivgen.render", "render_problem_md"),
    ("  render_set_md", "derivgen.render", "render_set_md"),
    ("  render_problem_tex", "derivgen.latex", "render_problem_tex"),
    ("  render_set_tex", "derivgen.latex", "render_set_tex"),
    ("  render_problem_html", "derivgen.html", "render_problem_html"),
    ("  render_set_html", "derivgen.html", "render_set_html"),
    ("    KaTeX round trips (katex.render)", "derivgen.katex", "render"),
    ("      waiting for node (KatexProcess._ask)", "derivgen.katex", "KatexProcess._ask"),
    ("    starting node + KaTeX", "derivgen.katex", "KatexProcess.__init__"),
    ("  write_atomic (every output file)", "derivgen.output", "write_atomic"),
    ("    os.fsync", "~", "<built-in method posix.fsync>"),
    ("write_assets (CSS, KaTeX CSS and fonts)", "derivgen.html", "write_assets"),
    ("Cache.save (the manifest)", "derivgen.build", "Cache.save"),
]


def _code_of(module: str, qualname: str) -> tuple[str, int, str] | None:
    """(file suffix, first line, name) of a derivgen function, to find it in the profile."""
    import importlib

    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        code = getattr(obj, "__wrapped__", obj).__code__
    except (ImportError, AttributeError):
        return None
    return module.replace(".", "/") + ".py", code.co_firstlineno, code.co_name


def _phase_entries(entries: dict, where: str, name: str) -> list:
    if where.startswith("derivgen."):
        found = _code_of(where, name)
        if found is None:
            return []
        suffix, line, func = found
        hits = {k: v for k, v in entries.items() if k[2] == func and k[0].endswith(suffix)}
        if len(hits) > 1:  # several functions of that name in the file (Cache.document, Builder.document)
            hits = {k: v for k, v in hits.items() if k[1] == line}
        return list(hits.values())
    return [v for k, v in entries.items() if k[2] == name and k[0].endswith(where)]


def _short(key) -> str:
    file, line, func = key
    if file == "~":
        return func
    parts = Path(file).parts
    for anchor in ("derivgen", "site-packages"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            short = "/".join(parts[i:] if anchor == "derivgen" else parts[i + 1:])
            return f"{short}:{line}({func})"
    return f"{Path(file).name}:{line}({func})"


def _profiled_run(args: list[str], stats_file: Path, top: int) -> dict:
    """Run the CLI under cProfile in a subprocess (imports included) and summarise the profile."""
    import pstats

    cmd = [sys.executable, "-c", PROFILE_CODE, str(stats_file), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=BUILD_TIMEOUT_S)
    wall = time.perf_counter() - t0
    if not stats_file.exists():
        return {"error": f"profiling failed (exit {proc.returncode}): {proc.stderr[-1000:]}"}
    entries = pstats.Stats(str(stats_file)).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    in_main = sum(v[3] for k, v in entries.items() if k[2] == "main" and k[0].endswith("derivgen/cli.py"))
    phases = []
    for label, where, name in PHASES:
        hits = _phase_entries(entries, where, name)
        phases.append({"phase": label, "cumulative_s": sum(v[3] for v in hits), "calls": sum(v[1] for v in hits)})
    by_own = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    derivgen_cum = sorted(((k, v) for k, v in entries.items() if "/derivgen/" in k[0]),
                          key=lambda kv: kv[1][3], reverse=True)[:top]
    found = SUMMARY.search(proc.stdout)

    def item(k, v):
        return {"function": _short(k), "tottime_s": v[2], "cumtime_s": v[3], "calls": v[1]}

    return {
        "command": " ".join(["python", "-c", "<cProfile around derivgen.cli.main>", *args]),
        "wall_s_profiled": wall,
        "s_in_main": in_main,
        "exit_status": proc.returncode,
        "files_written": int(found.group(1)) if found else None,
        "phases": phases,
        "top_tottime": [item(k, v) for k, v in by_own],
        "top_derivgen_cumtime": [item(k, v) for k, v in derivgen_cum],
    }


def profile_builds(problems: Path, lang: str, top: int) -> dict:
    """cProfile a cold build without pdf, then the no-change rebuild of that directory."""
    with tempfile.TemporaryDirectory(prefix=f"derivgen-profile-{lang}-") as tmp:
        out = Path(tmp) / "out"
        args = ["build", str(problems), "-o", str(out), "--format", NO_PDF_FORMATS, "--lang", lang]
        return {
            "cold_without_pdf": _profiled_run(args, Path(tmp) / "cold.prof", top),
            "no_change_without_pdf": _profiled_run(args, Path(tmp) / "rebuild.prof", top),
        }


# ----------------------------------------------------------------------------- report


def environment() -> dict:
    def run(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "latexmk": next((x.strip() for x in run(["latexmk", "-v"]).splitlines() if "Version" in x), ""),
        "pdftex": (run(["pdflatex", "--version"]).splitlines() or [""])[0],
        "xetex": (run(["xelatex", "--version"]).splitlines() or [""])[0],
        "git_head": run(["git", "rev-parse", "--short", "HEAD"]),
        "derivgen_dirty_files": len(run(["git", "status", "--porcelain", "--", "derivgen"]).splitlines()),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
    }


def print_language(res: dict) -> None:
    if "skipped" in res:
        print(f"\n[{res['lang']}] skipped: {res['skipped']}")
        return
    f, c, t, n, p = res["files"], res["cold"], res["tex_alone"], res["no_change"], res["cold_without_pdf"]
    engine = "XeLaTeX" if res["lang"] == "zh" else "pdfLaTeX"
    print(f"\n[{res['lang']}] {f['problems']} problems, {f['files_written']} files written by a cold build "
          f"({f['files_in_out']} entries in the output dir, {f['files_in_out_recursive']} files with the assets), "
          f"{res['tex_jobs']} PDFs ({engine}), {res['workers']} TeX workers, {c['runs']} runs")
    print(f"  {res['command']}")

    def row(label, s, extra=""):
        print(f"  {label:<38} best {s['best_s']:6.2f} s   median {s['median_s']:6.2f} s   "
              f"CPU {s['cpu_median_s']:6.2f} s{extra}")

    bad = [x for x in c["exit_status"] if x != 0]
    row("cold build, all formats", c, f"   EXIT STATUS {c['exit_status']}" if bad else "")
    row(f"TeX alone ({res['tex_jobs']} PDFs, compile_many)", t, f"   FAILED {t['failed']}" if t["failed"] else "")
    verdict = "meets" if res["ratio_meets"] else "MISSES"
    print(f"  {'ratio cold / TeX alone':<38} best {res['ratio_best']:6.2f}     median {res['ratio_median']:6.2f}"
          f"     (target ≤ {RATIO_TARGET:g}: {verdict})")
    written = n["files_written"]
    verdict = "meets" if res["no_change_meets"] else "MISSES"
    row("no-change rebuild", n, f"   files written {written}  (target < {REBUILD_TARGET_S:g} s, 0 written: {verdict})")
    row("cold build, no pdf (md,json,tex,html)", p)
    print(f"  {'non-TeX part of the cold build':<38} cold − TeX alone (best): {res['non_tex_best_s']:.2f} s; "
          f"1.5 × TeX allows {(RATIO_TARGET - 1) * t['best_s']:.2f} s")
    seq = res["tex_sequential"]
    if seq:
        print(f"  {'TeX sequential (context)':<38} sum {seq['sum_s']:6.2f} s   median job {seq['median_s']:.2f} s, "
              f"longest {seq['slowest']} {seq['max_s']:.2f} s; parallel speed-up "
              f"{seq['sum_s'] / t['median_s']:.2f}× on {res['workers']} workers")
    e = res.get("edit")
    if e:
        print(f"  {e['problems']}-problem set, all formats (the edit loop; {e['edited']} edited):")
        row("  cold build", e["cold"])
        row("  no-change rebuild", e["no_change"], f"   files written {e['no_change']['files_written']}")
        row("  edit-rebuild (one problem edited)", e["edit_rebuild"],
            f"   files written {e['edit_rebuild']['files_written']}")
        for note in e["notes"]:
            print(f"  note: {note}")
    for note in res["notes"]:
        print(f"  note: {note}")


def print_profile(prof: dict, label: str) -> None:
    print(f"\n[{label}] (cProfile, in a subprocess; {prof.get('wall_s_profiled', 0):.2f} s wall under the profiler, "
          f"{prof.get('files_written')} files written)")
    if "error" in prof:
        print(f"  {prof['error']}")
        return
    print(f"  time in derivgen.cli.main: {prof['s_in_main']:.2f} s (profiled; the profiler slows Python code down)")
    print("  where it goes (cumulative; indented phases are inside the one above):")
    for ph in prof["phases"]:
        if ph["calls"]:
            print(f"    {ph['phase']:<58} {ph['cumulative_s']:6.2f} s  ({ph['calls']} calls)")
    print("  top functions by own time:")
    for item in prof["top_tottime"]:
        print(f"    {item['tottime_s']:6.2f} s own  {item['cumtime_s']:6.2f} s cum  {item['calls']:>8}  "
              f"{item['function']}")
    print("  top derivgen functions by cumulative time:")
    for item in prof["top_derivgen_cumtime"]:
        print(f"    {item['cumtime_s']:6.2f} s cum  {item['tottime_s']:6.2f} s own  {item['calls']:>8}  "
              f"{item['function']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Cold and no-change builds of the example set to every format, "
                                            "against the TeX runs alone.")
    p.add_argument("--problems", type=Path, default=ROOT / "problems", help="problem set (default: problems/)")
    p.add_argument("--runs", type=int, default=None, help="repetitions of each measurement (default 3)")
    p.add_argument("--quick", action="store_true", help="one run of each measurement")
    p.add_argument("--lang", action="append", choices=("en", "zh"), default=[],
                   help="`--lang zh`: run the Chinese build (XeLaTeX) as well, reported separately")
    p.add_argument("--skip-en", action="store_true", help="with --lang zh: only the Chinese build")
    p.add_argument("--command", choices=("script", "python"), default="script",
                   help="start the CLI as the venv's console script (default) or as `python -c`")
    p.add_argument("--in-place", action="store_true",
                   help="build the problem set where it is (default: from a copy taken at the start)")
    p.add_argument("--no-warm-up", action="store_true",
                   help="skip the untimed warm-up build of one problem before the timed runs")
    p.add_argument("--no-sequential", action="store_true", help="skip the sequential TeX sum (context)")
    p.add_argument("--edit-set", type=int, default=8, metavar="N",
                   help="problems in the set of the edit-rebuild measurement (default 8; 0 skips it)")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile a cold build without pdf and its no-change rebuild")
    p.add_argument("--top", type=int, default=15, help="rows in the profile listings (default 15)")
    p.add_argument("--wait-for-load", type=float, metavar="L",
                   help="first wait (up to 5 min) until the 1-minute load average is at most L")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    langs = ([] if args.skip_en else ["en"]) + [lang for lang in dict.fromkeys(args.lang) if lang != "en"]
    if not langs:
        p.error("nothing to run (--skip-en without --lang zh)")

    if args.wait_for_load is not None:  # e.g. right after another benchmark: let the machine settle
        deadline = time.monotonic() + 300
        while os.getloadavg()[0] > args.wait_for_load and time.monotonic() < deadline:
            time.sleep(5)
    env = environment()  # the load average first, before this script adds to it
    prefix = cli_prefix(args.command)
    env["command"] = prefix
    problems = args.problems.resolve()
    snapshot = None
    if not args.in_place:  # others may add or edit problems while this runs: build a copy
        snapshot = tempfile.TemporaryDirectory(prefix="derivgen-formats-set-")
        problems = Path(shutil.copytree(problems, Path(snapshot.name) / problems.name,
                                        ignore=shutil.ignore_patterns(".*", "__pycache__")))
        env["problems_snapshot_of"] = str(args.problems.resolve())
    load = " ".join(f"{x:.2f}" for x in env["loadavg_start"])
    print(f"derivgen formats benchmark — {env['cpus']} CPUs, load average at start {load} (1, 5, 15 min), "
          f"Python {env['python']}, {env['pdftex']}; git {env['git_head']}"
          + (f" + {env['derivgen_dirty_files']} changed files in derivgen/" if env["derivgen_dirty_files"] else ""))
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    results, profiles = {}, {}
    for lang in langs:
        results[lang] = bench_language(lang, problems, runs, prefix, not args.no_sequential, not args.no_warm_up, log,
                                       args.edit_set)
        if args.profile:
            profiles[lang] = profile_builds(problems, lang, args.top)
    env["loadavg_end"] = os.getloadavg()
    if snapshot is not None:
        snapshot.cleanup()

    print("\nsummary")
    for lang in langs:
        print_language(results[lang])
    for lang, prof in profiles.items():
        print_profile(prof["cold_without_pdf"], f"{lang} profile: cold build without pdf")
        print_profile(prof["no_change_without_pdf"], f"{lang} profile: no-change rebuild without pdf")
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in env['loadavg_end'])}")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "runs": runs, "results": results, "profiles": profiles},
                                        indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    ok = all(r.get("ratio_meets") and r.get("no_change_meets") for r in results.values())  # a skipped one: not met
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

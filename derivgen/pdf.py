"""PDF handouts: a LaTeX document (from `derivgen.latex`) compiled by pdfLaTeX or XeLaTeX.

Every compilation happens in a fresh temporary directory, with the engine the document asks
for in its first line (``% !TEX program = xelatex``; pdfLaTeX otherwise, XeLaTeX always for
Chinese). The engine is run directly, once, and again only when its log asks for it (LaTeX's
"Label(s) may have changed", any "Rerun to get …", a table of contents or list read as missing
and written by the run), at most `MAX_RUNS` times; a document that needs BibTeX, Biber or an
index is handed to latexmk (`-norc`) in the same directory. hyperref's outlines are written in
the same run by loading the `bookmark` package right after hyperref (a hook on the command
line; the document itself is not changed), so a handout compiles in one run where latexmk
always made two in a fresh directory (about 2.4 × faster per PDF). Always:

- without shell escape (``-no-shell-escape``; ``shell_escape=f`` for kpathsea too), with
  TeX allowed to read and write files only below the working directory (``openin_any`` and
  ``openout_any`` paranoid), and, for latexmk, without any latexmkrc (``-norc``): a problem
  file cannot make TeX run a program or touch files elsewhere;
- non-interactively, stopping at the first error (``-interaction=nonstopmode
  -halt-on-error``) and under a time limit (`TIME_LIMIT`, 20 s for a problem's handout and
  a quarter of a second more per problem for a set's, for all the runs together: a few times
  what a handout needs, far below what a loop would cost), after which TeX (and latexmk) are
  killed as a process group.

A compiled PDF is moved into place with `derivgen.output.write_atomic`: a reader never sees a
partial PDF. When compiling fails, `RenderError` carries TeX's first error (its ``!`` line and
the ``l.<n>`` context) and nothing is written; a PDF from an earlier successful build stays,
as every other output does when its new version cannot be written.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DerivgenError, Location, RenderError
from .latex import CJK_FONTS, XELATEX, engine_of
from .output import write_atomic

#: What each engine needs: commands on PATH, LaTeX packages (.sty) and fonts, each with the
#: Debian package that provides it (scripts/setup-tex.sh installs them all).
_STY = {
    "amsmath": "texlive-latex-base", "amssymb": "texlive-base", "array": "texlive-latex-base",
    "geometry": "texlive-latex-base", "hyperref": "texlive-latex-base",
    "mathtools": "texlive-latex-recommended", "booktabs": "texlive-latex-recommended",
    "enumitem": "texlive-latex-extra",
}
_REQUIREMENTS = {
    "pdflatex": {
        "commands": {"pdflatex": "texlive-latex-base"},
        "sty": {**_STY, "bookmark": "texlive-latex-base", "lmodern": "lmodern"},
        "fonts": {},
    },
    "xelatex": {
        "commands": {"xelatex": "texlive-xetex"},
        "sty": {**_STY, "bookmark": "texlive-latex-base", "fontspec": "texlive-latex-recommended",
                "xeCJK": "texlive-lang-cjk"},
        "fonts": {font: "fonts-noto-cjk" for font in CJK_FONTS.values()},
    },
}

#: The file name of the document inside the temporary directory.
_JOB = "handout"

#: What the engine is given to read: the document, with hyperref's outlines written in the same
#: run (`bookmark` loaded right after hyperref, if the document loads hyperref; without the
#: hook, hyperref writes them to a .out file read by a second run).
_FIRST_LINE = (r"\ifdefined\AddToHook\AddToHook{package/hyperref/after}{\RequirePackage{bookmark}}\fi"
               rf"\input{{{_JOB}.tex}}")

#: The most engine runs a compilation makes (LaTeX's labels settle in two; latexmk allows five).
MAX_RUNS = 4

#: A log line asking for another run: LaTeX's labels, "Rerun to get …" of LaTeX and packages
#: (cross-references, outlines through rerunfilecheck, lastpage, …), longtable's widths.
_RERUN = re.compile(r"Label\(s\) may have changed|Rerun to get|Rerun LaTeX|Please rerun LaTeX"
                    r"|\(rerunfilecheck\)\s+Rerun|Table widths have changed|Temporary extra page added")
#: An auxiliary file the run read as missing ("No file handout.toc."): if the run wrote it, the
#: next run reads it (a table of contents, list of figures, …; the .aux is LaTeX's labels, above).
_NO_FILE = re.compile(rf"^No file {_JOB}\.(?P<ext>\w+)\.", re.MULTILINE)
#: What only latexmk's tools make: a bibliography (BibTeX, Biber) or an index.
_NEEDS_TOOL = re.compile(r"Please \(re\)run Biber|Please rerun BibTeX|^No file " + _JOB + r"\.(?:bbl|ind|gls|nls)\.",
                         re.MULTILINE)

#: The longest a problem's handout may take to compile, in seconds (wall clock, all of
#: latexmk's runs together). One compiles in about 2 s (pdfLaTeX) to 4 s (XeLaTeX with the
#: CJK fonts) on one core; the margin covers a loaded machine. A run over its limit is stopped
#: (latexmk and TeX killed as a process group) and leaves no PDF.
TIME_LIMIT = 20.0
#: What a set's handout may take besides `TIME_LIMIT`, per problem in it: the example set's
#: 46 problems (55 pages) compile in about 4.5 s, within 20 + 46 × 0.25 = 31.5 s.
TIME_PER_PROBLEM = 0.25


def time_limit(problems: int = 1) -> float:
    """The time limit (seconds) of a handout holding `problems` problems."""
    return TIME_LIMIT + TIME_PER_PROBLEM * max(0, problems - 1)


class Cancelled(RenderError):
    """A compilation stopped before its end because its result is no longer wanted."""


def _engine(lang: str, tex: str | None = None) -> str:
    if lang.split("-")[0].split("_")[0].lower() == "zh":
        return XELATEX
    return engine_of(tex) if tex is not None else "pdflatex"


def tex_available(lang: str = "en", tex: str | None = None) -> str | None:
    """Return None when PDFs in `lang` can be made here, else what to install (Debian packages).

    `tex`, if given, is the document to compile: an English handout with characters only
    XeLaTeX typesets needs what a Chinese one needs.
    """
    need = _REQUIREMENTS[_engine(lang, tex)]
    packages: list[str] = []
    missing: list[str] = []

    def lack(what: str, package: str) -> None:
        missing.append(what)
        if package not in packages:
            packages.append(package)

    for command, package in need["commands"].items():
        if shutil.which(command) is None:
            lack(command, package)
    kpsewhich = shutil.which("kpsewhich")
    found = _run_quiet([kpsewhich, *(f"{sty}.sty" for sty in need["sty"])]) if kpsewhich else ""
    for sty, package in need["sty"].items():
        if f"/{sty}.sty" not in found:
            lack(f"{sty}.sty", package)
    if need["fonts"]:
        fc_list = shutil.which("fc-list")
        families = _run_quiet([fc_list, ":", "family"]) if fc_list else ""
        for font, package in need["fonts"].items():
            if font.lower() not in families.lower():
                lack(f'the font "{font}"', package)
    if not missing:
        return None
    return (
        f"{'PDF output through XeLaTeX (for Chinese)' if need is _REQUIREMENTS['xelatex'] else 'PDF output'} needs "
        f"{', '.join(missing)}: install them with "
        f"`apt-get install --no-install-recommends {' '.join(packages)}` "
        f"(or run scripts/setup-tex.sh)"
    )


def _run_quiet(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def compile_pdf(
    tex: str,
    out_pdf: str | Path,
    lang: str = "en",
    timeout: float = TIME_LIMIT,
    log: str | Path | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Compile the LaTeX document `tex` into `out_pdf` (written atomically).

    Raises `RenderError` when TeX is missing, when the document has an error (the message is
    TeX's first error with its line) or when the run takes longer than `timeout` seconds (see
    `TIME_LIMIT`); no new PDF is written then. Setting the event `cancel` stops the run at
    once (`Cancelled`). With `log`, TeX's log is written there, whatever the outcome.
    """
    out_pdf = Path(out_pdf)
    engine = _engine(lang, tex)
    missing = tex_available(lang, tex)
    if missing is not None:
        raise RenderError(f"cannot make {out_pdf.name}: {missing}")
    with tempfile.TemporaryDirectory(prefix="derivgen-tex-") as tmp:
        work = Path(tmp)
        source = work / f"{_JOB}.tex"
        source.write_text(tex, encoding="utf-8")
        env = {
            **os.environ,
            "shell_escape": "f",
            "openin_any": "p",
            "openout_any": "p",
            "max_print_line": "10000",  # one log line per message: errors are parsed whole
        }
        argv = [
            engine,
            "-no-shell-escape",
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-file-line-error",
            f"-jobname={_JOB}",
            _FIRST_LINE,
        ]
        deadline = time.monotonic() + timeout
        pdf = work / f"{_JOB}.pdf"
        log_file = work / f"{_JOB}.log"
        outputs: list[str] = []
        returncode = 0
        for _ in range(MAX_RUNS):
            returncode, output = _run_tex(argv, work, env, out_pdf, deadline, timeout, cancel)
            outputs.append(output)
            log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
            if returncode != 0 or not _needs_rerun(log_text, work):
                break
        if returncode == 0 and (_NEEDS_TOOL.search(log_text) or _needs_rerun(log_text, work)
                                or _aux_asks_bibtex(work)):
            # A bibliography, an index, or labels that do not settle: what latexmk is for.
            latexmk = [
                "latexmk",
                "-norc",  # no latexmkrc (system, user or here) can change the commands
                "-xelatex" if engine == XELATEX else "-pdf",
                "-no-shell-escape",
                "-interaction=nonstopmode",
                "-halt-on-error",
                "-file-line-error",
                "-silent",
                source.name,
            ]
            returncode, output = _run_tex(latexmk, work, env, out_pdf, deadline, timeout, cancel)
            outputs.append(output)
            log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
        if log is not None:
            write_atomic(log, log_text)
        if returncode != 0 or not _complete_pdf(pdf):
            raise _tex_error(out_pdf, tex, log_text, outputs[-1])
        write_atomic(out_pdf, pdf.read_bytes())


def _run_tex(argv: list[str], work: Path, env: dict, out_pdf: Path, deadline: float, timeout: float,
             cancel: threading.Event | None) -> tuple[int, str]:
    """One run of TeX (or latexmk) in `work`, in its own process group, stopped at `deadline`;
    (its exit status, its output)."""
    try:
        proc = subprocess.Popen(
            argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    except OSError as exc:
        raise RenderError(f"cannot make {out_pdf.name}: cannot run {argv[0]} ({exc})") from exc
    output = _wait(proc, out_pdf, timeout, cancel, deadline)
    return proc.returncode, output.decode("utf-8", errors="replace")


def _needs_rerun(log: str, work: Path) -> bool:
    """Whether TeX's log asks for another run: a rerun message, or an auxiliary file (other than
    the .aux, whose labels LaTeX checks itself) read as missing and written by the run."""
    for match in _RERUN.finditer(log):
        line = log[log.rfind("\n", 0, match.start()) + 1:log.find("\n", match.end())]
        if "/PageLabels" in line and _default_page_labels(work):
            continue  # XeTeX's hyperref: page labels 1, 2, … are what a reader shows anyway
        return True
    for match in _NO_FILE.finditer(log):
        ext = match.group("ext")
        if ext not in ("aux", "bbl", "ind", "gls", "nls"):
            written = work / f"{_JOB}.{ext}"
            if written.is_file() and written.stat().st_size > 0:
                return True
    return False


def _default_page_labels(work: Path) -> bool:
    """Whether the page labels hyperref recorded (for XeTeX, in the .aux, for the next run) are
    only the default ones: decimal numbers from the first page (the PDF then needs no entry)."""
    try:
        aux = (work / f"{_JOB}.aux").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.findall(r"\\HyPL@Entry\{(.*)\}", aux) == ["0<</S/D>>"]


def _aux_asks_bibtex(work: Path) -> bool:
    aux = work / f"{_JOB}.aux"
    try:
        return "\\bibdata" in aux.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _wait(proc: subprocess.Popen, out_pdf: Path, timeout: float, cancel: threading.Event | None,
          deadline: float | None = None) -> bytes:
    """Wait for TeX (or latexmk) and return its output; stop it (its whole process group) at the
    time limit (`deadline`, else `timeout` from now: all of a compilation's runs share it) or
    when `cancel` is set."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        step = left if cancel is None else min(left, 0.1)
        try:
            output, _ = proc.communicate(timeout=max(step, 0.001))
            return output
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            _kill_group(proc)
            raise Cancelled(f"the compilation of {out_pdf.name} was cancelled")
        if time.monotonic() >= deadline:
            _kill_group(proc)
            raise RenderError(
                f"cannot make {out_pdf.name}: TeX took longer than {timeout:g} s and was stopped",
                hint="a handout that compiles at all compiles in a few seconds: something in it "
                "loops (see TIME_LIMIT in derivgen/pdf.py)",
            )


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop TeX (or latexmk and the TeX run it started: their own process group), and reap them."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()  # waits, and closes the pipe


def _complete_pdf(path: Path) -> bool:
    if not path.is_file():
        return False
    data = path.read_bytes()
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


# With -file-line-error, TeX writes "./handout.tex:12: Undefined control sequence." instead of
# "! Undefined control sequence."; package errors and fatal errors still start with "!".
_ERROR_LINE = re.compile(r"^(?:!\s*(?P<bang>.*)|(?:\./)?(?P<file>[^:\n]+\.\w+):(?P<line>\d+):\s*(?P<msg>.*))$")
_CONTEXT_LINE = re.compile(r"^l\.(?P<line>\d+)\s?(?P<before>.*)$")


def first_tex_error(log: str) -> tuple[str, int | None, str | None]:
    """TeX's first error in a log: (message, its line in the document or None, the context).

    The context is TeX's ``l.<n> …`` line (the input read so far) with the line after it (the
    rest of that input line), as TeX prints them.
    """
    lines = log.splitlines()
    for i, text in enumerate(lines):
        match = _ERROR_LINE.match(text)
        if not match:
            continue
        if match.group("bang") is not None:
            message, line = match.group("bang").strip(), None
        else:
            message, line = match.group("msg").strip(), int(match.group("line"))
        if not message:
            continue
        context = None
        for j in range(i + 1, min(i + 60, len(lines))):
            found = _CONTEXT_LINE.match(lines[j])
            if found:
                line = line or int(found.group("line"))
                context = lines[j].rstrip()
                if j + 1 < len(lines) and lines[j + 1].strip():
                    context += "\n" + lines[j + 1].rstrip()
                break
        return message, line, context
    return "", None, None


def _tex_error(out_pdf: Path, tex: str, log: str, output: str) -> DerivgenError:
    message, line, context = first_tex_error(log)
    if not message:
        tail = "\n".join(output.strip().splitlines()[-5:])
        return RenderError(f"cannot make {out_pdf.name}: TeX failed" + (f":\n{tail}" if tail else ""))
    source = tex.splitlines()[line - 1] if line and 0 < line <= len(tex.splitlines()) else None
    where = Location(f"{out_pdf.with_suffix('.tex').name}", line, None, source)
    hint = f"TeX says:\n! {message}" + (f"\n{context}" if context else "")
    return RenderError(f"cannot make {out_pdf.name}: TeX error: {message}", where, hint)


def compile_many(
    jobs: Sequence[tuple], workers: int | None = None, timeout: float = TIME_LIMIT
) -> list[RenderError | None]:
    """Compile ``(tex, out_pdf, lang)`` jobs in parallel; one entry per job: None or its error.

    Each job is a TeX compilation (`compile_pdf`); `workers` (default: the number of CPUs) run at once. A job
    may have a fourth item, the path for its log (see `compile_pdf`). `derivgen.build`
    schedules its own jobs (`Builder.compile_pdfs`), to leave a failing problem out of the
    set's handouts.
    """
    def run(job: tuple) -> RenderError | None:
        tex, out_pdf, lang, *log = job
        try:
            compile_pdf(tex, out_pdf, lang, timeout, log=log[0] if log else None)
        except RenderError as err:
            return err
        except OSError as exc:
            return RenderError(f"cannot write {Path(out_pdf).name}: {exc}")
        return None

    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), workers or os.cpu_count() or 1))) as pool:
        return list(pool.map(run, jobs))


# --- a build's handouts: problems in parallel, sets without the problems that fail ------------


@dataclass
class Handout:
    """A PDF to compile: its LaTeX, where it goes, and for a set's handout the problems in it.

    `problems` holds the ``(id, problem file)`` of each problem the handout typesets (one for
    a problem's handout); `render`, for a set's handout, returns its LaTeX without the
    problems whose ids it is given.
    """

    tex: str
    out_pdf: Path
    lang: str = "en"
    problems: tuple[tuple[str, str | None], ...] = ()
    render: Callable[[frozenset[str]], str] | None = None


@dataclass
class Outcome:
    """What became of a `Handout`: its error (None when the PDF was written), the problems left
    out of it with the reason for each, and the LaTeX finally compiled."""

    error: RenderError | None
    tex: str
    left_out: list[tuple[str, str | None, RenderError]] = field(default_factory=list)


def compile_handouts(handouts: Sequence[Handout], workers: int | None = None,
                     progress: Callable[[int], None] | None = None) -> list[Outcome]:
    """Compile a build's handouts in parallel, each under its `time_limit`; one `Outcome` each.

    `progress`, if given, is called with the number of handouts done so far, as each gets its
    outcome (a set compiled again without failing problems counts when that is done).

    A set's handout (one with `render`) is isolated from its problems' failures: when a
    problem's own handout fails, the set's compilation under way is stopped and the set is
    compiled again without that problem; when a set fails though none of its problems did,
    each problem is tried in a set of its own and those that fail are left out. A set whose
    handout fails even so (its header or template is at fault) gets its error.
    """
    outcomes = [Outcome(None, h.tex) for h in handouts]
    if not handouts:
        return outcomes
    sets = [i for i, h in enumerate(handouts) if h.render is not None]
    failed: dict[str, RenderError] = {}  # problem id -> the error of its own handout
    cancels = {i: threading.Event() for i in sets}
    n_workers = max(1, min(len(handouts), workers or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=n_workers) as pool:

        def submit(tex: str, h: Handout, problems: int, cancel: threading.Event | None = None) -> Future:
            return pool.submit(_compile_one, tex, h.out_pdf, h.lang, time_limit(problems), cancel)

        futures = {
            submit(h.tex, h, len(h.problems), cancels.get(i)): i for i, h in enumerate(handouts)
        }
        pending = set(futures)
        done = 0

        def tick(n: int = 1) -> None:
            nonlocal done
            done += n
            if progress is not None and n:
                progress(done)

        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                i = futures[future]
                err = None if future.cancelled() else future.result()
                outcomes[i].error = err
                h = handouts[i]
                if err is None or h.render is None:
                    tick()  # final: a problem's handout, or a set that compiled
                if err is None or h.render is not None or len(h.problems) != 1:
                    continue
                failed[h.problems[0][0]] = err
                for j in sets:  # a set holding this problem will fail: stop it now
                    if any(pid == h.problems[0][0] for pid, _ in handouts[j].problems):
                        cancels[j].set()
        for future, i in futures.items():
            if future.cancelled():
                outcomes[i].error = Cancelled(f"the compilation of {handouts[i].out_pdf.name} was cancelled")

        # Sets that failed: again without the problems that failed on their own.
        retry = [i for i in sets if outcomes[i].error is not None]
        known = {i: {pid for pid, _ in handouts[i].problems if pid in failed} for i in retry}
        _compile_sets(pool, handouts, outcomes, {i: known[i] for i in retry if known[i]},
                      {pid: (err, True) for pid, err in failed.items()})

        # Still failing (or no problem to blame): find the problems that fail in a set alone.
        # A set that fails without any problem is itself at fault (its header or template):
        # its error stands, and no problem is blamed.
        retry = [i for i in retry if outcomes[i].error is not None]
        empty = {i: pool.submit(_trial, handouts[i], frozenset(pid for pid, _ in handouts[i].problems))
                 for i in retry}
        retry = [i for i in retry if empty[i].result() is None]
        if retry:
            alone: dict[tuple[int, str], Future] = {}
            for i in retry:
                h = handouts[i]
                everyone = frozenset(pid for pid, _ in h.problems)
                for pid, _ in h.problems:
                    if pid not in known[i]:
                        alone[i, pid] = pool.submit(_trial, h, everyone - {pid})
            culprits: dict[int, set[str]] = {i: set(known[i]) for i in retry}
            reasons: dict[str, tuple[RenderError, bool]] = {pid: (err, True) for pid, err in failed.items()}
            for (i, pid), future in alone.items():
                err = future.result()
                if err is not None:
                    culprits[i].add(pid)
                    reasons.setdefault(pid, (err, False))
            _compile_sets(pool, handouts, outcomes,
                          {i: c for i, c in culprits.items() if c - known[i]}, reasons)
        tick(len(handouts) - done)  # the sets compiled again (or failing for good)
    return outcomes


def _compile_sets(
    pool: ThreadPoolExecutor,
    handouts: Sequence[Handout],
    outcomes: list[Outcome],
    exclude: dict[int, set[str]],
    reasons: dict[str, tuple[RenderError, bool]],
) -> None:
    """Compile the set handouts `exclude` names without the problems it gives for each, and
    record the outcome (its error, or the problems left out and why)."""
    futures = {}
    for i, ids in exclude.items():
        h = handouts[i]
        tex = _render(h, frozenset(ids))
        if isinstance(tex, RenderError):
            outcomes[i].error = tex
            continue
        outcomes[i].tex = tex
        futures[i] = pool.submit(_compile_one, tex, h.out_pdf, h.lang,
                                 time_limit(len(h.problems) - len(ids)), None)
    for i, future in futures.items():
        err = future.result()
        outcomes[i].error = err
        if err is None:
            outcomes[i].left_out = [
                (pid, source, _left_out(handouts[i].out_pdf.name, pid, *reasons[pid]))
                for pid, source in handouts[i].problems if pid in exclude[i]
            ]


def _left_out(name: str, pid: str, err: RenderError, own: bool) -> RenderError:
    """The error reported for a problem left out of the set handout `name`."""
    if own:
        why = f"its own handout {pid}.pdf does not compile"
    else:
        why = f"it does not compile in the set: {err.message.split(': ', 1)[-1]}"
    return RenderError(f"problem '{pid}' is left out of {name}: {why}", hint=err.hint)


def _render(h: Handout, exclude: frozenset[str]) -> str | RenderError:
    """The set handout's LaTeX without the problems in `exclude`, or the error rendering it."""
    assert h.render is not None
    try:
        return h.render(exclude)
    except DerivgenError as err:
        return err if isinstance(err, RenderError) else RenderError(err.message, err.location, err.hint)


def _trial(h: Handout, exclude: frozenset[str]) -> RenderError | None:
    """Whether the set handout compiles without the problems in `exclude` (None) or its error;
    the PDF is thrown away."""
    tex = _render(h, exclude)
    if isinstance(tex, RenderError):
        return tex
    with tempfile.TemporaryDirectory(prefix="derivgen-trial-") as tmp:
        return _compile_one(tex, Path(tmp) / "trial.pdf", h.lang, time_limit(len(h.problems) - len(exclude)), None)


def _compile_one(tex: str, out_pdf: Path, lang: str, timeout: float,
                 cancel: threading.Event | None) -> RenderError | None:
    try:
        compile_pdf(tex, out_pdf, lang, timeout, cancel=cancel)
    except RenderError as err:
        return err
    except OSError as exc:
        return RenderError(f"cannot write {Path(out_pdf).name}: {exc}")
    return None

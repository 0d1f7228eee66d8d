"""PDF handouts: a LaTeX document (from `derivgen.latex`) compiled by latexmk.

Every run happens in a fresh temporary directory, with the engine the document asks for in
its first line (``% !TEX program = xelatex``; pdfLaTeX otherwise, XeLaTeX always for
Chinese), and always:

- without shell escape (``-no-shell-escape``; ``shell_escape=f`` for kpathsea too), with
  TeX allowed to read and write files only below the working directory (``openin_any`` and
  ``openout_any`` paranoid), and without any latexmkrc (``-norc``): a problem file cannot make
  TeX run a program or touch files elsewhere;
- non-interactively, stopping at the first error (``-interaction=nonstopmode
  -halt-on-error``) and under a time limit.

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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
        "commands": {"latexmk": "latexmk", "pdflatex": "texlive-latex-base"},
        "sty": {**_STY, "lmodern": "lmodern"},
        "fonts": {},
    },
    "xelatex": {
        "commands": {"latexmk": "latexmk", "xelatex": "texlive-xetex"},
        "sty": {**_STY, "fontspec": "texlive-latex-recommended", "xeCJK": "texlive-lang-cjk"},
        "fonts": {font: "fonts-noto-cjk" for font in CJK_FONTS.values()},
    },
}

#: The file name of the document inside the temporary directory.
_JOB = "handout"


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
    tex: str, out_pdf: str | Path, lang: str = "en", timeout: float = 120, log: str | Path | None = None
) -> None:
    """Compile the LaTeX document `tex` into `out_pdf` (written atomically).

    Raises `RenderError` when TeX is missing, when the document has an error (the message is
    TeX's first error with its line) or when the run takes longer than `timeout` seconds; no
    new PDF is written then. With `log`, TeX's log is written there, whatever the outcome.
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
        argv = [
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
        env = {
            **os.environ,
            "shell_escape": "f",
            "openin_any": "p",
            "openout_any": "p",
            "max_print_line": "10000",  # one log line per message: errors are parsed whole
        }
        try:
            proc = subprocess.Popen(
                argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            raise RenderError(f"cannot make {out_pdf.name}: cannot run latexmk ({exc})") from exc
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise RenderError(
                f"cannot make {out_pdf.name}: TeX took longer than {timeout:g} s and was stopped"
            ) from None
        pdf = work / f"{_JOB}.pdf"
        log_file = work / f"{_JOB}.log"
        log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
        if log is not None:
            write_atomic(log, log_text)
        if proc.returncode != 0 or not _complete_pdf(pdf):
            raise _tex_error(out_pdf, tex, log_text, output.decode("utf-8", errors="replace"))
        write_atomic(out_pdf, pdf.read_bytes())


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop latexmk and the TeX run it started (their own process group), and reap them."""
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
    jobs: Sequence[tuple], workers: int | None = None, timeout: float = 120
) -> list[RenderError | None]:
    """Compile ``(tex, out_pdf, lang)`` jobs in parallel; one entry per job: None or its error.

    Each job is a latexmk process; `workers` (default: the number of CPUs) run at once. A job
    may have a fourth item, the path for its log (see `compile_pdf`).
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

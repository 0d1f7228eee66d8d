"""The command line: `derivgen build`, `check`, `show`, `init`, `rules`.

This is the only module that prints and decides the exit status. `main(argv)` returns the
status instead of exiting, so tests call it in-process. It is a thin layer over the Python
API (`derivgen.api`): the set document, the problem discovery and the build live there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__, students  # students: grade, export, build --variants (issue 10)
from .api import BuildSet, build_set, find_set, parse_formats, set_document  # noqa: F401  (set_document: tests import it here)
from .errors import DerivgenError


DESCRIPTION = """\
derivgen turns matrix-calculus problems (YAML files) into worked, numerically verified
derivations by the differential-and-trace method, and writes them as handouts.

examples:
  derivgen build problems/ -o out/                 build the example set (Markdown and JSON)
  derivgen build problems/least_squares.yaml -o out/ --format json
  derivgen check problems/                         derive and verify everything, write nothing (for CI)
  derivgen watch course/ -o out/                   build, then rebuild on every change
  derivgen show problems/n001_trace_axbxtc.yaml    print one derivation in the terminal
  derivgen show problems/                          print every derivation of a set
  derivgen show --expr "x'*A*x" --var x=n --var A=n,n --wrt x
  derivgen rules                                   list the rules steps cite
  derivgen init course/                            start a course folder (set file, example, templates)
"""


class Console:
    """Writes messages; colour only on a terminal."""

    def __init__(self, out=None, err=None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.colour = hasattr(self.err, "isatty") and self.err.isatty() and not os.environ.get("NO_COLOR")

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def error(self, rendered: str, action: str | None = "build") -> None:
        first, _, rest = rendered.partition("\n")
        if first.startswith("error: "):
            doing = f" cannot {action} " if action else " "
            first = self.paint("error:", "1;31") + doing + first[len("error: "):]
        print(first + ("\n" + rest if rest else ""), file=self.err)

    def info(self, text: str) -> None:
        print(text, file=self.out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="derivgen", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"derivgen {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser("build", help="derive, verify and write handouts for problem files or directories",
                       description="Derive, verify and write handouts. A directory is a problem set: one "
                                   "handout for the set (solutions.md, and sheet.md with statements only) "
                                   "and one file per problem and format.")
    _build_options(b)
    w = sub.add_parser("watch", help="build, then rebuild whenever a problem file or template changes",
                       description="Build as `derivgen build` does, then watch the problem files, the set "
                                   "file and the templates and rebuild on every change (only what changed is "
                                   "derived and written again). Stop with Ctrl-C.")
    _build_options(w)

    c = sub.add_parser("check", help="derive and verify every problem, writing nothing (exit status 0 or 1)",
                       description="Read, derive and verify every problem of the sets and files given, "
                                   "as `derivgen build` would, and write nothing: for an instructor's CI. "
                                   "Errors are reported as build reports them; the exit status is 1 when any "
                                   "problem fails, 2 for a usage error.")
    c.add_argument("paths", nargs="+", metavar="DIR|FILE", help="problem files (.yaml) or directories of them")
    c.add_argument("--format", default=None, metavar="FORMATS",
                   help="check for these formats (statements' math for tex, pdf, html; default: the set's `formats:`)")
    c.add_argument("--lang", choices=("en", "zh"), default=None, help="language (default: the set's `language:` or en)")
    c.add_argument("-q", "--quiet", action="store_true", help="print only errors")

    s = sub.add_parser("show", help="print one derivation (or each of a set) in the terminal, writing nothing",
                       description="Print the derivation of a problem file, of every problem of a set "
                                   "directory, or of an expression given on the command line.")
    s.add_argument("file", nargs="?", metavar="FILE|DIR", help="a problem file, or a directory of them")
    s.add_argument("--expr", help="the function, in the expression syntax (instead of a file)")
    s.add_argument("--var", action="append", default=[], metavar="NAME=DIMS",
                   help="a variable and its shape: `x=n` (vector), `A=m,n` (matrix), `s=` (scalar); repeatable")
    s.add_argument("--assume", action="append", default=[], metavar="NAME=A1,A2", help="assumptions, e.g. `A=symmetric`")
    s.add_argument("--wrt", action="append", default=[], metavar="NAME",
                   help="the variable(s) to differentiate with respect to (with a file: instead of its `wrt:`)")
    s.add_argument("--latex", action="store_true", help="print LaTeX instead of the expression syntax")
    s.add_argument("--detail", choices=("brief", "normal", "full"), default=None,
                   help="how fine the steps are (default: the problem's or set's `detail:`, else normal)")

    i = sub.add_parser("init", help="create a course folder with a set file, an example problem and templates")
    i.add_argument("directory", help="the folder to create (must not hold the files already)")

    r = sub.add_parser("rules", help="list the rule catalogue")
    r.add_argument("--lang", choices=("en", "zh"), default="en")
    students.register(sub, b)
    return p


def _build_options(b: argparse.ArgumentParser) -> None:
    """The arguments `build` and `watch` share."""
    b.add_argument("paths", nargs="+", metavar="DIR|FILE", help="problem files (.yaml) or directories of them")
    b.add_argument("-o", "--output", default="out", metavar="OUT", help="output directory (default: out)")
    b.add_argument("--format", default=None, metavar="FORMATS",
                   help="comma-separated formats among md, json, html, tex, pdf (default: the set's `formats:` or md,json)")
    b.add_argument("--lang", choices=("en", "zh"), default=None, help="language of the handouts (default: the set's `language:` or en)")
    b.add_argument("--templates", default=None, metavar="DIR", help="a directory of templates overriding the defaults by name")
    b.add_argument("--placeholders", action="store_true",
                   help="keep an error page for each failed problem (for the instructor's own copy; "
                        "by default a failed problem is left out of every output)")
    b.add_argument("--self-check", nargs="?", const="sheets", default=None, choices=("sheets", "all", "off"),
                   help="an answer box under each result of the HTML problem sheets, checked offline in the browser "
                        "(`all`: on the solution pages too; default: the set's and problems' `self_check:`)")
    b.add_argument("--assets-url", default=None, metavar="URL",
                   help="link the HTML pages' CSS, KaTeX and scripts at URL (e.g. /static/derivgen, for a site that "
                        "publishes them once) instead of the derivgen-assets/ folder beside them; the folder is "
                        "still written, to publish at that URL")
    b.add_argument("-q", "--quiet", action="store_true", help="print only errors")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 some problem failed, 2 usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    console = Console()
    commands = {"build": build, "watch": watch, "check": check, "show": show, "rules": rules, "init": init,
                **students.COMMANDS}
    if args.command not in commands:
        parser.print_help()
        return 2
    try:
        return commands[args.command](args, console)
    except BrokenPipeError:  # `derivgen show ... | head`
        sys.stderr.close()
        return 0


# ----------------------------------------------------------------------------- build


def _formats(value: str | None, configured) -> list[str]:
    """The formats asked for on the command line, else the set's (`derivgen.api.parse_formats`)."""
    return parse_formats(value, configured)


def build(args, console: Console) -> int:
    """`derivgen build`: every problem derived and written; failures reported, others still built."""
    try:
        found = find_set(args.paths, args.format, args.lang)  # refused: files leading out of their set
    except DerivgenError as err:
        console.error(err.render())
        return 2
    config = found.config
    templates = args.templates or (str(config.templates_dir) if config.templates_dir else None)
    out = Path(args.output)
    bar = ProgressBar(console.err) if not args.quiet and ProgressBar.wanted(console.err) else None
    try:
        self_check = {None: None, "off": False}.get(args.self_check, args.self_check)
        result = build_set(found, out, templates, placeholders=args.placeholders,
                           on_wait=None if args.quiet else console.info, progress=bar, self_check=self_check,
                           assets_url=args.assets_url)
    except DerivgenError as err:  # the output folder cannot be used: one error, nothing built
        console.error(err.render())
        return 1
    finally:
        if bar is not None:
            bar.close()
    for doc in result.docs:
        if not doc["ok"]:
            console.error(doc["error"]["rendered"])
    for err in result.errors:
        console.error(err.render())
    if not args.quiet:
        console.info(summary(result, out, args.placeholders))
    return 1 if (result.failed or result.errors) else 0


def summary(result, out: Path, placeholders: bool = False) -> str:
    """The last line of a build: what was built and verified now or reused, and what was written."""
    built = [d for d in result.docs if d["ok"]]
    n = sum(len(d["results"]) for d in built)
    results = f"{n} result{'s' if n != 1 else ''}"
    if not built:
        head = "no problem built"
    elif result.reused == 0:
        head = f"built {len(built)} problem{'s' if len(built) != 1 else ''} ({results}, all verified)"
    else:
        head = (f"built {len(built)} problem{'s' if len(built) != 1 else ''} ({results}: "
                f"{result.verified_now} verified in this build, {result.reused} reused from the cache)")
    parts = [head]
    if result.failed:
        left = "kept as error pages" if placeholders else "left out of every output"
        parts.append(f"{len(result.failed)} failed ({left})")
    pdf_failed = getattr(result, "pdf_failed", [])
    if pdf_failed:
        parts.append(f"{len(pdf_failed)} PDF{'s' if len(pdf_failed) != 1 else ''} failed")
    files = f"{len(result.written)} files written, {len(result.unchanged)} unchanged"
    if result.unwritten:
        files += f", {len(result.unwritten)} could not be written"
    parts.append(files + f" in {out}/")
    if result.removed:
        parts.append(f"{len(result.removed)} stale removed ({', '.join(result.removed[:4])}"
                     + (", …" if len(result.removed) > 4 else "") + ")")
    if result.kept_stale:
        parts.append(f"{len(result.kept_stale)} stale kept because edited by hand ({', '.join(result.kept_stale[:4])}"
                     + (", …" if len(result.kept_stale) > 4 else "") + ")")
    return "; ".join(parts)


class ProgressBar:
    """A build's progress on a terminal (tqdm): documents derived, then PDFs compiled.

    Passed to `derivgen.api.build_set` as its `progress` callable. A bar appears only once a
    stage has taken `DELAY` seconds (a quick build shows none) and is cleared when the stage
    ends, so that the messages and the summary line stay as they are."""

    DELAY = 0.5
    MININTERVAL = 0.1  # seconds between redraws
    LABELS = {"documents": ("deriving", "problem"), "pdfs": ("compiling PDFs", "PDF")}

    def __init__(self, stream):
        self.stream = stream
        self.bars: dict = {}

    @staticmethod
    def wanted(stream) -> bool:
        """A bar only on a terminal (not in a pipe, a log file or CI's output)."""
        try:
            return bool(stream.isatty())
        except (AttributeError, ValueError):
            return False

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            desc, unit = self.LABELS.get(stage, (stage, "item"))
            bar = self.bars[stage] = tqdm(total=total, desc=desc, unit=unit,
                                          file=self.stream, delay=self.DELAY, leave=False,
                                          mininterval=self.MININTERVAL, dynamic_ncols=True)
        bar.update(max(0, done - bar.n))
        if done >= total:  # the stage is over: a later call starts a bar of its own
            bar.close()
            del self.bars[stage]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


# ----------------------------------------------------------------------------- watch


def watch(args, console: Console) -> int:
    """`derivgen watch`: build, then rebuild on every change of the problems, set file or templates.

    Changes inside the output folder (which may lie inside the set) are ignored; a rebuild
    derives and writes only what changed (the build's cache). Ctrl-C ends it with status 0."""
    import watchfiles

    status = build(args, console)
    if status == 2:
        return status
    watched = [Path(p) for p in args.paths]
    try:
        found = find_set(args.paths, args.format, args.lang)
        templates = args.templates or found.templates
        if templates and not any(_within(Path(templates), w) for w in watched):
            watched.append(Path(templates))
    except DerivgenError:
        pass
    out = Path(args.output).resolve()

    def relevant(change, path: str) -> bool:
        return not _within(Path(path), out) and watchfiles.DefaultFilter()(change, path)

    console.info(f"watching {', '.join(map(str, watched))} (Ctrl-C to stop)")
    try:
        for changes in watchfiles.watch(*watched, watch_filter=relevant, debounce=400, step=100,
                                        rust_timeout=0, yield_on_timeout=False):
            names = sorted({os.path.relpath(path) for _, path in changes if os.path.exists(path)}
                           or {os.path.relpath(path) for _, path in changes})
            console.info(f"changed: {', '.join(names[:5])}{', …' if len(names) > 5 else ''}")
            build(args, console)
    except KeyboardInterrupt:
        console.info("stopped watching")
    return 0


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError):
        return False


# ----------------------------------------------------------------------------- check


def check(args, console: Console) -> int:
    """`derivgen check`: every problem read, derived and verified as a build would; nothing written."""
    from .api import check_set

    try:
        found = find_set(args.paths, args.format, args.lang)
    except DerivgenError as err:
        console.error(err.render())
        return 2
    report = check_set(found)
    for doc in report.docs:
        if not doc["ok"]:
            console.error(doc["error"]["rendered"])
    for err in report.errors:
        console.error(err.render())
    if not args.quiet:
        console.info(report.summary())
    return 0 if report.ok else 1


# ----------------------------------------------------------------------------- show


def _shape(spec: str) -> tuple:
    dims = [d.strip() for d in spec.split(",") if d.strip()]
    return tuple(int(d) if d.isdigit() else d for d in dims)


def _problem_from_args(args):
    """A Problem built from --expr/--var/--assume/--wrt, validated like a file."""
    from .problem import load_problem_text
    import yaml

    data = {
        "variables": {},
        "function": args.expr,
        "wrt": args.wrt,
    }
    for spec in args.var:
        name, _, dims = spec.partition("=")
        data["variables"][name.strip()] = list(_shape(dims))
    if args.assume:
        data["assume"] = {}
        for spec in args.assume:
            name, _, what = spec.partition("=")
            data["assume"][name.strip()] = [w.strip() for w in what.split(",") if w.strip()]
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return load_problem_text(text, "<command line>", "expr")


def show(args, console: Console) -> int:
    """`derivgen show`: derivations printed as text with the rule of each step; nothing written.

    A file (or `--expr`) is derived here; a directory is a set, each problem derived in a
    worker process within the build's limits, every one printed, the failures reported."""
    from .pipeline import document, solve
    from .problem import load_problem

    if args.file and not args.expr and Path(args.file).is_dir():
        return _show_set(args, console)
    problem = None
    try:
        if args.expr:
            if not args.wrt:
                raise DerivgenError("--wrt is required with --expr", hint="e.g. --wrt x")
            problem = _problem_from_args(args)
        elif args.file:
            problem = load_problem(args.file)
            if args.wrt:
                problem = _with_wrt(problem, args.wrt)
        else:
            raise DerivgenError("give a problem file or --expr", hint="derivgen show problems/x.yaml")
        if args.detail:
            problem.options["detail"] = args.detail
        from .pipeline import set_detail

        solved = solve(problem, detail=set_detail(Path(problem.path)) if problem.path and args.file else "normal")
        doc = document(solved)
    except DerivgenError as err:
        console.error(err.render(), action="derive")
        return 1
    except Exception as exc:  # a bug or a limit: a located message, as a build gives it, not a traceback
        from .pipeline import unexpected_error

        console.error(unexpected_error(exc, args.file or "<command line>", problem).render(), action="derive")
        return 1
    _print_derivation(console, doc, [(name, d.text) for name, d in problem.where], args.latex)
    return 0


def _with_wrt(problem, names: list[str]):
    """The problem differentiated with respect to `names` instead of its own `wrt:`."""
    import dataclasses

    from .errors import Location, ProblemError

    wanted = [n.strip() for spec in names for n in spec.split(",") if n.strip()]
    for name in wanted:
        if name not in problem.variables:
            declared = ", ".join(problem.variables) or "none"
            raise ProblemError(f"--wrt {name}: '{name}' is not a variable of this problem",
                               problem.locations.get("variables") or Location(problem.path),
                               hint=f"its variables are {declared}")
    locations = {k: v for k, v in problem.locations.items() if not k.startswith("wrt.")}
    return dataclasses.replace(problem, wrt=tuple(dict.fromkeys(wanted)), locations=locations)


def _show_set(args, console: Console) -> int:
    """`derivgen show DIR`: every problem of the set, in handout order."""
    from .worker import problem_documents

    if args.wrt:
        console.error("error: --wrt applies to one problem file or to --expr, not to a directory", action=None)
        return 2
    try:
        found = find_set([args.file])
    except DerivgenError as err:
        console.error(err.render(), action="derive")
        return 2
    for err in found.refused:
        console.error(err.render(), action="derive")
    docs = problem_documents(found.paths, "en", layout=found.config.layout or "denominator", detail=args.detail)
    for i, doc in enumerate(docs):
        if i:
            console.info("")
        console.info(f"== {doc['id']}: {doc['title']}" if doc["title"] != doc["id"] else f"== {doc['id']}")
        if not doc["ok"]:
            console.error(doc["error"]["rendered"], action="derive")
            continue
        _print_derivation(console, doc, [(w["name"], w["text"]) for w in doc["where"]], args.latex)
    failed = [d["id"] for d in docs if not d["ok"]]
    if failed or found.refused:
        console.info("")
        console.info(f"{len(docs) - len(failed)} of {len(docs)} problems derived and verified; "
                     f"failed: {', '.join(failed) or 'none'}"
                     + (f"; {len(found.refused)} refused" if found.refused else ""))
        return 1
    return 0


def _print_derivation(console: Console, doc: dict, where: list[tuple[str, str]], use_latex: bool) -> None:
    """The derivation of one problem document: each step with its rules, the result, its check."""
    from .rules import RULES

    field = "latex" if use_latex else "text"
    console.info(f"f = {doc['function']['text']}")
    for name, definition in where:
        console.info(f"  where {name} = {definition}")
    for result in doc["results"]:
        console.info("")
        console.info(f"{result['lhs']}:"
                     + (f"  ({result['note']})" if result.get("note") else ""))
        lines, lhs = [], ""
        for step in result["steps"]:
            if step.get("lhs"):
                lhs = step["lhs_latex"] if use_latex else step["lhs"]
                head = f"  {lhs} {step.get('rel', '=')} "
            else:
                rel = step.get("rel", "=")
                rel = "<=>" if rel.startswith("\\Leftrightarrow") and not use_latex else rel
                head = " " * (len(lhs) + 3) + f"{rel} "
            tags = "; ".join(f"{r} {RULES[r].name['en']}" for r in step["rules"])
            lines.append((head + step[field], tags))
        width = min(max(len(body) for body, _ in lines), 72)
        for body, tags in lines:
            console.info(body.ljust(width) + f"    [{tags}]" if tags else body)
        v = result["verification"]
        sizes = ", ".join(f"{k}={n}" for k, n in v["sizes"].items())
        console.info(f"  result: {result['lhs']} = {result[field]}")
        console.info(
            f"  verified at {v['trials']} random points ({v['checks']} checks{', sizes ' + sizes if sizes else ''}); "
            f"largest relative error {v['max_rel_error']:.1e}"
        )


def init(args, console: Console) -> int:
    """`derivgen init DIR`: a course folder ready to edit."""
    from .scaffold import init as scaffold

    try:
        made = scaffold(args.directory)
    except DerivgenError as err:
        console.error(err.render(), action=None)
        return 1
    for path in made:
        console.info(f"created {path}")
    console.info(f"next: derivgen build {args.directory} -o {Path(args.directory) / 'out'}")
    return 0


def rules(args, console: Console) -> int:
    """`derivgen rules`: the catalogue, one rule a line."""
    from .rules import RULES

    for rule in RULES.values():
        console.info(f"{rule.id:4} {rule.name_in(args.lang):45} {rule.formula_in(args.lang)}")
    return 0

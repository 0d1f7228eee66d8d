"""The students' half on the command line: `derivgen grade`, `derivgen export`, and
`derivgen build --variants N | --students roster.csv`.

`cli.py` calls `register(subparsers, build_parser)` and dispatches `COMMANDS`; the commands
live with their modules (`grade.py`, `variants.py`, `export/`) and are imported only when run.
"""

from __future__ import annotations

import argparse


class _Variants(argparse.Action):
    """`--variants` / `--students` on `derivgen build`: the command becomes a variants build."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.command = "build-variants"


#: The systems `derivgen export` writes for.
EXPORT_TARGETS = ("prairielearn", "gradescope")
MAX_EXPORT_VARIANTS = 24  # variants of one problem an export carries by default


def register(subparsers, build_parser) -> None:
    """Add `grade` and `export`, and the variants options of `build`.

    Only argparse here: the commands' modules (NumPy, the engine) are imported when they run,
    so that every other command starts without them."""
    _grade_parser(subparsers)
    _export_parser(subparsers)
    group = build_parser.add_argument_group("variants (one complete build per variant or student)")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument("--variants", type=int, default=None, metavar="N", action=_Variants,
                           help="build N variants into OUT/v1 … OUT/vN (problems with `vary:` differ), "
                                "with the manifest OUT/variants.json")
    exclusive.add_argument("--students", default=None, metavar="ROSTER.csv", action=_Variants,
                           help="build one variant per student of a CSV roster (an `id` column) into OUT/<id>")
    group.add_argument("--seed", type=int, default=0, help="seed of the variants (default 0): same seed, same variants")


def _grade_parser(subparsers) -> None:
    """Register `derivgen grade` on the CLI's subparsers."""
    g = subparsers.add_parser(
        "grade", help="check a student's answer against a problem's verified result",
        description="Check an answer numerically against the verified result of a problem file: "
                    "exit status 0 when it is equivalent, 1 when it is not (with a counterexample and the "
                    "likely slip), 2 when it cannot be read or has the wrong shape. The solution is not "
                    "printed unless --show-solution.")
    g.add_argument("file", metavar="FILE", help="a problem file (.yaml)")
    g.add_argument("--wrt", required=True, metavar="NAME", help="the variable the answer is the derivative for")
    g.add_argument("--answer", required=True, metavar="EXPR", help="the answer, in the expression syntax, e.g. \"2*A*x\" (one starting with - as --answer=-2*A*x)")
    g.add_argument("--kind", choices=("gradient", "jacobian", "hessian", "solution"), default=None,
                   help="which result for NAME (default: the first, a gradient or Jacobian)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random points, and with --student of the variants (default 0)")
    which = g.add_mutually_exclusive_group()
    which.add_argument("--variant", type=int, default=None, metavar="K",
                       help="grade against variant K (1-based, as in OUT/variants.json) of a problem with `vary:`")
    which.add_argument("--student", default=None, metavar="ID",
                       help="grade against the variant the student ID gets from `build --students … --seed SEED`")
    g.add_argument("--json", action="store_true", help="print the verdict as JSON")
    g.add_argument("--show-solution", action="store_true", help="also print the result (for the instructor)")
    g.set_defaults(command="grade")


def _export_parser(subparsers) -> None:
    """Register `derivgen export` on the CLI's subparsers."""
    e = subparsers.add_parser(
        "export", help="write autograder questions (PrairieLearn, Gradescope) that grade with NumPy alone",
        description="Write an autograder export of problem files or sets: `prairielearn` gives "
                    "OUT/prairielearn/questions/<id>/ (info.json, question.html, server.py) and "
                    "OUT/prairielearn/serverFilesCourse/derivgen_grader/; `gradescope` gives "
                    "OUT/gradescope/autograder.zip (setup.sh, run_autograder) grading a submitted answers.txt. "
                    "Both grade with Python and NumPy only.")
    e.add_argument("target", choices=EXPORT_TARGETS, help="the system to export for")
    e.add_argument("paths", nargs="+", metavar="DIR|FILE", help="problem files (.yaml) or directories of them")
    e.add_argument("-o", "--output", default="out", metavar="OUT", help="output directory (default: out)")
    e.add_argument("--seed", type=int, default=0, help="seed of the variants and the random points (default 0)")
    e.add_argument("--variants", type=int, default=None, metavar="N",
                   help=f"at most N variants of each problem with `vary:` (default {MAX_EXPORT_VARIANTS})")
    e.add_argument("--students", default=None, metavar="ROSTER.csv",
                   help="gradescope: grade each student (matched by id) on the variants `build --students` gives them")


def _grade(args, console) -> int:
    from .grade import command

    return command(args, console)


def _export(args, console) -> int:
    from .export import command

    return command(args, console)


def _variants(args, console) -> int:
    from .variants import command

    return command(args, console)


COMMANDS = {"grade": _grade, "export": _export, "build-variants": _variants}

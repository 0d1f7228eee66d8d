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


def register(subparsers, build_parser) -> None:
    """Add `grade` and `export`, and the variants options of `build`."""
    from .export import add_parser as export_parser
    from .grade import add_parser as grade_parser

    grade_parser(subparsers)
    export_parser(subparsers)
    group = build_parser.add_argument_group("variants (one complete build per variant or student)")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument("--variants", type=int, default=None, metavar="N", action=_Variants,
                           help="build N variants into OUT/v1 … OUT/vN (problems with `vary:` differ), "
                                "with the manifest OUT/variants.json")
    exclusive.add_argument("--students", default=None, metavar="ROSTER.csv", action=_Variants,
                           help="build one variant per student of a CSV roster (an `id` column) into OUT/<id>")
    group.add_argument("--seed", type=int, default=0, help="seed of the variants (default 0): same seed, same variants")


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

"""`derivgen init DIR`: a new course folder ready to edit.

It holds a `derivgen.yaml`, one example problem, and a `templates/` directory whose files
extend the defaults and show where to override a block, and `problem.schema.json` (the JSON
Schema of problem files shipped with derivgen), which the example problem names in a
``# yaml-language-server: $schema=…`` comment so that editors complete and check its keys.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DerivgenError
from .output import write_atomic

#: The JSON Schema of problem files, shipped with the package.
PROBLEM_SCHEMA = Path(__file__).resolve().parent / "schema" / "problem.schema.json"
SCHEMA_FILE = "problem.schema.json"  # its copy in a course folder
SCHEMA_COMMENT = f"# yaml-language-server: $schema=./{SCHEMA_FILE}\n"

SET_FILE = """\
# The problem set: every *.yaml file in this folder is a problem.
title: Matrix calculus, problem set 1
course: Optimisation for machine learning
author: Your name
date: ""
language: en            # en or zh
formats: [md, json]
templates: templates    # your overrides of the default templates
# order: [least_squares]  # problem ids in handout order (default: by file name)
"""

EXAMPLE = SCHEMA_COMMENT + """\
title: Least squares
statement: |
  For $A \\in \\mathbb{R}^{m \\times n}$ and $b \\in \\mathbb{R}^m$, compute the gradient of
  $f(x) = \\tfrac12 \\lVert Ax - b \\rVert^2$ with respect to $x$.
variables:
  A: [m, n]
  x: [n]
  b: [m]
function: norm(A*x - b)^2 / 2
wrt: [x]
"""

MD_OVERRIDE = """\
{#- Your Markdown handout. It extends the default; override any block:
    header, given, solution, steps, result, verification, rules.
    Delete a block below to get the default back. -#}
{% extends "default/md/problem.md.j2" %}
{% block verification %}
{{ super() }}
{% endblock %}
"""

MD_SET_OVERRIDE = """\
{#- The whole set as one handout. Blocks: header, problems, rules. -#}
{% extends "default/md/set.md.j2" %}
"""


def init(directory: str | Path) -> list[Path]:
    """Create the course folder; refuses to overwrite existing files. Returns the files made."""
    root = Path(directory)
    files = {
        root / "derivgen.yaml": SET_FILE,
        root / "least_squares.yaml": EXAMPLE,
        root / "templates" / "md" / "problem.md.j2": MD_OVERRIDE,
        root / "templates" / "md" / "set.md.j2": MD_SET_OVERRIDE,
        root / SCHEMA_FILE: PROBLEM_SCHEMA.read_text(encoding="utf-8"),
    }
    existing = [p for p in files if p.exists()]
    if existing:
        raise DerivgenError(f"{existing[0]} already exists", hint="choose a new directory, or move the file away")
    for path, content in files.items():
        write_atomic(path, content)
    return list(files)

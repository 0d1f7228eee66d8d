"""Tests for derivgen.problem: problem files and set files in, validated data or located errors out."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivgen.errors import DerivgenError, Location, ProblemError, ShapeError
from derivgen.problem import (
    ASSUMPTIONS,
    Problem,
    SetConfig,
    SourceText,
    find_problems,
    load_problem,
    load_problem_text,
    load_set_config,
)

BAD = Path(__file__).parent / "data" / "bad"

FULL = """\
title: Gradient of a trace with two occurrences of X
statement: |
  Compute the gradient of $f$ with respect to $X$.
variables:
  X: [m, n]
  A: [p, m]
  B: [n, n]
  C: [m, p]
  x: [3]
  t: []
assume:
  B: symmetric
  t: [positive]
where:
  Y: 'sigma(A * X)'
  Z: "Y' * C'"
function: |
  tr(A * X * B
     * X' * C)
wrt: X
order: 1
layout: numerator
solve: true
constrain_symmetric: no
"""


def load(text: str) -> Problem:
    """Load a problem written inline (dedented), as the file p.yaml."""
    return load_problem_text(textwrap.dedent(text), "p.yaml", "p")


def error_of(text: str, kind: type[DerivgenError] = ProblemError) -> DerivgenError:
    with pytest.raises(kind) as info:
        load(text)
    assert type(info.value) is kind
    return info.value


def at(error: DerivgenError) -> tuple[int | None, int | None]:
    assert error.location is not None
    return error.location.line, error.location.column


def assert_maps_into_file(source: SourceText, file_text: str) -> None:
    """Every character of `source` is found at its location in the file, in reading order.

    A space made by folding a line break sits at the end of its line; an escaped character
    (`\\u0027`) at its backslash.
    """
    lines = file_text.splitlines()
    previous = (0, 0)
    for offset, char in enumerate(source.text):
        location = source.location_at(offset)
        assert location.file == source.file
        assert location.source_line == lines[location.line - 1]
        line = lines[location.line - 1]
        found = line[location.column - 1] if location.column <= len(line) else "\n"
        if (char == " " and found == "\n") or found == "\\":
            pass  # a folded line break, an escape
        else:
            assert found == char, (offset, char, location)
        assert (location.line, location.column) > previous
        previous = (location.line, location.column)


# --- the happy path -------------------------------------------------------------------------


def test_full_problem() -> None:
    problem = load_problem_text(FULL, "sets/trace.yaml", "trace")
    assert problem.id == "trace"
    assert problem.path == "sets/trace.yaml"
    assert problem.title == "Gradient of a trace with two occurrences of X"
    assert problem.statement == "Compute the gradient of $f$ with respect to $X$.\n"
    assert problem.variables == {
        "X": ("m", "n"), "A": ("p", "m"), "B": ("n", "n"), "C": ("m", "p"), "x": (3,), "t": (),
    }
    assert list(problem.variables) == ["X", "A", "B", "C", "x", "t"]
    assert problem.assume == {"B": ("symmetric",), "t": ("positive",)}
    assert [(name, text.text) for name, text in problem.where] == [("Y", "sigma(A * X)"), ("Z", "Y' * C'")]
    assert problem.function.text == "tr(A * X * B\n   * X' * C)\n"
    assert problem.wrt == ("X",)
    assert problem.options == {"order": 1, "layout": "numerator", "solve": True, "constrain_symmetric": False}


def test_full_problem_locations() -> None:
    problem = load_problem_text(FULL, "trace.yaml", "trace")
    where = {key: (loc.line, loc.column) for key, loc in problem.locations.items()}
    assert where["title"] == (1, 8)
    assert where["variables.X"] == (5, 3)
    assert where["variables.X.1"] == (5, 10)
    assert where["assume.B"] == (12, 3)
    assert where["assume.B.0"] == (12, 6)
    assert where["assume.t.0"] == (13, 7)
    assert where["where.Z"] == (16, 3)
    assert where["function"] == (18, 3)
    assert where["wrt"] == where["wrt.0"] == (20, 6)
    assert where["layout"] == (22, 9)
    assert problem.locations["variables.B"].source_line == "  B: [n, n]"
    assert problem.locations["function"].file == "trace.yaml"


def test_block_function_over_two_lines_maps_exactly() -> None:
    function = load_problem_text(FULL, "trace.yaml").function
    assert (function.line, function.column) == (18, 3)
    star = function.text.index("* X'")
    assert (function.location_at(star).line, function.location_at(star).column) == (19, 6)
    assert function.location_at(star).source_line == "     * X' * C)"
    assert_maps_into_file(function, FULL)


def test_quoted_where_definitions_map_exactly() -> None:
    problem = load_problem_text(FULL)
    (_, single), (_, double) = problem.where
    assert (single.line, single.column) == (15, 7)  # after the quote
    assert (double.location_at(4).line, double.location_at(4).column) == (16, 11)
    assert_maps_into_file(single, FULL)
    assert_maps_into_file(double, FULL)


def test_minimal_problem() -> None:
    problem = load("""\
        variables: {x: [n]}
        function: x' * x
        wrt: [x]
    """)
    assert problem.title == problem.statement == ""
    assert problem.assume == {} and problem.where == () and problem.options == {}
    assert problem.id == "p"


def test_single_strings_and_flow_forms() -> None:
    problem = load("""\
        variables: {X: [n, n], y: [1], s: []}
        assume: {X: spd, s: positive, y: [positive]}
        where: {Y: inv(X)}
        function: y' * Y * y * s
        wrt: s
    """)
    assert problem.assume == {"X": ("spd",), "s": ("positive",), "y": ("positive",)}
    assert problem.variables["y"] == (1,)
    assert problem.wrt == ("s",)


def test_several_wrt_and_integer_dimensions() -> None:
    problem = load("""\
        variables:
          W: [10, 784]
          x: [784]
          b: [10]
        function: sum(exp(W * x + b))
        wrt: [W, b]
    """)
    assert problem.variables["W"] == (10, 784)
    assert problem.wrt == ("W", "b")
    assert problem.locations["wrt.1"] == Location("p.yaml", 6, 10, "wrt: [W, b]")


def test_text_fields_keep_what_was_written() -> None:
    problem = load("""\
        title: 2024
        statement: 1.5
        variables: {x: []}
        function: x
        wrt: x
    """)
    assert problem.title == "2024"
    assert problem.statement == "1.5"


def test_empty_optional_keys_are_absent() -> None:
    problem = load("""\
        title:
        assume:
        where:
        variables: {x: []}
        function: x
        wrt: x
    """)
    assert problem.title == "" and problem.assume == {} and problem.where == ()


def test_load_problem_from_file(tmp_path: Path) -> None:
    path = tmp_path / "least_squares.yaml"
    path.write_text("variables: {x: [n], A: [m, n], y: [m]}\nfunction: norm(A * x - y)^2\nwrt: x\n")
    problem = load_problem(path)
    assert problem.id == "least_squares"
    assert problem.path == str(path)
    assert problem.function.location == Location(str(path), 2, 11, "function: norm(A * x - y)^2")


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xef\xbb\xbfvariables: {X: [n, n]}\r\nfunction: |\r\n  tr(X\r\n   * X)\r\nwrt: X\r\n")
    function = load_problem(path).function
    assert function.text == "tr(X\n * X)\n"
    assert (function.line, function.column) == (3, 3)
    assert (function.location_at(6).line, function.location_at(6).column) == (4, 4)


# --- location_at ----------------------------------------------------------------------------


LOCATION_CASES = {
    "plain": "function: tr(A * X) + log(x' * x)\n",
    "plain over lines": "function: tr(A * X)\n  + log(x' * x)\n\n  - 1\n",
    "single quoted": "function: 'x''*A*x + tr(X'')'\n",
    "single quoted over lines": "function: 'x''*A*x\n    + tr(X)'\n",
    "double quoted": 'function: "x\'*A*x + tr(X\')"\n',
    "double quoted escape": 'function: "x\\u0027*A*x + tr(X)"\n',
    "literal": "function: |\n  tr(A * X)\n    + log(x' * x)\n",
    "literal with blank line": "function: |\n    tr(A * X)\n\n    + 2\n",
    "literal strip": "function: |-\n  tr(A * X)\n  + 2\n",
    "literal keep, comment": "function: |+ # a comment with tr(\n  tr(A * X)\n\n",
    "literal explicit indent": "function: |2\n    tr(X)\n  + 1\n",
    "folded": "function: >\n  tr(A * X)\n  + log(x' * x)\n",
    "folded with more indented": "function: >\n  tr(A)\n    + 1\n  - 2\n\n  * 3\n",
    "nested where": "where:\n  Y: >-\n    sigma(W\n    * X)\n"
                    "variables: {W: [n, n], X: [n, n]}\nfunction: sum(Y)\nwrt: W\n",
    "tagged and anchored": "function: !!str &f tr(A * X)\n",
    "anchor and comment before": "function: &f # the objective\n  tr(A * X)\n",
}


@pytest.mark.parametrize("name", LOCATION_CASES)
def test_location_at_maps_every_character(name: str) -> None:
    text = LOCATION_CASES[name]
    if "wrt" not in text:
        text = "variables: {A: [n, n], X: [n, n], x: [n]}\n" + text + "wrt: X\n"
    problem = load_problem_text(text, "f.yaml")
    source = problem.where[0][1] if problem.where else problem.function
    if "escape" in name:  # `"x\\u0027*A*x...`: the quote maps to its backslash, what follows exactly
        assert [source.location_at(offset).column for offset in range(4)] == [12, 13, 19, 20]
    assert_maps_into_file(source, text)


def test_location_at_exact_values() -> None:
    text = "variables: {X: [n, n]}\nfunction: |\n  tr(X)\n    + 1\nwrt: X\n"
    function = load_problem_text(text, "f.yaml").function
    assert function.text == "tr(X)\n  + 1\n"
    assert function.location == Location("f.yaml", 3, 3, "  tr(X)")
    assert function.location_at(8) == Location("f.yaml", 4, 5, "    + 1")
    # the end of the text: just after the last character
    assert function.location_at(len(function.text)) == Location("f.yaml", 4, 8, "    + 1")
    assert function.location_at(10_000) == function.location_at(len(function.text))
    assert function.location_at(-1) == function.location


def test_location_at_of_a_hand_made_source_text() -> None:
    source = SourceText("tr(A)\n + B", "p.yaml", 4, 11)
    assert (source.location_at(3).line, source.location_at(3).column) == (4, 14)
    assert (source.location_at(8).line, source.location_at(8).column) == (5, 3)
    assert SourceText("x").location_at(0) == Location(None, None, None, None)


EXPR_LINE = st.text(alphabet="abXY*+-'()^ 012.", min_size=1, max_size=12).map(str.strip).filter(bool)
# a line of an expression, with extra indentation (kept in block scalars) or blank
LINE = st.one_of(EXPR_LINE, st.just(""), st.tuples(st.integers(1, 3), EXPR_LINE).map(lambda x: " " * x[0] + x[1]))


@given(
    first=EXPR_LINE,
    lines=st.lists(LINE, max_size=4),
    style=st.sampled_from(["plain", "single", "double", "|", "|-", "|+", ">", ">-", "|2"]),
    indent=st.integers(1, 5),
    newline=st.sampled_from(["\n", "\r\n"]),
)
@settings(max_examples=400)
def test_location_at_property(first: str, lines: list[str], style: str, indent: int, newline: str) -> None:
    lines = [first, *lines]
    pad = " " * indent
    if style == "plain":
        value = f"{newline}{pad}".join(lines)
    elif style == "single":
        value = "'" + f"{newline}{pad}".join(line.replace("'", "''") for line in lines) + "'"
    elif style == "double":
        value = '"' + f"{newline}{pad}".join(lines) + '"'
    else:
        value = style + "".join(f"{newline}{pad}{line}" for line in lines)
    text = f"variables: {{X: [n, n]}}{newline}function: {value}{newline}wrt: X{newline}"
    try:
        function = load_problem_text(text).function
    except ProblemError:
        return  # e.g. a plain scalar that YAML reads as something else
    assert_maps_into_file(function, text)


# --- errors, with their exact place ---------------------------------------------------------

ERRORS = [
    # (id, yaml, line, column, message, hint)
    ("yaml syntax", "variables:\n  X: [m, n\nfunction: tr(X)\nwrt: X\n", 3, 9,
     "invalid YAML: while parsing a flow sequence, expected ',' or ']'", "quote values"),
    ("tab", "variables:\n\tX: [n]\nfunction: x\nwrt: X\n", 2, 1, "found character '\\t'", "indent with spaces"),
    ("colon in value", "function: a: b\nwrt: X\n", 1, 12, "mapping values are not allowed here", "quote a value"),
    ("two documents", "function: x\nwrt: x\n---\nfunction: y\n", 3, 1, "single document", "remove the `---`"),
    ("alias", "variables: {X: &s [n, n], Y: *s}\nfunction: x\nwrt: X\n", 1, 30, "aliases", "in full"),
    ("value starting with a quote", "variables: {x: [n]}\nfunction: 'x' * x\nwrt: x\n", 2, 16, "invalid YAML",
     "quote the whole value, `function: \"'x' * x\"`"),
    ("value starting with a double quote", "where:\n  Y: \"a\" * b\n", 2, 11, "invalid YAML",
     "`Y: '\"a\" * b'`"),
    ("control character", "function: x\x07\nwrt: X\n", 1, 12, "U+0007", "control character"),
    ("bad escape", 'function: "\\UFFFFFFFF"\nwrt: X\n', 1, 14, "escape sequence", "escape sequences"),
    ("python tag", "function: !!python/object/apply:os.system [ls]\nwrt: X\n", 1, 11,
     "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'", "remove the tag"),
    ("set tag", "variables: !!set {X}\nfunction: x\nwrt: X\n", 1, 12, "unsupported YAML tag", None),
    ("empty file", "", 1, 1, "the problem file is empty", "function: tr(A * X)"),
    ("only comments", "# nothing\n", 1, 1, "the problem file is empty", None),
    ("top level list", "- function: x\n", 1, 1, "a problem file must be a mapping, not a list", None),
    ("top level text", "tr(X)\n", 1, 1, "a problem file must be a mapping, not text", None),
    ("unknown key", "variables: {X: []}\nfucntion: x\nwrt: X\n", 2, 1, "unknown key 'fucntion'",
     "did you mean 'function'?"),
    ("unknown key far", "function: x\nwrt: x\nbanana: 1\n", 3, 1, "unknown key 'banana'",
     "valid keys are: title, statement, variables"),
    ("set key in problem", "course: ML\nfunction: x\nwrt: x\n", 1, 1, "unknown key 'course'", "derivgen.yaml"),
    ("key not a name", "? [a, b]\n: 1\n", 1, 3, "a key must be a name, not a list", None),
    ("duplicate key", "function: x\nwrt: x\nfunction: y\n", 3, 1, "duplicate key 'function'", "line 1"),
    ("missing function", "variables: {X: []}\nwrt: X\n", 1, 1, "missing required key 'function'",
     "`function: tr(A * X)`"),
    ("missing wrt", "variables:\n  W: [n, n]\nfunction: tr(W)\n", 1, 1, "missing required key 'wrt'", "`wrt: [W]`"),
    ("variables not mapping", "variables: [X, Y]\nfunction: x\nwrt: X\n", 1, 12, "variables must be a mapping", None),
    ("bad variable name", "variables:\n  2X: [n]\nfunction: x\nwrt: X\n", 2, 3, "invalid variable name '2X'",
     "starts with a letter"),
    ("unicode variable name", "variables:\n  μ: [n]\nfunction: x\nwrt: X\n", 2, 3, "invalid variable name 'μ'", None),
    ("reserved function name", "variables:\n  X: [n]\n  tr: [n]\nfunction: x\nwrt: X\n", 3, 3,
     "'tr' is a function, so it cannot be a variable name", "tr1"),
    ("reserved identity", "variables:\n  I: [n, n]\nfunction: x\nwrt: I\n", 2, 3, "'I' is the identity matrix", None),
    ("reserved transpose", "variables: {T: []}\nfunction: x\nwrt: T\n", 1, 13, "'T' is the transpose mark", None),
    ("zero dimension", "variables:\n  X: [m, 0]\nfunction: x\nwrt: X\n", 2, 10, "dimension 0 of 'X' is not positive",
     "positive integer or a symbol"),
    ("negative dimension", "variables:\n  X: [-2]\nfunction: x\nwrt: X\n", 2, 7, "dimension -2 of 'X' is not positive",
     None),
    ("three dimensions", "variables:\n  X: [m, n, p]\nfunction: x\nwrt: X\n", 2, 13,
     "'X' has 3 dimensions, but at most 2", None),
    ("float dimension", "variables:\n  X: [2.5]\nfunction: x\nwrt: X\n", 2, 7,
     "invalid dimension '2.5' in the shape of 'X'", None),
    ("word dimension", "variables:\n  X: [2n]\nfunction: x\nwrt: X\n", 2, 7, "invalid dimension '2n'", None),
    ("empty dimension", "variables:\n  X:\n    -\nfunction: x\nwrt: X\n", 3, 6, "an empty dimension", None),
    ("nested dimension", "variables:\n  X: [[m, n]]\nfunction: x\nwrt: X\n", 2, 7,
     "a dimension of 'X' must be a number or a symbol, not a list", None),
    ("shape not a list", "variables:\n  x: n\nfunction: x\nwrt: x\n", 2, 6,
     "the shape of 'x' must be a list, not text", "[n]"),
    ("missing shape", "variables:\n  x:\nfunction: x\nwrt: x\n", 2, 5, "missing shape for 'x'", "`[]` for a scalar"),
    ("dimension is a variable", "variables:\n  X: [n, n]\n  n: []\nfunction: x\nwrt: X\n", 2, 7,
     "dimension 'n' is also the name of a variable", None),
    ("assume undeclared", "variables: {Sigma: [n, n]}\nassume:\n  Sgima: spd\nfunction: x\nwrt: Sigma\n", 3, 3,
     "assumption about 'Sgima', which is not a declared variable", "did you mean 'Sigma'?"),
    ("assume unknown", "variables: {B: [n, n]}\nassume:\n  B: [invertible, symetric]\nfunction: x\nwrt: B\n",
     3, 19, "unknown assumption 'symetric'", "did you mean 'symmetric'?"),
    ("assume unknown far", "variables: {B: [n, n]}\nassume: {B: convex}\nfunction: x\nwrt: B\n", 2, 13,
     "unknown assumption 'convex'", "assumptions are: symmetric, spd"),
    ("assume in words", "variables: {S: [n, n]}\nassume: {S: [positive definite]}\nfunction: x\nwrt: S\n", 2, 14,
     "unknown assumption 'positive definite'", "write `spd` (symmetric positive definite)"),
    ("assume a synonym", "variables: {B: [n, n]}\nassume: {B: nonsingular}\nfunction: x\nwrt: B\n", 2, 13,
     "unknown assumption 'nonsingular'", "write `invertible`"),
    ("assume twice", "variables: {B: [n, n]}\nassume: {B: [spd, spd]}\nfunction: x\nwrt: B\n", 2, 19,
     "assumption 'spd' is listed twice for 'B'", None),
    ("assume empty", "variables: {B: [n, n]}\nassume:\n  B:\nfunction: x\nwrt: B\n", 3, 3,
     "no assumption given for 'B'", None),
    ("where bad name", "variables: {X: []}\nwhere:\n  y_1': X\nfunction: x\nwrt: X\n", 3, 3,
     "invalid where name 'y_1''", None),
    ("where reserved", "variables: {X: []}\nwhere:\n  exp: X\nfunction: x\nwrt: X\n", 3, 3,
     "'exp' is a function, so it cannot be a where name", None),
    ("where is a variable", "variables: {X: [n], Y: [n]}\nwhere:\n  Y: X\nfunction: x\nwrt: X\n", 3, 3,
     "'Y' is both a declared variable and defined under where", "intermediate definition"),
    ("where is a dimension", "variables: {X: [n]}\nwhere:\n  n: X\nfunction: x\nwrt: X\n", 3, 3,
     "'n' is defined under where but is also a dimension", None),
    ("where duplicate", "variables: {X: []}\nwhere:\n  Y: X\n  Y: 2 * X\nfunction: x\nwrt: X\n", 4, 3,
     "duplicate key 'Y'", "line 3"),
    ("where number", "variables: {X: []}\nwhere:\n  Y: 2\nfunction: x\nwrt: X\n", 3, 6,
     "the definition of 'Y' must be an expression written as text, not a number", "quote it"),
    ("where empty", "variables: {X: []}\nwhere:\n  Y: ''\nfunction: x\nwrt: X\n", 3, 6,
     "the definition of 'Y' is empty", None),
    ("function number", "variables: {X: []}\nfunction: 3\nwrt: X\n", 2, 11,
     "function must be an expression written as text, not a number", "function: tr(A * X)"),
    ("function bool", "variables: {X: []}\nfunction: yes\nwrt: X\n", 2, 11, "not true/false", None),
    ("function list", "variables: {X: []}\nfunction: [tr(X)]\nwrt: X\n", 2, 11, "not a list", None),
    ("function empty", "variables: {X: []}\nfunction:\nwrt: X\n", 2, 10, "function is empty", None),
    ("function blank", "variables: {X: []}\nfunction: '  '\nwrt: X\n", 2, 11, "function is empty", None),
    ("wrt undeclared", "variables:\n  Sigma: [n, n]\n  mu: [n]\nfunction: x\nwrt: [mu, sigma]\n", 5, 11,
     "'sigma' is not a declared variable", "did you mean 'Sigma'?"),
    ("wrt undeclared far", "variables: {X: []}\nfunction: x\nwrt: Q\n", 3, 6, "'Q' is not a declared variable",
     "declared variables: X"),
    ("wrt nothing declared", "function: x\nwrt: x\n", 2, 6, "'x' is not a declared variable",
     "declare it under variables, e.g. `x: [n]`"),
    ("wrt comma string", "variables: {X: [], Y: []}\nfunction: x\nwrt: X, Y\n", 3, 6, "'X, Y' is not a declared",
     "`wrt: [X, Y]`"),
    ("wrt where name", "variables: {W: [n, n]}\nwhere: {Y: exp(W)}\nfunction: sum(Y)\nwrt: [Y]\n", 4, 7,
     "cannot differentiate with respect to 'Y': it is defined under where",
     "gradients are taken with respect to declared variables"),
    ("wrt twice", "variables: {X: []}\nfunction: x\nwrt: [X, X]\n", 3, 10, "'X' is listed twice in wrt", None),
    ("wrt empty list", "variables: {X: []}\nfunction: x\nwrt: []\n", 3, 6, "wrt is empty", "`wrt: [X]`"),
    ("wrt null", "variables: {X: []}\nfunction: x\nwrt:\n", 3, 5, "wrt is empty", None),
    ("wrt mapping", "variables: {X: []}\nfunction: x\nwrt: {X: 1}\n", 3, 6, "wrt must be a list, not a mapping",
     None),
    ("title list", "title: [a, b]\nfunction: x\nwrt: x\n", 1, 8, "title must be text, not a list", None),
    ("statement mapping", "statement:\n  a: b\nfunction: x\nwrt: x\n", 2, 3, "unknown language 'a' in statement",
     None),
    ("order option", "variables: {X: []}\nfunction: x\nwrt: X\norder: 3\n", 4, 8, "order must be 1", None),
    ("layout option", "variables: {X: []}\nfunction: x\nwrt: X\nlayout: numerater\n", 4, 9,
     "invalid layout 'numerater'", "did you mean 'numerator'?"),
    ("solve option", "variables: {X: []}\nfunction: x\nwrt: X\nsolve: maybe\n", 4, 8,
     "solve must be true or false, not text", None),
]


@pytest.mark.parametrize(("text", "line", "column", "message", "hint"),
                         [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_problem_errors(text: str, line: int, column: int, message: str, hint: str | None) -> None:
    with pytest.raises(ProblemError) as info:
        load_problem_text(text, "bad.yaml")
    error = info.value
    assert type(error) is ProblemError
    assert message in error.message
    assert at(error) == (line, column)
    assert error.location.file == "bad.yaml"
    lines = text.splitlines()
    assert error.location.source_line == (lines[line - 1] if line <= len(lines) else None)
    if hint is not None:
        assert hint in (error.hint or "")


SHAPE_ERRORS = [
    ("variables:\n  B: [m, n]\nassume:\n  B: [symmetric]\nfunction: x\nwrt: B\n", 4, 7,
     "assumption 'symmetric' needs a square matrix, but B is m×n"),
    ("variables: {x: [n]}\nassume: {x: spd}\nfunction: x\nwrt: x\n", 2, 13,
     "assumption 'spd' needs a square matrix, but x is a vector of length n"),
    ("variables: {t: []}\nassume:\n  t: [positive, invertible]\nfunction: t\nwrt: t\n", 3, 17,
     "assumption 'invertible' needs a square matrix, but t is a scalar"),
    ("variables: {Q: [3, 4]}\nassume: {Q: orthogonal}\nfunction: x\nwrt: Q\n", 2, 13,
     "assumption 'orthogonal' needs a square matrix, but Q is 3×4"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), SHAPE_ERRORS)
def test_assumption_needs_square_matrix(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(ShapeError) as info:
        load_problem_text(text, "bad.yaml")
    assert info.value.message == message
    assert at(info.value) == (line, column)
    assert "[n, n]" in info.value.hint


def test_square_assumptions_fit_square_shapes() -> None:
    problem = load("""\
        variables: {A: [n, n], D: [3, 3], x: [n], s: []}
        assume: {A: [symmetric, spd, invertible, orthogonal, diagonal], D: diagonal, x: positive, s: positive}
        function: x
        wrt: x
    """)
    assert problem.assume["A"] == ASSUMPTIONS[:5]


def test_domain_assumptions_fit_their_shapes() -> None:
    problem = load("""\
        variables: {p: [n], y: [n], q: [n], W: [n, m], s: []}
        assume: {p: simplex, y: onehot, q: probability, W: nonnegative, s: probability}
        function: y'*log(p)
        wrt: p
    """)
    assert problem.assume == {"p": ("simplex",), "y": ("onehot",), "q": ("probability",),
                              "W": ("nonnegative",), "s": ("probability",)}
    assert load("""\
        variables: {P: [n, k]}
        assume: {P: simplex}
        function: tr(P'*P)
        wrt: P
    """).assume == {"P": ("simplex",)}  # a matrix: each column
    with pytest.raises(ShapeError) as info:
        load("""\
            variables: {p: []}
            assume: {p: simplex}
            function: p^2
            wrt: p
        """)
    assert info.value.message == "assumption 'simplex' needs a vector (or a matrix, for each of its columns), but p is a scalar"


def test_error_render_shows_caret_and_hint() -> None:
    error = error_of("""\
        variables: {X: []}
        fucntion: tr(X)
        wrt: X
    """)
    assert error.render() == (
        "error: p.yaml:2:1: unknown key 'fucntion'\n"
        "    fucntion: tr(X)\n"
        "    ^\n"
        "hint: did you mean 'function'?"
    )


BAD_FILES = [
    # (file, kind, line, column, message)
    ("unknown_key.yaml", ProblemError, 4, 1, "unknown key 'fucntion'"),
    ("yaml_syntax.yaml", ProblemError, 3, 9, "invalid YAML"),
    ("tab_indent.yaml", ProblemError, 2, 1, "found character '\\t'"),
    ("missing_wrt.yaml", ProblemError, 1, 1, "missing required key 'wrt'"),
    ("bad_dimension.yaml", ProblemError, 2, 10, "dimension 0 of 'X' is not positive"),
    ("not_square.yaml", ShapeError, 5, 7, "assumption 'spd' needs a square matrix, but B is m×n"),
    ("wrt_where_name.yaml", ProblemError, 7, 10, "cannot differentiate with respect to 'y'"),
    ("function_not_text.yaml", ProblemError, 3, 11, "function must be an expression written as text"),
    ("not_utf8.yaml", ProblemError, 1, 11, "not UTF-8"),
]


@pytest.mark.parametrize(("name", "kind", "line", "column", "message"), BAD_FILES)
def test_bad_files(name: str, kind: type[DerivgenError], line: int, column: int, message: str) -> None:
    path = BAD / name
    with pytest.raises(kind) as info:
        load_problem(path)
    assert message in info.value.message
    assert info.value.location.file == str(path)
    assert at(info.value) == (line, column)
    assert info.value.location.source_line is not None
    assert info.value.hint


def test_every_bad_file_is_tested() -> None:
    assert sorted(path.name for path in BAD.iterdir()) == sorted(case[0] for case in BAD_FILES)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as info:
        load_problem(tmp_path / "nope.yaml")
    assert "cannot read" in info.value.message
    assert info.value.location == Location(str(tmp_path / "nope.yaml"))


# --- set files and problem discovery --------------------------------------------------------


def write(directory: Path, name: str, text: str = "variables: {x: []}\nfunction: x\nwrt: x\n") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_set_config_defaults(tmp_path: Path) -> None:
    config = load_set_config(write(tmp_path, "derivgen.yaml", "# nothing yet\n"))
    assert config == SetConfig(path=str(tmp_path / "derivgen.yaml"))
    assert (config.language, config.layout, config.order, config.formats) == ("en", "denominator", None, None)


def test_set_config_full(tmp_path: Path) -> None:
    (tmp_path / "my_templates").mkdir()
    config = load_set_config(write(tmp_path, "derivgen.yaml", """\
        title: Matrix calculus
        course: 18.065
        author: A. Teacher
        date: 2024-09-01
        language: zh
        order: [p2, p1.yaml]
        formats: md, pdf
        templates: my_templates
        layout: numerator
    """))
    assert config.title == "Matrix calculus"
    assert config.course == "18.065"
    assert config.date == "2024-09-01"
    assert config.language == "zh"
    assert config.order == ("p2", "p1")
    assert config.formats == ("md", "pdf")
    assert config.templates == "my_templates"
    assert config.templates_dir == tmp_path / "my_templates"
    assert config.layout == "numerator"
    assert (config.locations["order.1"].line, config.locations["order.1"].column) == (6, 13)


SET_ERRORS = [
    ("autor: me\n", 1, 1, "unknown key 'autor'", "did you mean 'author'?"),
    ("function: x\n", 1, 1, "unknown key 'function'", "belongs in a problem file"),
    ("title: T\nlanguage: cn\n", 2, 11, "invalid language 'cn'", "language is one of: en, zh"),
    ("layout: denominater\n", 1, 9, "invalid layout 'denominater'", "did you mean 'denominator'?"),
    ("formats: [md, htm]\n", 1, 15, "unknown format 'htm'", "did you mean 'html'?"),
    ("order: [a, b, a]\n", 1, 15, "problem 'a' is listed twice in order", None),
    ("order: p1\n", 1, 8, "order must be a list, not text", None),
    ("templates: nowhere\n", 1, 12, "templates directory not found", None),
    ("- title\n", 1, 1, "a set file must be a mapping", None),
]


@pytest.mark.parametrize(("text", "line", "column", "message", "hint"), SET_ERRORS)
def test_set_config_errors(tmp_path: Path, text: str, line: int, column: int, message: str, hint: str | None) -> None:
    path = write(tmp_path, "derivgen.yaml", text)
    with pytest.raises(ProblemError) as info:
        load_set_config(path)
    assert message in info.value.message
    assert info.value.location.file == str(path)
    assert at(info.value) == (line, column)
    if hint is not None:
        assert hint in info.value.hint


@pytest.fixture
def problem_set(tmp_path: Path) -> Path:
    directory = tmp_path / "set"
    directory.mkdir()
    for name in ("b.yaml", "a.yaml", "c.yml", ".swap.yaml", "notes.txt"):
        write(directory, name)
    (directory / "sub.yaml").mkdir()
    return directory


def test_find_problems_sorted_by_name(problem_set: Path) -> None:
    config, paths = find_problems([problem_set])
    assert [path.name for path in paths] == ["a.yaml", "b.yaml", "c.yml"]
    assert config == SetConfig()


def test_find_problems_in_set_order(problem_set: Path) -> None:
    write(problem_set, "derivgen.yaml", "title: Set\norder:\n  - c\n  - a.yaml\n")
    config, paths = find_problems([str(problem_set)])
    assert config.title == "Set"
    assert [path.name for path in paths] == ["c.yml", "a.yaml", "b.yaml"]  # unlisted ones follow by name


def test_find_problems_order_names_a_missing_problem(problem_set: Path) -> None:
    set_file = write(problem_set, "derivgen.yaml", "order:\n  - c\n  - bb\n")
    with pytest.raises(ProblemError) as info:
        find_problems([problem_set])
    assert "order names 'bb', but there is no bb.yaml" in info.value.message
    assert info.value.location == Location(str(set_file), 3, 5, "  - bb")
    assert info.value.hint == "did you mean 'b'?"


def test_find_problems_files_and_directories(problem_set: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write(other, "derivgen.yaml", "language: zh\n")
    write(other, "z.yaml")
    single = write(tmp_path, "single.yaml")
    config, paths = find_problems([single, problem_set, problem_set / "a.yaml", other])
    assert [path.name for path in paths] == ["single.yaml", "a.yaml", "b.yaml", "c.yml", "z.yaml"]
    assert config == SetConfig()  # the first directory has no set file
    config, _ = find_problems([other, problem_set])
    assert config.language == "zh"
    assert find_problems([single]) == (SetConfig(), [single])
    assert find_problems([other / "derivgen.yaml", single]) == (SetConfig(), [single])  # from problems/*.yaml


def test_find_problems_errors(problem_set: Path, tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match="no such file or directory"):
        find_problems([tmp_path / "missing"])
    other = tmp_path / "other"
    other.mkdir()
    write(other, "a.yaml")
    with pytest.raises(ProblemError, match="two problems have the id 'a'"):
        find_problems([problem_set, other])


# --- never anything but a DerivgenError ------------------------------------------------------


def outcome(text: str) -> None:
    try:
        problem = load_problem_text(text, "any.yaml")
    except DerivgenError as error:
        assert error.location is not None
        error.render()
    else:
        assert isinstance(problem, Problem)
        for _, source in (*problem.where, ("function", problem.function)):
            for offset in range(len(source.text) + 1):
                source.location_at(offset)


@given(st.text())
@settings(max_examples=300)
def test_any_text_gives_a_problem_or_a_derivgen_error(text: str) -> None:
    outcome(text)


YAMLISH = st.lists(
    st.sampled_from([
        "function", "wrt", "variables", "assume", "where", "title", "X", "x", "n", "[", "]", "{", "}",
        ": ", ":", ", ", "- ", "\n", "\n  ", "  ", "'", '"', "|", ">", "-", "+", "2", "&a ", "*a", "!!str ",
        "#", "\\", "\t", "symmetric", "tr(X)", "0", "yes", "\r\n", "?", "---\n", "%YAML 1.1\n",
    ]),
    max_size=40,
).map("".join)


@given(YAMLISH)
@settings(max_examples=500)
def test_yaml_like_text_gives_a_problem_or_a_derivgen_error(text: str) -> None:
    outcome(text)

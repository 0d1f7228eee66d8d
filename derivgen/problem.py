"""Problem files: YAML in, a validated `Problem` out, every error pinned to file, line and column.

A problem file is untrusted data. It is *composed* into YAML nodes with PyYAML's safe loader
(nodes keep their position in the file) and every value is built here from the nodes, so that
an error can point at the offending key or item. Aliases and non-standard tags are refused,
nothing is constructed from a tag and nothing is evaluated.

Expressions are not parsed here. They are kept as `SourceText`, which maps each character of
the expression back into the file (through YAML quoting, folding and block indentation), so
that the expression parser can point at the exact spot of its errors.

The set file `derivgen.yaml` (`load_set_config`) and the discovery of the problem files of a
set (`find_problems`) live here too.
"""

from __future__ import annotations

import bisect
import difflib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from derivgen import functions, limits
from derivgen.errors import DerivgenError, Location, ProblemError, ShapeError, source_line
from derivgen.limits import LimitError

__all__ = [
    "ASSUMPTIONS",
    "FORMATS",
    "LANGUAGES",
    "LAYOUTS",
    "PROBLEM_KEYS",
    "RESERVED_NAMES",
    "SET_KEYS",
    "SQUARE_ASSUMPTIONS",
    "Problem",
    "SetConfig",
    "SourceText",
    "find_problems",
    "load_problem",
    "load_problem_text",
    "load_set_config",
]

ASSUMPTIONS: tuple[str, ...] = ("symmetric", "spd", "invertible", "orthogonal", "diagonal", "positive",
                                 "nonnegative", "probability", "simplex", "onehot", "full_column_rank")
SQUARE_ASSUMPTIONS = {"symmetric", "spd", "invertible", "orthogonal", "diagonal"}
VECTOR_ASSUMPTIONS = {"simplex", "onehot"}  # entries ≥ 0 summing to 1; one entry 1, the rest 0 (a matrix: each column)

#: Names that mean something in expressions, so cannot name a variable: name -> what it is.
RESERVED_NAMES: dict[str, str] = {
    **{name: "a function" for name in functions.USER_NAMES},
    "I": "the identity matrix",
    "T": "the transpose mark (A^T)",
}

LANGUAGES = ("en", "zh")
LAYOUTS = ("denominator", "numerator")
DETAILS = ("brief", "normal", "full")  # how fine the steps are (derivgen.derive.detail)
FORMATS = ("md", "tex", "pdf", "html", "json")
PROBLEM_KEYS = (
    "title", "statement", "variables", "indices", "assume", "where", "function", "wrt",
    "order", "layout", "detail", "solve", "constrain_symmetric", "vary", "notes", "name", "domain", "self_check",
)
SET_KEYS = ("title", "course", "author", "date", "language", "order", "formats", "templates", "layout", "detail",
            "self_check")
#: `self_check:` values: false (no box), true or "sheets" (a box on the problem sheets), "all"
#: (on the solution pages too). The box is the HTML handouts' offline answer check (issue 10).
SELF_CHECK_MODES = ("sheets", "all")
SET_FILE_NAMES = ("derivgen.yaml", "derivgen.yml")
PROBLEM_SUFFIXES = (".yaml", ".yml")

_REQUIRED = ("function", "wrt")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NAME_HINT = "a name starts with a letter, followed by letters, digits or _ (X, W1, x_hat)"
_BREAKS = "\r\n\x85\u2028\u2029"  # what YAML counts as a line break

_TAG = "tag:yaml.org,2002:"
_MAP, _SEQ, _STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP = (
    _TAG + name for name in ("map", "seq", "str", "null", "bool", "int", "float", "timestamp")
)
# Tags PyYAML's resolver gives to untagged nodes; anything else was written by the user (`!!set`, `!x`).
_PLAIN_TAGS = {_MAP, _SEQ, _STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP, _TAG + "merge", _TAG + "value"}
_KINDS = {_STR: "text", _NULL: "empty", _BOOL: "true/false", _INT: "a number", _FLOAT: "a number",
          _TIMESTAMP: "a date"}


# ---------------------------------------------------------------------------------------------
# Public data


@dataclass(frozen=True)
class SourceText:
    """An expression string from a problem file, and where it sits in the file."""

    text: str  # the expression as the user wrote it (after YAML unquoting)
    file: str | None = None
    line: int | None = None  # 1-based line of the first character of `text` in the file
    column: int | None = None  # 1-based column of the first character of `text`
    # (line, column) in the file of each offset 0..len(text); None when not known exactly
    _positions: tuple[tuple[int, int], ...] | None = field(default=None, repr=False, compare=False)
    _lines: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    def prefix(self, length: int) -> "SourceText":
        """The first `length` characters, at the same place in the file."""
        positions = None if self._positions is None else self._positions[:length + 1]
        return SourceText(self.text[:length], self.file, self.line, self.column, positions, self._lines)

    def location_at(self, offset: int) -> Location:
        """Location in the file of character `offset` (0-based) of `text`.

        Exact for plain, single- and double-quoted and block (`|`, `>`) scalars; offsets past the
        end map just after the last character. Without a mapping (a `SourceText` made by hand)
        the text is taken to sit verbatim in the file at `line`/`column`.
        """
        offset = max(0, min(offset, len(self.text)))
        if self._positions is not None:
            line, column = self._positions[offset]
        elif self.line is None:
            return Location(self.file)
        else:
            line, column = _verbatim_position(self.text, offset, self.line, self.column)
        return Location(self.file, line, column, self._source_line(line))

    @property
    def location(self) -> Location:
        """Location of the first character of the expression."""
        return self.location_at(0)

    def _source_line(self, line: int | None) -> str | None:
        if self._lines is None:
            return source_line(self.file, line)
        if line is not None and 1 <= line <= len(self._lines):
            return self._lines[line - 1]
        return None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Problem:
    """One validated problem file (see DESIGN.md section 1)."""

    id: str  # file name without .yaml
    path: str | None
    title: str  # "" if absent
    statement: str  # "" if absent (Markdown)
    variables: dict[str, tuple[int | str, ...]]  # name -> shape; () scalar, (n,) vector, (m, n) matrix
    assume: dict[str, tuple[str, ...]]  # name -> assumptions, e.g. {"B": ("symmetric",)}
    where: tuple[tuple[str, SourceText], ...]  # ordered (name, definition)
    function: SourceText
    wrt: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)  # order, layout, detail, solve, constrain_symmetric, self_check
    indices: dict[str, int | str] = field(default_factory=dict)  # index -> range: `indices: {t: N}`
    # "title", "variables.X", "variables.X.0", "assume.B", "assume.B.0", "where.Y", "wrt.0", "function"...:
    # a top-level key names its value, "key.name" an entry's name, "….i" item i of a list.
    locations: dict[str, Location] = field(default_factory=dict)
    # `title:` and `statement:` per language ({"en": …, "zh": …}); `title`/`statement` above hold
    # the first language's (English if given). A plain text is {"": text}: every language.
    titles: dict[str, str] = field(default_factory=dict)
    statements: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # teacher notes (solutions only), per language
    name: dict[str, str] = field(default_factory=dict)  # the function's name: {"text": "L", "latex": "L"}
    # `domain:` conditions the check's random values satisfy: ("order", "n", ">", "k") for
    # dimensions, ("positive", SourceText) for an expression whose entries are positive
    domain: tuple[tuple, ...] = ()

    def in_language(self, key: str, lang: str) -> str:
        """The title, statement or notes (`key`: "titles", "statements", "notes") in `lang`:
        that language's text, else the text for every language, else English, else ""."""
        texts = getattr(self, key)
        return texts.get(lang) or texts.get("") or texts.get("en") or next(iter(texts.values()), "")


@dataclass(frozen=True)
class SetConfig:
    """The settings of a problem set, from its `derivgen.yaml` (all optional)."""

    title: str | None = None
    course: str | None = None
    author: str | None = None
    date: str | None = None
    language: str = "en"  # "en" or "zh"
    order: tuple[str, ...] | None = None  # problem ids in handout order
    formats: tuple[str, ...] | None = None
    templates: str | None = None  # a directory, as written: relative to the set directory
    layout: str = "denominator"  # or "numerator"
    self_check: str | bool = False  # False, "sheets" or "all" (SELF_CHECK_MODES); a problem's own key wins
    detail: str = "normal"  # how fine the steps are: "brief", "normal" or "full"
    path: str | None = None
    locations: dict[str, Location] = field(default_factory=dict, compare=False)  # "order.0", "title", ...

    @property
    def templates_dir(self) -> Path | None:
        """The templates directory resolved against the set directory (None if not set)."""
        if self.templates is None:
            return None
        base = Path(self.path).parent if self.path else Path()
        return base / self.templates


# ---------------------------------------------------------------------------------------------
# Public functions


def load_problem(path: str | Path) -> Problem:
    """Read and validate the problem file at `path`; its id is the file name without `.yaml`.

    Raises `ProblemError` (or `ShapeError` for an assumption that does not fit a shape) located
    at the offending key or value.
    """
    path = Path(path)
    return load_problem_text(_read_file(path), str(path), path.stem)


def load_problem_text(text: str, path: str | None = None, problem_id: str = "problem", variant=None) -> Problem:
    """Validate the problem file contents `text`; `path` is only used in locations.

    `variant(src, root)` (from `derivgen.variants`) gives the root node of one variant to read instead."""
    if len(text) > limits.MAX_FILE_CHARS:
        raise LimitError(f"the problem file is longer than {limits.MAX_FILE_CHARS} characters",
                         Location(path, 1, 1, source_line(None, 1, text[:1000])),
                         "a problem file holds one problem; split a larger one")
    src = _Source(text, path)
    root = _compose(src)
    if root is not None and variant is not None:
        root = variant(src, root)
    if root is None:
        raise ProblemError("the problem file is empty", src.top(),
                           hint="a problem needs at least `function:` and `wrt:`, e.g. "
                                "`function: tr(A * X)` and `wrt: [X]`")
    entries = _top_entries(src, root, PROBLEM_KEYS, "a problem file", "`function: tr(A * X)` and `wrt: [X]`")
    _require(src, entries, "function", "add the function to differentiate, e.g. `function: tr(A * X)`")
    example = _first_name(entries.get("variables")) or "X"
    _require(src, entries, "wrt", f"name the variable(s) to differentiate with respect to, e.g. `wrt: [{example}]`")
    draft = _Draft()
    for key, read in _PROBLEM_SECTIONS.items():
        if key in entries and (key in _REQUIRED or not _is_null(entries[key][1])):  # empty = absent
            draft.locations[key] = src.at(entries[key][1])
            read(src, entries[key][1], draft)
    assert draft.function is not None
    return Problem(
        id=problem_id, path=path, title=draft.title, statement=draft.statement,
        variables=draft.variables, assume=draft.assume, where=tuple(draft.where),
        function=draft.function, wrt=draft.wrt, options=draft.options, locations=draft.locations,
        indices=draft.indices, titles=draft.titles, statements=draft.statements, notes=draft.notes,
        name=draft.name, domain=tuple(draft.domain),
    )


def load_set_config(path: str | Path) -> SetConfig:
    """Read and validate a set file (`derivgen.yaml`); an empty file gives the defaults."""
    path = Path(path)
    src = _Source(_read_file(path), str(path))
    root = _compose(src)
    if root is None:
        return SetConfig(path=str(path))
    entries = _top_entries(src, root, SET_KEYS, "a set file", "`title: Worked solutions` and `language: en`")
    values: dict[str, Any] = {}
    locations: dict[str, Location] = {}
    for key, (_, node) in entries.items():
        if not _is_null(node):
            locations[key] = src.at(node)
            values[key] = _SET_SECTIONS[key](src, node, locations)
    if "templates" in values:
        _check_templates_dir(src, entries["templates"][1], values["templates"], path.parent)
    return SetConfig(**values, path=str(path), locations=locations)


def find_problems(
    paths: Iterable[str | Path], refused: list[DerivgenError] | None = None
) -> tuple[SetConfig, list[Path]]:
    """The set settings and the problem files named by `paths`, in handout order.

    A directory gives all its `*.yaml` / `*.yml` files except the set file, sorted by name, then
    reordered by the `order:` of its set file: the problems it lists first, in that order, then
    the others by name. A file is taken as it is (a set file among them is skipped). The
    settings come from the first directory's set file (defaults if there is none). Raises
    `ProblemError` for a path that does not exist, an `order:` item naming no problem, or two
    problems with the same id.

    A problem file is never read from outside its set: a symlink (a file in a directory, or a
    file named itself, as `problems/*.yaml` names them) that resolves outside the directory it
    is in is refused. With a list `refused`, each such file is appended to it as a located
    `ProblemError` and the others are returned, so the rest of the set still builds; without
    one, the first is raised. A symlink that stays inside the set is followed.
    """
    config: SetConfig | None = None
    found: list[Path] = []
    by_id: dict[str, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            set_config = _set_config_of(path)
            config = config or set_config
            files = _in_set_order(path, _problem_files(path), set_config)
            directory = path
        elif path.is_file():
            files = [] if path.name in SET_FILE_NAMES else [path]  # `problems/*.yaml` names the set file too
            directory = path.parent
        else:
            raise ProblemError(f"no such file or directory: {path}", Location(str(path)),
                               hint="give a problem file or a directory of problem files")
        for file in files:
            error = _outside_error(file, directory)
            if error is not None:
                if refused is None:
                    raise error
                refused.append(error)
                continue
            if not file.is_file():  # a link inside the set to a folder or to nothing
                continue
            previous = by_id.get(file.stem)
            if previous is None:
                by_id[file.stem] = file
                found.append(file)
            elif previous.resolve() != file.resolve():  # the same file named twice is taken once
                raise ProblemError(f"two problems have the id '{file.stem}'", Location(str(file)),
                                   hint=f"{previous} has the same name; rename one of them")
    return config or SetConfig(), found


def _inside(path: Path, directory: Path) -> bool:
    """True when `path`, every symlink resolved, lies inside `directory` (also resolved)."""
    try:
        real, root = os.path.realpath(path), os.path.realpath(directory)
        return os.path.commonpath([real, root]) == root
    except (OSError, ValueError):  # a link it may not read; different drives
        return False


def _outside_error(file: Path, directory: Path) -> ProblemError | None:
    """The error refusing `file` when it resolves outside `directory`; None when it is inside.

    The message names the file as it appears in the set, never where the link leads.
    """
    if _inside(file, directory):
        return None
    return ProblemError(
        "the problem file is a symbolic link that leads out of its set directory: it was not read",
        Location(str(file)),
        hint="a problem set holds its own files: copy the problem into the set instead of linking to it",
    )


# ---------------------------------------------------------------------------------------------
# Reading and composing YAML


class _Source:
    """The text of one YAML file: turns marks, nodes and character indices into `Location`s."""

    def __init__(self, text: str, file: str | None):
        self.text = text.removeprefix("\ufeff")
        self.file = file
        self.lines = tuple(self.text.splitlines())
        self._starts = [0]  # index at which each line starts
        position = 0
        for piece in self.text.splitlines(keepends=True):
            position += len(piece)
            if piece != piece.splitlines()[0]:  # ends with a line break
                self._starts.append(position)

    def position(self, index: int) -> tuple[int, int]:
        """1-based (line, column) of the character at `index`."""
        row = bisect.bisect_right(self._starts, index) - 1
        return row + 1, index - self._starts[row] + 1

    def location(self, line: int, column: int) -> Location:
        """The `Location` of a 1-based line and column."""
        text = self.lines[line - 1] if 1 <= line <= len(self.lines) else None
        return Location(self.file, line, column, text)

    def at(self, where: Node | yaml.Mark) -> Location:
        """The `Location` of a node (its first character) or of a mark."""
        mark = where.start_mark if isinstance(where, Node) else where
        return self.location(mark.line + 1, mark.column + 1)

    def top(self) -> Location:
        """Line 1, column 1: where errors about the file as a whole point."""
        return self.location(1, 1)

    def error(self, message: str, where: Node, hint: str | None = None,
              kind: type[DerivgenError] = ProblemError) -> DerivgenError:
        """An error located at `where`, to raise."""
        return kind(message, self.at(where), hint)


def _read_file(path: Path) -> str:
    """The text of a UTF-8 file (a BOM is dropped), or a `ProblemError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ProblemError(f"cannot read {path}: {reason}", Location(str(path))) from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        line_bytes = data[line_start:line_end if line_end >= 0 else len(data)]
        column = len(data[line_start:exc.start].decode("utf-8", errors="replace")) + 1
        location = Location(str(path), data.count(b"\n", 0, exc.start) + 1, column,
                            line_bytes.decode("utf-8", errors="replace").rstrip("\r"))
        raise ProblemError("the file is not UTF-8 text", location,
                           hint="save it with the UTF-8 encoding") from None


class _AliasError(yaml.MarkedYAMLError):
    """An alias (`*name`): refused, so that values are written out where they are used."""


class _Composer(yaml.SafeLoader):
    """PyYAML's safe loader, used only to compose nodes; aliases are refused."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            raise _AliasError(problem="aliases ('*name') are not supported in problem files",
                              problem_mark=self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _compose(src: _Source) -> Node | None:
    """The root node of the document in `src` (None if it holds no document)."""
    try:
        loader = _Composer(src.text)  # what yaml.compose does, keeping the loader for its position
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line, column = src.position(exc.position)
        raise ProblemError(f"invalid YAML: the character {_char_name(exc.character)} is not allowed",
                           src.location(line, column), hint="remove the control character") from None
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = "invalid YAML: " + ", ".join(part for part in (exc.context, exc.problem) if part)
        location = src.at(mark) if mark is not None else src.at(loader.get_mark())
        raise ProblemError(message, location, _yaml_hint(exc, src, mark)) from None
    except RecursionError:
        raise ProblemError("invalid YAML: nested too deeply", src.at(loader.get_mark())) from None
    except (ValueError, OverflowError):  # PyYAML's scanner lets chr() fail on e.g. "\UFFFFFFFF"
        raise ProblemError("invalid YAML: an escape sequence names no character", src.at(loader.get_mark()),
                           hint="check the escape sequences (\\x, \\u, \\U) of double-quoted text") from None
    except yaml.YAMLError as exc:
        raise ProblemError(f"invalid YAML: {exc}", src.at(loader.get_mark())) from None
    finally:
        loader.dispose()


def _char_name(character: int | str) -> str:
    code = character if isinstance(character, int) else ord(character)
    return f"U+{code:04X}"


_KEY_VALUE = re.compile(r"\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*):\s+(.*?)\s*")


def _yaml_hint(exc: yaml.MarkedYAMLError, src: _Source, mark: yaml.Mark | None) -> str:
    problem = f"{exc.context} {exc.problem}"
    quoted = _quote_whole_value(src, mark)
    if isinstance(exc, _AliasError):
        text = f" (or quote it, `{quoted[1]}`, if it is text)" if quoted else ""
        return f"write the value out in full where it is used{text}"
    if quoted:
        return f"YAML reads a value that starts with {quoted[0]!r} specially: quote the whole value, `{quoted[1]}`"
    if "'\\t'" in problem or "tab character" in problem:
        return "indent with spaces: YAML does not allow tabs for indentation"
    if "single document" in problem:
        return "a problem file holds one problem: remove the `---` line or split the file"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ', and check the indentation of the keys"
    return ("check the indentation, and quote values that start with a YAML special character "
            "([ ] { } & * ! | > ' \" % @ `)")


# ---------------------------------------------------------------------------------------------
# Building values from nodes


def _quote_whole_value(src: _Source, mark: yaml.Mark | None) -> tuple[str, str] | None:
    """For `key: 'x' * y` (a value starting with a YAML indicator): the indicator and the fix."""
    line = src.lines[mark.line] if mark is not None and mark.line < len(src.lines) else ""
    match = _KEY_VALUE.fullmatch(line)
    if not match or not match[2] or match[2][0] not in "'\"&*!|>%@`":
        return None
    key, value = match[1], match[2]
    if '"' in value or "\\" in value:
        return value[0], f"{key}: '{value.replace(chr(39), chr(39) * 2)}'"
    return value[0], f'{key}: "{value}"'


def _check_tag(src: _Source, node: Node) -> None:
    if node.tag not in _PLAIN_TAGS:
        raise src.error(f"unsupported YAML tag '{node.tag}'", node,
                        hint="problem files hold plain text, numbers, lists and mappings: remove the tag")


def _kind(node: Node) -> str:
    """What the user wrote, in words: 'a list', 'a number', ..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _KINDS.get(node.tag, f"'{node.value}'")


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _entries(src: _Source, node: Node, what: str, example: str) -> list[tuple[str, ScalarNode, Node]]:
    """The (name, key node, value node) entries of a mapping node, in order; no duplicate keys."""
    if not isinstance(node, MappingNode):
        raise src.error(f"{what} must be a mapping, not {_kind(node)}", node, hint=f"for example: {example}")
    _check_tag(src, node)
    seen: dict[str, ScalarNode] = {}
    entries = []
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            raise src.error(f"a key must be a name, not {_kind(key)}", key)
        _check_tag(src, key)
        if key.value in seen:
            first = seen[key.value].start_mark.line + 1
            raise src.error(f"duplicate key '{key.value}'", key, hint=f"'{key.value}' is already given on line {first}")
        seen[key.value] = key
        entries.append((key.value, key, value))
    return entries


def _items(src: _Source, node: Node, what: str, example: str, single: bool = False) -> list[Node]:
    """The items of a list node; with `single`, a lone scalar counts as a one-item list."""
    if single and isinstance(node, ScalarNode):
        return [node]
    if not isinstance(node, SequenceNode):
        raise src.error(f"{what} must be a list, not {_kind(node)}", node, hint=f"for example: {example}")
    _check_tag(src, node)
    return list(node.value)


def _name(src: _Source, node: Node, what: str) -> str:
    """A name written as a scalar (a `wrt` item, an assumption, ...)."""
    if not isinstance(node, ScalarNode) or _is_null(node):
        raise src.error(f"{what} must be a name, not {_kind(node)}", node)
    _check_tag(src, node)
    return node.value


def _text(src: _Source, node: Node, what: str) -> str:
    """Plain text, as written (`date: 2024-09-01` and `course: 18.065` stay text)."""
    if not isinstance(node, ScalarNode):
        raise src.error(f"{what} must be text, not {_kind(node)}", node,
                        hint=f"write it on one line after `{what}:`, or as a `|` block")
    _check_tag(src, node)
    return node.value


def _choice(src: _Source, node: Node, what: str, choices: tuple[str, ...]) -> str:
    """Text that must be one of `choices` (with a did-you-mean)."""
    value = _text(src, node, what)
    if value not in choices:
        raise src.error(f"invalid {what} '{value}'", node, hint=_did_you_mean(value, choices, f"{what} is one of"))
    return value


def _expression(src: _Source, node: Node, what: str, example: str) -> SourceText:
    """An expression string, kept with its position in the file."""
    if _is_null(node) or (isinstance(node, ScalarNode) and node.tag == _STR and not node.value.strip()):
        raise src.error(f"{what} is empty", node, hint=f"write the expression, e.g. `{example}`")
    if not isinstance(node, ScalarNode) or node.tag != _STR:
        _check_tag(src, node)
        raise src.error(f"{what} must be an expression written as text, not {_kind(node)}", node,
                        hint=f"write it like `{example}`; quote it if YAML reads it as something else")
    return _source_text(src, node)


def _did_you_mean(word: str, choices: Iterable[str], listing: str) -> str | None:
    """'did you mean ...?' for a close match, else `listing: a, b, c` (None if no choices)."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"{listing}: {', '.join(choices)}" if choices else None


def _first_name(entry: tuple[ScalarNode, Node] | None) -> str | None:
    """The first key of a mapping entry's value, if it is a mapping with a name first."""
    if entry is None or not isinstance(entry[1], MappingNode) or not entry[1].value:
        return None
    key = entry[1].value[0][0]
    return key.value if isinstance(key, ScalarNode) and _IDENTIFIER.fullmatch(key.value) else None


# ---------------------------------------------------------------------------------------------
# Top level of a problem or set file


def _top_entries(src: _Source, root: Node, keys: tuple[str, ...], what: str,
                 example: str) -> dict[str, tuple[ScalarNode, Node]]:
    """The top-level mapping of a file as key -> (key node, value node); unknown keys are errors."""
    entries = {}
    for name, key, value in _entries(src, root, what, f"`key: value` lines such as {example}"):
        if name not in keys:
            raise src.error(f"unknown key '{name}'", key, hint=_unknown_key_hint(name, keys))
        entries[name] = (key, value)
    return entries


def _unknown_key_hint(name: str, keys: tuple[str, ...]) -> str | None:
    if keys is PROBLEM_KEYS and name in SET_KEYS:
        return f"'{name}' is a setting of the whole set: put it in derivgen.yaml next to the problems"
    if keys is SET_KEYS and name in PROBLEM_KEYS:
        return f"'{name}' belongs in a problem file, not in the set file derivgen.yaml"
    return _did_you_mean(name, keys, "valid keys are")


def _require(src: _Source, entries: dict[str, Any], key: str, hint: str) -> None:
    if key not in entries:
        raise ProblemError(f"missing required key '{key}'", src.top(), hint)


# ---------------------------------------------------------------------------------------------
# Problem sections: one reader per key, run in this order (later ones use earlier ones)


@dataclass
class _Draft:
    """A problem while its sections are read."""

    title: str = ""
    statement: str = ""
    variables: dict[str, tuple[int | str, ...]] = field(default_factory=dict)
    dims: dict[str, Node] = field(default_factory=dict)  # dimension symbol -> its first use
    assume: dict[str, tuple[str, ...]] = field(default_factory=dict)
    where: list[tuple[str, SourceText]] = field(default_factory=list)
    function: SourceText | None = None
    wrt: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    indices: dict[str, int | str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    statements: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)
    domain: list[tuple] = field(default_factory=list)


_VARIABLES_EXAMPLE = "`X: [m, n]` (a matrix), `x: [n]` (a vector), `t: []` (a scalar)"


def _per_language(src: _Source, node: Node, what: str) -> dict[str, str]:
    """Text, or text per language (`{en: …, zh: …}`): {"": text} or {"en": …, "zh": …}."""
    from .i18n import LANGUAGES

    if not isinstance(node, MappingNode):
        return {"": _text(src, node, what)}
    texts = {}
    for lang, key, value in _entries(src, node, what, f"`{what}: {{en: …, zh: …}}`"):
        if lang not in LANGUAGES:
            raise src.error(f"unknown language '{lang}' in {what}", key,
                            hint=_did_you_mean(lang, LANGUAGES, "the languages are"))
        texts[lang] = _text(src, value, f"{what}.{lang}")
    if not texts:
        raise src.error(f"{what} is an empty mapping", node, hint=f"write `{what}: {{en: …, zh: …}}` or plain text")
    return texts


def _first(texts: dict[str, str]) -> str:
    return texts.get("") or texts.get("en") or next(iter(texts.values()))


def _read_title(src: _Source, node: Node, draft: _Draft) -> None:
    draft.titles = {lang: text.strip() for lang, text in _per_language(src, node, "title").items()}
    draft.title = _first(draft.titles)


def _read_statement(src: _Source, node: Node, draft: _Draft) -> None:
    draft.statements = _per_language(src, node, "statement")
    draft.statement = _first(draft.statements)


def _read_notes(src: _Source, node: Node, draft: _Draft) -> None:
    draft.notes = _per_language(src, node, "notes")


def _read_name(src: _Source, node: Node, draft: _Draft) -> None:
    """`name: L` (a name, printed as variables are: `ell` → ℓ) or `name: {text: L, latex: \\mathcal{L}}`."""
    from .latex import check_math
    from .printing import name_latex, name_unicode

    example = "`name: L`, or `name: {text: L, latex: \"\\\\mathcal{L}\"}`"
    if isinstance(node, MappingNode):
        found = {}
        for key, key_node, value in _entries(src, node, "name", example):
            if key not in ("text", "latex"):
                raise src.error(f"unknown key '{key}' in name", key_node, hint=_did_you_mean(key, ("text", "latex"), "name has"))
            found[key] = _text(src, value, f"name.{key}").strip()
            if not found[key] or len(found[key]) > 40:
                raise src.error(f"name.{key} must be 1 to 40 characters", value, hint=example)
            rejected = check_math(found[key]) if key == "latex" else None
            if rejected is not None:
                raise src.error(f"name.latex is not LaTeX derivgen allows: {rejected.reason}", value, hint=example)
        if "text" not in found:
            raise src.error("name needs `text:`", node, hint=example)
        draft.name = {"text": found["text"], "latex": found.get("latex") or name_latex(found["text"])
                      if _IDENTIFIER.fullmatch(found["text"]) else found.get("latex", "")}
        if not draft.name["latex"]:
            raise src.error("name needs `latex:` when its text is not a name", node, hint=example)
        return
    text = _text(src, node, "name").strip()
    if not _IDENTIFIER.fullmatch(text) or len(text) > 40:
        raise src.error(f"invalid function name '{text}'", node, hint=example)
    if text in draft.variables:
        raise src.error(f"the function's name '{text}' is also the name of a variable", node,
                        hint="name the function something else, e.g. L")
    draft.name = {"text": name_unicode(text), "latex": name_latex(text)}


def _read_variables(src: _Source, node: Node, draft: _Draft) -> None:
    entries = _entries(src, node, "variables", _VARIABLES_EXAMPLE)
    _at_most(src, [key for _, key, _ in entries], limits.MAX_VARIABLES, "variables")
    for name, key, shape in entries:
        _check_name(src, name, key, "variable")
        draft.locations[f"variables.{name}"] = src.at(key)
        draft.variables[name] = _read_shape(src, name, shape, draft)
    for symbol, use in draft.dims.items():
        if symbol in draft.variables:
            raise src.error(f"dimension '{symbol}' is also the name of a variable", use,
                            hint="use different names for sizes and variables, e.g. n for the length of x")


def _read_indices(src: _Source, node: Node, draft: _Draft) -> None:
    """`indices: {t: N}`: t runs over 1..N; a variable named x_t is then a family of N samples."""
    example = "`indices: {t: N}` (and a variable `x_t: [n]` for the samples x_1 … x_N)"
    for name, key, value in _entries(src, node, "indices", example):
        _check_name(src, name, key, "index")
        if name in draft.variables:
            raise src.error(f"index '{name}' is also the name of a variable", key, hint="use a new letter, e.g. t")
        draft.locations[f"indices.{name}"] = src.at(key)
        draft.indices[name] = _read_dim(src, f"the range of {name}", value, draft)
    for var, dims in draft.variables.items():
        base, _, index = var.rpartition("_")
        if base and index in draft.indices and len(dims) == 2:
            raise src.error(f"'{var}' is a family indexed by {index}: each sample must be a vector or a scalar",
                            node, hint=f"declare `{var}: [n]` (a vector per sample)")


def _at_most(src: _Source, nodes: list[Node], limit: int, what: str) -> None:
    """Refuse more than `limit` entries, at the first one past it."""
    if len(nodes) > limit:
        raise src.error(f"more than {limit} {what}", nodes[limit], kind=LimitError,
                        hint=f"a problem has at most {limit} {what}; split it into several problems")


def _check_name(src: _Source, name: str, node: Node, role: str) -> None:
    if not _IDENTIFIER.fullmatch(name):
        raise src.error(f"invalid {role} name '{name}'", node, hint=_NAME_HINT)
    if name in RESERVED_NAMES:
        raise src.error(f"'{name}' is {RESERVED_NAMES[name]}, so it cannot be a {role} name", node,
                        hint=f"choose another name, e.g. {name}1")


def _read_shape(src: _Source, name: str, node: Node, draft: _Draft) -> tuple[int | str, ...]:
    hint = f"write `{name}: [m, n]` for a matrix, `[n]` for a vector, `[]` for a scalar"
    if _is_null(node):
        raise src.error(f"missing shape for '{name}'", node, hint=hint)
    dims: list[int | str] = []
    for index, item in enumerate(_items(src, node, f"the shape of '{name}'", hint.removeprefix("write "))):
        if index == 2:
            raise src.error(f"'{name}' has {len(node.value)} dimensions, but at most 2 (a matrix) are supported",
                            item, hint=hint)
        dims.append(_read_dim(src, name, item, draft))
        draft.locations[f"variables.{name}.{index}"] = src.at(item)
    return tuple(dims)


def _read_dim(src: _Source, name: str, node: Node, draft: _Draft) -> int | str:
    hint = "a dimension is a positive integer or a symbol such as n"
    if not isinstance(node, ScalarNode):
        raise src.error(f"a dimension of '{name}' must be a number or a symbol, not {_kind(node)}", node, hint=hint)
    _check_tag(src, node)
    text = node.value
    if _INTEGER.fullmatch(text):
        if len(text) > 12 or int(text) > limits.MAX_INTEGER_DIMENSION:  # (int() of 5000 digits raises)
            raise src.error(f"dimension {text[:12]}{'…' if len(text) > 12 else ''} of '{name}' is too large", node,
                            kind=LimitError, hint=f"a dimension written as a number is at most "
                                                  f"{limits.MAX_INTEGER_DIMENSION}; use a symbol such as n")
        if int(text) <= 0:
            raise src.error(f"dimension {int(text)} of '{name}' is not positive", node, hint=hint)
        return int(text)
    if _IDENTIFIER.fullmatch(text):
        draft.dims.setdefault(text, node)
        if len(draft.dims) > limits.MAX_DIMENSION_SYMBOLS:
            raise src.error(f"more than {limits.MAX_DIMENSION_SYMBOLS} dimension symbols", node, kind=LimitError,
                            hint=f"a problem has at most {limits.MAX_DIMENSION_SYMBOLS} sizes (m, n, ...); "
                                 "reuse a symbol where sizes are equal")
        return text
    what = "an empty dimension" if text == "" else f"invalid dimension '{text}'"
    raise src.error(f"{what} in the shape of '{name}'", node, hint=hint)


def _read_assume(src: _Source, node: Node, draft: _Draft) -> None:
    example = "`B: [symmetric]`"
    for name, key, value in _entries(src, node, "assume", example):
        if name not in draft.variables:
            raise src.error(f"assumption about '{name}', which is not a declared variable", key,
                            hint=_did_you_mean(name, draft.variables, "declared variables"))
        if _is_null(value):
            raise src.error(f"no assumption given for '{name}'", key, hint=f"for example: {example}")
        draft.locations[f"assume.{name}"] = src.at(key)
        items = _items(src, value, f"the assumptions about '{name}'", example, single=True)
        words: list[str] = []
        for index, item in enumerate(items):
            word = _read_assumption(src, name, item, draft)
            if word in words:
                raise src.error(f"assumption '{word}' is listed twice for '{name}'", item)
            words.append(word)
            draft.locations[f"assume.{name}.{index}"] = src.at(item)
        draft.assume[name] = tuple(words)


#: What people write for an assumption derivgen names otherwise (a hint, not a second spelling).
_ASSUMPTION_WORDS = {
    "positive definite": "spd", "pd": "spd", "spd matrix": "spd", "symmetric positive definite": "spd",
    "covariance": "spd",
    "nonsingular": "invertible", "non singular": "invertible", "regular": "invertible",
    "sym": "symmetric", "symmetrical": "symmetric", "orthonormal": "orthogonal", "unitary": "orthogonal",
    "probability vector": "simplex", "distribution": "simplex", "one hot": "onehot",
    "non negative": "nonnegative", "positive entries": "positive",
}


def _read_assumption(src: _Source, name: str, node: Node, draft: _Draft) -> str:
    word = _name(src, node, "an assumption")
    if word not in ASSUMPTIONS:
        known = _ASSUMPTION_WORDS.get(" ".join(word.lower().replace("_", " ").replace("-", " ").split()))
        if known is None:
            hint = _did_you_mean(word, ASSUMPTIONS, "assumptions are")
        else:
            hint = f"write `{known}`" + (" (symmetric positive definite)" if known == "spd" else "")
        raise src.error(f"unknown assumption '{word}'", node, hint=hint)
    shape = draft.variables[name]
    if word in SQUARE_ASSUMPTIONS and not (len(shape) == 2 and shape[0] == shape[1]):
        raise src.error(f"assumption '{word}' needs a square matrix, but {name} is {_describe(shape)}", node,
                        hint=f"declare {name} square (e.g. `{name}: [n, n]`) or drop '{word}'", kind=ShapeError)
    if word == "full_column_rank" and len(shape) != 2:
        raise src.error(f"assumption 'full_column_rank' needs a matrix, but {name} is {_describe(shape)}", node,
                        hint=f"declare {name} a matrix (e.g. `{name}: [n, k]`) or drop 'full_column_rank'", kind=ShapeError)
    if word in VECTOR_ASSUMPTIONS and len(shape) == 0:
        raise src.error(f"assumption '{word}' needs a vector (or a matrix, for each of its columns), but {name} is "
                        f"{_describe(shape)}", node,
                        hint=f"declare {name} a vector (e.g. `{name}: [n]`) or drop '{word}'", kind=ShapeError)
    return word


def _describe(shape: tuple[int | str, ...]) -> str:
    if not shape:
        return "a scalar"
    if len(shape) == 1:
        return f"a vector of length {shape[0]}"
    return f"{shape[0]}×{shape[1]}"


_DOMAIN_EXAMPLE = "`domain: [n > k, b - A*x > 0]`"
_ORDER = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*|[0-9]+)\s*(>=|>|<=|<)\s*([A-Za-z][A-Za-z0-9_]*|[0-9]+)\s*")
_POSITIVE = re.compile(r"(?s)(.*?)\s*>\s*0\s*")


def _read_domain(src: _Source, node: Node, draft: _Draft) -> None:
    """`domain:` — where the problem is meant: an order of two dimensions (`n > k`, `m >= n`)
    or an expression whose entries are positive (`b - A*x > 0`). The check's random sizes and
    values satisfy them; the derivation itself holds wherever f is defined."""
    items = _items(src, node, "domain", _DOMAIN_EXAMPLE, single=True)
    _at_most(src, items, limits.MAX_WHERE, "domain: conditions")
    for index, item in enumerate(items):
        if not (isinstance(item, ScalarNode) and item.tag == _STR):
            raise src.error(f"a domain condition must be text, not {_kind(item)}", item, hint=f"for example: {_DOMAIN_EXAMPLE}")
        draft.locations[f"domain.{index}"] = src.at(item)
        order = _ORDER.fullmatch(item.value)
        if order:
            a, op, b = order.groups()
            for d in (a, b):
                if not d.isdigit() and d not in draft.dims:
                    raise src.error(f"'{d}' in the domain condition '{item.value}' is not a dimension of the problem",
                                    item, hint=_did_you_mean(d, draft.dims, "its dimensions are"))
            if op.startswith("<"):
                a, b, op = b, a, op.replace("<", ">")
            draft.domain.append(("order", int(a) if a.isdigit() else a, op, int(b) if b.isdigit() else b))
            continue
        positive = _POSITIVE.fullmatch(item.value)
        if positive and positive.group(1).strip():
            text = _source_text(src, item)
            draft.domain.append(("positive", text.prefix(len(positive.group(1)))))
            continue
        raise src.error(f"cannot read the domain condition '{item.value}'", item,
                        hint="write an order of two dimensions (`n > k`, `m >= n`) or an expression whose entries "
                             f"are positive (`b - A*x > 0`): {_DOMAIN_EXAMPLE}")


def _read_where(src: _Source, node: Node, draft: _Draft) -> None:
    entries = _entries(src, node, "where", "`Y: sigma(W * X)`")
    _at_most(src, [key for _, key, _ in entries], limits.MAX_WHERE, "where: definitions")
    for name, key, value in entries:
        _check_name(src, name, key, "where")
        if name in draft.variables:
            raise src.error(f"'{name}' is both a declared variable and defined under where", key,
                            hint="a where-name is an intermediate definition: remove it from variables or rename it")
        if name in draft.dims:
            raise src.error(f"'{name}' is defined under where but is also a dimension", key,
                            hint="use different names for sizes and definitions")
        draft.locations[f"where.{name}"] = src.at(key)
        draft.where.append((name, _expression(src, value, f"the definition of '{name}'", f"{name}: sigma(W * X)")))


def _read_function(src: _Source, node: Node, draft: _Draft) -> None:
    draft.function = _expression(src, node, "function", "function: tr(A * X)")
    draft.locations["function"] = draft.function.location  # the expression itself, inside any quotes


def _read_wrt(src: _Source, node: Node, draft: _Draft) -> None:
    example = f"`wrt: [{next(iter(draft.variables), 'X')}]`"
    items = [] if _is_null(node) else _items(src, node, "wrt", example, single=True)
    if not items:
        raise src.error("wrt is empty", node, hint=f"name at least one variable, e.g. {example}")
    _at_most(src, items, limits.MAX_WRT, "wrt entries")
    names: list[str] = []
    for index, item in enumerate(items):
        name = _name(src, item, "a wrt entry")
        if name not in draft.variables:
            raise _not_a_variable(src, name, item, draft)
        if name in names:
            raise src.error(f"'{name}' is listed twice in wrt", item)
        names.append(name)
        draft.locations[f"wrt.{index}"] = src.at(item)
    draft.wrt = tuple(names)


def _not_a_variable(src: _Source, name: str, node: Node, draft: _Draft) -> DerivgenError:
    declared = ", ".join(draft.variables) or "none yet"
    if any(name == where_name for where_name, _ in draft.where):
        return src.error(f"cannot differentiate with respect to '{name}': it is defined under where", node,
                         hint="gradients are taken with respect to declared variables; where-names are "
                              f"intermediate definitions the chain rule goes through (declared: {declared})")
    if "," in name:
        return src.error(f"'{name}' is not a declared variable", node,
                         hint="list several variables as `wrt: [X, Y]`")
    hint = _did_you_mean(name, draft.variables, "declared variables")
    return src.error(f"'{name}' is not a declared variable", node,
                     hint=hint or f"declare it under variables, e.g. `{name}: [n]`")


def _read_option(key: str, check: Callable[[_Source, Node, str], Any]) -> Callable[[_Source, Node, _Draft], None]:
    """A reader that validates the option `key` with `check` and stores it in `options`."""

    def read(src: _Source, node: Node, draft: _Draft) -> None:
        draft.options[key] = check(src, node, key)

    return read


def _check_order(src: _Source, node: Node, key: str) -> int:
    if not (isinstance(node, ScalarNode) and node.tag == _INT and node.value in ("1", "2")):
        raise src.error(f"{key} must be 1 (first derivative) or 2 (second derivative, the Hessian)", node)
    return int(node.value)


def _check_boolean(src: _Source, node: Node, key: str) -> bool:
    if not (isinstance(node, ScalarNode) and node.tag == _BOOL):
        raise src.error(f"{key} must be true or false, not {_kind(node)}", node)
    return bool(yaml.constructor.SafeConstructor.bool_values[node.value.lower()])


SYMMETRIC_CONVENTIONS = ("entries", "space")


def _check_symmetric(src: _Source, node: Node, key: str) -> str | bool:
    """`entries` (G + Gᵀ − I⊙G, over the independent entries; also `true`), `space` ((G + Gᵀ)/2,
    the gradient among symmetric matrices), or false/absent (the unconstrained G)."""
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return "entries" if _check_boolean(src, node, key) else False
    return _choice(src, node, key, SYMMETRIC_CONVENTIONS)


def _check_layout(src: _Source, node: Node, key: str) -> str:
    return _choice(src, node, key, LAYOUTS)


def _check_self_check(src: _Source, node: Node, key: str) -> str | bool:
    """`true` or `sheets` (the answer box on problem sheets), `all` (on solution pages too), `false`."""
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return "sheets" if _check_boolean(src, node, key) else False
    value = _text(src, node, key)
    if value not in SELF_CHECK_MODES:
        raise src.error(f"invalid {key} '{value}'", node,
                        hint=_did_you_mean(value, ("true", "false") + SELF_CHECK_MODES, f"{key} is one of"))
    return value


_PROBLEM_SECTIONS: dict[str, Callable[[_Source, Node, _Draft], None]] = {
    "title": _read_title,
    "statement": _read_statement,
    "variables": _read_variables,
    "indices": lambda src, node, draft: _read_indices(src, node, draft),
    "assume": _read_assume,
    "where": _read_where,
    "domain": _read_domain,
    "function": _read_function,
    "wrt": _read_wrt,
    "order": _read_option("order", _check_order),
    "layout": _read_option("layout", _check_layout),
    "self_check": _read_option("self_check", _check_self_check),
    "detail": _read_option("detail", lambda src, node, key: _choice(src, node, key, DETAILS)),
    "solve": _read_option("solve", _check_boolean),
    "constrain_symmetric": _read_option("constrain_symmetric", lambda src, node, key: _check_symmetric(src, node, key)),
    "notes": _read_notes,
    "name": _read_name,
    "vary": lambda src, node, draft: _check_vary(src, node, draft),  # last: the others are read
}


def _check_vary(src: _Source, node: Node, draft: _Draft) -> None:
    from derivgen.variants import check_vary  # every alternative read and parsed where it is written

    check_vary(src, node, draft)


# ---------------------------------------------------------------------------------------------
# Set files and problem discovery


def _set_text(key: str) -> Callable[[_Source, Node, dict[str, Location]], str]:
    return lambda src, node, locations: _text(src, node, key)


def _set_choice(key: str, choices: tuple[str, ...]) -> Callable[[_Source, Node, dict[str, Location]], str]:
    return lambda src, node, locations: _choice(src, node, key, choices)


def _set_order(src: _Source, node: Node, locations: dict[str, Location]) -> tuple[str, ...]:
    ids: list[str] = []
    for index, item in enumerate(_items(src, node, "order", "`order: [least_squares, trace_axbxtc]`")):
        problem_id = _problem_id(_name(src, item, "an order entry"))
        if problem_id in ids:
            raise src.error(f"problem '{problem_id}' is listed twice in order", item)
        ids.append(problem_id)
        locations[f"order.{index}"] = src.at(item)
    return tuple(ids)


def _problem_id(name: str) -> str:
    """The id a set file means by `name`: `p1` and `p1.yaml` both mean `p1`."""
    for suffix in PROBLEM_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _set_formats(src: _Source, node: Node, locations: dict[str, Location]) -> tuple[str, ...]:
    """`formats: [md, pdf]`, or `formats: md, pdf` as on the command line."""
    formats: list[str] = []
    items = _items(src, node, "formats", "`formats: [md, pdf]`", single=True)
    for index, item in enumerate(items):
        locations[f"formats.{index}"] = src.at(item)
        for word in _name(src, item, "a format").split(","):
            word = word.strip()
            if word not in FORMATS:
                raise src.error(f"unknown format '{word}'", item, hint=_did_you_mean(word, FORMATS, "formats are"))
            if word not in formats:
                formats.append(word)
    return tuple(formats)


def _check_templates_dir(src: _Source, node: Node, written: str, set_dir: Path) -> None:
    """`templates:` names a folder inside the set directory (symlinks resolved), that exists.

    Templates come with the set and are read when it is built; a folder outside it (``..``, an
    absolute path, a symlink leading out) is refused. Only ``--templates DIR`` on the command
    line, the instructor's own choice, may name a folder anywhere.
    """
    directory = set_dir / written
    if not _inside(directory, set_dir):
        raise src.error(f"templates directory {written!r} is outside the set directory", node,
                        hint="templates: names a folder inside the set, such as `templates: templates`; "
                             "to use templates from elsewhere, pass --templates DIR on the command line")
    if not directory.is_dir():
        raise src.error(f"templates directory not found: {directory}", node,
                        hint="templates: is a directory relative to the set file")


_SET_SECTIONS: dict[str, Callable[[_Source, Node, dict[str, Location]], Any]] = {
    "title": _set_text("title"),
    "course": _set_text("course"),
    "author": _set_text("author"),
    "date": _set_text("date"),
    "language": _set_choice("language", LANGUAGES),
    "order": _set_order,
    "formats": _set_formats,
    "templates": _set_text("templates"),
    "layout": _set_choice("layout", LAYOUTS),
    "self_check": lambda src, node, locations: _check_self_check(src, node, "self_check"),
    "detail": _set_choice("detail", DETAILS),
}


def _set_config_of(directory: Path) -> SetConfig:
    for name in SET_FILE_NAMES:
        path = directory / name
        if os.path.lexists(path) and not _inside(path, directory):
            raise ProblemError("the set file is a symbolic link that leads out of its set directory: "
                               "it was not read", Location(str(path)),
                               hint="a problem set holds its own files: copy the set file into the set")
        if path.is_file():
            return load_set_config(path)
    return SetConfig()


def _problem_files(directory: Path) -> list[Path]:
    """The problem files of a set directory, sorted by name (hidden files are skipped).

    Symlinks are listed whatever they lead to, so that `find_problems` can refuse those that
    lead out of the set rather than silently follow or skip them.
    """
    return sorted(
        (path for path in directory.iterdir()
         if path.suffix.lower() in PROBLEM_SUFFIXES and path.name not in SET_FILE_NAMES
         and not path.name.startswith(".") and (path.is_symlink() or path.is_file())),
        key=lambda path: path.name,
    )


def _in_set_order(directory: Path, files: list[Path], config: SetConfig) -> list[Path]:
    """`files` with those named by `config.order` first, in that order."""
    if config.order is None:
        return files
    by_id = {path.stem: path for path in files}
    listed = []
    for index, problem_id in enumerate(config.order):
        if problem_id not in by_id:
            raise ProblemError(f"order names '{problem_id}', but there is no {problem_id}.yaml in {directory}",
                               config.locations.get(f"order.{index}", Location(config.path)),
                               hint=_did_you_mean(problem_id, by_id, "the problems are"))
        listed.append(by_id[problem_id])
    return listed + [path for path in files if path not in listed]


# ---------------------------------------------------------------------------------------------
# Mapping the characters of a scalar back into the file


def _source_text(src: _Source, node: ScalarNode) -> SourceText:
    """The `SourceText` of a string scalar, with the file position of each character."""
    indices = _scalar_indices(src.text, node)
    if indices is None:  # a form we do not follow (e.g. escapes): everything at the scalar's start
        start = (node.start_mark.line + 1, node.start_mark.column + 1)
        positions = tuple(start for _ in range(len(node.value) + 1))
    else:
        positions = tuple(src.position(index) for index in indices)
    line, column = positions[0]
    return SourceText(node.value, src.file, line, column, _positions=positions, _lines=src.lines)


def _scalar_indices(text: str, node: ScalarNode) -> list[int] | None:
    """Index in `text` of each character of the scalar's value, plus one for its end.

    The scalar is re-scanned following PyYAML's rules for folding and indentation; if the result
    differs from the value PyYAML produced, None.
    """
    start = _skip_properties(text, node.start_mark.index, node.end_mark.index)
    if node.style in ("|", ">"):
        pairs = _block_chars(text, start, node.style == ">", node.value)
    else:
        pairs = _flow_chars(text, start, node.end_mark.index, node.style)
    if pairs is None or "".join(char for char, _ in pairs) != node.value:
        return None
    indices = [index for _, index in pairs]
    if not indices:
        return [start]
    last_char, last = pairs[-1]
    return indices + [last if last_char in _BREAKS else last + 1]


def _skip_properties(text: str, index: int, end: int) -> int:
    """Skip the tag (`!!str`), anchor (`&a`) and comments written before a scalar's first character.

    No scalar starts with '!', '&', '#' or white space, so whatever is skipped is not content.
    """
    while index < end:
        if text[index] in "!&":
            while index < end and not text[index].isspace():
                index += 1
        elif text[index] == "#":
            while index < end and text[index] not in _BREAKS:
                index += 1
        elif text[index].isspace():
            index += 1
        else:
            break
    return index


def _line_break(text: str, index: int) -> tuple[str, int]:
    """The line break at `index` as YAML reads it, and the index after it; ('', index) if none."""
    char = text[index] if index < len(text) else ""
    if char == "\r":
        return "\n", index + (2 if text[index + 1:index + 2] == "\n" else 1)
    if char in ("\n", "\x85"):
        return "\n", index + 1
    if char in ("\u2028", "\u2029"):
        return char, index + 1
    return "", index


def _flow_chars(text: str, index: int, end: int, style: str | None) -> list[tuple[str, int]] | None:
    """(character, index) pairs of a plain (style None) or quoted scalar ending before `end`."""
    quoted = style in ("'", '"')
    if quoted:
        index, end = index + 1, end - 1
    spaces = " \t" if quoted else " "
    pairs: list[tuple[str, int]] = []
    while index < end:
        char = text[index]
        if char in spaces:
            after = index
            while after < end and text[after] in spaces:
                after += 1
            if after >= end or text[after] not in _BREAKS:  # spaces before a line break are dropped
                pairs.extend((text[k], k) for k in range(index, after))
            index = after
        elif char in _BREAKS:
            index = _fold_flow_break(text, index, end, spaces, pairs)
        elif style == "'" and text[index:index + 2] == "''":
            pairs.append(("'", index))
            index += 2
        elif style == '"' and char == "\\":
            next_index = _escape(text, index, end, pairs)
            if next_index is None:
                return None
            index = next_index
        else:
            pairs.append((char, index))
            index += 1
    return pairs


def _fold_flow_break(text: str, index: int, end: int, spaces: str, pairs: list[tuple[str, int]]) -> int:
    """Fold the line break at `index` and the blank lines after it (one break -> one space)."""
    first, after = _line_break(text, index)
    more: list[tuple[str, int]] = []
    while after < end:
        if text[after] in spaces:
            after += 1
        elif text[after] in _BREAKS:
            char, next_index = _line_break(text, after)
            more.append((char, after))
            after = next_index
        else:
            break
    if first != "\n":
        pairs.append((first, index))
    elif not more:
        pairs.append((" ", index))
    pairs.extend(more)
    return after


def _escape(text: str, index: int, end: int, pairs: list[tuple[str, int]]) -> int | None:
    """Read the escape sequence at `index` of a double-quoted scalar; None if not understood."""
    code = text[index + 1] if index + 1 < end else ""
    if code in yaml.scanner.Scanner.ESCAPE_REPLACEMENTS:
        pairs.append((yaml.scanner.Scanner.ESCAPE_REPLACEMENTS[code], index))
        return index + 2
    if code in yaml.scanner.Scanner.ESCAPE_CODES:
        digits = text[index + 2:index + 2 + yaml.scanner.Scanner.ESCAPE_CODES[code]]
        if len(digits) != yaml.scanner.Scanner.ESCAPE_CODES[code] or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
            return None
        pairs.append((chr(int(digits, 16)), index))
        return index + 2 + len(digits)
    if code and code in _BREAKS:  # an escaped line break joins the lines
        _, after = _line_break(text, index + 1)
        while after < end and text[after] in _BREAKS + " \t":
            if text[after] in _BREAKS:
                char, next_index = _line_break(text, after)
                pairs.append((char, after))
                after = next_index
            else:
                after += 1
        return after
    return None


def _block_chars(text: str, index: int, folded: bool, value: str) -> list[tuple[str, int]] | None:
    """(character, index) pairs of a block scalar whose indicator (`|` or `>`) is at `index`."""
    index += 1
    chomping: bool | None = None
    explicit = False
    for _ in range(2):
        char = text[index:index + 1]
        if char and char in "+-":
            chomping = char == "+"
            index += 1
        elif char and char in "123456789":
            explicit = True
            index += 1
    while index < len(text) and text[index] not in _BREAKS:  # the rest of the header line
        index += 1
    _, index = _line_break(text, index)
    candidates = [_auto_indent(text, index)]
    if explicit:  # relative to the parent's indentation, which we do not know: try them all
        candidates += range(1, max(map(len, text[index:].splitlines()), default=0) + 1)
    for indent in candidates:
        pairs = _block_lines(text, index, indent, folded, chomping)
        if "".join(char for char, _ in pairs) == value:
            return pairs
    return None


def _auto_indent(text: str, index: int) -> int:
    """The indentation YAML detects for block content starting at `index` (a line start)."""
    column = widest = 0
    while index < len(text) and text[index] in " " + _BREAKS:
        if text[index] == " ":
            column += 1
            widest = max(widest, column)
            index += 1
        else:
            _, index = _line_break(text, index)
            column = 0
    return max(1, widest)


def _block_lines(text: str, index: int, indent: int, folded: bool, chomping: bool | None) -> list[tuple[str, int]]:
    """Re-scan block content from `index` (a line start) with the given indentation, as PyYAML does."""
    pairs: list[tuple[str, int]] = []
    breaks, index, column = _block_breaks(text, index, indent)
    line_break: tuple[str, int] = ("", index)
    while column == indent and index < len(text):
        pairs.extend(breaks)
        leading_non_space = text[index] not in " \t"
        while index < len(text) and text[index] not in _BREAKS:
            pairs.append((text[index], index))
            index += 1
        char, after = _line_break(text, index)
        line_break = (char, index)
        breaks, index, column = _block_breaks(text, after, indent)
        if column != indent or index >= len(text):
            break
        if folded and char == "\n" and leading_non_space and text[index] not in " \t":
            if not breaks:
                pairs.append((" ", line_break[1]))
        else:
            pairs.append(line_break)
    if chomping is not False and line_break[0]:
        pairs.append(line_break)
    if chomping is True:
        pairs.extend(breaks)
    return pairs


def _block_breaks(text: str, index: int, indent: int) -> tuple[list[tuple[str, int]], int, int]:
    """Skip indentation and empty lines from a line start: (breaks, index, column)."""
    breaks: list[tuple[str, int]] = []
    column = 0
    while True:
        while column < indent and text[index:index + 1] == " ":
            index += 1
            column += 1
        if index >= len(text) or text[index] not in _BREAKS:
            return breaks, index, column
        char, after = _line_break(text, index)
        breaks.append((char, index))
        index, column = after, 0


def _verbatim_position(text: str, offset: int, line: int, column: int | None) -> tuple[int, int | None]:
    """(line, column) of `offset` for text that sits verbatim in a file at `line`, `column`."""
    before = text[:offset]
    newlines = before.count("\n")
    if newlines:
        return line + newlines, offset - before.rfind("\n")
    return line, None if column is None else column + offset

"""Typed errors raised by the library; only the CLI prints them.

Every error may carry a source location (file, line, column, all 1-based) and a hint.
`DerivgenError.render()` formats it the way the CLI shows it::

    error: problems/p3.yaml:4:17: unknown name 'Y'
        function: tr(A * Y)
                         ^
    hint: declare it under `variables:` or define it under `where:`
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A position in a source file (1-based line and column)."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    source_line: str | None = None  # the text of that line, for the caret display

    def __str__(self) -> str:
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class DerivgenError(Exception):
    """Base class: a problem that is the input's fault, reported without a traceback."""

    kind = "error"

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
        message = printable(message, MESSAGE_LIMIT)  # it may quote the input: short, no controls
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def with_location(self, location: Location) -> "DerivgenError":
        """Return the same error placed at `location` (keeps an existing line if it has one)."""
        if self.location is not None and self.location.line is not None:
            return self
        self.location = location
        return self

    def as_dict(self) -> dict:
        """The error as documents and `--json` outputs carry it (docs/schema.md)."""
        return {"message": self.message, "location": str(self.location) if self.location else None,
                "hint": self.hint, "rendered": self.render(), "kind": type(self).__name__}

    def render(self) -> str:
        """Format as `error: file:line:col: message`, the source line, a caret and the hint.

        The source line is quoted as a short excerpt (`excerpt`) around the column, and never
        when it holds a control character or an undecodable byte (a binary file); control
        characters anywhere else are shown as U+FFFD, so no text can drive the terminal.
        """
        head = f"{self.kind}: "
        if self.location is not None:
            head += f"{printable(str(self.location), FILE_LIMIT)}: "
        lines = [head + printable(self.message, MESSAGE_LIMIT)]
        loc = self.location
        quoted = excerpt(loc.source_line, loc.column) if loc is not None else None
        if quoted is not None:
            text, caret = quoted
            lines.append("    " + text)
            if caret is not None:
                lines.append("    " + " " * (caret - 1) + "^")
        if self.hint:
            lines.append(f"hint: {printable(self.hint, HINT_LIMIT)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class ProblemError(DerivgenError):
    """The problem file is not valid YAML or does not follow the problem format."""


class ExprSyntaxError(DerivgenError):
    """An expression could not be parsed."""


class ShapeError(DerivgenError):
    """Shapes of an expression do not fit together, or an assumption does not fit a shape."""


class UnsupportedError(DerivgenError):
    """The input is well formed but asks for something derivgen cannot do."""


class VerificationError(DerivgenError):
    """A derived result or step failed its numeric check: it is never published."""


class RenderError(DerivgenError):
    """An output could not be produced (template error, TeX failure, ...)."""


#: The most characters of a source line an error quotes (then "…" on the cut side).
EXCERPT_WIDTH = 120
#: Caps on what `DerivgenError.render` shows of a message, a hint and a file name.
MESSAGE_LIMIT = 400
HINT_LIMIT = 800
FILE_LIMIT = 200
#: `source_line` reads no file larger than this (problem files and templates are small).
SOURCE_BYTES_LIMIT = 1 << 20

_ELLIPSIS = "…"
_UNQUOTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")  # controls, undecodable bytes
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what `printable` replaces (keeps \t and \n)


def printable(text: str, limit: int) -> str:
    """`text` cut to `limit` characters (with "…"), control characters shown as U+FFFD.

    Tabs and line breaks stay (hints and TeX logs have several lines); an escape sequence in a
    file name or a YAML key cannot reach the terminal.
    """
    text = _CONTROLS.sub("\ufffd", str(text))
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def excerpt(line: str | None, column: int | None = None,
            width: int = EXCERPT_WIDTH) -> tuple[str, int | None] | None:
    """A quotable excerpt of a source `line` and the caret's column in it, or None.

    At most `width` characters around `column` (1-based), "…" marking a cut side; a tab reads
    as one space (so the caret stays under its character). None when there is no line or when
    it holds a control character or U+FFFD: such a line comes from a binary or non-UTF-8 file,
    and not one byte of it is quoted.
    """
    if line is None:
        return None
    line = line.rstrip("\r\n").replace("\t", " ")
    if _UNQUOTABLE.search(line):
        return None
    if len(line) <= width:
        return line, column
    index = 0 if column is None else max(0, min(column - 1, len(line)))
    start = max(0, min(index - width // 2, len(line) - (width - 2)))
    end = min(len(line), start + width - 2)
    text = (_ELLIPSIS if start > 0 else "") + line[start:end] + (_ELLIPSIS if end < len(line) else "")
    caret = None if column is None else index - start + 1 + (1 if start > 0 else 0)
    return text, caret


def source_line(path: str | Path | None, line: int | None, text: str | None = None) -> str | None:
    """Return line `line` (1-based) of `text`, or of the file at `path`.

    Only a regular file of at most `SOURCE_BYTES_LIMIT` bytes holding UTF-8 text is read;
    anything else (a device, a FIFO, a binary, huge or unreadable file) gives None, so an error
    never quotes what is not text. `DerivgenError.render` quotes only an `excerpt` of the line.
    """
    if line is None:
        return None
    if text is None:
        if path is None:
            return None
        try:
            file = Path(path)
            if not file.is_file() or file.stat().st_size > SOURCE_BYTES_LIMIT:
                return None
            with file.open("rb") as handle:
                text = handle.read(SOURCE_BYTES_LIMIT + 1).decode("utf-8")
        except (OSError, ValueError):  # ValueError: UnicodeDecodeError
            return None
        if "\x00" in text:
            return None
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None

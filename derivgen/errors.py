"""Typed errors raised by the library; only the CLI prints them.

Every error may carry a source location (file, line, column, all 1-based) and a hint.
`DerivgenError.render()` formats it the way the CLI shows it::

    error: problems/p3.yaml:4:17: unknown name 'Y'
        function: tr(A * Y)
                         ^
    hint: declare it under `variables:` or define it under `where:`
"""

from __future__ import annotations

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

    def render(self) -> str:
        """Format as `error: file:line:col: message`, the source line, a caret and the hint."""
        head = f"{self.kind}: "
        if self.location is not None:
            head += f"{self.location}: "
        lines = [head + self.message]
        loc = self.location
        if loc is not None and loc.source_line is not None:
            text = loc.source_line.rstrip("\n")
            lines.append("    " + text)
            if loc.column is not None:
                lines.append("    " + " " * (loc.column - 1) + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
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


def source_line(path: str | Path | None, line: int | None, text: str | None = None) -> str | None:
    """Return line `line` (1-based) of `text`, or of the file at `path`."""
    if line is None:
        return None
    if text is None:
        if path is None:
            return None
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            return None
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        return lines[line - 1]
    return None

"""Rendering documents into handouts: one Jinja environment, one function per output format.

The engine hands over plain dicts (the document model of ``docs/schema.md``); this module
never recomputes mathematics. It only lays the steps out, through templates:

- the package's default templates live in ``derivgen/templates/`` and are found by their plain
  names (``md/problem.md.j2``) and, always, as ``default/md/problem.md.j2``;
- a user's template directory comes first: a file there with a default's name replaces it,
  and it may ``{% extends "default/md/problem.md.j2" %}`` and override single blocks.

Templates see, besides the document, ``lang`` and these helpers:

- ``t(key, **fields)``: prose from `derivgen.i18n` in the handout's language;
- ``plural(key, n)``: ``t(key + "_one" | "_other", n=n)``;
- filters ``md`` (escape plain text for Markdown), ``tex_text`` (escape plain text for
  ``\\text{…}``), ``sci`` (``3.1e-11``), ``code_block`` (a fenced block that no content can
  close), ``quote`` (a Markdown blockquote), ``chains`` (group steps into equation chains),
  ``cited`` (rule ids → the document's rule entries), ``shown_rules`` (the rules that the
  published steps of some documents cite), ``rule_name`` (a rule's name in ``lang``);
- the test ``published``: a result whose numeric check passed, the only kind ever shown.

Templates come with the problem sets, so they are untrusted like the problem files: they run in
Jinja's immutable sandbox (no attributes starting with ``_``, no method that changes a list or
a dict, no huge ``*``/``**`` results), and a template file is read only from inside its own
directory (a symlink that leads out of it is refused, not followed). Anything a template does
wrong, or tries and may not, is a `RenderError` naming the template file and line.
"""

from __future__ import annotations

import contextlib
import functools
import html as html_module
import math
import os
import posixpath
import re
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import pass_context
from jinja2.compiler import CodeGenerator, CompilerExit
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from . import i18n
from .errors import DerivgenError, Location, RenderError, source_line

#: The default templates shipped with the package.
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

#: The prefix under which the default templates stay reachable when a user overrides them.
DEFAULT_PREFIX = "default"


# --- the environment -------------------------------------------------------------------------


#: The largest template file read, and the largest string or list a template may build with ``*``.
TEMPLATE_BYTES_LIMIT = 1 << 20
PRODUCT_LIMIT = 1 << 20
#: The most bits an integer power ``**`` in a template may have.
POWER_BITS_LIMIT = 1 << 16


class TemplateRefused(jinja2.TemplateError):
    """A template file that is not read: it leads out of its directory, or it is not text.

    Not a `jinja2.TemplateNotFound`, so that the search does not quietly fall back to the
    default of the same name: the author of the set learns that the file was refused.
    """

    def __init__(self, message: str, filename: str):
        super().__init__(message)
        self.filename = filename


class ConfinedLoader(jinja2.FileSystemLoader):
    """A `FileSystemLoader` for one directory that reads only files inside it.

    A template that is a symlink (or lies under a symlinked folder) resolving outside the
    directory is refused, as is a file that is not regular, larger than
    `TEMPLATE_BYTES_LIMIT`, or not UTF-8 text. Template names cannot hold ``..`` (Jinja's own
    check).
    """

    def __init__(self, directory: str | Path):
        super().__init__(str(directory), followlinks=False)
        self.root = os.path.realpath(directory)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        filename = os.path.normpath(posixpath.join(self.searchpath[0], *pieces))
        if not os.path.lexists(filename):
            raise jinja2.TemplateNotFound(template)
        if not _inside(_realpath(filename), self.root):
            raise TemplateRefused(f"template {template} is a symbolic link to a file outside "
                                  "its template directory: it is not read", filename)
        try:
            if not os.path.isfile(filename):
                raise jinja2.TemplateNotFound(template)
            mtime = os.path.getmtime(filename)
            with open(filename, "rb") as handle:
                data = handle.read(TEMPLATE_BYTES_LIMIT + 1)
        except OSError as exc:
            raise TemplateRefused(f"cannot read template {template}: {exc.strerror or exc}", filename) from None
        if len(data) > TEMPLATE_BYTES_LIMIT:
            raise TemplateRefused(f"template {template} is larger than {TEMPLATE_BYTES_LIMIT} bytes", filename)
        try:
            contents = data.decode(self.encoding)
        except UnicodeDecodeError:
            raise TemplateRefused(f"template {template} is not UTF-8 text", filename) from None

        def uptodate() -> bool:
            try:
                return os.path.getmtime(filename) == mtime
            except OSError:
                return False

        return contents, filename, uptodate


def _inside(path: str, root: str) -> bool:
    """True when the (real) `path` is `root` or lies under it."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


def _realpath(path: str | Path) -> str:
    """`os.path.realpath`, or "" (inside nothing) for a link it may not read (``/proc/1/cwd``)."""
    try:
        return os.path.realpath(path)
    except OSError:
        return ""


class _TimedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with a look at the clock at the top of every block body (each
    iteration of a loop, each call of a macro, each branch): `TemplateSandbox.tick`."""

    def blockvisit(self, nodes, frame) -> None:
        try:
            self.writeline("environment.tick()")
            for node in nodes:
                self.visit(node, frame)
        except CompilerExit:
            pass


#: The deadline of the rendering under way in this thread (`_time_limit`), or None.
_deadline = threading.local()


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with ``*`` and ``**`` bounded (no gigabyte strings, no
    ``10 ** 10 ** 9``): what a template tries beyond that raises `SecurityError`. Its compiled
    templates look at the clock in every loop and macro body (`tick`), so that a rendering stops
    at its time limit in any thread (a Sphinx or MkDocs build may render outside the main one)."""

    intercepted_binops = frozenset({"*", "**"})
    code_generator_class = _TimedCodeGenerator

    @staticmethod
    def tick() -> None:
        """Raise `_RenderTimeout` once the time limit of this thread's rendering has passed."""
        limit = getattr(_deadline, "at", None)
        if limit is not None and time.monotonic() > limit:
            raise _RenderTimeout()

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if (isinstance(right, int) and isinstance(left, int) and abs(left) > 1
                    and right > 0 and abs(left).bit_length() * right > POWER_BITS_LIMIT):
                raise SecurityError("a template may not compute so large a power with **")
        elif operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, (str, list, tuple)) and isinstance(count, int) and not isinstance(count, bool):
                    if len(sized) * count > PRODUCT_LIMIT:
                        raise SecurityError(f"a template may not build a {type(sized).__name__} "
                                            f"longer than {PRODUCT_LIMIT} with *")
        return super().call_binop(context, operator, left, right)


def environment(user_dir: str | Path | None = None) -> jinja2.Environment:
    """Return a new Jinja environment for the default templates, overridden by `user_dir`.

    The search order is: `user_dir` (if given), then the defaults under their plain names.
    The defaults are also reachable as ``default/<name>`` so that user templates can extend
    them. Undefined variables are errors; templates keep their trailing newline, and a line
    holding only a block tag (``{% if %}``, ``{% for %}``, ...) leaves nothing in the output
    (``trim_blocks``, ``lstrip_blocks``). Output is not autoescaped, except for templates whose
    name ends in ``.html``/``.xml`` (+ ``.j2``) and templates under ``html/`` (so that
    ``html/macros.j2`` escapes like the pages importing it).

    The environment is a `TemplateSandbox` and every directory is read through a
    `ConfinedLoader`, the defaults' too.
    """
    defaults = ConfinedLoader(TEMPLATE_DIR)
    loaders: list[jinja2.BaseLoader] = []
    if user_dir is not None:
        user_path = Path(user_dir)
        if not user_path.is_dir():
            raise RenderError(f"template directory not found: {user_path}")
        loaders.append(ConfinedLoader(user_path))
    loaders.append(jinja2.PrefixLoader({DEFAULT_PREFIX: defaults}))
    loaders.append(defaults)

    env = TemplateSandbox(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=_autoescape,
    )
    env.filters.update(
        md=md_escape,
        md_statement=md_statement,
        tex_text=tex_text_escape,
        sci=format_sci,
        code_block=code_block,
        quote=blockquote,
        chains=chains,
        cited=cited_rules,
        shown_rules=shown_rules,
        rule_name=_rule_name,
    )
    from . import html  # imported here: derivgen.html imports this module

    env.filters.update(html.FILTERS)  # math, display_math, markdown, slug
    from . import latex  # imported here: derivgen.latex imports this module

    env.filters.update(latex.FILTERS)  # tex, tex_markdown, tex_math, tex_verbatim, math_lines
    env.globals.update(latex.GLOBALS)  # t_tex
    env.globals.update(t=_t, plural=_plural, t_check=_t_check, check_messages=_check_messages)
    env.globals.pop("lipsum", None)  # lipsum(10**7) is megabytes of text no handout needs
    from .selfcheck import shown

    env.tests.update(published=is_published, self_checked=shown)
    return env


_AUTOESCAPED = jinja2.select_autoescape(
    enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
    default_for_string=False,
    default=False,
)


def _autoescape(name: str | None) -> bool:
    if name is not None and f"/{name}".startswith(("/html/", f"/{DEFAULT_PREFIX}/html/")):
        return True
    return _AUTOESCAPED(name)


@pass_context
def _t(context: jinja2.runtime.Context, key: str, **fields: Any) -> str:
    if context.eval_ctx.autoescape:
        # HTML: the catalogue's text is escaped; fields are escaped unless already markup
        # (a formula, a link), so t("find", targets=…) can carry rendered math.
        raw = Markup.escape(i18n.text(key, context["lang"]))
        return raw.format(**fields) if fields else raw
    return i18n.text(key, context["lang"], **fields)


@pass_context
def _t_check(context: jinja2.runtime.Context, key: str, **fields: Any) -> str:
    """A text of the self-check box (`derivgen.i18n.check_messages`), escaped in HTML."""
    text = i18n.check_messages(context["lang"])[key]
    return Markup.escape(text).format(**fields) if context.eval_ctx.autoescape else text.format(**fields)


@pass_context
def _check_messages(context: jinja2.runtime.Context) -> dict:
    """Every text of the self-check box in the page's language, for its script (as JSON)."""
    return i18n.check_messages(context["lang"])


@pass_context
def _plural(context: jinja2.runtime.Context, key: str, n: int) -> str:
    return i18n.plural(key, n, context["lang"])


@pass_context
def _rule_name(context: jinja2.runtime.Context, rule: Mapping[str, Any]) -> str:
    # A rule may carry its name in several languages: "names": {"en": ..., "zh": ...}, or
    # "name" itself as such a dict; a plain "name" string is used for every language.
    name = rule["name"]
    names = rule.get("names") or (name if isinstance(name, Mapping) else {})
    return names.get(context["lang"]) or names.get("en") or name


# --- public rendering functions --------------------------------------------------------------


def render_problem_md(
    doc: Mapping[str, Any],
    lang: str = "en",
    user_dir: str | Path | None = None,
    solutions: bool = True,
) -> str:
    """Render one problem document as a Markdown handout.

    With ``solutions=False`` the result is the problem sheet: the statement and the Given
    section only. A failed problem, or a result whose numeric check did not pass, is shown
    as an error box, never as a result.
    """
    return _render(
        "md/problem.md.j2",
        user_dir,
        doc=doc,
        lang=_language(lang),
        solutions=solutions,
        in_set=False,
        number=None,
    )


def render_set_md(
    setdoc: Mapping[str, Any],
    lang: str | None = None,
    user_dir: str | Path | None = None,
    solutions: bool = True,
) -> str:
    """Render a set document as one Markdown handout: every problem, then the rules used.

    `lang` defaults to the set's own ``language`` (English if it names none). With
    ``solutions=False`` the result is the problem sheet (statements and Given sections).
    """
    if lang is None:
        lang = setdoc.get("language") or "en"
    return _render(
        "md/set.md.j2",
        user_dir,
        setdoc=setdoc,
        lang=_language(lang),
        solutions=solutions,
        in_set=True,
    )


def render_template(name: str, user_dir: str | Path | None = None, **context: Any) -> str:
    """Render the template `name` (found as `environment` finds it) with `context`.

    Errors in templates become `RenderError` with the template line; the text ends with
    exactly one newline. The format modules (`derivgen.html`) render through this.
    """
    return _render(name, user_dir, **context)


def _language(lang: str) -> str:
    try:
        return i18n.language(lang)
    except ValueError as exc:
        raise RenderError(str(exc)) from exc


@functools.lru_cache(maxsize=8)
def _shared_environment(user_dir: str | None) -> jinja2.Environment:
    # Compiling the templates costs more than rendering them: build once per template
    # directory. Jinja's auto-reload still notices a user template edited in between.
    return environment(user_dir)


_BLANK_RUNS = re.compile(r"\n{3,}")

#: The longest one template may take to render: the sandbox bounds what a template may touch,
#: not how long its loops run (``range(100000)`` inside ``range(100000)``).
RENDER_SECONDS = 60.0


class _RenderTimeout(Exception):
    """Raised inside a template's rendering when `RENDER_SECONDS` have passed."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Stop the rendering in the block with `_RenderTimeout` after `seconds`: the compiled
    templates look at this thread's deadline in every loop and macro body (`TemplateSandbox.tick`).
    No signal and no timer: it works in any thread, and a deadline already set (a template
    rendered while another renders) is kept if it is earlier, and restored after."""
    outer = getattr(_deadline, "at", None)
    mine = time.monotonic() + seconds
    _deadline.at = mine if outer is None else min(outer, mine)
    try:
        yield
    finally:
        _deadline.at = outer


def _render(name: str, user_dir: str | Path | None, **context: Any) -> str:
    env = _shared_environment(None if user_dir is None else str(Path(user_dir).resolve()))
    try:
        with _time_limit(RENDER_SECONDS):
            text = env.get_template(name).render(**context)
    except DerivgenError:
        raise  # a filter's own error (a rule not listed, a formula KaTeX refuses)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error: {exc.message}",
                          _location(exc.filename, exc.lineno, user_dir) or Location(exc.name, exc.lineno)) from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template not found: {exc.name}") from None
    except TemplateRefused as exc:
        raise RenderError(exc.message or "template refused", _location(exc.filename, None, user_dir),
                          hint="a template directory holds its templates itself; copy the file in") from None
    except SecurityError as exc:
        raise RenderError(f"the template tried what templates may not do: {exc.message}",
                          _template_location(exc, user_dir),
                          hint="templates are sandboxed: they format the document they are given, "
                               "and cannot reach Python objects, files or commands") from None
    except _RenderTimeout as exc:
        raise RenderError(f"cannot render {name}: the templates took longer than {RENDER_SECONDS:g} s",
                          _template_location(exc, user_dir), hint="check the loops of the templates") from None
    except RecursionError:
        raise RenderError(f"cannot render {name}: the templates call themselves without end",
                          hint="check the macros, includes and extends of the templates") from None
    except MemoryError:
        raise RenderError(f"cannot render {name}: the template needs too much memory") from None
    except Exception as exc:  # whatever else a template does wrong: its file and line, not a traceback
        if isinstance(exc, jinja2.TemplateError):
            message = exc.message
        else:
            message = f"{type(exc).__name__}: {exc}"
        raise RenderError(f"cannot render {name}: {message}", _template_location(exc, user_dir)) from None
    # Every template section ends with a blank line; the file ends with exactly one newline.
    if name.endswith(".md.j2"):
        text = _BLANK_RUNS.sub("\n\n", text)  # a user block without its own blank line can't glue sections
    return text.rstrip() + "\n"


def _template_location(exc: BaseException, user_dir: str | Path | None = None) -> Location | None:
    """The innermost template line in `exc`'s traceback (Jinja maps frames to template lines)."""
    roots = [os.path.realpath(TEMPLATE_DIR)] + ([os.path.realpath(user_dir)] if user_dir is not None else [])
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if any(_inside(_realpath(f.filename), root) for root in roots)]
    if not frames:
        return None
    return _location(frames[-1].filename, frames[-1].lineno, user_dir)


def _location(filename: str | None, line: int | None, user_dir: str | Path | None) -> Location | None:
    """The `Location` of line `line` of a template file, named as the user gave its directory
    (``tpl/md/problem.md.j2``) or as ``derivgen/templates/…`` for a default: never an absolute
    path of the build machine, in case the message is shown to readers."""
    if filename is None:
        return None
    real = _realpath(filename)
    shown = None
    if user_dir is not None:
        for root in (os.path.abspath(user_dir), os.path.realpath(user_dir)):
            if _inside(os.path.abspath(filename), root) or _inside(real, root):
                base = filename if _inside(os.path.abspath(filename), root) else real
                shown = str(Path(user_dir) / os.path.relpath(os.path.abspath(base), root))
                break
    if shown is None and _inside(real, os.path.realpath(TEMPLATE_DIR)):
        shown = "derivgen/templates/" + Path(os.path.relpath(real, os.path.realpath(TEMPLATE_DIR))).as_posix()
    if shown is None:
        shown = os.path.basename(filename)
    return Location(shown, line, None, source_line(filename, line) if line is not None else None)


# --- filters and tests -----------------------------------------------------------------------

_MD_ACTIVE = re.compile(r"[\\`*_\[\]<>#|$~]")
_MD_ENTITY = re.compile(r"&(?=#?\w+;)")
_MD_BLOCK_START = re.compile(r"^(?:[-+=]|\d+(?=[.)]))")


def md_escape(value: object) -> str:
    """Escape plain text for Markdown: it reads the same on GitHub, MkDocs and Jupyter Book.

    Line breaks become spaces (so a title stays one heading), and characters that would start
    emphasis, code, links, HTML, math (``$``), tables or entities are backslash-escaped.
    """
    text = " ".join(str(value).split())
    text = _MD_ACTIVE.sub(r"\\\g<0>", text)
    text = _MD_ENTITY.sub(r"\\&", text)
    match = _MD_BLOCK_START.match(text)
    if match:
        end = match.end()
        text = text[:end] + "\\" + text[end:] if text[:1].isdigit() else "\\" + text
    return text


_TEX_TEXT = {
    "\\": " ",
    "^": " ",
    "~": " ",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
}
_TEX_TEXT_ACTIVE = re.compile("|".join(re.escape(c) for c in _TEX_TEXT))


def tex_text_escape(value: object) -> str:
    """Escape plain text for LaTeX text mode (inside ``\\text{…}``): it cannot end the group."""
    text = " ".join(str(value).split())
    return _TEX_TEXT_ACTIVE.sub(lambda m: _TEX_TEXT[m.group()], text)


def format_sci(value: float | None) -> str:
    """Format a relative error or tolerance compactly: ``3.1e-11``, ``1e-6``, ``0``."""
    if value is None:
        return "—"
    x = float(value)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def code_block(value: object, info: str = "text") -> str:
    """Wrap text in a fenced code block, its fence longer than any backtick run inside it."""
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def blockquote(value: object) -> str:
    """Prefix every line with ``> `` (empty lines with ``>``) to make a Markdown blockquote."""
    return "\n".join(f"> {line}" if line else ">" for line in str(value).split("\n"))


def chains(steps: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Group steps into equation chains: a step with a ``lhs_latex`` starts a new chain."""
    groups: list[list[Mapping[str, Any]]] = []
    for step in steps:
        if step.get("lhs_latex") or not groups:
            groups.append([])
        groups[-1].append(step)
    return groups


def cited_rules(ids: Sequence[str], rules: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the entries of `rules` with the given ids, in the order cited.

    A step citing a rule that the document does not list is an engine error, not something to
    print half of: it raises `RenderError`.
    """
    by_id = {rule["id"]: rule for rule in rules}
    missing = [rule_id for rule_id in ids if rule_id not in by_id]
    if missing:
        raise RenderError(
            f"a step cites rule {', '.join(missing)}, which the document's rules do not list"
        )
    return [by_id[rule_id] for rule_id in ids]


def shown_rules(
    rules: Sequence[Mapping[str, Any]], docs: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Return the entries of `rules` (in their order) that a published step of `docs` cites.

    The appendix lists exactly the rules the reader sees used: a withheld result's steps
    are not shown, so rules only they cite are left out.
    """
    cited = {
        rule_id
        for doc in docs
        if doc.get("ok")
        for result in doc.get("results") or []
        if is_published(result)
        for step in result["steps"]
        for rule_id in step.get("rules") or []
    }
    return [rule for rule in rules if rule["id"] in cited]


# --- Markdown that cannot carry script ------------------------------------------------------

#: Link schemes a statement may use; a link without a scheme (relative, ``#anchor``) is kept too.
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_IGNORED_IN_URLS = re.compile(r"[\x00-\x20\x7f-\x9f]")  # what browsers drop from or around a URL
_PUNCT_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")  # what can open a tag, comment, declaration or autolink
_TARGET_LIMIT = 2048  # the longest head of a link target read; a longer one is taken as unsafe
_TARGET_HEAD = re.compile(r"[^\s/?()<>\[\]]{0,%d}" % _TARGET_LIMIT)


def safe_link(url: str) -> bool:
    """True when the link target `url` cannot run script: ``http``, ``https``, ``mailto`` or
    relative (no scheme).

    The target is read as a browser would after Markdown decoded it: entities and backslash
    escapes resolved, then percent-escapes (as markdown-it hands the target over), spaces and
    control characters dropped (``java&#9;script:`` is ``javascript:``), letters lower-cased. Anything else (``javascript:``, ``data:``,
    ``vbscript:``, ``file:``, unknown schemes) is unsafe.
    """
    decoded = urllib.parse.unquote(_PUNCT_ESCAPE.sub(r"\1", html_module.unescape(str(url))))
    match = _SCHEME.match(_IGNORED_IN_URLS.sub("", decoded).lower())
    return match is None or match.group(1) in SAFE_SCHEMES


def md_statement(value: object) -> str:
    """Jinja filter ``md_statement``: a statement's Markdown made safe to publish as Markdown.

    A site may render the Markdown handouts with raw HTML on, so nothing in them may become
    HTML or a script link: outside math, every ``<`` is written ``&lt;`` (no tag, comment or
    autolink can start); a link or link reference definition whose target is not
    `safe_link` loses its closing ``]`` (written ``\\]``), so it reads as text. Math (``$…$``,
    ``$$…$$``) is kept as written, except that a ``<`` that could open a tag becomes ``\\lt``
    and an unsafe link's ``]`` gets an empty group ``]{}``: both typeset the same, and a
    renderer that does not know math still finds no HTML and no link.
    """
    text = str(value)
    out: list[str] = []
    for start, end, is_math in _math_spans(text):
        piece = []
        i = start
        while i < end:
            char = text[i]
            if char == "\\" and i + 1 < end:  # an escape pair: `\<` still becomes safe
                pair = text[i:i + 2]
                piece.append(pair if pair != "\\<" else r"\lt " if is_math else "&lt;")
                i += 2
                continue
            if char == "<":
                if not is_math:
                    piece.append("&lt;")
                elif _HTML_START.match(text, i):
                    piece.append(r"\lt ")
                else:
                    piece.append(char)
            elif char == "]" and not _link_is_safe_after(text, i + 1):
                piece.append("]{}" if is_math else r"\]")
            else:
                piece.append(char)
            i += 1
        out.append("".join(piece))
    return "".join(out)


def _link_is_safe_after(text: str, index: int) -> bool:
    """False when a ``](target`` or ``]: target`` at `index` (just after a ``]``) names an
    unsafe target; True when it is safe or there is no link there.

    Only the target's head is read, up to the first character no scheme (nor an entity
    spelling one) can hold: that is where a scheme would be.
    """
    if index >= len(text) or text[index] not in "(:":
        return True
    i = index + 1
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if i < len(text) and text[i] == "<":
        i += 1
    head = _TARGET_HEAD.match(text, i).group()
    if len(head) >= _TARGET_LIMIT:
        return False  # too long to read cheaply (entities and tabs can hide a scheme): not a link
    return safe_link(head)


def _math_spans(text: str) -> list[tuple[int, int, bool]]:
    """`text` cut into (start, end, is_math) pieces: ``$$…$$`` and ``$…$`` are math.

    As markdown-it's dollarmath reads them: ``\\$`` is a dollar, an inline ``$`` opens math when
    a non-space follows it and a closing ``$`` (not after a space) comes before a blank line.
    A mistake here only changes how a ``<`` is written, never whether it is safe.
    """
    spans: list[tuple[int, int, bool]] = []
    plain = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char != "$":
            i += 1
            continue
        if text.startswith("$$", i):
            close = _find_dollar(text, i + 2, "$$")
            width = 2
        elif i + 1 < len(text) and not text[i + 1].isspace():
            close = _find_dollar(text, i + 1, "$")
            width = 1
            if close is not None and text[close - 1].isspace():
                close = None
        else:
            close = None
        if close is None:
            i += 1
            continue
        if plain < i:
            spans.append((plain, i, False))
        spans.append((i, close + width, True))
        i = plain = close + width
    if plain < len(text):
        spans.append((plain, len(text), False))
    return spans


def _find_dollar(text: str, start: int, delimiter: str) -> int | None:
    """Index of the next unescaped `delimiter` from `start`, before a blank line (None if none)."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(delimiter, i):
            return i
        if text.startswith("\n", i) and text[i + 1:].lstrip(" \t").startswith("\n"):
            return None
        i += 1
    return None


def is_published(result: Mapping[str, Any]) -> bool:
    """True when `result` passed its numeric check; nothing else may be shown as a result."""
    verification = result.get("verification")
    return bool(verification) and verification.get("passed") is True

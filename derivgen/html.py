"""HTML handouts: a standalone page and an embeddable fragment, with math rendered offline.

The templates (``templates/html/``) mirror the Markdown ones block for block and are rendered
through the one Jinja environment of `derivgen.render`, autoescaped. Formulas go through the
filters ``math`` (inline) and ``display_math``, and statements through ``markdown``
(markdown-it-py, raw HTML off, ``$…$`` math kept for KaTeX). Those filters leave a placeholder
per formula; once the page is rendered, all its formulas are typeset in one batch by KaTeX
(`derivgen.katex`) and put in place, so a template may compose any LaTeX it likes.

A standalone page links ``<assets>/derivgen.css`` and ``<assets>/katex/katex.min.css`` (with
KaTeX's fonts); `write_assets` copies them next to the pages. Nothing is fetched from the
network, when building or when reading. The fragment is one ``<div class="derivgen">`` whose
stylesheet is scoped under ``.derivgen`` and whose ids all start with ``derivgen-``.
"""

from __future__ import annotations

import contextvars
import functools
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from . import katex, titles
from .errors import Location, RenderError
from .latex import check_math
from .output import write_atomic

#: The default templates' stylesheet and the small client-side renderer (fallback mode).
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Where pages look for their assets, relative to themselves, unless told otherwise.
ASSETS = "derivgen-assets"


# --- public rendering functions --------------------------------------------------------------


def render_problem_html(
    doc: Mapping[str, Any],
    lang: str = "en",
    user_dir: str | Path | None = None,
    solutions: bool = True,
    standalone: bool = True,
    assets: str | None = ASSETS,
) -> str:
    """Render one problem document as HTML: a whole page, or with ``standalone=False`` a
    fragment (one ``<div class="derivgen">``) to embed into another page.

    `assets` is the URL of the directory `write_assets` fills, relative to the page (or
    absolute, e.g. ``/static/derivgen``). A fragment with ``assets=None`` links no stylesheet:
    the embedding site includes ``derivgen.css`` and KaTeX's CSS itself. With
    ``solutions=False`` the result is the problem sheet. Raises `RenderError` (`MathError`
    when KaTeX cannot render a formula).
    """
    from .render import _language

    return _render_html(
        "html/problem.html.j2",
        user_dir,
        standalone=standalone,
        assets=assets,
        where=str(doc.get("source") or doc.get("id") or ""),
        doc=doc,
        lang=_language(lang),
        solutions=solutions,
        in_set=False,
        number=None,
        anchor="derivgen-" + slug(doc.get("id") or "problem"),
    )


def render_set_html(
    setdoc: Mapping[str, Any],
    lang: str | None = None,
    user_dir: str | Path | None = None,
    solutions: bool = True,
    standalone: bool = True,
    assets: str | None = ASSETS,
    errors: list | None = None,
) -> str:
    """Render a set document as one HTML handout: every problem, then the rules used.

    `lang` defaults to the set's ``language``; the other arguments are as for
    `render_problem_html`. When KaTeX cannot render a formula of some problems, the handout
    raises `MathError`, unless `errors` is a list: then those problems are left out of it,
    a located error for each is appended to `errors`, and the rest of the set is rendered.
    """
    from .render import _language

    lang = _language(lang if lang is not None else setdoc.get("language") or "en")

    def render(doc: Mapping[str, Any], typeset: bool = True) -> Any:
        return _render_html(
            "html/set.html.j2",
            user_dir,
            standalone=standalone,
            assets=assets,
            where=str(doc.get("title") or "the set handout"),
            typeset=typeset,
            defer_steps=True,
            setdoc=doc,
            lang=lang,
            solutions=solutions,
            in_set=True,
            anchor="derivgen-" + slug(setdoc.get("title") or "set"),
        )

    try:
        return render(setdoc)
    except katex.MathError as err:
        if errors is None:
            raise
        failing = {tex for tex, _ in err.errors}
        problems = list(setdoc.get("problems") or [])
        common = render({**setdoc, "problems": []}, typeset=False)  # the header's and appendix's
        culprits = [doc for doc in problems
                    if (render({**setdoc, "problems": [doc]}, typeset=False) - common) & failing]
        if not culprits:
            raise
        page = render({**setdoc, "problems": [doc for doc in problems if doc not in culprits]})
    which = "solutions" if solutions else "problem sheet"
    for doc in culprits:
        own = sorted(failing & render({**setdoc, "problems": [doc]}, typeset=False))
        errors.append(RenderError(
            f"problem '{doc.get('id')}' is left out of the set's {which} page: KaTeX cannot "
            f"render {', '.join(repr(tex[:60]) for tex in own[:3])}",
            Location(str(doc["source"])) if doc.get("source") else None,
            hint="check the $…$ math in the statement (KaTeX supports most LaTeX math commands)",
        ))
    return page


def render_answers_html(
    setdoc: Mapping[str, Any],
    lang: str | None = None,
    user_dir: str | Path | None = None,
    standalone: bool = True,
    assets: str | None = ASSETS,
) -> str:
    """Render the answer key of a set as HTML: each problem's heading and boxed results only.

    The problems of a set document are the ones that built (`derivgen.build` leaves failed
    problems out); a result that was not verified is not shown."""
    from .render import _language

    lang = _language(lang if lang is not None else setdoc.get("language") or "en")
    return _render_html(
        "html/answers.html.j2", user_dir, standalone=standalone, assets=assets,
        where=str(setdoc.get("title") or "the answer key"), setdoc=setdoc, lang=lang,
        solutions=True, in_set=True, anchor="derivgen-" + slug(setdoc.get("title") or "set") + "-answers",
    )


def write_assets(out_dir: str | Path, assets: str = ASSETS, check: bool = False) -> list[Path]:
    """Copy what the pages in `out_dir` load into ``out_dir/<assets>/`` and return the files.

    That is ``derivgen.css``, KaTeX's CSS and fonts (``katex/``) and, for pages whose math is
    rendered in the browser, ``katex/katex.min.js`` and ``derivgen-math.js``; with `check`
    (pages with self-check boxes, `derivgen.selfcheck`) also ``derivgen-check.js`` and the
    math.js shipped in the package (``mathjs/``, with its licence). Files already up to date
    are left alone. Raises `RenderError` when no KaTeX copy is found.
    """
    found = katex.find_katex()
    if found is None:
        katex.math_mode()  # raises the explanatory error
        raise AssertionError("unreachable")
    target = Path(out_dir) / assets
    copies: list[tuple[Path, Path]] = [
        (STATIC_DIR / "derivgen.css", target / "derivgen.css"),
        (STATIC_DIR / "derivgen-math.js", target / "derivgen-math.js"),
        (found.css, target / "katex" / "katex.min.css"),
        (found.script, target / "katex" / "katex.min.js"),
    ]
    if check:
        copies.append((STATIC_DIR / "derivgen-check.js", target / "derivgen-check.js"))
        copies += [(STATIC_DIR / "mathjs" / name, target / "mathjs" / name)
                   for name in ("math.js", "LICENSE", "NOTICE", "math.js.LICENSE.txt")]
    fonts = sorted(found.fonts.glob("KaTeX_*.woff2")) or sorted(found.fonts.glob("KaTeX_*.*"))
    copies += [(font, target / "katex" / "fonts" / font.name) for font in fonts]
    written = []
    for source, dest in copies:
        data = source.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            write_atomic(dest, data)
        written.append(dest)
    return written


# --- rendering with math placeholders --------------------------------------------------------


class _Formulas:
    """The formulas of one page being rendered: each gets a placeholder, typeset at the end."""

    def __init__(self, defer: bool = False) -> None:
        # Placeholders carry a random nonce, so no text in a problem file can forge one.
        self.nonce = secrets.token_hex(8)
        self.items: list[tuple[str, bool]] = []
        self.deferred: set[int] = set()  # formulas left for the browser (`step_math` on a set page)
        self.defer = defer
        self.pattern = re.compile(f"dgmath{self.nonce}-([0-9]+)-")

    def add(self, tex: str, display: bool, deferred: bool = False) -> str:
        self.items.append((tex, display))
        if deferred and self.defer:
            self.deferred.add(len(self.items) - 1)
        return f"dgmath{self.nonce}-{len(self.items) - 1}-"

    def typeset(self, text: str, mode: str, where: str) -> str:
        """Replace every placeholder in `text` by its formula, rendered for `mode`."""
        if not self.items:
            return text
        if mode == katex.PRERENDER:
            rendered = katex.render(self.items)
            errors = [(tex, r.error) for (tex, _), r in zip(self.items, rendered) if r.error]
            if errors:
                raise katex.MathError(list(dict.fromkeys(errors)), where)
            # every formula is checked by KaTeX here; a deferred one is typeset by the browser
            html = [_client_span(tex, display) if i in self.deferred else r.html
                    for i, ((tex, display), r) in enumerate(zip(self.items, rendered))]
        else:
            html = [_client_span(tex, display) for tex, display in self.items]
        return self.pattern.sub(lambda m: html[int(m.group(1))], text)


def _client_span(tex: str, display: bool) -> str:
    return f'<span class="dg-tex" data-display="{str(display).lower()}">{escape(tex)}</span>'


_current: contextvars.ContextVar[_Formulas | None] = contextvars.ContextVar("derivgen_formulas", default=None)


def _render_html(name: str, user_dir: str | Path | None, *, standalone: bool, assets: str | None,
                 where: str, typeset: bool = True, defer_steps: bool = False, **context: Any) -> Any:
    """Render a page and typeset its formulas; with ``typeset=False``, only return the set of
    its formulas (TeX), unrendered. With `defer_steps` (a set's page with its assets), the
    formulas of the folded derivations (filter ``step_math``) are checked by KaTeX but left for
    the browser to typeset with the shipped KaTeX script: pre-rendered, they are nine tenths
    of a set's page (3 MB for the example set)."""
    from .render import render_template

    mode = katex.math_mode()
    if standalone and assets is None:
        assets = ASSETS
    defer_steps = defer_steps and assets is not None and mode == katex.PRERENDER
    formulas = _Formulas(defer=defer_steps)
    token = _current.set(formulas)
    try:
        text = render_template(
            "html/page.html.j2",
            user_dir,
            body=name,
            standalone=standalone,
            assets=assets,
            math_mode=mode,
            deferred_math=defer_steps,
            **context,
        )
    finally:
        _current.reset(token)
    if not typeset:
        return {tex for tex, _ in formulas.items}
    return formulas.typeset(text, mode, where)


def _placeholder(tex: object, display: bool, deferred: bool = False) -> Markup:
    if check_math(str(tex)) is not None:
        # Not on the whitelist (derivgen.latex.check_math): shown as written, as in the PDF;
        # the build reports a statement's formula (latex.statement_math_errors).
        dollars = "$$" if display else "$"
        return Markup('<code class="dg-math-rejected">{}</code>').format(f"{dollars}{tex}{dollars}")
    formulas = _current.get()
    if formulas is None:
        # Outside render_*_html (e.g. a test rendering a template directly): leave the TeX
        # for the browser, escaped.
        return Markup('<span class="dg-tex" data-display="{}">{}</span>').format(
            str(display).lower(), str(tex)
        )
    return Markup(formulas.add(str(tex), display, deferred))


def math_filter(tex: object) -> Markup:
    """Jinja filter ``math``: `tex` typeset as inline math."""
    return _placeholder(tex, False)


def display_math_filter(tex: object) -> Markup:
    """Jinja filter ``display_math``: `tex` typeset as display math."""
    return _placeholder(tex, True)


def step_math_filter(tex: object, display: bool = True) -> Markup:
    """Jinja filter ``step_math``: a step of a folded derivation (or a formula of the set's rules
    appendix, ``step_math(false)`` inline), as display math; on a set's page typeset by the
    browser (see `_render_html`), elsewhere like ``display_math`` / ``math``."""
    return _placeholder(tex, display, deferred=True)


@functools.cache
def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    from .render import safe_link

    # Problem files are untrusted: no raw HTML, no images (nothing a page would fetch), no
    # labelled equations (their ids could clash with the page's), and links only to http(s),
    # mailto or relative targets (markdown-it's own check lets data:image/… links through).
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.validateLink = safe_link
    dollarmath_plugin(
        md,
        allow_labels=False,
        double_inline=True,
        renderer=lambda tex, options: str(_placeholder(tex, bool(options.get("display_mode")))),
    )
    # the plugin's own markup is `<span class="math inline">`: bare class names a site's theme
    # styles too (MkDocs Material floats `.inline`), so statements' math wears derivgen's own
    md.add_render_rule("math_inline", lambda self, tokens, idx, options, env:
                       f'<span class="dg-math-inline">{_placeholder(tokens[idx].content, False)}</span>')
    md.add_render_rule("math_inline_double", lambda self, tokens, idx, options, env:
                       f'<div class="dg-math-block">{_placeholder(tokens[idx].content, True)}</div>')
    md.add_render_rule("math_block", lambda self, tokens, idx, options, env:
                       f'<div class="dg-math-block">\n{_placeholder(tokens[idx].content, True)}\n</div>\n')
    return md


def markdown_filter(text: object) -> Markup:
    """Jinja filter ``markdown``: a statement (Markdown with ``$…$`` math) as HTML.

    Raw HTML in the text is shown as text, never passed through, and a link whose target
    is not `derivgen.render.safe_link` (``javascript:``, ``data:``, …) stays text.
    """
    return Markup(_markdown().render(str(text)))


_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


def slug(value: object) -> str:
    """Jinja filter ``slug``: a string safe inside an HTML id (``A-Za-z0-9_-``), never empty."""
    text = _SLUG.sub("-", str(value)).strip("-")
    return text or "x"


#: The filters `derivgen.render.environment` adds for the HTML templates.
FILTERS = {
    "math": math_filter,
    "display_math": display_math_filter,
    "step_math": step_math_filter,
    "markdown": markdown_filter,
    "title_html": titles.title_html,
    "title_md": titles.title_md,
    "plain": titles.plain,
    "has_math": titles.has_math,
    "slug": slug,
}

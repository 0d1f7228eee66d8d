"""Titles: plain text that may hold ``$…$`` math, typeset the same way in every format.

A title (a problem's, a set's) is one line of text: Markdown, HTML and TeX see its text
escaped, so ``*`` or ``#`` print as written, and its ``$…$`` formulas typeset as math, checked
as a statement's are. `plain` gives the title as text without markup (a page's ``<title>``, a
PDF bookmark): ``Gradient of $\\operatorname{tr}(AX^\\top)$`` → ``Gradient of tr(AXᵀ)``.

The filters (``title_md``, ``title_html``, ``title_tex``, ``plain``) are registered through
`derivgen.html.FILTERS` and `derivgen.latex.FILTERS`.
"""

from __future__ import annotations

from markupsafe import Markup, escape


def pieces(title: object) -> list[tuple[str, bool]]:
    """The title on one line, cut into (text, is_math) pieces; a math piece is its TeX."""
    from .render import _math_spans

    text = " ".join(str(title).split())
    out = []
    for start, end, is_math in _math_spans(text):
        piece = text[start:end]
        if is_math:
            width = 2 if piece.startswith("$$") else 1
            out.append((piece[width:-width], True))
        else:
            out.append((piece, False))
    return out


def _spaced(escape_text, text: str) -> str:
    """`escape_text(text)` with the spaces around `text` kept (the escapers trim them)."""
    core = text.strip()
    if not core:
        return text
    return text[: len(text) - len(text.lstrip())] + escape_text(core) + text[len(text.rstrip()):]


def has_math(title: object) -> bool:
    """Jinja filter ``has_math``: whether the title holds a formula."""
    return any(is_math for _, is_math in pieces(title))


def title_md(title: object) -> str:
    """Jinja filter ``title_md``: the title for a Markdown heading (text escaped, math kept)."""
    from .render import md_escape, md_statement

    return "".join(md_statement(f"${tex}$") if is_math else _spaced(md_escape, tex) for tex, is_math in pieces(title))


def title_html(title: object) -> Markup:
    """Jinja filter ``title_html``: the title as HTML (text escaped, math typeset by KaTeX)."""
    from .html import math_filter

    return Markup("").join(math_filter(tex) if is_math else escape(tex) for tex, is_math in pieces(title))


def title_tex(title: object) -> str:
    """Jinja filter ``title_tex``: the title as LaTeX (text escaped, math checked by
    `derivgen.latex.check_math`: a formula outside the whitelist prints as written)."""
    from .latex import _math_code, check_math, tex_escape

    return "".join((f"${tex}$" if check_math(tex) is None else _math_code(tex)) if is_math else _spaced(tex_escape, tex)
                   for tex, is_math in pieces(title))


def plain(title: object) -> str:
    """Jinja filter ``plain``: the title as plain text, its math written with Unicode."""
    from .latex import plain_math

    return "".join(plain_math(tex) if is_math else tex for tex, is_math in pieces(title))

"""Sphinx extension: a verified derivation in a page, with math through Sphinx's own machinery.

In ``conf.py``: ``extensions = ["myst_parser", "derivgen.sphinx"]`` (Jupyter Book: under
``sphinx: extra_extensions``). In a MyST page::

    ```{derivation} week1/quadratic.yaml
    :show: statement, solution, answer
    :lang: en
    ```

or in reStructuredText ``.. derivation:: week1/quadratic.yaml``. The path is relative to the
page (``/…`` to the source folder); the page is rebuilt when the problem file changes.
``:show:`` picks among ``statement`` (the title and statement), ``solution`` (every step with
the rules it uses, and the check) and ``answer`` (the boxed result); all three by default.
``:lang:`` (en, zh) defaults to the ``derivgen_language`` setting (default ``en``).

The derivation becomes docutils nodes — paragraphs, ``math`` and ``math_block`` — so the
project's math renderer (MathJax by default, or any other math extension) typesets it, and
every builder (HTML, LaTeX, …) can write it. A problem that cannot be derived or verified is
left out of the page and reported as a Sphinx warning at the directive, with derivgen's
located error: a wrong result is never shown. Statements are Markdown; their formulas outside
derivgen's TeX whitelist are shown as written, in typewriter type (as in the other handouts).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from . import __version__

logger = logging.getLogger(__name__)

PARTS = ("statement", "solution", "answer")


def _show(argument: str | None) -> tuple[str, ...]:
    """The `:show:` option: a comma- or space-separated list among `PARTS`."""
    words = [w for w in (argument or "").replace(",", " ").split() if w]
    unknown = [w for w in words if w not in PARTS]
    if unknown or not words:
        raise ValueError(f"choose among {', '.join(PARTS)} (got {argument!r})")
    return tuple(words)


def _lang(argument: str | None) -> str:
    return directives.choice(argument, ("en", "zh"))


_documents: dict[tuple[str, str, str], dict] = {}


def problem_document(path: Path, lang: str) -> dict:
    """The problem document of `path` (derived and verified), cached by the file's bytes."""
    from .pipeline import problem_document as derive

    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = ""
    key = (str(path), lang, digest)
    if key not in _documents:
        _documents[key] = derive(path, lang)
    return _documents[key]


class DerivationDirective(SphinxDirective):
    """``derivation PATH``: the verified derivation of a problem file (see the module docstring)."""

    required_arguments = 1
    optional_arguments = 0
    final_argument_whitespace = True
    has_content = False
    option_spec = {"show": _show, "lang": _lang, "class": directives.class_option}

    def run(self) -> list[nodes.Node]:
        rel, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(rel)
        lang = self.options.get("lang") or self.config.derivgen_language or "en"
        show = self.options.get("show") or PARTS
        if not Path(path).is_file():
            logger.warning("derivgen: no such problem file: %s", self.arguments[0],
                           location=self.get_location(), type="derivgen", subtype="missing")
            return []
        doc = problem_document(Path(path), lang)
        if not doc["ok"]:
            logger.warning("derivgen: %s is left out of the page:\n%s", self.arguments[0],
                           doc["error"]["rendered"], location=self.get_location(), type="derivgen",
                           subtype="failed")
            return []
        return [document_nodes(doc, show, lang, self.env.docname, self.options.get("class", []))]


def document_nodes(doc: dict, show: tuple[str, ...], lang: str, docname: str, classes: list[str] = ()) -> nodes.Element:
    """The docutils nodes of a problem document: one container, classes ``derivgen``."""
    from .i18n import plural, text
    from .render import format_sci

    box = nodes.container(classes=["derivgen", *classes])
    if "statement" in show:
        if doc.get("title"):
            box += nodes.rubric(doc["title"], doc["title"])
        if doc.get("statement"):
            box.extend(markdown_nodes(doc["statement"], docname))
    for result in doc["results"]:
        head = nodes.paragraph()
        head += nodes.strong("", "", *_heading(result, lang))
        if result.get("note"):
            head += nodes.Text(" — " + result["note"])
        box += head
        if "solution" in show:
            box += _math_block(chain_latex(result["steps"], doc.get("rules", []), lang), docname)
            legend = rule_legend(result["steps"], doc.get("rules", []), lang)
            if legend:
                box += nodes.paragraph(legend, legend, classes=["derivgen-legend"])
        if "answer" in show:
            box += _math_block(f"\\boxed{{{result['lhs_latex']} = {result['latex']}}}", docname)
        if "solution" in show:
            v = result["verification"]
            sizes = ", ".join(f"{k} = {n}" for k, n in v["sizes"].items())
            fields = dict(points=plural("points", v["trials"], lang), checks=plural("checks", v["checks"], lang),
                          err=format_sci(v["max_rel_error"]), tol=format_sci(v["tolerance"]), sizes=sizes)
            line = text("verified" if sizes else "verified_no_sizes", lang, **fields)
            para = nodes.paragraph(classes=["derivgen-verification"])
            para += nodes.strong("", text("verification", lang))
            para += nodes.Text(text("colon", lang) + line)
            box += para
    return box


def chain_latex(steps: list[dict], rules: list[dict], lang: str) -> str:
    """One ``aligned`` block: a step a line, the ids of the rules it uses in a column on its left
    ([D2]), as the Markdown handouts write it; their names are in the legend under the block
    (`rule_legend`). On the left the tags stay in view however narrow the page: a chain wider
    than the column scrolls sideways in its box (MathJax does not wrap a line), from the tags on."""
    lines = []
    for s in steps:
        lhs = s.get("lhs_latex") or ""
        tag = f"\\text{{[{_tex_text(', '.join(s['rules']))}]}}" if s.get("rules") else ""
        lines.append(f"{tag} &\\quad {lhs} &&{s.get('rel') or '='} {s['latex']}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def rule_legend(steps: list[dict], rules: list[dict], lang: str) -> str:
    """"[D2] product rule · [T3] cyclic property": the rules a chain cites, in order of use."""
    from .i18n import text

    names = {r["id"]: r.get("name") or "" for r in rules}
    cited = list(dict.fromkeys(r for s in steps for r in s.get("rules") or ()))
    return text("legend_sep", lang).join(f"[{r}] {names.get(r, '')}".strip() for r in cited) if cited else ""


def _tex_text(value: str) -> str:
    """Plain text made safe inside \\text{…} (the templates' ``tex_text`` filter)."""
    from .render import tex_text_escape

    return str(tex_text_escape(value))


def _heading(result: dict, lang: str) -> list[nodes.Node]:
    """A result's sub-heading in words, as in the handouts: "Gradient with respect to X"."""
    from .i18n import text

    kind = result.get("kind")
    if kind not in ("gradient", "jacobian", "hessian", "solution") or not result.get("wrt_latex"):
        return [_math(result["lhs_latex"])]
    before, _, after = text(f"heading_{kind}", lang, x="\x00").partition("\x00")
    return [n for n in (nodes.Text(before) if before else None, _math(result["wrt_latex"]),
                        nodes.Text(after) if after else None) if n is not None]


def _math(tex: str) -> nodes.Node:
    from .latex import check_math

    if check_math(tex) is not None:  # not on derivgen's TeX whitelist: shown as written
        return nodes.literal(f"${tex}$", f"${tex}$")
    return nodes.math(tex, tex)


def _math_block(tex: str, docname: str) -> nodes.Node:
    from .latex import check_math

    if check_math(tex) is not None:
        return nodes.literal_block(tex, f"$${tex}$$")
    return nodes.math_block(tex, tex, docname=docname, number=None, label=None, nowrap=False)


def markdown_nodes(source: str, docname: str) -> list[nodes.Node]:
    """A statement's Markdown (raw HTML off, ``$…$`` math) as docutils nodes."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    from .render import safe_link

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.validateLink = safe_link
    dollarmath_plugin(md, allow_labels=False, double_inline=True)
    root = nodes.container()
    stack: list[nodes.Element] = [root]
    for token in md.parse(source):
        kind = token.type
        if kind == "inline":
            stack[-1].extend(_inline_nodes(token.children or []))
        elif kind in ("math_block", "math_block_label"):
            stack[-1] += _math_block(token.content.strip(), docname)
        elif kind in ("fence", "code_block"):
            stack[-1] += nodes.literal_block(token.content, token.content)
        elif kind == "hr":
            stack[-1] += nodes.transition()
        elif kind.endswith("_open"):
            element = {
                "paragraph_open": nodes.paragraph, "bullet_list_open": nodes.bullet_list,
                "ordered_list_open": nodes.enumerated_list, "list_item_open": nodes.list_item,
                "blockquote_open": nodes.block_quote, "heading_open": nodes.rubric,
            }.get(kind, nodes.container)()
            stack[-1] += element
            stack.append(element)
        elif kind.endswith("_close") and len(stack) > 1:
            stack.pop()
    return list(root.children)


def _inline_nodes(children) -> list[nodes.Node]:
    out: list[nodes.Node] = []
    stack: list[list[nodes.Node] | nodes.Element] = []
    target: Any = out

    def add(node: nodes.Node) -> None:
        target.append(node) if isinstance(target, list) else target.__iadd__(node)

    for token in children:
        kind = token.type
        if kind == "text":
            add(nodes.Text(token.content))
        elif kind == "softbreak":
            add(nodes.Text(" "))
        elif kind == "hardbreak":
            add(nodes.Text("\n"))
        elif kind == "code_inline":
            add(nodes.literal(token.content, token.content))
        elif kind in ("math_inline", "math_inline_double"):
            add(_math(token.content) if kind == "math_inline" else nodes.math(token.content, token.content))
        elif kind in ("strong_open", "em_open", "link_open"):
            element = {"strong_open": nodes.strong, "em_open": nodes.emphasis}.get(kind)
            element = element() if element else nodes.reference(refuri=str(token.attrs.get("href", "")))
            add(element)
            stack.append(target)
            target = element
        elif kind in ("strong_close", "em_close", "link_close") and stack:
            target = stack.pop()
        elif token.content:
            add(nodes.Text(token.content))
    return out


#: The style sheet HTML pages link (a chain scrolls sideways in its own box).
CSS = Path(__file__).parent / "static" / "derivgen-sphinx.css"


def _link_css(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Link `CSS` from the pages that hold a derivation (only those)."""
    if doctree is not None and any("derivgen" in node["classes"] for node in doctree.findall(nodes.container)):
        app.add_css_file(CSS.name)


def _copy_css(app, exception: Exception | None) -> None:
    """Put `CSS` into the HTML output's _static folder, where every page links it."""
    from sphinx.util.fileutil import copy_asset_file

    if exception is None and app.builder.format == "html":
        copy_asset_file(str(CSS), str(Path(app.outdir) / "_static"))


def setup(app) -> dict[str, Any]:
    """Register the `derivation` directive, the `derivgen_language` setting and the style sheet."""
    app.add_config_value("derivgen_language", "en", "env", [str])
    app.add_directive("derivation", DerivationDirective)
    app.connect("html-page-context", _link_css)
    app.connect("build-finished", _copy_css)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}

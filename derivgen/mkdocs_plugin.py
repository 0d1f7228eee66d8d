"""MkDocs plugin `derivgen`: a verified derivation wherever a page has a ```derivation block.

In ``mkdocs.yml``::

    plugins:
      - derivgen:            # options, all optional
          lang: en           # en or zh
          solutions: true    # false: the problem sheet (statement only)
          assets: derivgen-assets   # the folder of the site that gets the CSS, KaTeX's CSS and fonts

In a page, a fenced block whose body is the path of a problem file, relative to the page::

    ```derivation
    week1/quadratic.yaml
    ```

Each block becomes derivgen's HTML fragment (one ``<div class="derivgen">``) with its math
pre-rendered by KaTeX when node is on the PATH, else rendered in the browser by the KaTeX
script shipped with derivgen. The CSS (and that script) are copied into the site's
`assets` folder and added to the theme's ``extra_css`` / ``extra_javascript``, which MkDocs
links relative to each page, so they load under directory URLs (``week1/page/``) as well.
Nothing is fetched from a network. A problem that cannot be derived or verified is left out
of the page, with a warning giving derivgen's located error (``mkdocs build --strict`` fails).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from pathlib import Path

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.plugins import BasePlugin

log = logging.getLogger("mkdocs.plugins.derivgen")

#: A fenced block ```derivation (or ~~~derivation) whose body is a path.
FENCE = re.compile(r"^(?P<indent>[ \t]{0,3})(?P<fence>`{3,}|~{3,})[ \t]*derivation[ \t]*\n(?P<body>.*?)\n"
                   r"(?P=indent)(?P=fence)[ \t]*$", re.M | re.S)


class DerivgenConfig(base.Config):
    """The plugin's options in mkdocs.yml."""

    lang = c.Choice(("en", "zh"), default="en")
    solutions = c.Type(bool, default=True)
    assets = c.Type(str, default="derivgen-assets")


class DerivgenPlugin(BasePlugin[DerivgenConfig]):
    """Expands ```derivation blocks into verified derivations (see the module docstring)."""

    def __init__(self) -> None:
        self._fragments: dict[str, str] = {}
        self._nonce = secrets.token_hex(6)
        self._documents: dict[tuple[str, str, str], dict] = {}
        self._used = False

    def on_config(self, config):
        from . import katex

        assets = self.config.assets.strip("/")
        config.extra_css.extend([f"{assets}/derivgen.css", f"{assets}/katex/katex.min.css"])
        if katex.find_katex() is not None and katex.math_mode() == katex.CLIENT:
            config.extra_javascript.extend([f"{assets}/katex/katex.min.js", f"{assets}/derivgen-math.js"])
        return config

    def on_page_markdown(self, markdown: str, page, config, files) -> str:
        source = Path(page.file.abs_src_path).parent if page.file.abs_src_path else Path(config.docs_dir)

        def expand(match: re.Match) -> str:
            lines = [line.strip() for line in match.group("body").splitlines() if line.strip()]
            if not lines:
                log.warning("derivgen: a derivation block in %s names no problem file", page.file.src_uri)
                return ""
            path = (source / lines[0]).resolve()
            html = self._fragment(path, lines[0], page.file.src_uri)
            if html is None:
                return ""
            key = f"derivgen-block-{self._nonce}-{len(self._fragments)}"
            self._fragments[key] = html
            return f"{match.group('indent')}{key}"

        return FENCE.sub(expand, markdown)

    def on_page_content(self, html: str, page, config, files) -> str:
        if not self._fragments:
            return html
        pattern = re.compile(rf"(?:<p>)?(derivgen-block-{self._nonce}-\d+)(?:</p>)?")
        return pattern.sub(lambda m: self._fragments.get(m.group(1), m.group(0)), html)

    def on_post_build(self, config) -> None:
        from .errors import DerivgenError
        from .html import write_assets

        if not self._used:
            return
        try:
            write_assets(Path(config.site_dir), self.config.assets.strip("/"))
        except (DerivgenError, OSError) as err:
            log.warning("derivgen: cannot copy the assets into %s: %s", config.site_dir, err)

    def _fragment(self, path: Path, written: str, page: str) -> str | None:
        """derivgen's HTML fragment for the problem file `path`, or None (a warning logged)."""
        from .errors import DerivgenError
        from .html import render_problem_html
        from .pipeline import problem_document

        if not path.is_file():
            log.warning("derivgen: %s: no such problem file: %s", page, written)
            return None
        lang = self.config.lang
        key = (str(path), lang, hashlib.sha256(path.read_bytes()).hexdigest())
        if key not in self._documents:
            self._documents[key] = problem_document(path, lang)
        doc = self._documents[key]
        if not doc["ok"]:
            log.warning("derivgen: %s: %s is left out of the page:\n%s", page, written, doc["error"]["rendered"])
            return None
        try:
            html = render_problem_html(doc, lang, solutions=self.config.solutions, standalone=False, assets=None)
        except DerivgenError as err:
            log.warning("derivgen: %s: %s is left out of the page:\n%s", page, written, err.render())
            return None
        self._used = True
        return html

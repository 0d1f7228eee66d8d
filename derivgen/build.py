"""Building a problem set: documents (cached), then every output format, written atomically.

A problem's document is cached under `OUT/.derivgen-cache/` keyed by the problem file's bytes,
the language and a fingerprint of derivgen itself (its source and default templates), so an
unchanged problem is not derived again. Each output file is rewritten only when its key — the
document key, the format and the fingerprint of the templates in use — changed or the file is
missing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import DerivgenError, Location, RenderError
from .output import write_atomic

CACHE_DIR = ".derivgen-cache"
PACKAGE = Path(__file__).parent


@lru_cache(maxsize=1)
def derivgen_fingerprint() -> str:
    """A hash of derivgen's own code and default templates (stands for its version)."""
    h = hashlib.sha256(__version__.encode())
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".lark", ".j2", ".css", ".js") and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(PACKAGE)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def templates_fingerprint(user_dir: str | None) -> str:
    """A hash of a user's template directory (empty when there is none)."""
    if not user_dir:
        return ""
    h = hashlib.sha256()
    for path in sorted(Path(user_dir).rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(user_dir)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class Output:
    """One file to produce: its name, a cache key, and how to make its content."""

    name: str
    key: str
    make: Callable[[], "str | bytes | PdfJob"]  # a PdfJob is compiled later, with the others, in parallel


@dataclass(frozen=True)
class PdfJob:
    """A PDF to compile after every other output is written (all PDFs compile in parallel)."""

    tex: str
    lang: str
    source: str | None  # the problem file it comes from, for error messages


@dataclass
class BuildResult:
    """What a build did, for the CLI to report."""

    docs: list[dict] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[DerivgenError] = field(default_factory=list)
    derived: int = 0
    cached: int = 0

    @property
    def failed(self) -> list[str]:
        return [d["id"] for d in self.docs if not d["ok"]]


class Cache:
    """Documents by key, and the key each output file was last written with."""

    def __init__(self, out: Path):
        self.dir = out / CACHE_DIR
        self.manifest_path = self.dir / "manifest.json"
        try:
            self.manifest: dict[str, str] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.manifest = {}

    def document(self, key: str) -> dict | None:
        try:
            return json.loads((self.dir / "docs" / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def store_document(self, key: str, doc: dict) -> None:
        try:
            write_atomic(self.dir / "docs" / f"{key}.json", json.dumps(doc, ensure_ascii=False), durable=False)
        except OSError:
            pass  # a cache that cannot be written only costs time

    def fresh(self, out: Path, output: Output) -> bool:
        return self.manifest.get(output.name) == output.key and (out / output.name).exists()

    def save(self) -> None:
        try:
            write_atomic(self.manifest_path, json.dumps(self.manifest, indent=1, sort_keys=True), durable=False)
        except OSError:
            pass


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


class Builder:
    """Builds documents and outputs for a list of problem files into one directory."""

    def __init__(self, out: Path, formats: list[str], lang: str, templates: str | None, config=None):
        self.out = Path(out)
        self.formats = formats
        self.lang = lang
        self.templates = templates
        self.config = config
        self.cache = Cache(self.out)
        self.tfp = templates_fingerprint(templates)
        self.result = BuildResult()
        self.pdf_jobs: list[tuple[Output, PdfJob]] = []
        self._tex: dict[tuple, str] = {}  # LaTeX rendered once for both the .tex and the .pdf

    def tex(self, doc_key: tuple, render: Callable[[], str]) -> str:
        """The LaTeX of a document, rendered once even when both `tex` and `pdf` are built."""
        if doc_key not in self._tex:
            self._tex[doc_key] = render()
        return self._tex[doc_key]

    # -- documents
    def document(self, path: Path) -> tuple[dict, str]:
        key = _key(derivgen_fingerprint(), self.lang, str(path), path.read_bytes().hex() if path.exists() else "")
        doc = self.cache.document(key)
        if doc is None:
            from .pipeline import problem_document  # NumPy, lark, the engine: only on a cache miss

            doc = problem_document(path, self.lang)
            self.result.derived += 1
            if doc["ok"]:
                self.cache.store_document(key, doc)
        else:
            self.result.cached += 1
        return doc, key

    # -- outputs
    def problem_outputs(self, doc: dict, key: str) -> list[Output]:
        outs = []
        for fmt in self.formats:
            base = key if fmt in UNTEMPLATED else _key(key, self.tfp)
            for name, make in FORMAT_PROBLEM[fmt](self, doc):
                outs.append(Output(name, _key(base, fmt, name), make))
        return outs

    def set_outputs(self, setdoc: dict, keys: list[str]) -> list[Output]:
        outs = []
        base = _key(self.tfp, json.dumps([setdoc.get(k) for k in ("title", "course", "author", "date")]), *keys)
        for fmt in self.formats:
            for name, make in FORMAT_SET.get(fmt, lambda b, s: [])(self, setdoc):
                outs.append(Output(name, _key(base, fmt, name), make))
        return outs

    def write(self, output: Output) -> None:
        if self.cache.fresh(self.out, output):
            self.result.unchanged.append(output.name)
            return
        try:
            content = output.make()
        except DerivgenError as err:
            self.result.errors.append(err)
            self.cache.manifest.pop(output.name, None)
            return
        if isinstance(content, PdfJob):
            self.pdf_jobs.append((output, content))
            return
        if content is not None:
            try:
                write_atomic(self.out / output.name, content)
            except OSError as exc:
                self.result.errors.append(RenderError(f"cannot write {self.out / output.name}: {exc.strerror or exc}",
                                                      Location(str(self.out / output.name))))
                self.cache.manifest.pop(output.name, None)
                return
        self.cache.manifest[output.name] = output.key
        self.result.written.append(output.name)

    def run(self, paths: list[Path], set_document: Callable[[list[dict]], dict]) -> BuildResult:
        keys = []
        for path in paths:
            doc, key = self.document(path)
            self.result.docs.append(doc)
            keys.append(key if doc["ok"] else _key(key, "failed", json.dumps(doc["error"])))
            for output in self.problem_outputs(doc, keys[-1]):
                self.write(output)
        if self.result.docs:
            setdoc = set_document(self.result.docs)
            for output in self.set_outputs(setdoc, keys):
                self.write(output)
        self.compile_pdfs()
        if "html" in self.formats:
            from .html import write_assets

            try:
                write_assets(self.out)  # CSS, KaTeX's CSS and fonts, next to the pages: nothing from a CDN
            except (DerivgenError, OSError) as err:
                self.result.errors.append(err if isinstance(err, DerivgenError) else RenderError(str(err)))
        self.cache.save()
        return self.result


    def compile_pdfs(self) -> None:
        """Compile the collected PDFs in parallel; a missing TeX engine is one clear error."""
        if not self.pdf_jobs:
            return
        from .pdf import compile_many, tex_available

        for lang in sorted({job.lang for _, job in self.pdf_jobs}):
            missing = tex_available(lang)
            if missing:
                self.result.errors.append(RenderError(f"cannot make PDFs: {missing}",
                                                      hint="the other formats were built; run scripts/setup-tex.sh"))
                self.pdf_jobs = [(o, j) for o, j in self.pdf_jobs if j.lang != lang]
        errors = compile_many([(job.tex, self.out / output.name, job.lang) for output, job in self.pdf_jobs])
        for (output, job), err in zip(self.pdf_jobs, errors):
            if err is None:
                self.cache.manifest[output.name] = output.key
                self.result.written.append(output.name)
            else:
                err.message = f"{output.name} (from {job.source or 'the set'}): {err.message}"
                self.result.errors.append(err)
                self.cache.manifest.pop(output.name, None)
        self.pdf_jobs = []


# ----------------------------------------------------------------------------- formats


def _json(builder: Builder, doc: dict):
    return [(f"{doc['id']}.json", lambda: json.dumps(doc, indent=2, ensure_ascii=False) + "\n")]


def _md(builder: Builder, doc: dict):
    from .render import render_problem_md

    return [(f"{doc['id']}.md", lambda: render_problem_md(doc, lang=builder.lang, user_dir=builder.templates))]


def _md_set(builder: Builder, setdoc: dict):
    from .render import render_set_md

    def make(solutions: bool):
        return lambda: render_set_md(setdoc, lang=builder.lang, user_dir=builder.templates, solutions=solutions)

    return [("solutions.md", make(True)), ("sheet.md", make(False))]


def _html(builder: Builder, doc: dict):
    from .html import render_problem_html

    def make(standalone: bool):
        return lambda: render_problem_html(doc, lang=builder.lang, user_dir=builder.templates, standalone=standalone)

    return [(f"{doc['id']}.html", make(True)), (f"{doc['id']}.fragment.html", make(False))]


def _html_set(builder: Builder, setdoc: dict):
    from .html import render_set_html

    def make(solutions: bool):
        return lambda: render_set_html(setdoc, lang=builder.lang, user_dir=builder.templates, solutions=solutions)

    return [("solutions.html", make(True)), ("sheet.html", make(False))]


def _problem_tex(builder: Builder, doc: dict) -> str:
    from .latex import render_problem_tex

    return builder.tex((doc["id"],), lambda: render_problem_tex(doc, lang=builder.lang, user_dir=builder.templates))


def _set_tex(builder: Builder, setdoc: dict, solutions: bool) -> str:
    from .latex import render_set_tex

    return builder.tex(("set", solutions), lambda: render_set_tex(
        setdoc, lang=builder.lang, user_dir=builder.templates, solutions=solutions))


def _tex(builder: Builder, doc: dict):
    return [(f"{doc['id']}.tex", lambda: _problem_tex(builder, doc))]


def _tex_set(builder: Builder, setdoc: dict):
    return [("solutions.tex", lambda: _set_tex(builder, setdoc, True)),
            ("sheet.tex", lambda: _set_tex(builder, setdoc, False))]


def _pdf(builder: Builder, doc: dict):
    return [(f"{doc['id']}.pdf", lambda: PdfJob(_problem_tex(builder, doc), builder.lang, doc.get("source")))]


def _pdf_set(builder: Builder, setdoc: dict):
    def make(solutions: bool):
        return lambda: PdfJob(_set_tex(builder, setdoc, solutions), builder.lang, None)

    return [("solutions.pdf", make(True)), ("sheet.pdf", make(False))]


FORMAT_PROBLEM: dict[str, Callable] = {"json": _json, "md": _md, "html": _html, "tex": _tex, "pdf": _pdf}
UNTEMPLATED = {"json"}  # formats that do not go through templates
FORMAT_SET: dict[str, Callable] = {"md": _md_set, "html": _html_set, "tex": _tex_set, "pdf": _pdf_set}
FORMATS = tuple(FORMAT_PROBLEM)

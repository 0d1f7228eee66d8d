"""Building a problem set: documents (cached), then every output format, written atomically.

A problem's document is cached under `OUT/.derivgen-cache/` keyed by the problem file's bytes,
the language and a fingerprint of derivgen itself (its source and default templates), so an
unchanged problem is not derived again. Each output file is rewritten only when its key — the
document key, the format and the fingerprint of the templates in use — changed or the file is
missing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import DerivgenError, Location, ProblemError, RenderError
from .output import write_atomic

CACHE_DIR = ".derivgen-cache"
PRUNE_AGE = 7 * 86400  # a cached document no build has used for a week is removed
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


#: Template files larger than this are fingerprinted by size and time, not read (the template
#: loader refuses them anyway).
FINGERPRINT_READ_LIMIT = 1 << 20
#: A template folder with more files than this (``--templates /``) is not fingerprinted: its
#: outputs are taken as changed on every build, which costs time but is never stale.
FINGERPRINT_MAX_FILES = 10_000


def templates_fingerprint(user_dir: str | None) -> str:
    """A hash of a user's template directory (empty when there is none).

    It counts what the template loader may read: the regular files inside the directory,
    walked without following symlinked folders. A symlink that leads out of the directory is
    skipped, never read (not even to hash it); a device, a FIFO or a file that cannot be read
    counts by its name alone, an empty one (as every file under ``/proc`` says it is) or a
    large one by its size and time. A folder of more than `FINGERPRINT_MAX_FILES` files gets a
    new fingerprint each time. It never raises.
    """
    if not user_dir:
        return ""
    root = os.path.realpath(user_dir)
    entries: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        if len(entries) + len(filenames) > FINGERPRINT_MAX_FILES:
            return "unbounded-" + secrets.token_hex(3)
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = Path(os.path.relpath(path, root)).as_posix()
            entries.append((rel, _template_file_digest(path, root)))
    h = hashlib.sha256()
    for rel, digest in sorted(entries):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + digest)
    return h.hexdigest()[:16]


def _template_file_digest(path: str, root: str) -> bytes:
    """What stands for one file of a template directory in `templates_fingerprint`."""
    try:
        real = os.path.realpath(path)  # raises on a link it may not read (/proc/1/cwd)
        if os.path.commonpath([real, root]) != root:
            return b"outside"  # a symlink out of the folder: the loader refuses it, nothing is read
        info = os.stat(real)
    except (OSError, ValueError):
        return b"unreadable"
    if not stat.S_ISREG(info.st_mode):
        return b"special"
    if info.st_size == 0 or info.st_size > FINGERPRINT_READ_LIMIT:
        return f"size {info.st_size} time {info.st_mtime_ns}".encode()
    try:
        with open(real, "rb") as handle:
            return hashlib.sha256(handle.read(FINGERPRINT_READ_LIMIT + 1)).digest()
    except OSError:
        return b"unreadable"


@dataclass
class Output:
    """One file to produce: its name, a cache key, and how to make its content."""

    name: str
    key: str
    make: Callable[[], "str | bytes | PdfJob"]  # a PdfJob is compiled later, with the others, in parallel
    source: str = ""  # the problem file it comes from (resolved), or SET_SOURCE


@dataclass(frozen=True)
class PdfJob:
    """A PDF to compile after every other output is written (all PDFs compile in parallel)."""

    tex: str
    lang: str
    source: str | None  # the problem file it comes from, for error messages
    problems: tuple[tuple[str, str | None], ...] = ()  # (id, problem file) of each problem in it
    render: Callable[[frozenset[str]], str] | None = None  # a set's LaTeX without some problems
    tex_output: str | None = None  # the .tex output holding the same LaTeX, if one is built


@dataclass
class BuildResult:
    """What a build did, for the CLI to report."""

    docs: list[dict] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[DerivgenError] = field(default_factory=list)
    unwritten: list[str] = field(default_factory=list)  # outputs that could not be written
    removed: list[str] = field(default_factory=list)  # outputs of problems gone or failed, deleted
    kept_stale: list[str] = field(default_factory=list)  # such outputs left because they were edited
    derived: int = 0
    cached: int = 0
    verified_now: int = 0  # results verified in this build
    reused: int = 0  # results of documents taken from the cache (verified when first built)
    pdf_failed: list[str] = field(default_factory=list)  # PDFs that could not be made (TeX missing or failing)

    @property
    def failed(self) -> list[str]:
        return [d["id"] for d in self.docs if not d["ok"]]


class OutputError(RenderError):
    """The output folder cannot be used (not writable, not a folder)."""


SET_SOURCE = "set"  # the source recorded for the set's own handouts

#: Names in the output folder that belong to the set, whatever the problems are called.
RESERVED_OUTPUTS = tuple(f"{stem}.{ext}" for stem in ("solutions", "sheet", "answers") for ext in ("md", "json", "html", "tex", "pdf")) + (
    "derivgen-assets", CACHE_DIR)


FRAGMENT_SUFFIX = ".fragment"  # `<id>.fragment.html` is the embeddable page of problem <id>


def _source_of(doc: dict) -> str:
    """The resolved path of a document's problem file: what the manifest records as its source."""
    source = doc.get("source")
    return _resolved(str(source)) if source else doc["id"]


@lru_cache(maxsize=None)
def _resolved(source: str) -> str:
    try:
        return str(Path(source).resolve())
    except (OSError, RuntimeError):
        return source


def failed_document(doc: dict, err: DerivgenError) -> dict:
    """A copy of a document that failed with `err`: no results (pipeline.error_document's shape)."""
    return {
        **doc, "ok": False, "results": [], "rules": [], "where": [], "function": None, "error": err.as_dict(),
    }


class OutputLock:
    """An exclusive lock on an output folder, held for a whole build.

    Two builds into one folder (an English and a Chinese one, say) would otherwise interleave
    their files; with the lock the second waits for the first and then rewrites what differs.
    Taking it also proves the folder writable before any work is done. Where `fcntl` is
    missing (Windows), builds are not serialised.
    """

    def __init__(self, out: Path, on_wait: Callable[[str], None] | None = None):
        self.path = out / CACHE_DIR / "lock"
        self.on_wait = on_wait
        self.handle = None

    def __enter__(self) -> "OutputLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "a+b")
        except OSError as exc:
            raise OutputError(f"cannot write into the output folder {self.path.parent.parent}: {exc.strerror or exc}",
                              hint="choose another folder with -o, or make this one writable") from None
        try:
            import fcntl
        except ImportError:
            return self
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if self.on_wait:
                self.on_wait(f"waiting for another derivgen build into {self.path.parent.parent} to finish")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()  # closing releases the lock


def _cache_secret() -> bytes:
    """The key that signs cache entries: kept outside every output folder, made on first use.

    A cache entry is trusted only when its signature checks, so an output folder that arrives
    with a contributed problem set (or is edited by hand) cannot make derivgen publish a document
    it did not derive and verify itself. Without a writable place for the key, a key for this
    process only is used: nothing cached before is trusted, which only costs time.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "derivgen" / "cache-key"
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except OSError:
        pass
    secret = secrets.token_bytes(32)
    try:  # written aside, then linked into place: a build racing this one sees all of it or none
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache-key.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secret)
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
    except FileExistsError:  # another build made it first: use theirs
        try:
            theirs = path.read_bytes()
            return theirs if len(theirs) >= 32 else secret
        except OSError:
            return secret
    except OSError:
        pass
    return secret


class Cache:
    """Documents by key, and for each output file the key, checksum and source it was written with.

    Every file under the cache folder is signed (HMAC-SHA256 with `_cache_secret`); an entry whose
    signature, format or content does not check is ignored and rebuilt, never trusted and never a
    traceback. An output counts as fresh only when its key matches and the file on disk still has
    the checksum derivgen wrote, so an output edited by hand is rewritten.
    """

    VERSION = 2

    def __init__(self, out: Path):
        self.dir = out / CACHE_DIR
        self.manifest_path = self.dir / "manifest.json"
        self.secret = _cache_secret()
        self.manifest: dict[str, dict] = {}
        data = self._load(self.manifest_path)
        if isinstance(data, dict) and isinstance(data.get("outputs"), dict):
            self.manifest = {name: entry for name, entry in data["outputs"].items() if _valid_entry(name, entry)}

    # -- signed files
    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest().encode()

    def _load(self, path: Path):
        """The JSON in a signed cache file, or None when it is missing, unsigned, forged or broken."""
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        mac, _, payload = raw.partition(b"\n")
        if not hmac.compare_digest(mac, self._sign(payload)):
            return None
        try:
            data = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) and data.get("v") == self.VERSION else None

    def _store(self, path: Path, data: dict) -> None:
        payload = json.dumps({"v": self.VERSION, **data}, ensure_ascii=False, sort_keys=True).encode("utf-8")
        try:
            write_atomic(path, self._sign(payload) + b"\n" + payload, durable=False)
        except OSError:
            pass  # a cache that cannot be written only costs time

    # -- documents
    def document(self, key: str) -> dict | None:
        path = self.dir / "docs" / f"{key}.json"
        data = self._load(path)
        if data is None or data.get("key") != key or not valid_document(data.get("doc")):
            return None
        self._used(path)
        return data["doc"]

    def _used(self, path: Path) -> None:
        """Mark an entry as used now (its modification time), at most once a day."""
        try:
            if path.stat().st_mtime < time.time() - 86400:
                os.utime(path)
        except OSError:
            pass

    def prune(self, keep: set[str], age: float = PRUNE_AGE) -> int:
        """Remove the document entries not in `keep` that were not used for `age` seconds (the
        documents of problems edited or deleted since); returns how many were removed."""
        removed, limit = 0, time.time() - age
        try:
            entries = list((self.dir / "docs").iterdir())
        except OSError:
            return 0
        for path in entries:
            try:
                if path.stem in keep or path.is_symlink() or not path.is_file() or path.stat().st_mtime >= limit:
                    continue
                path.unlink()
                removed += 1
            except OSError:
                pass  # a cache that cannot be pruned only costs room
        return removed

    def store_document(self, key: str, doc: dict) -> None:
        self._store(self.dir / "docs" / f"{key}.json", {"key": key, "doc": doc})

    # -- outputs
    def fresh(self, out: Path, output: Output) -> bool:
        entry = self.manifest.get(output.name)
        if not entry or entry["key"] != output.key:
            return False
        try:
            return _digest((out / output.name).read_bytes()) == entry["sha256"]
        except OSError:
            return False

    def record(self, name: str, key: str, content: bytes, source: str) -> None:
        self.manifest[name] = {"key": key, "sha256": _digest(content), "source": source}

    def save(self) -> None:
        self._store(self.manifest_path, {"outputs": self.manifest})


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _valid_entry(name, entry) -> bool:
    return (isinstance(name, str) and _is_output_name(name) and isinstance(entry, dict)
            and all(isinstance(entry.get(k), str) for k in ("key", "sha256", "source")))


def _is_output_name(name: str) -> bool:
    """A plain file name inside the output folder (a manifest never names anything else)."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") and "\0" not in name


def valid_document(doc) -> bool:
    """Whether `doc` has the shape of a verified problem document (docs/schema.md)."""
    if not isinstance(doc, dict) or doc.get("ok") is not True or not isinstance(doc.get("id"), str):
        return False
    results = doc.get("results")
    if not isinstance(results, list) or not results or not isinstance(doc.get("rules"), list):
        return False
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("steps"), list):
            return False
        check = result.get("verification")
        if not isinstance(check, dict) or check.get("passed") is not True:
            return False
        for field_name in ("latex", "text", "numpy", "lhs", "lhs_latex"):
            if not isinstance(result.get(field_name), str):
                return False
    return all(isinstance(doc.get(k), (list, dict, str, type(None))) for k in ("where", "function", "variables"))


def _distinct(errors: list[DerivgenError]) -> list[DerivgenError]:
    """The errors without repeats: a broken set template fails every output it renders, once said."""
    seen: set[str] = set()
    out = []
    for err in errors:
        text = err.render()
        if text not in seen:
            seen.add(text)
            out.append(err)
    return out


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


class Builder:
    """Builds documents and outputs for a list of problem files into one directory."""

    def __init__(self, out: Path, formats: list[str], lang: str, templates: str | None, config=None,
                 placeholders: bool = False, on_wait: Callable[[str], None] | None = None,
                 progress: Callable[[str, int, int], None] | None = None, self_check: str | bool | None = None,
                 assets_url: str | None = None):
        self.out = Path(out)
        self.assets_url = assets_url.rstrip("/") if assets_url else None  # where HTML pages link their assets
        # the self-check boxes (derivgen.selfcheck): the command line's, else the set's; a problem's own key wins
        self.self_check = self_check if self_check is not None else getattr(config, "self_check", False)
        self.layout = getattr(config, "layout", None) or "denominator"  # the set's; a problem's own wins
        # progress hook (issue 9): progress(stage, done, total), stage "documents" (derived now,
        # in order) or "pdfs" (compiled); the CLI draws a bar on a terminal
        self.progress = progress
        self.placeholders = placeholders  # keep error pages of failed problems (the instructor's own copy)
        self.on_wait = on_wait
        self.produced: set[str] = set()  # every output name this build wrote or found unchanged
        self.formats = formats
        self.lang = lang
        self.templates = templates
        self.config = config
        self.cache = Cache(self.out)
        self.tfp = templates_fingerprint(templates) + (f"|assets={self.assets_url}" if self.assets_url else "")
        self.result = BuildResult()
        self.pdf_jobs: list[tuple[Output, PdfJob]] = []
        self._tex: dict[tuple, str] = {}  # LaTeX rendered once for both the .tex and the .pdf

    def tex(self, doc_key: tuple, render: Callable[[], str]) -> str:
        """The LaTeX of a document, rendered once even when both `tex` and `pdf` are built."""
        if doc_key not in self._tex:
            self._tex[doc_key] = render()
        return self._tex[doc_key]

    # -- documents
    def documents(self, paths: list[Path]) -> list[tuple[dict, str]]:
        """(document, key) of each problem file, in order.

        Cached documents are reused; the others are derived in parallel worker processes
        (`derivgen.worker`: at most one per CPU, each problem within a time and memory budget),
        so a build should fetch all its documents with one call."""
        check = ("self_check", str(self.self_check)) if self.self_check else ()  # keys unchanged when off
        check += ("layout", self.layout) if self.layout != "denominator" else ()
        keys = [_key(derivgen_fingerprint(), self.lang, str(path), path.read_bytes().hex() if path.exists() else "", *check)
                for path in paths]
        docs = [self.cache.document(key) for key in keys]
        missing = [i for i, doc in enumerate(docs) if doc is None]
        if missing:
            tick = None
            if self.progress is not None:
                report, total = self.progress, len(missing)
                report("documents", 0, total)
                tick = lambda n: report("documents", n, total)  # noqa: E731
            from .worker import Workers  # NumPy, lark, the engine: only on a cache miss

            with Workers(self.lang, len(missing), self_check=self.self_check, layout=self.layout) as workers:
                for i, doc in zip(missing, workers.documents([paths[i] for i in missing], tick)):
                    docs[i] = doc
        derived = set(missing)
        out = []
        for i, (doc, key) in enumerate(zip(docs, keys)):
            if i in derived:
                self.result.derived += 1
                if doc["ok"]:
                    self.cache.store_document(key, doc)
                    self.result.verified_now += len(doc["results"])
            else:
                self.result.cached += 1
                self.result.reused += len(doc["results"])
            out.append((doc, key))
        return out

    # -- outputs
    def problem_outputs(self, doc: dict, key: str) -> list[Output]:
        if doc["ok"] and {"tex", "pdf", "html"} & set(self.formats):
            from .latex import statement_math_errors  # formulas these formats show as text instead

            self.result.errors.extend(statement_math_errors(doc))
        outs = []
        source = _source_of(doc)
        for fmt in self.formats:
            base = key if fmt in UNTEMPLATED else _key(key, self.tfp)
            for name, make in FORMAT_PROBLEM[fmt](self, doc):
                outs.append(Output(name, _key(base, fmt, name), make, source))
        return outs

    def set_outputs(self, setdoc: dict, keys: list[str]) -> list[Output]:
        outs = []
        base = _key(self.tfp, json.dumps([setdoc.get(k) for k in ("title", "course", "author", "date")]), *keys)
        for fmt in self.formats:
            for name, make in FORMAT_SET.get(fmt, lambda b, s: [])(self, setdoc):
                outs.append(Output(name, _key(base, fmt, name), make, SET_SOURCE))
        return outs

    def write(self, output: Output) -> None:
        self.produced.add(output.name)
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
        payload = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        try:
            write_atomic(self.out / output.name, payload)
        except OSError as exc:
            self.write_failed(output, exc)
            return
        self.done(output, payload)

    def done(self, output: Output, content: bytes) -> None:
        """Record a written output (its key, checksum and source) in the manifest."""
        self.cache.record(output.name, output.key, content, output.source)
        self.result.written.append(output.name)

    def _pdf_done(self, output: Output) -> None:
        try:
            self.done(output, (self.out / output.name).read_bytes())
        except OSError as exc:
            self.write_failed(output, exc)

    def write_failed(self, output: Output, exc: OSError) -> None:
        self.result.errors.append(RenderError(f"cannot write {output.name} in {self.out}: {exc.strerror or exc}",
                                              Location(str(self.out / output.name))))
        self.result.unwritten.append(output.name)
        self.cache.manifest.pop(output.name, None)

    def run(self, paths: list[Path], set_document: Callable[[list[dict]], dict]) -> BuildResult:
        """Derive (or reuse) every document, write its outputs and the set's, then tidy up.

        Holds the output folder's lock throughout, so that two builds into one folder run one
        after the other. A problem that failed is not published: its error is in the result,
        its earlier outputs are removed, and the set handouts leave it out (unless
        `placeholders`, which keeps an error page for the instructor's own copy).
        """
        with OutputLock(self.out, self.on_wait):
            return self._run(paths, set_document)

    def _run(self, paths: list[Path], set_document: Callable[[list[dict]], dict]) -> BuildResult:
        keys, published = [], []
        claimed: dict[str, str] = {name.casefold(): "the set" for name in RESERVED_OUTPUTS}
        used = self.documents(paths)  # what is not cached is derived in parallel workers
        self.cache.prune({key for _, key in used})
        for doc, key in used:
            if doc["ok"]:
                doc = self._claim_names(doc, claimed)
            self.result.docs.append(doc)
            if doc["ok"] or self.placeholders:
                published.append(doc)
                keys.append(key if doc["ok"] else _key(key, "failed", json.dumps(doc["error"])))
                for output in self.problem_outputs(doc, keys[-1]):
                    self.write(output)
        if published:
            setdoc = set_document(published)
            for output in self.set_outputs(setdoc, keys):
                self.write(output)
        self.compile_pdfs()
        if "html" in self.formats:
            from .html import write_assets

            try:
                # CSS, KaTeX's CSS and fonts, next to the pages: nothing from a CDN; math.js for the self-check
                write_assets(self.out, check=any(d.get("self_check") for d in self.result.docs if d["ok"]))
            except (DerivgenError, OSError) as err:
                self.result.errors.append(err if isinstance(err, DerivgenError) else RenderError(str(err)))
        self._remove_stale()
        self.cache.save()
        self.result.errors = _distinct(self.result.errors)
        return self.result

    def _claim_names(self, doc: dict, claimed: dict[str, str]) -> dict:
        """The document, or a failed one when its outputs would overwrite the set's or another problem's.

        Names are compared without case (two names differing only in case are one file on
        macOS and Windows) and for every format, not only the ones built now.
        """
        names = problem_output_names(doc["id"])
        hint = ("rename the problem file; 'solutions', 'sheet', 'answers' and names ending in '.fragment' "
                "are taken by the set's handouts")
        if doc["id"].casefold().endswith(FRAGMENT_SUFFIX):  # its page would be another problem's fragment
            stem = doc["id"][: -len(FRAGMENT_SUFFIX)]
            err = ProblemError(f"the page of problem '{doc['id']}' would be {doc['id']}.html, the embeddable "
                               f"page of a problem '{stem}'", Location(doc.get("source")), hint)
            return failed_document(doc, err)
        for name in names:
            owner = claimed.get(name.casefold())
            if owner is not None:
                whose = "the set's" if owner == "the set" else f"those of {owner}"
                err = ProblemError(f"the outputs of problem '{doc['id']}' would overwrite {whose} ({name})",
                                   Location(doc.get("source")), hint)
                return failed_document(doc, err)
        for name in names:
            claimed[name.casefold()] = doc.get("source") or doc["id"]
        return doc

    def _remove_stale(self) -> None:
        """Remove outputs of problems that are gone or failed; report what was removed or kept."""
        failed = {_source_of(d) for d in self.result.docs if not d["ok"] and not self.placeholders}
        built_now = {_source_of(d) for d in self.result.docs}
        for name, entry in sorted(self.cache.manifest.items()):
            if name in self.produced:
                continue
            source = entry["source"]
            gone = source != SET_SOURCE and source not in built_now and not Path(source).exists()
            if source not in failed and not gone:
                continue
            path = self.out / name
            try:
                if path.is_symlink() or _digest(path.read_bytes()) != entry["sha256"]:
                    self.result.kept_stale.append(name)  # changed since derivgen wrote it: not ours to delete
                    continue
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.result.errors.append(RenderError(f"cannot remove the stale output {name}: {exc.strerror or exc}",
                                                      Location(str(path))))
                continue
            del self.cache.manifest[name]
            self.result.removed.append(name)

    def compile_pdfs(self) -> None:
        """Compile the collected PDFs in parallel, each under its time limit (`derivgen.pdf`).

        A missing TeX engine is one clear error. A problem whose TeX fails or runs over its
        limit gets a located error, its earlier PDF is removed, and it is left out of the
        set's handouts, which still compile (`derivgen.pdf.compile_handouts`); each problem
        left out is an error naming its file, and the set's .tex is rewritten to match its PDF.
        """
        if not self.pdf_jobs:
            return
        from .pdf import Handout, compile_handouts, tex_available

        for lang in sorted({job.lang for _, job in self.pdf_jobs}):
            missing = tex_available(lang)
            if missing:
                self.result.errors.append(RenderError(f"cannot make PDFs: {missing}",
                                                      hint="the other formats were built; run scripts/setup-tex.sh"))
                self.result.pdf_failed += [o.name for o, j in self.pdf_jobs if j.lang == lang]
                self.pdf_jobs = [(o, j) for o, j in self.pdf_jobs if j.lang != lang]
        jobs, self.pdf_jobs = self.pdf_jobs, []
        tick = None
        if self.progress is not None and jobs:
            report, total = self.progress, len(jobs)
            report("pdfs", 0, total)
            tick = lambda n: report("pdfs", n, total)  # noqa: E731
        outcomes = compile_handouts([Handout(job.tex, self.out / output.name, job.lang, job.problems, job.render)
                                     for output, job in jobs], progress=tick)
        for (output, job), outcome in zip(jobs, outcomes):
            for pid, source, err in outcome.left_out:
                err.location = Location(source)
                self.result.errors.append(err)
            if outcome.error is None:
                self._pdf_done(output)
                if outcome.left_out and job.tex_output:
                    self._rewrite_tex(job.tex_output, outcome.tex)
                continue
            err = outcome.error
            err.message = f"{output.name} (from {job.source or 'the set'}): {err.message}"
            self.result.errors.append(err)
            self.result.pdf_failed.append(output.name)
            self._remove_failed_pdf(output.name)

    def _rewrite_tex(self, name: str, tex: str) -> None:
        """Write the LaTeX a set's PDF was finally compiled from into its .tex output."""
        entry = self.cache.manifest.get(name)
        payload = tex.encode("utf-8")
        try:
            write_atomic(self.out / name, payload)
        except OSError as exc:
            self.result.errors.append(RenderError(f"cannot write {name} in {self.out}: {exc.strerror or exc}",
                                                  Location(str(self.out / name))))
            self.cache.manifest.pop(name, None)
            return
        if entry is not None:
            self.cache.record(name, entry["key"], payload, entry["source"])

    def _remove_failed_pdf(self, name: str) -> None:
        """Forget a PDF that could not be made, and remove the one an earlier build wrote
        (it would show an older version), unless it was changed since."""
        entry = self.cache.manifest.pop(name, None)
        path = self.out / name
        if entry is None:
            return
        try:
            if path.is_symlink() or _digest(path.read_bytes()) != entry["sha256"]:
                self.result.kept_stale.append(name)
                return
            path.unlink()
        except OSError:
            return
        self.result.removed.append(name)


# ----------------------------------------------------------------------------- formats


def _json(builder: Builder, doc: dict):
    def make() -> str:
        # the file's name, never the build machine's path to it (an absolute path is private)
        published = {**doc, "source": Path(doc["source"]).name} if doc.get("source") else doc
        return json.dumps(published, indent=2, ensure_ascii=False) + "\n"

    return [(f"{doc['id']}.json", make)]


def _md(builder: Builder, doc: dict):
    from .render import render_problem_md

    return [(f"{doc['id']}.md", lambda: render_problem_md(doc, lang=builder.lang, user_dir=builder.templates))]


def _md_set(builder: Builder, setdoc: dict):
    from .render import render_set_md

    def make(solutions: bool):
        return lambda: render_set_md(setdoc, lang=builder.lang, user_dir=builder.templates, solutions=solutions)

    def answers() -> str:  # the answer key: results only
        from .render import _language, render_template

        return render_template("md/answers.md.j2", builder.templates, setdoc=setdoc,
                               lang=_language(builder.lang), solutions=True, in_set=True)

    return [("solutions.md", make(True)), ("sheet.md", make(False)), ("answers.md", answers)]


def _html(builder: Builder, doc: dict):
    from .html import ASSETS, render_problem_html

    def make(standalone: bool):
        return lambda: render_problem_html(doc, lang=builder.lang, user_dir=builder.templates, standalone=standalone,
                                           assets=builder.assets_url or ASSETS)

    return [(f"{doc['id']}.html", make(True)), (f"{doc['id']}.fragment.html", make(False))]


def _html_set(builder: Builder, setdoc: dict):
    from .html import ASSETS, render_set_html

    def make(solutions: bool):
        # A problem whose formulas KaTeX cannot render is left out, with an error (its own page fails).
        return lambda: render_set_html(setdoc, lang=builder.lang, user_dir=builder.templates, solutions=solutions,
                                       errors=builder.result.errors, assets=builder.assets_url or ASSETS)

    def answers() -> str:
        from .html import ASSETS, render_answers_html

        return render_answers_html(setdoc, lang=builder.lang, user_dir=builder.templates,
                                   assets=builder.assets_url or ASSETS)

    return [("solutions.html", make(True)), ("sheet.html", make(False)), ("answers.html", answers)]


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
            ("sheet.tex", lambda: _set_tex(builder, setdoc, False)),
            ("answers.tex", lambda: _answers_tex(builder, setdoc))]


def _answers_tex(builder: Builder, setdoc: dict) -> str:
    from .latex import render_answers_tex

    return builder.tex(("answers",), lambda: render_answers_tex(setdoc, lang=builder.lang, user_dir=builder.templates))


def _pdf(builder: Builder, doc: dict):
    return [(f"{doc['id']}.pdf", lambda: PdfJob(_problem_tex(builder, doc), builder.lang, doc.get("source"),
                                                ((doc["id"], doc.get("source")),)))]


def _pdf_set(builder: Builder, setdoc: dict):
    from .latex import render_set_tex

    problems = tuple((d["id"], d.get("source")) for d in setdoc.get("problems") or [])

    def make(solutions: bool):
        def render(exclude: frozenset[str]) -> str:
            return render_set_tex(setdoc, lang=builder.lang, user_dir=builder.templates, solutions=solutions,
                                  exclude=exclude)

        tex_output = ("solutions.tex" if solutions else "sheet.tex") if "tex" in builder.formats else None
        return lambda: PdfJob(_set_tex(builder, setdoc, solutions), builder.lang, None, problems, render, tex_output)

    def answers():
        from .latex import render_answers_tex

        def render(exclude: frozenset[str]) -> str:
            return render_answers_tex(setdoc, lang=builder.lang, user_dir=builder.templates, exclude=exclude)

        tex_output = "answers.tex" if "tex" in builder.formats else None
        return PdfJob(_answers_tex(builder, setdoc), builder.lang, None, problems, render, tex_output)

    return [("solutions.pdf", make(True)), ("sheet.pdf", make(False)), ("answers.pdf", answers)]


def problem_output_names(problem_id: str) -> list[str]:
    """Every file a problem has in the output folder, in every format (what FORMAT_PROBLEM makes)."""
    return [f"{problem_id}.{ext}" for ext in ("json", "md", "html", "tex", "pdf")] + [
        f"{problem_id}{FRAGMENT_SUFFIX}.html"]


FORMAT_PROBLEM: dict[str, Callable] = {"json": _json, "md": _md, "html": _html, "tex": _tex, "pdf": _pdf}
UNTEMPLATED = {"json"}  # formats that do not go through templates
FORMAT_SET: dict[str, Callable] = {"md": _md_set, "html": _html_set, "tex": _tex_set, "pdf": _pdf_set}
FORMATS = tuple(FORMAT_PROBLEM)

"""KaTeX for the HTML handouts: finding it, and pre-rendering formulas with it, offline.

Math in an HTML handout is rendered one of two ways, both without any network access:

- **pre-rendered** (the default when ``node`` and a KaTeX copy are on the machine): the build
  sends every formula to one ``node`` process running ``katex_render.cjs`` and puts KaTeX's
  HTML into the page, which then needs only KaTeX's CSS and fonts. A formula KaTeX cannot
  parse is an error (`MathError`), never a red formula in a published page.
- **client-side** (the fallback without ``node``): formulas stay TeX, escaped, in
  ``<span class="dg-tex">``, and the page loads KaTeX's script from the assets copied next to
  it, which renders them when the page opens.

`find_katex` looks for KaTeX in ``$DERIVGEN_KATEX_DIR``, then the copy shipped inside the
package (``derivgen/static/katex``: CSS, woff2 fonts, script; ``scripts/vendor-katex.sh``), then
``node_modules/katex`` of the current folder (``npm install katex`` in a course folder), then
``node_modules/katex`` of the checkout (``scripts/setup-katex.sh``), then Debian's packages
(``node-katex``, ``libjs-katex`` + ``fonts-katex``). ``$DERIVGEN_MATH`` set to
``prerender`` or ``client`` forces a mode; ``$DERIVGEN_NODE`` names the node executable.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import Location, RenderError

#: The script node runs: reads batches of formulas on stdin, answers with KaTeX's HTML.
RENDER_SCRIPT = Path(__file__).resolve().parent / "katex_render.cjs"

#: Where KaTeX may be, in the order tried (after ``$DERIVGEN_KATEX_DIR``).
SEARCH_PATH = (
    Path(__file__).resolve().parent / "static" / "katex",  # shipped in the wheel (issue 9)
    Path("node_modules") / "katex",  # relative: the current folder, looked up when searched
    Path(__file__).resolve().parent.parent / "node_modules" / "katex",
    Path("/usr/share/nodejs/katex"),
    Path("/usr/share/javascript/katex"),
)

PRERENDER = "prerender"
CLIENT = "client"


class MathError(RenderError):
    """KaTeX could not render one or more formulas; `errors` holds ``(tex, message)`` pairs."""

    def __init__(self, errors: Sequence[tuple[str, str]], where: str | None = None):
        self.errors = list(errors)
        shown = "\n".join(f"  {tex!r}: {message}" for tex, message in self.errors[:5])
        more = f"\n  … and {len(self.errors) - 5} more" if len(self.errors) > 5 else ""
        n = len(self.errors)
        head = f"KaTeX cannot render {n} formula{'s' if n != 1 else ''}"
        super().__init__(
            f"{head}:\n{shown}{more}",
            Location(where) if where else None,  # the problem file (or page) the formulas are in
            hint="check the $…$ math in the statement (KaTeX supports most LaTeX math commands)",
        )


@dataclass(frozen=True)
class Katex:
    """A copy of KaTeX's distribution files on this machine."""

    css: Path  # katex.min.css (its fonts are found relative to it: fonts/)
    fonts: Path  # the directory of KaTeX_*.woff2 (and .woff/.ttf)
    script: Path  # katex.min.js, for the browser (client-side rendering)
    module: Path  # what node can require() to render formulas
    version: str


def find_katex() -> Katex | None:
    """Return the first usable KaTeX copy (see the module docstring), or None."""
    configured = os.environ.get("DERIVGEN_KATEX_DIR")
    candidates = ([Path(configured)] if configured else []) + list(SEARCH_PATH)
    for root in candidates:
        found = _katex_at(root.absolute())  # node must get an absolute path to require()
        if found is not None:
            return found
    return None


def _katex_at(root: Path) -> Katex | None:
    # An npm package keeps its files in dist/; Debian's libjs-katex has them at the top.
    for dist in (root / "dist", root):
        css = dist / "katex.min.css"
        script = dist / "katex.min.js"
        if css.is_file() and script.is_file() and (dist / "fonts").is_dir():
            module = dist / "katex.js" if (dist / "katex.js").is_file() else script
            return Katex(css, dist / "fonts", script, module, _version(root, script))
    return None


def _version(root: Path, script: Path) -> str:
    try:
        return json.loads((root / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        head = script.read_bytes()[-200_000:].decode("utf-8", "replace")
    except OSError:
        return "unknown"
    match = re.search(r'version\s*[:=]\s*"(\d+\.\d+\.\d+)"', head)
    return match.group(1) if match else "unknown"


def node_executable() -> str | None:
    """The node executable (``$DERIVGEN_NODE`` or ``node`` on the PATH), or None."""
    configured = os.environ.get("DERIVGEN_NODE")
    if configured:
        return configured if shutil.which(configured) else None
    return shutil.which("node")


def math_mode() -> str:
    """Return how this machine renders math: `PRERENDER` or `CLIENT`.

    Raises `RenderError` when KaTeX is nowhere to be found, or when ``$DERIVGEN_MATH`` asks
    for a mode the machine cannot do.
    """
    katex = find_katex()
    if katex is None:
        raise RenderError(
            "KaTeX not found: HTML handouts need it to render math offline",
            hint="reinstall derivgen (its wheel ships KaTeX), or run `npm install katex` in the folder "
            "you run derivgen from, or `apt-get install libjs-katex`, or set DERIVGEN_KATEX_DIR to a KaTeX package",
        )
    wanted = os.environ.get("DERIVGEN_MATH", "").strip().lower()
    if wanted not in ("", PRERENDER, CLIENT):
        raise RenderError(f"DERIVGEN_MATH={wanted!r}: choose {PRERENDER!r} or {CLIENT!r}")
    if wanted == CLIENT:
        return CLIENT
    if node_executable() is not None:
        return PRERENDER
    if wanted == PRERENDER:
        raise RenderError("DERIVGEN_MATH=prerender, but node is not on the PATH",
                          hint="install Node.js, or let the pages render their math in the browser")
    return CLIENT


@dataclass(frozen=True)
class Rendered:
    """KaTeX's HTML for one formula, and its error message if KaTeX could not parse it."""

    html: str
    error: str | None


class KatexProcess:
    """One node process running KaTeX, fed formulas in batches; answers are cached.

    A build renders every page through the same process (see `render`), so node and KaTeX
    start once however many pages are written.
    """

    def __init__(self, node: str, katex: Katex):
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [node, str(RENDER_SCRIPT), str(katex.module)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            encoding="utf-8",
        )
        self._cache: dict[tuple[str, bool], Rendered] = {}
        self._lock = threading.Lock()
        self.katex = katex

    def render(self, items: Sequence[tuple[str, bool]]) -> list[Rendered]:
        """Render ``(tex, display)`` pairs; one round trip to node for the ones not cached."""
        with self._lock:
            todo = list(dict.fromkeys(item for item in items if item not in self._cache))
            if todo:
                for item, answer in zip(todo, self._ask(todo), strict=True):
                    self._cache[item] = Rendered(answer["html"], answer.get("error"))
                if len(self._cache) > 50_000:  # a long-lived process: keep memory bounded
                    self._cache = {item: self._cache[item] for item in items}
            return [self._cache[item] for item in items]

    def _ask(self, todo: list[tuple[str, bool]]) -> list[dict]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(json.dumps(todo) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise RenderError(f"the KaTeX process (node) stopped: {self._stderr_text() or 'no message'}")
        answer = json.loads(line)
        if isinstance(answer, dict):  # {"fatal": "..."}: the script itself failed
            raise RenderError(f"the KaTeX process failed: {answer.get('fatal')}")
        return answer

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace").strip()[-2000:]

    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        """End the node process (it exits when its input closes)."""
        if self._proc.stdin and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()
        self._stderr.close()


_process: KatexProcess | None = None
_process_lock = threading.Lock()


def render(items: Sequence[tuple[str, bool]]) -> list[Rendered]:
    """Render ``(tex, display)`` pairs with KaTeX through the shared node process.

    The process starts on first use and ends when Python exits (or on `close`).
    """
    global _process
    with _process_lock:
        if _process is not None and not _process.alive():
            _process.close()  # its pipes and temporary file, before a new process replaces it
            _process = None
        if _process is None:
            node = node_executable()
            katex = find_katex()
            if node is None or katex is None:
                raise RenderError("pre-rendering math needs node and KaTeX",
                                  hint="install Node.js (node on the PATH), or set DERIVGEN_MATH=client "
                                       "to let the pages render their math in the browser")
            _process = KatexProcess(node, katex)
        process = _process
    return process.render(items)


def close() -> None:
    """End the shared KaTeX process, if one is running."""
    global _process
    with _process_lock:
        if _process is not None:
            _process.close()
            _process = None


def _forget_in_child() -> None:
    """In a forked process, the parent's node process is not ours: forget it without closing it.

    It is kept referenced so that it is never collected (and its pipes reported) in the child."""
    global _process
    if _process is not None:
        _inherited.append(_process)
        _process = None


_inherited: list[KatexProcess] = []
atexit.register(close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)

"""The HTML handouts in a real browser: headless Chromium opens the built pages from file://.

Checks what only a browser can tell: every formula typeset by KaTeX with its fonts loaded from
the assets next to the page, no request leaving file://, no console error, the derivation of
a result folds and unfolds with a click (the boxed result staying in view), and no horizontal
scrolling of the page on a 375 px wide phone. Screenshots (desktop and phone) are saved to
``$DERIVGEN_SCREENSHOTS`` if set, else to pytest's temporary directory.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``),
with no extra package and no browser download: ``scripts/setup-browser.sh`` installs Debian's
``chromium``. Without it these tests are skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from derivgen import katex
from derivgen.cli import set_document
from derivgen.html import render_problem_html, render_set_html, write_assets
from derivgen.pipeline import problem_document
from derivgen.problem import find_problems

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("DERIVGEN_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}


def _missing(message: str) -> None:
    """Skip, or in CI (where everything must be set up) fail."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _require_chromium() -> None:
    if not shutil.which(CHROMIUM):
        _missing(f"{CHROMIUM} not found; run `bash scripts/setup-browser.sh`")


# --- a minimal DevTools-protocol client over --remote-debugging-pipe ----------------------------


class Browser:
    """Headless Chromium, spoken to over its DevTools pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # bash (dash allows only fds 0-9) puts the pipe ends on fds 3 and 4, where Chromium expects them.
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("DERIVGEN_CHROMIUM_LOG") else subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, *, session: bool = True,
             timeout: float = 30) -> dict:
        """Send a command (to the attached page unless `session` is false); return its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open(self, url: str, metrics: dict) -> None:
        """Open `url` in a new page with the given screen metrics; wait for fonts and load."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", metrics)
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        self.evaluate("document.fonts.ready.then(() => true)")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the first element matching `selector`."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.left + Math.min(r.width / 2, 40), y: r.top + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                   "button": "left", "clickCount": 1})
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def screenshot(self, path: Path, full_height: int | None = None) -> Path:
        params: dict = {"format": "png"}
        if full_height:
            width = self.evaluate("document.documentElement.clientWidth")
            height = min(full_height, self.evaluate("document.documentElement.scrollHeight"))
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", "") + " " + params["entry"].get("url", ""))
            elif method == "Network.loadingFailed":
                found.append(f"failed to load: {params.get('errorText')}")
        return found


# --- the pages under test ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs():
    config, paths = find_problems([str(ROOT / "problems")])
    return config, [problem_document(path, "en") for path in paths]


def _build(out: Path, config, docs: list[dict]) -> dict[str, Path]:
    setdoc = set_document(config, docs, "en")
    pages = {
        "set": out / "solutions.html",
        "problem": out / "n001_trace_axbxtc.html",
    }
    pages["set"].write_text(render_set_html(setdoc), encoding="utf-8")
    one = next(d for d in docs if d["id"] == "n001_trace_axbxtc")
    pages["problem"].write_text(render_problem_html(one), encoding="utf-8")
    # A host page (as MkDocs or a course site would be) with the fragment embedded, and the
    # same page without it.
    host = ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'><title>Course</title>"
            "<style>body{font:16px/1.4 sans-serif;margin:2em} h1{color:rgb(200,0,0)}</style></head><body>"
            "<h1 id=host-h1>Week 3</h1><p id=host-p>Before.</p>"
            "<table id=host-table><tr><td>cell</td></tr></table><details id=host-details><summary>More"
            "</summary>text</details>{}<ul id=host-ul><li>After.</li></ul></body></html>")
    pages["host"] = out / "host.html"
    pages["host"].write_text(host.replace("{}", render_problem_html(one, standalone=False)), encoding="utf-8")
    pages["bare"] = out / "bare.html"
    pages["bare"].write_text(host.replace("{}", ""), encoding="utf-8")
    write_assets(out)
    return pages


@pytest.fixture(scope="module")
def built(tmp_path_factory, docs):
    _require_chromium()
    if katex.find_katex() is None or katex.math_mode() != katex.PRERENDER:
        _missing("node or KaTeX missing: run `bash scripts/setup-katex.sh`")
    return _build(tmp_path_factory.mktemp("html"), *docs)


@pytest.fixture(scope="module")
def built_client(tmp_path_factory, docs):
    """The same pages with their math left to KaTeX's script in the browser (the fallback)."""
    _require_chromium()
    if katex.find_katex() is None:
        _missing("KaTeX missing: run `bash scripts/setup-katex.sh`")
    mp = pytest.MonkeyPatch()
    mp.setenv("DERIVGEN_MATH", "client")
    try:
        return _build(tmp_path_factory.mktemp("html-client"), *docs)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    configured = os.environ.get("DERIVGEN_SCREENSHOTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(tmp_path):
    _require_chromium()
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


FORMULA_COUNTS = """(() => ({
  katex: document.querySelectorAll('.katex').length,
  errors: document.querySelectorAll('.katex-error').length,
  tex: document.querySelectorAll('.dg-tex').length,
  typeset: document.querySelectorAll('.dg-tex[data-typeset]').length,
  katexFont: document.fonts.check('16px KaTeX_Main') && document.fonts.check('16px KaTeX_Math'),
  loadedFonts: [...document.fonts].filter(f => f.family.startsWith('KaTeX') && f.status === 'loaded').length,
}))()"""


def _offline(browser: Browser) -> None:
    remote = [url for url in browser.requests() if not url.startswith(("file:", "data:", "about:"))]
    assert remote == [], f"the page fetched from the network: {remote}"
    assert browser.problems() == []


def test_set_page_renders_every_formula_offline(browser, built, screenshots):
    browser.open(built["set"].as_uri(), DESKTOP)
    counts = browser.evaluate(FORMULA_COUNTS)
    html = built["set"].read_text(encoding="utf-8")
    assert counts["errors"] == 0
    # pre-rendered at build time, but for the folded derivations' steps, which KaTeX checked
    # at build time and the shipped script typesets here (pre-rendered, they made the page 3 MB)
    prerendered, deferred = html.count('class="katex"'), html.count('<span class="dg-tex"')
    assert prerendered > 300 and deferred > 300  # fewer lines at normal detail
    assert counts["tex"] == counts["typeset"] == deferred
    assert counts["katex"] == prerendered + deferred
    assert counts["katexFont"] and counts["loadedFonts"] >= 3, counts
    _offline(browser)
    browser.screenshot(screenshots / "set-desktop.png", full_height=2400)


def test_problem_page_on_desktop(browser, built, screenshots):
    browser.open(built["problem"].as_uri(), DESKTOP)
    assert browser.evaluate(FORMULA_COUNTS)["errors"] == 0
    _offline(browser)
    browser.screenshot(screenshots / "problem-desktop.png", full_height=2400)


def test_steps_fold_and_unfold_with_a_click(browser, built, screenshots):
    browser.open(built["problem"].as_uri(), DESKTOP)
    state = """(() => { const d = document.querySelector('details.dg-steps');
      const box = d.closest('.dg-result').querySelector('.dg-result-chain .boxpad');
      return {open: d.open, chain: d.querySelector('.dg-chain').checkVisibility(),
              boxed: box.checkVisibility() && box.getBoundingClientRect().height > 10}; })()"""
    assert browser.evaluate(state) == {"open": True, "chain": True, "boxed": True}
    browser.click("details.dg-steps > summary")
    assert browser.evaluate(state) == {"open": False, "chain": False, "boxed": True}
    browser.screenshot(screenshots / "problem-folded.png", full_height=1400)
    browser.click("details.dg-steps > summary")
    assert browser.evaluate(state) == {"open": True, "chain": True, "boxed": True}


def test_phone_width_has_no_horizontal_page_scroll(browser, built, screenshots):
    for name in ("set", "problem"):
        browser.open(built[name].as_uri(), PHONE)
        widths = browser.evaluate(
            "({page: document.documentElement.scrollWidth, view: window.innerWidth})"
        )
        assert widths["view"] == PHONE["width"]
        assert widths["page"] <= widths["view"], widths
        # Every step's short tag is in view beside its formula (a long formula scrolls in its cell).
        clipped = browser.evaluate(
            "[...document.querySelectorAll('.dg-tag')].filter(e => e.textContent.trim())"
            ".map(e => e.getBoundingClientRect()).filter(r => r.left < 0 || r.right > window.innerWidth"
            " || r.width < 10).length"
        )
        assert clipped == 0
        browser.screenshot(screenshots / f"{name}-phone.png", full_height=2400)


def test_client_side_fallback_renders_every_formula(browser, built_client, screenshots):
    browser.open(built_client["set"].as_uri(), DESKTOP)
    counts = browser.evaluate(FORMULA_COUNTS)
    assert counts["tex"] > 500
    assert counts["typeset"] == counts["tex"] == counts["katex"]
    assert counts["errors"] == 0
    assert counts["katexFont"], counts
    _offline(browser)


def test_fragment_leaves_the_host_page_alone(browser, built, screenshots):
    probe = """(() => Object.fromEntries(['host-h1', 'host-p', 'host-table', 'host-details', 'host-ul']
      .map(id => { const s = getComputedStyle(document.getElementById(id));
                   return [id, [s.color, s.fontFamily, s.fontSize, s.lineHeight, s.margin, s.padding,
                                s.borderTopWidth, s.listStyleType, s.borderLeftWidth]]; })))()"""
    browser.open(built["bare"].as_uri(), DESKTOP)
    bare = browser.evaluate(probe)
    browser.open(built["host"].as_uri(), DESKTOP)
    assert browser.evaluate(probe) == bare
    counts = browser.evaluate(FORMULA_COUNTS)
    assert counts["errors"] == 0 and counts["katex"] > 30
    # The fragment's own text takes the host's font, as an embedded piece should.
    assert browser.evaluate("getComputedStyle(document.querySelector('.derivgen')).fontFamily") == "sans-serif"
    _offline(browser)
    browser.screenshot(screenshots / "fragment-in-host.png", full_height=1200)


# --- the self-check boxes of a problem sheet (derivgen/selfcheck.py, static/derivgen-check.js) --


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A problem sheet with self-check boxes (two example problems), its assets, and a host page
    with one problem's sheet as a fragment."""
    _require_chromium()
    if katex.find_katex() is None:
        _missing("KaTeX missing: run `bash scripts/setup-katex.sh`")
    out = tmp_path_factory.mktemp("selfcheck")
    config, paths = find_problems([str(ROOT / "problems" / f"{name}.yaml")
                                   for name in ("n001_trace_axbxtc", "n001_quadratic_form")])
    docs = [problem_document(path, "en", self_check="sheets") for path in paths]
    pages = {"sheet": out / "sheet.html", "host": out / "host.html"}
    pages["sheet"].write_text(render_set_html(set_document(config, docs, "en"), solutions=False), encoding="utf-8")
    fragment = render_problem_html(docs[0], solutions=False, standalone=False)
    pages["host"].write_text("<!doctype html><html lang=en><head><meta charset=utf-8><title>Course</title>"
                             f"</head><body><h1>Week 3</h1>{fragment}</body></html>", encoding="utf-8")
    write_assets(out, check=True)
    return pages


def _answer(browser: Browser, index: int, text: str) -> dict:
    """Type `text` into the index-th box (real key events: focus, insert, Enter); its verdict."""
    browser.evaluate(f"(() => {{ const i = document.querySelectorAll('.dg-selfcheck-input')[{index}];"
                     " i.scrollIntoView({block: 'center'}); i.focus(); i.select(); return true; })()")
    browser.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Backspace", "code": "Backspace",
                                            "windowsVirtualKeyCode": 8})
    browser.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Backspace", "code": "Backspace",
                                            "windowsVirtualKeyCode": 8})
    browser.call("Input.insertText", {"text": text})
    browser.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Enter", "code": "Enter",
                                            "windowsVirtualKeyCode": 13, "text": "\r"})
    browser.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
    return browser.evaluate(
        f"(() => {{ const v = document.querySelectorAll('.dg-selfcheck-verdict')[{index}];"
        " return {status: v.getAttribute('data-status'), text: v.innerText,"
        " value: document.querySelectorAll('.dg-selfcheck-input')[" + str(index) + "].value}; })()")


def test_self_check_judges_typed_answers(browser, checked, screenshots):
    browser.open(checked["sheet"].as_uri(), DESKTOP)
    boxes = browser.evaluate("""(() => [...document.querySelectorAll('.dg-selfcheck')].map(f => ({
        hidden: f.hidden, label: f.querySelector('label').innerText,
        labelled: f.querySelector('label').htmlFor === f.querySelector('input').id,
        live: f.querySelector('.dg-selfcheck-verdict').getAttribute('aria-live')})))()""")
    assert len(boxes) == 3  # ∂f/∂X of the trace; ∂f/∂x and ∂f/∂A of the quadratic form
    assert all(not b["hidden"] and b["labelled"] and b["live"] == "polite" for b in boxes), boxes
    assert "Check your answer" in boxes[0]["label"]
    # the solution is not on the sheet
    assert "C*A*X*B" not in checked["sheet"].read_text(encoding="utf-8")

    right = _answer(browser, 0, "A'*C'*X*B' + C*A*X*B")
    assert right["status"] == "right" and "Right: your answer equals the result" in right["text"], right
    doubled = _answer(browser, 0, "2*(A'*C'*X*B' + C*A*X*B)")
    assert doubled["status"] == "wrong" and "a factor of 2 too many" in doubled["text"], doubled
    assert doubled["value"] == "2*(A'*C'*X*B' + C*A*X*B)"
    transposed = _answer(browser, 0, "(A'*C'*X*B')'")  # n×m where m×n is wanted
    assert transposed["status"] == "unreadable" and "its transpose has the right shape" in transposed["text"]
    unknown = _answer(browser, 0, "Y*X")
    assert unknown["status"] == "unreadable" and "unknown name 'Y'" in unknown["text"]
    implicit = _answer(browser, 0, "2A")  # the message's `code` is set as code, not as backticks
    assert implicit["status"] == "unreadable" and "`" not in implicit["text"], implicit
    assert browser.evaluate("document.querySelectorAll('.dg-selfcheck-verdict')[0]"
                            ".querySelectorAll('code').length") >= 2

    # x'Ax: ∂f/∂x = (A + A')x; ∂f/∂A = x x'
    assert _answer(browser, 1, "(A + A')*x")["status"] == "right"
    sym = _answer(browser, 1, "2*A*x")
    assert sym["status"] == "wrong" and "right only when A is symmetric" in sym["text"], sym
    layout = _answer(browser, 2, "x*x'")
    assert layout["status"] == "right"
    half = _answer(browser, 2, "x*x'/2")
    assert half["status"] == "wrong" and "a factor of 2 missing" in half["text"], half
    _offline(browser)
    browser.evaluate("document.querySelectorAll('.dg-selfcheck')[1].scrollIntoView({block: 'center'})")
    browser.screenshot(screenshots / "selfcheck-desktop.png")


def test_self_check_on_a_phone_and_in_a_fragment(browser, checked, screenshots):
    browser.open(checked["sheet"].as_uri(), PHONE)
    verdict = _answer(browser, 0, "(A'*C'*X*B' + C*A*X*B)'")
    assert verdict["status"] == "unreadable"
    assert browser.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    fits = browser.evaluate("""(() => [...document.querySelectorAll('.dg-selfcheck')].every(f => {
        const r = f.getBoundingClientRect(); return r.left >= 0 && r.right <= document.documentElement.clientWidth; }))()""")
    assert fits
    _offline(browser)
    browser.screenshot(screenshots / "selfcheck-phone.png")
    browser.open(checked["host"].as_uri(), DESKTOP)
    assert _answer(browser, 0, "A'*C'*X*B' + C*A*X*B")["status"] == "right"
    _offline(browser)


@pytest.fixture(scope="module")
def checked_sums(tmp_path_factory):
    """A problem sheet with self-check boxes for sums over samples: the Gaussian MLE."""
    _require_chromium()
    if katex.find_katex() is None:
        _missing("KaTeX missing: run `bash scripts/setup-katex.sh`")
    out = tmp_path_factory.mktemp("selfcheck-sums")
    config, paths = find_problems([str(ROOT / "problems" / "n001_gaussian_mle.yaml")])
    docs = [problem_document(path, "en", self_check="sheets") for path in paths]
    sheet = out / "sheet.html"
    sheet.write_text(render_set_html(set_document(config, docs, "en"), solutions=False), encoding="utf-8")
    write_assets(out, check=True)
    return sheet


def test_self_check_of_sums_over_samples(browser, checked_sums, screenshots):
    browser.open(checked_sums.as_uri(), DESKTOP)
    boxes = browser.evaluate("[...document.querySelectorAll('.dg-selfcheck')].map(f => f.hidden)")
    assert boxes == [False] * 4  # ∂f/∂μ, μ̂, ∂f/∂Σ, Σ̂
    assert "sum(t, x_t)/N" not in checked_sums.read_text(encoding="utf-8")
    assert _answer(browser, 0, "inv(Sigma)*sum(t, x_t - mu)")["status"] == "right"
    sign = _answer(browser, 0, "inv(Sigma)*sum(t, mu - x_t)")
    assert sign["status"] == "wrong" and "the result with the opposite sign" in sign["text"], sign
    right = _answer(browser, 1, "sum(t, x_t)/N")
    assert right["status"] == "right" and "Right: your answer equals the result" in right["text"], right
    browser.evaluate("document.querySelectorAll('.dg-selfcheck')[0].scrollIntoView({block: 'start'})")
    browser.screenshot(screenshots / "selfcheck-sums-right.png")
    sample = _answer(browser, 2, "inv(Sigma)*x_t*x_t'*inv(Sigma)/2")
    assert sample["status"] == "unreadable" and "x_t is one sample of a family indexed by t" in sample["text"], sample
    assert _answer(browser, 3, "sum(t, (x_t - mu)*(x_t - mu)')/N")["status"] == "right"
    missing = _answer(browser, 3, "sum(t, (x_t - mu)*(x_t - mu)')")  # the 1/N missing
    assert missing["status"] == "wrong" and "Not equal to the result" in missing["text"], missing
    wrong = _answer(browser, 1, "sum(t, x_t)")
    assert wrong["status"] == "wrong", wrong
    _offline(browser)
    browser.evaluate("document.querySelectorAll('.dg-selfcheck')[1].scrollIntoView({block: 'start'})")
    browser.screenshot(screenshots / "selfcheck-sums-wrong.png")

"""A contributed problem set is data (issue 11, parts 1, 2 and 4): attacks through templates,
symlinks, error pages and Markdown, each tried with canary files and a canary environment
variable, checking every output the build writes (md, json, html, tex; pdf through pdftotext
when TeX is installed).

Every test builds in-process through `derivgen.cli.main` and checks that the attack is refused
with a located error, that nothing is executed or leaked, and that the rest of the set builds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from derivgen.build import templates_fingerprint
from derivgen.cli import main
from derivgen.errors import EXCERPT_WIDTH, Location, ProblemError, RenderError
from derivgen.html import markdown_filter
from derivgen.pipeline import problem_document
from derivgen.problem import find_problems
from derivgen.render import TemplateSandbox, environment, md_statement, render_problem_md, safe_link

ROOT = Path(__file__).resolve().parent.parent
GOOD = (ROOT / "problems" / "n001_least_squares.yaml").read_text(encoding="utf-8")
SECRET = "DERIVGEN_CANARY_SECRET"
FORMATS = "md,json,html,tex"


def _tex_ready() -> bool:
    from derivgen.pdf import tex_available

    return tex_available("en") is None and shutil.which("pdftotext") is not None


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "canary-env-7f3a91c2-do-not-publish"
    monkeypatch.setenv(SECRET, value)
    return value


def make_set(tmp_path: Path, config: str = "") -> Path:
    """A set directory `tmp_path/set` with one good problem (`good.yaml`)."""
    directory = tmp_path / "set"
    directory.mkdir()
    (directory / "good.yaml").write_text(GOOD, encoding="utf-8")
    if config:
        (directory / "derivgen.yaml").write_text(config, encoding="utf-8")
    return directory


def build(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run `derivgen build ARGS` in-process: the exit status and what it printed on stderr."""
    status = main(["build", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return status, captured.err


def published_text(out: Path) -> dict[str, str]:
    """Every file under `out` (the cache too) as text; PDFs through pdftotext."""
    texts = {}
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".pdf" and shutil.which("pdftotext"):
            done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
            data += b"\n" + done.stdout
        texts[str(path.relative_to(out))] = data.decode("utf-8", errors="replace")
    return texts


def assert_nowhere(out: Path, *canaries: str) -> None:
    for name, text in published_text(out).items():
        for canary in canaries:
            assert canary not in text, f"{canary!r} leaked into {name}"


def assert_good_built(out: Path, formats: str = FORMATS) -> None:
    names = {"md": ["good.md"], "json": ["good.json"], "html": ["good.html"], "tex": ["good.tex"],
             "pdf": ["good.pdf"]}
    for fmt in formats.split(","):
        for name in names[fmt]:
            assert (out / name).is_file(), f"{name} was not built"


# --- 1. templates run in a sandbox -------------------------------------------------------------

PAYLOADS = [
    '{{ cycler.__init__.__globals__.os.popen("touch CANARY").read() }}',
    '{{ lipsum.__globals__["os"].popen("touch CANARY").read() }}',
    '{{ joiner.__init__.__globals__.os.system("touch CANARY") }}',
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    '{{ "{0.__class__.__init__.__globals__}".format(doc) }}',
    "{{ self._TemplateReference__context }}",
    "{{ doc.update({'ok': False}) }}",
    "{{ doc.results.append(1) }}",
    '{{ "x" * 100000000 }}',
    "{{ 10 ** 100000000 }}",
    "{{ (10 ** 1000) ** 1000 }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_template_cannot_escape_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               payload: str) -> None:
    monkeypatch.chdir(tmp_path)
    user = tmp_path / "tpl"
    (user / "md").mkdir(parents=True)
    (user / "md" / "problem.md.j2").write_text(f"line one\n{payload.replace('CANARY', str(tmp_path / 'CANARY'))}\n",
                                               encoding="utf-8")
    doc = problem_document(_write(tmp_path / "p.yaml", GOOD))
    with pytest.raises(RenderError) as caught:
        render_problem_md(doc, user_dir="tpl")
    assert not (tmp_path / "CANARY").exists()
    assert caught.value.location is not None
    assert (caught.value.location.file, caught.value.location.line) == (str(Path("tpl/md/problem.md.j2")), 2)
    assert "Traceback" not in caught.value.render()


def test_a_template_that_loops_for_ever_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import derivgen.render

    monkeypatch.setattr(derivgen.render, "RENDER_SECONDS", 1.0)
    user = tmp_path / "tpl"
    (user / "md").mkdir(parents=True)
    (user / "md" / "problem.md.j2").write_text(
        "one\n{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\n", encoding="utf-8")
    doc = problem_document(_write(tmp_path / "p.yaml", GOOD))
    with pytest.raises(RenderError, match="took longer than 1 s") as caught:
        render_problem_md(doc, user_dir=user)
    assert caught.value.location.line == 2
    with pytest.raises(RenderError, match="lipsum"):  # no megabytes of lorem ipsum either
        (user / "md" / "problem.md.j2").write_text("{{ lipsum(10000000) }}\n", encoding="utf-8")
        os.utime(user / "md" / "problem.md.j2", (1, 1))  # a new mtime: Jinja reloads it
        render_problem_md(doc, user_dir=user)
    assert render_problem_md(doc) == render_problem_md(doc)  # and the timer is gone afterwards


def test_a_template_that_loops_for_ever_is_stopped_outside_the_main_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host application (a Sphinx or MkDocs build, a server) may render in a thread of its own."""
    import threading

    import derivgen.render

    monkeypatch.setattr(derivgen.render, "RENDER_SECONDS", 1.0)
    user = tmp_path / "tpl"
    (user / "md").mkdir(parents=True)
    (user / "md" / "problem.md.j2").write_text(
        "{% macro m(n) %}{% for i in range(100000) %}{{ m(n + 1) if n < 3 else '' }}{% endfor %}{% endmacro %}\n"
        "{{ m(0) }}\n", encoding="utf-8")
    doc = problem_document(_write(tmp_path / "p.yaml", GOOD))
    outcome: list = []

    def render() -> None:
        try:
            render_problem_md(doc, user_dir=user)
            outcome.append("rendered")
        except RenderError as err:
            outcome.append(err)

    thread = threading.Thread(target=render)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the rendering ran past its limit in a thread"
    assert isinstance(outcome[0], RenderError) and "took longer than 1 s" in str(outcome[0])


def test_the_command_in_a_set_template_never_runs(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / "CANARY"
    directory = make_set(tmp_path, "templates: tpl\n")
    (directory / "tpl" / "md").mkdir(parents=True)
    (directory / "tpl" / "md" / "problem.md.j2").write_text(
        '{% extends "default/md/problem.md.j2" %}\n'
        f'{{% block header %}}{{{{ cycler.__init__.__globals__.os.popen("id > {canary}").read() }}}}{{% endblock %}}\n',
        encoding="utf-8")
    status, err = build(capsys, "set", "-o", "out", "--format", FORMATS)
    assert status == 1
    assert not canary.exists()
    assert "set/tpl/md/problem.md.j2:2: the template tried what templates may not do" in err
    assert "sandboxed" in err
    assert str(tmp_path) not in err  # named as given, not by the build machine's absolute path
    out = tmp_path / "out"
    assert_good_built(out, "json,html,tex")  # the formats that do not use the broken template
    assert not (out / "good.md").exists()


def test_default_templates_render_in_the_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert isinstance(environment(), TemplateSandbox)
    assert isinstance(environment(tmp_path), TemplateSandbox)
    status, _ = build(capsys, str(make_set(tmp_path)), "-o", str(tmp_path / "out"), "--format", FORMATS)
    assert status == 0
    assert_good_built(tmp_path / "out")


# --- 2. template directories stay inside the set -------------------------------------------------


@pytest.mark.parametrize("written", ["../outside", "../../outside/../outside", "/", "ABSOLUTE", "link"])
def test_templates_outside_the_set_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch, written: str) -> None:
    monkeypatch.chdir(tmp_path)
    outside = tmp_path / "outside" / "md"
    outside.mkdir(parents=True)
    (outside / "problem.md.j2").write_text("OUTSIDE-TEMPLATE-CANARY\n", encoding="utf-8")
    written = str(tmp_path / "outside") if written == "ABSOLUTE" else written
    directory = make_set(tmp_path, f"title: T\ntemplates: {written}\n")
    (directory / "link").symlink_to(tmp_path / "outside")
    status, err = build(capsys, "set", "-o", "out")
    assert status == 2
    assert "set/derivgen.yaml:2:12: templates directory" in err and "is outside the set directory" in err
    assert "\n               ^\n" in err  # the caret under the value
    assert "--templates DIR" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.md"))


def test_templates_inside_the_set_and_on_the_command_line_are_used(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    directory = make_set(tmp_path, f"templates: {tmp_path / 'set' / 'tpl'}\n")  # absolute, but inside
    (directory / "tpl" / "md").mkdir(parents=True)
    (directory / "tpl" / "md" / "problem.md.j2").write_text("INSIDE {{ doc.id }}\n", encoding="utf-8")
    assert build(capsys, "set", "-o", "out", "--format", "md")[0] == 0
    assert (tmp_path / "out" / "good.md").read_text(encoding="utf-8") == "INSIDE good\n"

    elsewhere = tmp_path / "instructor" / "md"
    elsewhere.mkdir(parents=True)
    (elsewhere / "problem.md.j2").write_text("INSTRUCTOR {{ doc.id }}\n", encoding="utf-8")
    assert build(capsys, "set", "-o", "out2", "--format", "md", "--templates", str(elsewhere.parent))[0] == 0
    assert (tmp_path / "out2" / "good.md").read_text(encoding="utf-8") == "INSTRUCTOR good\n"


def test_a_template_symlinked_out_of_its_folder_is_not_read(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text("TEMPLATE-FILE-CANARY {{ doc.id }}\n", encoding="utf-8")
    directory = make_set(tmp_path, "templates: tpl\n")
    for fmt in ("md", "html", "tex"):
        (directory / "tpl" / fmt).mkdir(parents=True)
    (directory / "tpl" / "md" / "problem.md.j2").symlink_to(tmp_path / "secret.txt")
    (directory / "tpl" / "html" / "problem.html.j2").symlink_to("/proc/self/environ")
    (directory / "tpl" / "tex" / "macros.j2").symlink_to("../../../secret.txt")
    status, err = build(capsys, "set", "-o", "out", "--format", FORMATS)
    assert status == 1
    assert "set/tpl/md/problem.md.j2: template md/problem.md.j2 is a symbolic link to a file outside" in err
    assert "set/tpl/html/problem.html.j2: template html/problem.html.j2 is a symbolic link" in err
    assert "TEMPLATE-FILE-CANARY" not in err and secret not in err
    assert (tmp_path / "out" / "good.json").is_file()
    assert_nowhere(tmp_path / "out", "TEMPLATE-FILE-CANARY", secret, "PATH=")


def test_a_template_symlinked_inside_its_folder_is_followed(tmp_path: Path) -> None:
    user = tmp_path / "tpl"
    (user / "md").mkdir(parents=True)
    (user / "mine.j2").write_text("MINE {{ doc.id }}\n", encoding="utf-8")
    (user / "md" / "problem.md.j2").symlink_to("../mine.j2")
    doc = problem_document(_write(tmp_path / "p.yaml", GOOD))
    assert render_problem_md(doc, user_dir=user) == "MINE p\n"


def test_the_root_as_templates_on_the_command_line_builds(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`--templates /` is the instructor's choice: allowed, fingerprinted in bounded time, no OSError."""
    monkeypatch.chdir(tmp_path)
    make_set(tmp_path)
    status, err = build(capsys, "set", "-o", "out", "--format", "md,json", "--templates", "/")
    assert status == 0, err
    assert_good_built(tmp_path / "out", "md,json")


def test_templates_fingerprint_reads_nothing_outside_and_never_raises(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("first", encoding="utf-8")
    user = tmp_path / "tpl"
    (user / "md").mkdir(parents=True)
    (user / "md" / "problem.md.j2").write_text("A\n", encoding="utf-8")
    (user / "leak.j2").symlink_to(outside)
    (user / "environ.j2").symlink_to("/proc/self/environ")
    (user / "root").symlink_to("/")  # not walked
    (user / "dangling.j2").symlink_to(tmp_path / "missing")
    (user / "loop").symlink_to(user / "loop")
    before = templates_fingerprint(str(user))
    outside.write_text("second", encoding="utf-8")  # read, it would change the fingerprint
    assert templates_fingerprint(str(user)) == before
    (user / "md" / "problem.md.j2").write_text("B\n", encoding="utf-8")
    assert templates_fingerprint(str(user)) != before  # what is inside still counts
    # /proc: files that say they are empty, vanishing folders, unreadable entries; no OSError
    assert templates_fingerprint("/proc/self")
    assert templates_fingerprint(str(tmp_path / "missing")) == templates_fingerprint(str(tmp_path / "missing"))


# --- 3. symlinks in the problem set ---------------------------------------------------------------


def test_problem_symlinks_out_of_the_set_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets.yaml").write_text("token: SECRETS-FILE-CANARY\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.yaml").write_text(GOOD.replace("title:", "title: ELSEWHERE-CANARY"),
                                                     encoding="utf-8")
    directory = make_set(tmp_path, "order: [leak_secrets, good]\n")
    (directory / "leak_passwd.yaml").symlink_to("/etc/passwd")
    (directory / "leak_environ.yaml").symlink_to("/proc/self/environ")
    (directory / "leak_secrets.yaml").symlink_to("../secrets.yaml")
    (directory / "leak_valid.yaml").symlink_to(tmp_path / "elsewhere" / "x.yaml")  # valid, but not the set's
    (directory / "leak_zero.yaml").symlink_to("/dev/zero")  # reading it would never end
    (directory / "copy.yaml").symlink_to("good.yaml")  # inside the set: followed
    formats = FORMATS + (",pdf" if _tex_ready() else "")
    status, err = build(capsys, "set", "-o", "out", "--format", formats)
    assert status == 1
    for name in ("leak_passwd", "leak_environ", "leak_secrets", "leak_valid", "leak_zero"):
        assert f"set/{name}.yaml: the problem file is a symbolic link that leads out of its set directory" in err
    out = tmp_path / "out"
    assert_good_built(out, formats)
    assert (out / "copy.json").is_file()
    assert not list(out.glob("leak*"))
    environ = Path("/proc/self/environ").read_bytes().decode("utf-8", "replace").split("\0")
    canaries = ["SECRETS-FILE-CANARY", "ELSEWHERE-CANARY", "root:x:0:0", secret,
                *(entry for entry in environ if len(entry) > 12)]
    assert_nowhere(out, *canaries)
    for canary in canaries:
        assert canary not in err


def test_a_problem_named_on_the_command_line_that_links_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets.yaml").write_text("token: SECRETS-FILE-CANARY\n", encoding="utf-8")
    directory = make_set(tmp_path)
    (directory / "leak.yaml").symlink_to("../secrets.yaml")
    status, err = build(capsys, "set/good.yaml", "set/leak.yaml", "-o", "out", "--format", "md,json")  # set/*.yaml
    assert status == 1
    assert "set/leak.yaml: the problem file is a symbolic link" in err
    assert_good_built(tmp_path / "out", "md,json")
    assert_nowhere(tmp_path / "out", "SECRETS-FILE-CANARY")
    refused: list = []
    assert find_problems([directory], refused) == (find_problems([directory / "good.yaml"])[0],
                                                   [directory / "good.yaml"])
    assert [type(e) for e in refused] == [ProblemError]
    with pytest.raises(ProblemError, match="symbolic link"):
        find_problems([directory])


def test_a_set_file_that_links_out_is_not_read(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets.yaml").write_text("token: SECRETS-FILE-CANARY\n", encoding="utf-8")
    directory = make_set(tmp_path)
    (directory / "derivgen.yaml").symlink_to("../secrets.yaml")
    status, err = build(capsys, "set", "-o", "out")
    assert status == 2
    assert "set/derivgen.yaml: the set file is a symbolic link that leads out of its set directory" in err
    assert "SECRETS-FILE-CANARY" not in err


def test_the_environment_of_the_build_never_leaks(tmp_path: Path) -> None:
    """/proc/self/environ holds the environment a process started with: start one with the canary."""
    directory = make_set(tmp_path)
    (directory / "leak.yaml").symlink_to("/proc/self/environ")
    env = {**os.environ, SECRET: "canary-env-in-a-fresh-process-51b7"}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from derivgen.cli import main; sys.exit(main(sys.argv[1:]))",
         "build", str(directory), "-o", str(tmp_path / "out"), "--format", FORMATS],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "leak.yaml: the problem file is a symbolic link" in done.stderr
    assert "canary-env-in-a-fresh-process-51b7" not in done.stderr + done.stdout
    assert_nowhere(tmp_path / "out", "canary-env-in-a-fresh-process-51b7")
    assert_good_built(tmp_path / "out")


# --- 4. errors quote a short excerpt of the problem file, and nothing else ---------------------


def test_an_error_quotes_a_short_excerpt_of_the_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    directory = make_set(tmp_path)
    long_line = "function: tr(A * Y)   # " + "x" * 5000 + " LONG-LINE-CANARY"
    (directory / "long.yaml").write_text(f"variables:\n  A: [n, n]\n  X: [n, n]\n{long_line}\nwrt: [X]\n",
                                         encoding="utf-8")
    status, err = build(capsys, "set", "-o", "out", "--format", FORMATS, "--placeholders")
    assert status == 1
    assert "LONG-LINE-CANARY" not in err
    quoted = [line for line in err.splitlines() if line.startswith("    ") and "tr(A * Y)" in line]
    assert quoted and all(len(line) <= EXCERPT_WIDTH + 4 for line in quoted)
    assert quoted[0].rstrip().endswith("…")
    assert_nowhere(tmp_path / "out", "LONG-LINE-CANARY")
    for name, text in published_text(tmp_path / "out").items():  # the private cache may know where it is
        assert name.startswith(".derivgen-cache") or str(tmp_path) not in text, name
    assert_good_built(tmp_path / "out")


@pytest.mark.parametrize("content", [
    b"\xff\xfe title: BINARY-CANARY\n",  # not UTF-8
    b"title: x\x00 BINARY-CANARY\n",  # a control character
    b"function: tr(X)\x1b]0;BINARY-CANARY\x07\nwrt: [X]\n",  # a terminal escape
    b"title: ok\nfunction: \xe9BINARY-CANARY\n",  # Latin-1
])
def test_a_binary_file_is_reported_without_quoting_it(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    directory = make_set(tmp_path)
    (directory / "bin.yaml").write_bytes(content)
    status, err = build(capsys, "set", "-o", "out", "--format", FORMATS, "--placeholders")
    assert status == 1
    assert "set/bin.yaml:" in err
    assert "BINARY-CANARY" not in err and "\x1b" not in err and "\x00" not in err
    assert_nowhere(tmp_path / "out", "BINARY-CANARY")
    assert_good_built(tmp_path / "out")


def test_rendered_errors_are_short_and_printable() -> None:
    err = ProblemError("unknown key '\x1b[2J" + "k" * 1000 + "'",
                       Location("p.yaml", 1, 2992, "a" * 2990 + "\tERR" + "b" * 3000), "hint\x07")
    text = err.render()
    assert "\x1b" not in text and "\x07" not in text
    head, quoted, caret, hint = text.split("\n")
    assert len(head) < 450 and head.endswith("…")
    assert len(quoted) <= EXCERPT_WIDTH + 4 and quoted.startswith("    …") and quoted.endswith("…")
    assert quoted[caret.index("^"):].startswith("ERRbbb")  # the caret under column 2992, the E
    assert caret.strip() == "^"


def test_template_errors_name_the_template_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tpl" / "md").mkdir(parents=True)
    (tmp_path / "tpl" / "md" / "problem.md.j2").write_text("one\n{% if %}\n", encoding="utf-8")
    doc = problem_document(_write(tmp_path / "p.yaml", GOOD))
    with pytest.raises(RenderError) as caught:
        render_problem_md(doc, user_dir="tpl")
    assert caught.value.location.file == str(Path("tpl/md/problem.md.j2"))
    assert str(tmp_path) not in caught.value.render()


# --- 5. Markdown that cannot carry script ----------------------------------------------------------

XSS_STATEMENT = r"""
Hello <script>alert(1)</script> and <img src=x onerror=alert(2)> and <svg/onload=alert(3)>.
A [js](javascript:alert(4)), [data](data:text/html,<script>alert(5)</script>), <a href="javascript:alert(6)">a</a>,
an autolink <javascript:alert(7)>, [entity](&#106;avascript:alert(8)), [tab](java&#9;script:alert(9)),
[angle](<javascript:alert(10)>), [upper](JAVASCRIPT:alert(11)), ![img](javascript:alert(12)),
[png](data:image/png;base64,AAAA), $[x](javascript:alert(13))$, $a <b onmouseover=alert(14)> c$,
\<img src=x onerror=alert(15)>, <!-- comment --> and [ref][r].

[r]: javascript:alert(16)

Safe: [site](https://example.com/a_(b)), [mail](mailto:t@example.com), [rel](other.html#x),
math $a < b$, $x<y$ and $$\sum_i x_i < 1$$.
"""


def _xss_problem() -> str:
    indented = textwrap.indent(XSS_STATEMENT.strip("\n"), "  ")
    return GOOD.replace("statement: |", "statement: |\n" + indented + "\n", 1) if "statement: |" in GOOD else (
        "statement: |\n" + indented + "\n" + GOOD)


def _live(html: str) -> list[str]:
    """Script-carrying HTML in `html`: script tags, event handlers, javascript:/data: targets.
    derivgen's own two scripts (KaTeX and derivgen-math.js from the assets folder, which typeset
    a set page's folded derivations in the browser) are not counted."""
    html = re.sub(r'<script src="derivgen-assets/(?:katex/katex\.min|derivgen-math)\.js" defer></script>', "", html)
    return re.findall(r"<script|<[a-z][^>]*\son\w+\s*=|(?:href|src)\s*=\s*[\"']?\s*(?:javascript|data|vbscript):"
                      r"|<[a-z][^>]*alert\(", html, re.I)


def test_markdown_outputs_carry_no_script(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    directory = make_set(tmp_path)
    (directory / "xss.yaml").write_text(_xss_problem(), encoding="utf-8")
    status, err = build(capsys, "set", "-o", "out", "--format", FORMATS)
    assert status == 0, err
    out = tmp_path / "out"
    site = MarkdownIt("commonmark", {"html": True})  # as a site built from the Markdown would render it
    site.validateLink = lambda url: True  # even one that checks no link
    for name in ("xss.md", "solutions.md", "sheet.md"):
        text = (out / name).read_text(encoding="utf-8")
        assert _live(site.render(text)) == [], name
        assert "$a < b$" in text and "$$\\sum_i x_i < 1$$" in text  # math as written
        assert "[site](https://example.com/a_(b))" in text and "[mail](mailto:t@example.com)" in text
        rendered = site.render(text)
        assert 'href="https://example.com/a_(b)"' in rendered and 'href="other.html#x"' in rendered
    for name in ("xss.html", "xss.fragment.html", "solutions.html", "sheet.html"):
        html = (out / name).read_text(encoding="utf-8")
        assert _live(html) == [], name
        assert 'href="https://example.com/a_(b)"' in html
    for name in ("xss.tex", "solutions.tex"):
        tex = (out / name).read_text(encoding="utf-8")
        assert "javascript:alert" not in tex.replace(" ", "") or "\\href" not in tex


@pytest.mark.parametrize(("url", "safe"), [
    ("https://example.com", True), ("http://x", True), ("mailto:a@b.c", True), ("other.html", True),
    ("#anchor", True), ("?q=a:b", True), ("a/b:c", True), ("//host/x", True),
    ("javascript:alert(1)", False), ("JavaScript:alert(1)", False), (" javascript:x", False),
    ("java\tscript:x", False), ("&#106;avascript:x", False), ("javascript&colon;x", False),
    ("data:text/html,x", False), ("data:image/png;base64,AAAA", False), ("vbscript:x", False),
    ("file:///etc/passwd", False), ("x-unknown:y", False),
])
def test_safe_link(url: str, safe: bool) -> None:
    assert safe_link(url) is safe


def test_html_statements_drop_unsafe_links() -> None:
    html = markdown_filter("[a](javascript:alert(1)) [b](data:image/png;base64,AAAA) <javascript:alert(2)> "
                           "[c](https://x.example) <script>x</script> [d](vbscript:x)")
    assert _live(html) == []
    assert html.count("<a ") == 1 and 'href="https://x.example"' in html
    assert "&lt;script&gt;" in html


def test_md_statement_keeps_ordinary_markdown() -> None:
    text = "Compute $\\frac{\\partial f}{\\partial X}$ for *all* $X$, see [notes](https://n.example) and `code`."
    assert md_statement(text) == text
    assert md_statement("$a<b$ and a<b") == "$a\\lt b$ and a&lt;b"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path

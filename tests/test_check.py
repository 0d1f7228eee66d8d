"""The authoring loop: `derivgen check`, `show --wrt`, `show DIR`, and the problem-file JSON Schema.

- `check DIR` derives and verifies every problem and writes nothing anywhere (the folder tree
  and the current folder are compared before and after); exit status 0, or 1 with each error
  in exactly the lines `build` prints for it; 2 for a path that does not exist.
- `show FILE --wrt NAME` derives with respect to NAME instead of the file's `wrt:`.
- `show DIR` prints every problem of the set, and the failures.
- The schema shipped in the package accepts every example problem and refuses what derivgen
  refuses by key (an unknown key, a bad assumption, a 3-d shape); `derivgen init` copies it
  next to the example and names it in a `yaml-language-server` comment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from derivgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
DATA = ROOT / "tests" / "data" / "cli"
SCHEMA = ROOT / "derivgen" / "schema" / "problem.schema.json"


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def make_set(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    root.mkdir()
    for name in ("least_squares.yaml", "quadratic.yaml"):
        (root / name).write_text((DATA / "good" / name).read_text())
    (root / "zz_bad.yaml").write_text((DATA / "bad" / "unknown_key.yaml").read_text())
    return root


def test_check_the_example_set_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before, here = tree(PROBLEMS), tree(tmp_path)
    status, out, err = run(capsys, "check", PROBLEMS)
    assert status == 0, err
    n = len([p for p in PROBLEMS.glob("*.yaml") if p.name != "derivgen.yaml"])
    assert f"checked {n} problems: {n} derived and verified" in out and "nothing written" in out
    assert err == ""
    assert tree(PROBLEMS) == before and tree(tmp_path) == here


def test_check_reports_like_build_and_fails(tmp_path, capsys, monkeypatch):
    root = make_set(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    status, out, err = run(capsys, "check", root)
    assert status == 1
    assert tree(tmp_path) == before  # no out/, no cache, nothing
    assert "1 failed (zz_bad)" in out and "2 derived and verified" in out
    status_b, _, err_b = run(capsys, "build", root, "-o", tmp_path / "out", "--format", "json")
    assert status_b == 1
    assert err.strip() and err.strip() in err_b  # the same error lines, word for word
    assert f"error: cannot build {root / 'zz_bad.yaml'}:" in err
    status, _, _ = run(capsys, "check", "-q", root / "least_squares.yaml", root / "quadratic.yaml")
    assert status == 0


def test_check_usage_errors(tmp_path, capsys):
    status, _, err = run(capsys, "check", tmp_path / "nothing")
    assert status == 2 and "no such file or directory" in err
    status, _, err = run(capsys, "check", PROBLEMS, "--format", "docx")
    assert status == 2 and "unknown format 'docx'" in err


def test_check_with_html_refuses_statement_math_a_build_would_refuse(tmp_path, capsys):
    root = tmp_path / "set"
    root.mkdir()
    text = (DATA / "good" / "quadratic.yaml").read_text()
    (root / "p.yaml").write_text('statement: "Let $\\\\input{/etc/passwd}$ be given."\n' + text)
    status_md, _, _ = run(capsys, "check", root, "--format", "md")
    status_html, _, err = run(capsys, "check", root, "--format", "html")
    assert status_md == 0
    assert status_html == 1 and f"error: cannot build {root / 'p.yaml'}:1:" in err and "\\input" in err


def test_show_wrt_is_honoured(capsys):
    path = DATA / "good" / "least_squares.yaml"
    status, out, _ = run(capsys, "show", path)
    assert status == 0 and "∂f/∂x" in out
    status, out, err = run(capsys, "show", path, "--wrt", "A")
    assert status == 0, err
    assert "∂f/∂A" in out and "∂f/∂x" not in out and "result: ∂f/∂A = " in out
    status, out, err = run(capsys, "show", path, "--wrt", "A", "--wrt", "x")
    assert status == 0 and out.index("∂f/∂A") < out.index("∂f/∂x")
    status, _, err = run(capsys, "show", path, "--wrt", "Q")
    assert status == 1 and "'Q' is not a variable of this problem" in err and "hint:" in err


def test_show_a_directory_prints_every_problem(tmp_path, capsys):
    root = make_set(tmp_path)
    status, out, err = run(capsys, "show", root)
    assert status == 1
    assert "== least_squares" in out and "== quadratic" in out and "== zz_bad" in out
    assert out.count("verified at") >= 2
    assert "zz_bad.yaml" in err and "2 of 3 problems derived and verified; failed: zz_bad" in out
    (root / "zz_bad.yaml").unlink()
    status, out, _ = run(capsys, "show", root)
    assert status == 0
    status, _, err = run(capsys, "show", root, "--wrt", "x")
    assert status == 2 and "--wrt applies to one problem file" in err


# ----------------------------------------------------------------------------- the schema


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema") if not os.environ.get("CI") else __import__("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _yaml(path: Path):
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_example_problem_follows_the_schema(validator):
    files = [p for p in sorted(PROBLEMS.glob("*.yaml")) if p.name != "derivgen.yaml"]
    files += sorted((DATA / "good").glob("*.yaml"))
    assert len(files) > 40
    for path in files:
        errors = [e.message for e in validator.iter_errors(_yaml(path))]
        assert errors == [], f"{path.name}: {errors}"


@pytest.mark.parametrize("text, word", [
    ("function: x\nwrt: [x]\nvariables: {x: [n]}\nfuntion: y\n", "funtion"),
    ("function: x\nwrt: [x]\nvariables: {x: [n]}\nassume: {x: [symetric]}\n", "symetric"),
    ("function: x\nwrt: [x]\nvariables: {x: [n, n, n]}\n", "too long"),
    ("function: x\nvariables: {x: [n]}\n", "'wrt' is a required property"),
    ("function: x\nwrt: [x]\nvariables: {x: [0]}\n", "valid under"),
    ("function: x\nwrt: [x]\norder: 3\nvariables: {x: [n]}\n", "3 is not one of"),
])
def test_the_schema_refuses_what_derivgen_refuses_by_key(validator, text, word):
    import yaml

    messages = " ".join(e.message for e in validator.iter_errors(yaml.safe_load(text)))
    assert word in messages


def test_init_names_the_schema(tmp_path, capsys, validator):
    status, out, _ = run(capsys, "init", tmp_path / "course")
    assert status == 0
    example = tmp_path / "course" / "least_squares.yaml"
    first = example.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./problem.schema.json"
    copied = tmp_path / "course" / "problem.schema.json"
    assert copied.read_bytes() == SCHEMA.read_bytes()
    assert list(validator.iter_errors(_yaml(example))) == []
    status, _, err = run(capsys, "check", tmp_path / "course")
    assert status == 0, err


# ----------------------------------------------------------------------------- watch


def test_watch_rebuilds_on_change_and_not_on_its_own_outputs(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    assert main(["init", str(tmp_path / "course")]) == 0
    out = tmp_path / "course" / "out"  # inside the watched folder, as `derivgen init` suggests
    proc = subprocess.Popen([sys.executable, "-u", "-m", "derivgen", "watch", "course", "-o", str(out), "--format", "md"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    lines: list[str] = []

    # A thread reads the lines: select() on the pipe with a buffered readline() misses a line
    # that arrived in the same chunk as the one before it (it sits in Python's buffer, and the
    # pipe never becomes readable again).
    import threading

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_until(done, seconds: float = 60) -> None:
        end = time.monotonic() + seconds
        while not done("".join(lines)):
            assert time.monotonic() < end, f"waited in vain; watch printed {lines}"
            assert reader.is_alive() or done("".join(lines)), f"watch ended: {lines}"
            time.sleep(0.1)

    try:
        wait_until(lambda text: "watching" in text)
        assert "built 1 problem" in "".join(lines)
        time.sleep(0.5)
        problem = tmp_path / "course" / "least_squares.yaml"
        problem.write_text(problem.read_text().replace("title: Least squares", "title: Least squares, edited"))
        wait_until(lambda text: "changed: course/least_squares.yaml" in text and text.count("files written") == 2)
        assert (out / "least_squares.md").read_text().startswith("# Least squares, edited")
        time.sleep(2)  # its own writes into out/ start no rebuild
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        proc.stdout.close()
    assert proc.returncode == 0
    text = "".join(lines)
    assert text.count("changed:") == 1 and "stopped watching" in text and "Traceback" not in text

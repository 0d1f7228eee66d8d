"""Issue 11, items 6 and 7: a cache that is only a cache, outputs that are never lost or stale.

Each test plays an attack or an accident on a real build (`cli.main` in-process, or two
processes at once) and checks the files that come out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from derivgen.build import CACHE_DIR
from derivgen.cli import main

QUADRATIC = "variables: {x: [n], A: [n, n]}\nfunction: x'*A*x\nwrt: [x]\n"
TRACE = "variables: {X: [m, n], A: [n, m]}\nfunction: tr(A*X)\nwrt: [X]\n"


@pytest.fixture(autouse=True)
def _own_cache_key(tmp_path, monkeypatch):
    """Each test signs its cache with a key of its own (as one machine does)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))


def _set(tmp_path: Path, **problems: str) -> Path:
    d = tmp_path / "set"
    d.mkdir(exist_ok=True)
    for name, text in (problems or {"a": QUADRATIC, "b": TRACE}).items():
        (d / f"{name}.yaml").write_text(text, encoding="utf-8")
    return d


def _build(capsys, *argv) -> tuple[int, str, str]:
    status = main(["build", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def _docs(out: Path) -> list[Path]:
    return sorted((out / CACHE_DIR / "docs").glob("*.json"))


def _visible(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if not p.name.startswith(".")}


# ----------------------------------------------------------------------------- the cache


def test_a_cached_document_edited_by_hand_is_not_published(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out)[0] == 0
    right = (out / "a.md").read_text(encoding="utf-8")
    for path in _docs(out):  # the attacker's edit: a wrong result, still claiming to be verified
        mac, _, payload = path.read_bytes().partition(b"\n")
        data = json.loads(payload)
        for result in data["doc"]["results"]:
            result["latex"] = result["text"] = "7 FORGED"
        path.write_bytes(mac + b"\n" + json.dumps(data).encode())
    (out / "a.md").unlink()  # make sure a.md is written again from the cache's document
    status, stdout, _ = _build(capsys, d, "-o", out)
    assert status == 0
    page = (out / "a.md").read_text(encoding="utf-8")
    assert "FORGED" not in page and page == right
    assert "all verified" in stdout  # both documents derived and verified again, none reused
    assert "reused" not in stdout


def test_a_cache_shipped_with_a_problem_set_is_not_trusted(tmp_path, capsys, monkeypatch):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out)[0] == 0
    # the contributor's machine signed these; ours has another key
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "another-machine"))
    status, stdout, _ = _build(capsys, d, "-o", out)
    assert status == 0 and "all verified" in stdout and "reused" not in stdout
    assert "0 files written" not in stdout  # the outputs' manifest was not trusted either


@pytest.mark.parametrize("content", [b"{}", b"[]", b'{"ok": false}', b"\xff\xfe garbage", b"",
                                     b'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' * 200])
def test_a_broken_cache_is_ignored_and_rebuilt(tmp_path, capsys, content):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out)[0] == 0
    for path in _docs(out):
        path.write_bytes(content)
    (out / CACHE_DIR / "manifest.json").write_bytes(content)
    for _ in range(2):  # and the build after that is fine too
        status, stdout, stderr = _build(capsys, d, "-o", out)
        assert status == 0, stderr
        assert "built 2 problems" in stdout
    assert "\\boxed{" in (out / "a.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("manifest", ['[1, 2]', '{"outputs": [1]}', '{"v": 2, "outputs": {"a.md": 5}}',
                                      '{"v": 2, "outputs": {"../../victim.txt": {"key": "k", "sha256": "s", "source": "/nope"}}}'])
def test_a_broken_manifest_is_ignored(tmp_path, capsys, manifest):
    d, out = _set(tmp_path), tmp_path / "out"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    assert _build(capsys, d, "-o", out)[0] == 0
    (out / CACHE_DIR / "manifest.json").write_text(manifest)
    status, stdout, stderr = _build(capsys, d, "-o", out)
    assert status == 0, stderr
    assert victim.read_text() == "keep me"


def test_summary_counts_what_was_verified_now_and_what_was_reused(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert "(2 results, all verified)" in _build(capsys, d, "-o", out)[1]
    (d / "a.yaml").write_text(QUADRATIC.replace("x'*A*x", "3*x'*A*x"))
    stdout = _build(capsys, d, "-o", out)[1]
    assert "(2 results: 1 verified in this build, 1 reused from the cache)" in stdout


def test_an_output_edited_by_hand_is_rewritten(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out)[0] == 0
    right = (out / "b.md").read_text(encoding="utf-8")
    (out / "b.md").write_text("<script>alert(1)</script>", encoding="utf-8")
    status, stdout, _ = _build(capsys, d, "-o", out)
    assert status == 0 and "1 files written" in stdout
    assert (out / "b.md").read_text(encoding="utf-8") == right


# ----------------------------------------------------------------------------- output names


@pytest.mark.parametrize("name, clash", [("solutions", "solutions."), ("sheet", "sheet."),
                                         ("Solutions", "Solutions."), ("a.fragment", "a.fragment.")])
def test_a_problem_whose_outputs_would_overwrite_others_is_refused(tmp_path, capsys, name, clash):
    d, out = _set(tmp_path), tmp_path / "out"
    (d / f"{name}.yaml").write_text(TRACE.replace("tr(A*X)", "2*tr(A*X)"))
    status, stdout, stderr = _build(capsys, d, "-o", out, "--format", "md,json,html")
    assert status == 1
    assert f"error: cannot build {d / f'{name}.yaml'}" in stderr
    assert clash in stderr and "rename the problem file" in stderr
    assert "built 2 problems" in stdout and "1 failed" in stdout
    solutions = (out / "solutions.md").read_text(encoding="utf-8")
    assert solutions.count("\\boxed{") == 2 and "2 \\operatorname{tr}" not in solutions
    assert not (out / f"{name}.json").exists()


def test_outputs_of_a_deleted_problem_are_removed_and_reported(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out, "--format", "md,json,html")[0] == 0
    assert {"b.md", "b.json", "b.html", "b.fragment.html"} <= _visible(out)
    (d / "b.yaml").unlink()
    status, stdout, _ = _build(capsys, d, "-o", out, "--format", "md")  # fewer formats: b's html goes too
    assert status == 0
    assert not {"b.md", "b.json", "b.html", "b.fragment.html"} & _visible(out)
    assert {"a.md", "a.json", "a.html"} <= _visible(out)  # a's other formats are not stale
    assert "4 stale removed" in stdout and "b.md" in stdout
    assert "\\boxed{" in (out / "solutions.md").read_text() and (out / "solutions.md").read_text().count("\\boxed{") == 1


def test_a_stale_output_edited_by_hand_is_kept_and_reported(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out)[0] == 0
    (out / "b.md").write_text("my own notes", encoding="utf-8")
    (d / "b.yaml").unlink()
    stdout = _build(capsys, d, "-o", out)[1]
    assert (out / "b.md").read_text() == "my own notes"
    assert not (out / "b.json").exists()
    assert "1 stale kept because edited by hand (b.md)" in stdout


def test_outputs_of_a_problem_that_now_fails_are_removed(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out)[0] == 0
    (d / "b.yaml").write_text(TRACE.replace("tr(A*X)", "tr(A*X"))  # a syntax error
    status, stdout, stderr = _build(capsys, d, "-o", out)
    assert status == 1 and "1 failed (left out of every output)" in stdout
    assert not (out / "b.md").exists() and not (out / "b.json").exists()
    assert "tr(A*X" not in (out / "solutions.md").read_text()


def test_building_one_file_keeps_the_other_problems_outputs(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d, "-o", out)[0] == 0
    assert _build(capsys, d / "a.yaml", "-o", out)[0] == 0
    assert (out / "b.md").exists() and (out / "b.json").exists()


# ----------------------------------------------------------------------------- the output folder


def test_an_unwritable_output_folder_is_one_error_and_no_claim(tmp_path, capsys):
    d = _set(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    status, stdout, stderr = _build(capsys, d, "-o", blocker / "out")
    assert status == 1
    assert stderr.count("error:") == 1 and "cannot write into the output folder" in stderr
    assert "verified" not in stdout


def test_failed_writes_are_counted_in_the_summary(tmp_path, capsys, monkeypatch):
    d, out = _set(tmp_path), tmp_path / "out"
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst).suffix == ".md":
            raise OSError(13, "Permission denied", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    status, stdout, stderr = _build(capsys, d, "-o", out)
    assert status == 1
    assert "5 could not be written" in stdout  # a.md, b.md, solutions.md, sheet.md, answers.md
    assert stderr.count("Permission denied") == 5


def _lang_of(text: str) -> str:
    return "zh" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"


def test_two_builds_into_one_folder_are_serialised(tmp_path):
    d = _set(tmp_path, **{f"p{i}": QUADRATIC.replace("x'*A*x", f"{i + 2}*x'*A*x") for i in range(6)})
    out = tmp_path / "out"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "home-cache")}
    cmd = [sys.executable, "-c", "import sys; from derivgen.cli import main; sys.exit(main(sys.argv[1:]))"]
    procs = [subprocess.Popen([*cmd, "build", str(d), "-o", str(out), "--lang", lang], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for lang in ("en", "zh")]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    langs = {_lang_of((out / name).read_text(encoding="utf-8")) for name in _visible(out) if name.endswith(".md")}
    assert len(langs) == 1, f"a mix of languages: {langs}"
    # and the folder is consistent with its manifest: a rebuild in that language changes nothing
    (lang,) = langs
    again = subprocess.run([*cmd, "build", str(d), "-o", str(out), "--lang", lang], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 files written" in again.stdout, again.stdout + again.stderr


def test_the_reserved_names_are_the_names_the_formats_write():
    from derivgen.build import FORMAT_PROBLEM, FORMATS, RESERVED_OUTPUTS, Builder, problem_output_names

    builder = Builder(Path("unused"), list(FORMATS), "en", None)
    doc = {"id": "p", "source": None}
    assert sorted(problem_output_names("p")) == sorted(n for f in FORMATS for n, _ in FORMAT_PROBLEM[f](builder, doc))
    setdoc = {"problems": []}
    from derivgen.build import FORMAT_SET

    assert {n for f in FORMAT_SET for n, _ in FORMAT_SET[f](builder, setdoc)} <= set(RESERVED_OUTPUTS)


def test_no_output_holds_the_build_machines_path(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert _build(capsys, d.resolve(), "-o", out, "--format", "md,json,html,tex")[0] == 0
    private = str(tmp_path.resolve())
    for path in out.rglob("*"):
        if path.is_file() and CACHE_DIR not in path.parts:
            assert private not in path.read_text(encoding="utf-8", errors="replace"), path.name
    assert json.loads((out / "a.json").read_text())["source"] == "a.yaml"


def test_a_broken_set_template_is_reported_once(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    tpl = tmp_path / "tpl" / "md"
    tpl.mkdir(parents=True)
    (tpl / "problem.md.j2").write_text('{% extends "default/md/problem.md.j2" %}{% block header %}{{ doc.nope }}{% endblock %}')
    status, _, stderr = _build(capsys, d, "-o", out, "--templates", tmp_path / "tpl")
    assert status == 1
    # once for the problem pages (a.md, b.md) and once for the set's (solutions.md, sheet.md)
    assert stderr.count("error: ") == 2, stderr
    assert "cannot render md/problem.md.j2" in stderr and "cannot render md/set.md.j2" in stderr

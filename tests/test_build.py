"""The build cache: an unchanged problem is neither derived nor rewritten; a change is."""

from __future__ import annotations

from pathlib import Path

from derivgen.build import Builder
from derivgen.cli import main, set_document
from derivgen.problem import SetConfig


def _set(tmp_path: Path) -> Path:
    d = tmp_path / "set"
    d.mkdir()
    (d / "a.yaml").write_text("variables: {x: [n]}\nfunction: x'*x\nwrt: [x]\n")
    (d / "b.yaml").write_text("variables: {X: [m, n], A: [n, m]}\nfunction: tr(A*X)\nwrt: [X]\n")
    return d


def _build(d: Path, out: Path, templates=None):
    builder = Builder(out, ["md", "json"], "en", templates)
    return builder.run(sorted(d.glob("*.yaml")), lambda docs: set_document(SetConfig(), docs, "en"))


def test_no_change_rebuild_derives_and_writes_nothing(tmp_path):
    d, out = _set(tmp_path), tmp_path / "out"
    first = _build(d, out)
    assert first.derived == 2 and len(first.written) == 7  # 2 × (md, json) + solutions, sheet, answers .md
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    second = _build(d, out)
    assert second.derived == 0 and second.cached == 2
    assert second.written == [] and len(second.unchanged) == 7
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == mtimes


def test_changed_problem_is_derived_again_and_only_its_outputs_rewritten(tmp_path):
    d, out = _set(tmp_path), tmp_path / "out"
    _build(d, out)
    (d / "a.yaml").write_text("variables: {x: [n]}\nfunction: 3*x'*x\nwrt: [x]\n")
    again = _build(d, out)
    assert again.derived == 1 and again.cached == 1
    assert set(again.written) == {"a.md", "a.json", "solutions.md", "sheet.md", "answers.md"}
    assert "6 x" in (out / "a.md").read_text()


def test_documents_no_build_uses_are_pruned_after_a_week(tmp_path):
    """The cache does not grow with every edit: an entry no build used for a week is removed;
    an entry the build uses is kept however old it is (using it marks it)."""
    import os
    import time

    from derivgen.build import PRUNE_AGE

    d, out = _set(tmp_path), tmp_path / "out"
    _build(d, out)
    docs = out / ".derivgen-cache" / "docs"
    first = set(docs.iterdir())
    assert len(first) == 2
    (d / "a.yaml").write_text("variables: {x: [n]}\nfunction: 3*x'*x\nwrt: [x]\n")
    _build(d, out)
    assert len(set(docs.iterdir())) == 3  # the old a is still young: kept
    old = time.time() - PRUNE_AGE - 3600
    for path in docs.iterdir():
        os.utime(path, (old, old))
    again = _build(d, out)
    assert again.derived == 0 and len(set(docs.iterdir())) == 2  # the old a gone; a and b reused, kept
    assert all(p.stat().st_mtime > old + 3600 for p in docs.iterdir())


def test_template_change_rerenders_and_missing_output_is_recreated(tmp_path):
    d, out = _set(tmp_path), tmp_path / "out"
    tpl = tmp_path / "tpl" / "md"
    tpl.mkdir(parents=True)
    (tpl / "problem.md.j2").write_text('{% extends "default/md/problem.md.j2" %}{% block rules %}RULES-A{% endblock %}')
    _build(d, out, str(tpl.parent))
    (tpl / "problem.md.j2").write_text('{% extends "default/md/problem.md.j2" %}{% block rules %}RULES-B{% endblock %}')
    again = _build(d, out, str(tpl.parent))
    assert again.derived == 0 and "a.md" in again.written and "a.json" not in again.written
    assert "RULES-B" in (out / "a.md").read_text()
    (out / "b.json").unlink()
    third = _build(d, out, str(tpl.parent))
    assert third.written == ["b.json"]


def test_cli_reports_unchanged_files(tmp_path, capsys):
    d, out = _set(tmp_path), tmp_path / "out"
    assert main(["build", str(d), "-o", str(out)]) == 0
    assert main(["build", str(d), "-o", str(out)]) == 0
    assert "0 files written, 7 unchanged" in capsys.readouterr().out


def test_init_creates_a_course_folder_that_builds(tmp_path, capsys):
    course = tmp_path / "course"
    assert main(["init", str(course)]) == 0
    assert (course / "derivgen.yaml").exists() and (course / "templates" / "md" / "problem.md.j2").exists()
    assert main(["build", str(course), "-o", str(tmp_path / "out")]) == 0
    assert "\\boxed" in (tmp_path / "out" / "least_squares.md").read_text()
    assert main(["init", str(course)]) == 1  # never overwrites
    assert "already exists" in capsys.readouterr().err

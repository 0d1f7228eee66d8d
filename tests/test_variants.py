"""`vary:` and `derivgen build --variants N | --students roster.csv`.

Variants must be checked where they are written, built complete and verified, deterministic for
the same seed (and student id), distinct while there are enough, and listed in a manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from derivgen.cli import main
from derivgen.errors import DerivgenError
from derivgen.problem import load_problem, load_problem_text
from derivgen.variants import (assign, build_variants, problem_variants, read_roster, student_choice)

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "tests" / "data" / "variants" / "set"
BASE = "variables:\n  X: [m, n]\n  A: [n, m]\nfunction: tr(A*X)\nwrt: [X]\n"


def _error(text: str) -> DerivgenError:
    with pytest.raises(DerivgenError) as info:
        load_problem_text(text, "p.yaml", "p")
    return info.value


# ----------------------------------------------------------------------------- checking vary:


def test_a_file_with_vary_builds_as_written():
    problem = load_problem(SET / "trace.yaml")
    assert problem.function.text == "tr(A*X*B)"


def test_an_unknown_key_under_vary_is_located_with_a_suggestion():
    err = _error(BASE + "vary:\n  functoin: [\"tr(A*X)\"]\n")
    assert (err.location.line, err.location.column) == (7, 3)
    assert "unknown key 'functoin' under vary" in err.message and "did you mean 'function'" in err.hint


def test_an_alternative_is_parsed_where_it_is_written():
    err = _error(BASE + "vary:\n  function: [\"tr(A*X)\", \"tr(A*Y)\"]\n")
    assert (err.location.line, err.location.column) == (7, 31)
    assert "unknown name 'Y'" in err.message
    assert "variant 2 of `vary:`" in err.hint


def test_a_shape_that_does_not_fit_is_located_in_the_variant():
    err = _error(BASE + "vary:\n  - {function: \"tr(A*X*C)\", variables.C: [m, k]}\n")
    assert err.location.line == 7 and "cannot multiply" in err.message


def test_combinations_of_independent_keys_are_checked():
    # each alternative is fine with the file's other values, but not with each other
    text = ("variables:\n  X: [n, n]\n  A: [n, n]\nfunction: tr(A*X)\nwrt: [X]\n"
            "vary:\n  function: [\"tr(A*X)\", \"tr(X*A*A)\"]\n  variables.A: [[n, n], [n, k]]\n")
    err = _error(text)
    assert "variant" in err.hint and "variables.A #2" in err.hint


@pytest.mark.parametrize("vary, message", [
    ("vary: tr(A*X)\n", "vary must be a mapping or a list"),
    ("vary:\n  function: []\n", "lists no alternatives"),
    ("vary:\n  function: tr(A*X)\n", "must be a list"),
    ("vary: []\n", "lists no variants"),
    ("vary:\n  - {}\n", "changes nothing"),
    ("vary:\n  vary: [1]\n", "cannot vary itself"),
    ("vary:\n  variables: [{X: [n, n], A: [n, n]}]\n  variables.A: [[m, m]]\n", "overlap"),
    ("vary:\n  wrt.3: [X]\n", "not an item of this list"),
    ("vary:\n  function.x: [1]\n", "not a mapping or a list"),
])
def test_malformed_vary_is_a_located_error(vary, message):
    err = _error(BASE + vary)
    assert message in err.message
    assert err.location is not None and err.location.line is not None and err.location.line >= 6


def test_too_many_alternatives_are_refused_before_any_is_checked():
    many = ", ".join(f'"tr(A*X)*{i}"' for i in range(1, 300))
    err = _error(BASE + f"vary:\n  function: [{many}]\n")
    assert "at most 200" in err.message and err.location.line == 7
    err = _error(BASE + "vary:\n  title: [" + ", ".join(["a"] * 60) + "]\n  statement: [" + ", ".join(["b"] * 60)
                 + "]\n  order: [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]\n")
    assert "variants; at most 100000" in err.message


def test_null_removes_and_new_paths_add():
    pv_text = ("variables:\n  x: [n]\n  A: [n, n]\nassume:\n  A: [symmetric]\nfunction: x'*A*x\nwrt: [x]\n"
               "vary:\n  assume.A: [null, [spd]]\n")
    problem = load_problem_text(pv_text, "p.yaml", "p")
    assert problem.assume == {"A": ("symmetric",)}


# ----------------------------------------------------------------------------- choosing


def test_numbered_variants_are_distinct_and_deterministic():
    problems = [problem_variants(SET / name) for name in ("trace.yaml", "combined.yaml", "plain.yaml")]
    a = assign(problems, seed=5, n=4)
    assert a == assign(problems, seed=5, n=4)
    assert [x.folder for x in a] == ["v1", "v2", "v3", "v4"]
    assert len({x.choices["combined"] for x in a}) == 4  # four variants, four different ones
    assert len({x.choices["trace"] for x in a[:3]}) == 3
    assert {x.choices["plain"] for x in a} == {0}
    others = [assign(problems, seed=s, n=4) for s in range(6, 12)]
    assert any([x.choices for x in o] != [x.choices for x in a] for o in others)


def test_a_student_gets_the_same_variant_whatever_the_roster():
    pv = problem_variants(SET / "combined.yaml")
    full = assign([pv], seed=1, students=["ann", "bo", "cy", "di"])
    part = assign([pv], seed=1, students=["di", "ann"])
    assert {x.folder: x.choices for x in part} == {x.folder: x.choices for x in full if x.folder in ("di", "ann")}
    assert student_choice(pv, "ann", 1) == student_choice(pv, "ann", 1)
    counts = [student_choice(pv, f"s{i}", 1) for i in range(200)]
    assert set(counts) == {0, 1, 2, 3}  # every variant is handed out


def test_roster_errors_are_located(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("name\nann\n")
    with pytest.raises(DerivgenError, match="no `id` column"):
        read_roster(roster)
    roster.write_text("id,name\nann,A\nbo,B\nann,C\n")
    with pytest.raises(DerivgenError, match="listed twice") as info:
        read_roster(roster)
    assert info.value.location.line == 4
    roster.write_text("id\n../escape\n")
    with pytest.raises(DerivgenError, match="cannot name a folder") as info:
        read_roster(roster)
    assert info.value.location.line == 2
    roster.write_text("id\nvariants.json\n")  # would be the manifest
    with pytest.raises(DerivgenError, match="cannot name a folder"):
        read_roster(roster)
    roster.write_text("Name,ID\nAnn,ann@example.org\n\nBo,bo\n")
    assert read_roster(roster) == ["ann@example.org", "bo"]


# ----------------------------------------------------------------------------- building


def _sheet(folder: Path) -> str:
    return (folder / "sheet.md").read_text(encoding="utf-8")


def test_a_four_variant_build_is_complete_verified_and_reproducible(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build", str(SET), "-o", str(out), "--variants", "4", "--seed", "3", "--format", "md,json"]) == 0
    manifest = json.loads((out / "variants.json").read_text())
    assert [f["folder"] for f in manifest["folders"]] == ["v1", "v2", "v3", "v4"]
    functions = set()
    for entry in manifest["folders"]:
        folder = out / entry["folder"]
        assert f"Homework 3 — {entry['folder']}" in _sheet(folder)  # the sheet carries the variant id
        for pid in ("trace", "combined", "plain"):
            doc = json.loads((folder / f"{pid}.json").read_text())
            assert doc["ok"] and all(r["verification"]["passed"] for r in doc["results"])
        combined = json.loads((folder / "combined.json").read_text())
        assert combined["function"]["text"] == entry["problems"]["combined"]["values"]["function"]
        functions.add((combined["function"]["text"], json.dumps(entry["problems"]["combined"]["values"], sort_keys=True)))
    assert len(functions) == 4
    first = {p: p.read_bytes() for p in out.rglob("*.md")}
    again = tmp_path / "again"
    assert main(["build", str(SET), "-o", str(again), "--variants", "4", "--seed", "3", "--format", "md,json", "-q"]) == 0
    assert {p.relative_to(out): b for p, b in first.items()} == {
        p.relative_to(again): p.read_bytes() for p in again.rglob("*.md")}
    assert (out / "variants.json").read_text() == (again / "variants.json").read_text()
    csv = (out / "variants.csv").read_text().splitlines()
    assert csv[0] == "id,problem,variant,of,values" and len(csv) == 1 + 4 * 2


def test_a_roster_build_names_folders_by_student(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nann,Ann\nbo,Bo\n")
    out = tmp_path / "out"
    assert main(["build", str(SET), "-o", str(out), "--students", str(roster), "--seed", "9", "-q"]) == 0
    manifest = json.loads((out / "variants.json").read_text())
    assert manifest["by"] == "roster" and [f["id"] for f in manifest["folders"]] == ["ann", "bo"]
    assert "Homework 3 — ann" in _sheet(out / "ann")
    pv = problem_variants(SET / "combined.yaml")
    assert manifest["folders"][0]["problems"]["combined"]["variant"] == student_choice(pv, "ann", 9) + 1


def test_a_variant_that_fails_is_reported_and_the_others_build(tmp_path, capsys):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "p.yaml").write_text("variables:\n  x: [n]\nfunction: x'*x\nwrt: [x]\n"
                                   "vary:\n  function: [\"x'*x\", \"log(0*(x'*x))\"]\n")
    result = build_variants([str(folder)], tmp_path / "out", seed=0, n=2)
    failed = [name for name, r in result.results.items() if r.failed]
    assert len(failed) == 1
    doc = next(d for r in result.results.values() for d in r.docs if not d["ok"])
    assert "variant 2 of 2 of p.yaml" in (tmp_path / "out" / failed[0] / ".derivgen-variants" / "p.yaml").read_text()
    # found only when derived: located in the variant's own file, whose first line names the variant
    assert doc["error"]["location"].endswith(f"{failed[0]}/.derivgen-variants/p.yaml:5:7")
    assert "not finite" in doc["error"]["message"]


def test_variants_need_a_positive_number(tmp_path, capsys):
    assert main(["build", str(SET), "-o", str(tmp_path), "--variants", "0"]) == 2
    assert "--variants needs a positive number" in capsys.readouterr().err


def test_grade_a_variant_or_a_students_variant(tmp_path, capsys):
    trace = str(SET / "trace.yaml")
    answers = {"tr(A*X*B)": "A'*B'", "tr(A*X*B*B'*X'*A')": "2*A'*A*X*B*B'", "logdet(A*X*B)": "inv(X)'"}
    pv = problem_variants(SET / "trace.yaml")
    for k in (1, 2, 3):
        function = pv.values(k - 1)["function"]
        for f, answer in answers.items():
            assert main(["grade", trace, "--wrt", "X", "--answer", answer, "--variant", str(k)]) == (0 if f == function else 1)
    capsys.readouterr()
    roster = tmp_path / "roster.csv"
    roster.write_text("id\nann\n")
    out = tmp_path / "out"
    assert main(["build", str(SET), "-o", str(out), "--students", str(roster), "--seed", "11", "-q"]) == 0
    given = json.loads((out / "variants.json").read_text())["folders"][0]["problems"]["trace"]["values"]["function"]
    assert main(["grade", trace, "--wrt", "X", "--answer", answers[given], "--student", "ann", "--seed", "11"]) == 0
    assert main(["grade", trace, "--wrt", "X", "--answer", answers[given], "--variant", "4"]) == 2
    assert "has 3 variants, not 4" in capsys.readouterr().err
    assert main(["grade", str(SET / "plain.yaml"), "--wrt", "x", "--answer", "2*x", "--variant", "1"]) == 2
    assert "no variants" in capsys.readouterr().err

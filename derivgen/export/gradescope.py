"""The Gradescope export: OUT/gradescope/autograder/ and OUT/gradescope/autograder.zip.

The zip holds `setup.sh` (installs Python 3 and NumPy), `run_autograder` (grades
/autograder/submission/answers.txt and writes /autograder/results/results.json),
`grade_submission.py`, `questions.json` (the questions' data) and `derivgen_grader/`.
Python and NumPy only.

A submission is `answers.txt`, one answer a line, `PROBLEM.NAME = EXPRESSION` (blank lines and
`#` comments skipped), or `answers.json` (`{"PROBLEM": {"NAME": "EXPRESSION"}}`); `NAME` is the
variable of the result. With `--students`, each student (matched by the `sid` or `email` of
Gradescope's submission_metadata.json against the roster's ids) is graded on their variants.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..output import write_atomic
from . import GRADER_PACKAGE, Question, dumps, write_package

SETUP_SH = """#!/usr/bin/env bash
# Gradescope autograder set-up, written by derivgen export gradescope: Python 3 and NumPy only.
set -euo pipefail
if ! python3 -c "import numpy" 2>/dev/null; then
  apt-get update -q
  apt-get install -y -q python3 python3-pip
  python3 -m pip install -q numpy || python3 -m pip install -q --break-system-packages numpy
fi
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Grades the submitted answers.txt (or answers.json); written by derivgen export gradescope.
set -eu
SOURCE="${DERIVGEN_AUTOGRADER_SOURCE:-/autograder/source}"
SUBMISSION="${DERIVGEN_AUTOGRADER_SUBMISSION:-/autograder/submission}"
RESULTS="${DERIVGEN_AUTOGRADER_RESULTS:-/autograder/results/results.json}"
METADATA="${DERIVGEN_AUTOGRADER_METADATA:-/autograder/submission_metadata.json}"
cd "$SOURCE"
exec python3 grade_submission.py "$SUBMISSION" "$RESULTS" "$METADATA"
"""

GRADE_SUBMISSION = '''"""Grade a Gradescope submission of derivgen answers (Python and NumPy only).

usage: python3 grade_submission.py SUBMISSION_DIR RESULTS_JSON [SUBMISSION_METADATA_JSON]
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import derivgen_grader  # noqa: E402


def read_answers(folder):
    """(answers by (problem, name), problems read) from answers.json or answers.txt; messages for bad lines."""
    answers, notes = {}, []
    path = os.path.join(folder, "answers.json")
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            for problem, named in data.items():
                for name, text in named.items():
                    answers[(str(problem), str(name))] = str(text)
        except (ValueError, AttributeError, OSError) as exc:
            notes.append(f"answers.json could not be read: {exc}")
        return answers, notes
    path = os.path.join(folder, "answers.txt")
    if not os.path.isfile(path):
        return answers, ["no answers.txt (or answers.json) was submitted"]
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, text = line.partition("=")
            problem, dot, name = key.strip().rpartition(".")
            if not sep or not dot:
                notes.append(f"answers.txt line {number}: write PROBLEM.NAME = EXPRESSION")
                continue
            answers[(problem.strip(), name.strip())] = text.strip()
    return answers, notes


def student_ids(metadata_path):
    try:
        with open(metadata_path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError):
        return []
    ids = []
    for user in meta.get("users") or []:
        for key in ("sid", "email", "id"):
            if user.get(key):
                ids.append(str(user[key]))
    return ids


def main(argv):
    submission, results_path = argv[1], argv[2]
    metadata = argv[3] if len(argv) > 3 else ""
    with open(os.path.join(HERE, "questions.json"), encoding="utf-8") as handle:
        bank = json.load(handle)
    assignment = bank.get("students")
    chosen = {}
    if assignment:
        for sid in student_ids(metadata):
            if sid in assignment:
                chosen = assignment[sid]
                break
    answers, notes = read_answers(submission)
    tests, total = [], 0.0
    for question in bank["questions"]:
        variant = question["variants"][int(chosen.get(question["id"], 0))]
        for result in variant["results"]:
            name = result["name"]
            text = answers.get((question["id"], name), "")
            outcome = derivgen_grader.grade_answer(variant, name, text)
            total += outcome["score"]
            tests.append({"name": f"{question['id']}.{name}", "score": outcome["score"], "max_score": 1.0,
                          "output": outcome["feedback"], "status": "passed" if outcome["score"] == 1.0 else "failed"})
    result = {"score": total, "tests": tests, "stdout_visibility": "visible"}
    if notes:
        result["output"] = "\\n".join(notes)
    if assignment and not chosen:
        result["output"] = (result.get("output", "") + "\\nno roster id matched this submission; graded on variant 1").strip()
    folder = os.path.dirname(os.path.abspath(results_path))
    os.makedirs(folder, exist_ok=True)
    with open(results_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def export(questions: list[Question], out: Path, assignment: dict | None = None) -> list[Path]:
    """Write the Gradescope autograder into `out` (OUT/gradescope); returns the files written."""
    folder = out / "autograder"
    written = [write_atomic(folder / "setup.sh", SETUP_SH), write_atomic(folder / "run_autograder", RUN_AUTOGRADER),
               write_atomic(folder / "grade_submission.py", GRADE_SUBMISSION)]
    for script in written[:2]:
        script.chmod(0o755)
    bank = {"questions": [q.data() for q in questions], "students": assignment}
    written.append(write_atomic(folder / "questions.json", dumps(bank)))
    write_package(folder)
    written += sorted((folder / GRADER_PACKAGE).iterdir())
    example = ["# one answer a line: PROBLEM.NAME = EXPRESSION"]
    for q in questions:
        for r in q.variants[0]["results"]:
            example.append(f"{q.id}.{r['name']} = ")
    written.append(write_atomic(out / "answers-template.txt", "\n".join(example) + "\n"))
    zip_path = out / "autograder.zip"
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), (2020, 1, 1, 0, 0, 0))
                info.external_attr = (0o755 if path.name in ("setup.sh", "run_autograder") else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    tmp.replace(zip_path)
    written.append(zip_path)
    return written

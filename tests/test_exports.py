"""`derivgen export prairielearn|gradescope`: the graders run with Python and NumPy alone.

A virtual environment holding only NumPy is made in a temporary folder (`python -m venv`,
`pip install numpy`); it is skipped when it cannot be made, except under CI=true. In it, every
example problem's PrairieLearn server.py grades the result's own text right and its double
wrong, a variant is drawn by generate(), and the Gradescope autograder grades a submission.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from derivgen.cli import main
from derivgen.export import grader_package

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "tests" / "data" / "variants" / "set"


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def numpy_python(tmp_path_factory) -> str:
    """The python of a venv that has NumPy and nothing else (no derivgen, no lark)."""
    venv = tmp_path_factory.mktemp("numpy-only") / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy"],
                       check=True, capture_output=True, timeout=600)
        listed = subprocess.run([python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                                check=True, capture_output=True, text=True, timeout=120).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        if _ci():
            raise
        pytest.skip(f"cannot make a venv with NumPy: {exc}")
    names = {p["name"].lower() for p in json.loads(listed)}
    assert names <= {"numpy", "pip", "setuptools", "wheel"}, names
    return python


def _run(python: str, script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-I", "-c", script, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, cwd="/")


# A driver for server.py, as PrairieLearn calls it: generate(data), then grade(data).
PL_DRIVER = r"""
import importlib.util, json, random, sys
root, cases = sys.argv[1], json.loads(sys.argv[2])
out = []
for qid, seed, answers in cases:
    spec = importlib.util.spec_from_file_location("server_" + qid, f"{root}/questions/{qid}/server.py")
    server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)
    random.seed(seed)
    data = {"params": {}, "correct_answers": {}, "submitted_answers": answers, "partial_scores": {},
            "feedback": {}, "options": {"server_files_course_path": f"{root}/serverFilesCourse"}}
    server.generate(data)
    server.grade(data)
    out.append({"qid": qid, "variant": data["params"]["variant"], "scores": data["partial_scores"], "score": data["score"]})
print(json.dumps({"results": out, "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("derivgen", "lark"))}))
"""


def _export(tmp_path: Path, target: str, *paths, extra=()) -> Path:
    out = tmp_path / "export"
    assert main(["export", target, *map(str, paths), "-o", str(out), *extra]) == 0
    return out / target


def test_the_grader_package_never_imports_derivgen_or_lark():
    files = grader_package()
    assert {"parse.py", "expr.py", "numeric.py", "judge.py", "answer.py", "_lark_parser.py", "grader.py"} <= set(files)
    for name, text in files.items():
        if name.endswith(".py") and name != "_lark_parser.py":
            lines = [line.strip() for line in text.splitlines()]
            assert not any(line.startswith(("import lark", "from lark", "import derivgen", "from derivgen"))
                           for line in lines), name


def test_prairielearn_layout(tmp_path):
    pl = _export(tmp_path, "prairielearn", ROOT / "problems" / "n002_quadratic_symmetric.yaml")
    q = pl / "questions" / "n002_quadratic_symmetric"
    info = json.loads((q / "info.json").read_text())
    assert info["type"] == "v3" and info["title"] == "Quadratic form with a symmetric matrix" and len(info["uuid"]) == 36
    html = (q / "question.html").read_text()
    assert 'name="x"' in html and "{{{params.statement_html}}}" in html and "{{feedback.x}}" in html
    server = (q / "server.py").read_text()
    assert "def grade(data)" in server and "def generate(data)" in server
    assert "2*A*x" not in server and "2*A*x" not in html  # the result's formula is not shipped
    assert (pl / "serverFilesCourse" / "derivgen_grader" / "_lark_parser.py").is_file()


def test_prairielearn_grades_every_example_in_a_numpy_only_venv(tmp_path, numpy_python):
    from derivgen.pipeline import problem_document

    pl = _export(tmp_path, "prairielearn", ROOT / "problems")
    cases, expected = [], []
    for path in sorted((ROOT / "problems").glob("*.yaml")):
        if path.name == "derivgen.yaml":
            continue
        doc = problem_document(path)
        names, seen = [], set()
        for r in doc["results"]:
            names.append(r["wrt"] if r["wrt"] not in seen else f"{r['wrt']}_{r['kind']}")
            seen.add(r["wrt"])
        right = {n: r["text"] for n, r in zip(names, doc["results"])}
        wrong = {n: f"2*({r['text']})" for n, r in zip(names, doc["results"])}
        cases += [(doc["id"], 0, right), (doc["id"], 0, wrong)]
        expected += [(doc["id"], 1.0), (doc["id"], 0.0)]
    run = _run(numpy_python, PL_DRIVER, str(pl), json.dumps(cases))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["modules"] == []  # neither derivgen nor lark was imported
    assert len(report["results"]) == len(expected) > 80
    for result, (qid, score) in zip(report["results"], expected):
        assert result["qid"] == qid
        for name, partial in result["scores"].items():
            assert partial["score"] == score, (qid, name, partial["feedback"])
        if score == 0.0:
            assert all("twice the result" in p["feedback"] for p in result["scores"].values()), result


def test_prairielearn_feedback_and_variants(tmp_path, numpy_python):
    pl = _export(tmp_path, "prairielearn", SET)
    cases = [
        ("plain", 0, {"x": "2*x"}), ("plain", 0, {"x": "x"}), ("plain", 0, {"x": "2*y"}), ("plain", 0, {"x": "x'"}),
        ("plain", 0, {}),
    ] + [("trace", seed, {"X": "A'*B'"}) for seed in range(12)]
    run = _run(numpy_python, PL_DRIVER, str(pl), json.dumps(cases))
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    right, half, unknown, row, empty = (r["scores"]["x"] for r in results[:5])
    assert right["score"] == 1.0 and "Right" in right["feedback"]
    assert half["score"] == 0.0 and "factor of 2 missing" in half["feedback"] and "relative error" in half["feedback"]
    assert unknown["score"] == 0.0 and "unknown name 'y'" in unknown["feedback"] and "^" in unknown["feedback"]
    assert row["score"] == 0.0 and "the answer is 1×n, but the result is n×1" in row["feedback"]
    assert empty["score"] == 0.0 and "No answer" in empty["feedback"]
    traces = results[5:]
    assert len({r["variant"] for r in traces}) == 3  # generate() draws each of the three variants
    for r in traces:
        # A'B' is the gradient of tr(AXB) only: right in that variant, wrong in the two others
        first = r["variant"] == 0
        assert (r["scores"]["X"]["score"] == 1.0) == first, r


def test_gradescope_autograder_in_a_numpy_only_venv(tmp_path, numpy_python):
    roster = tmp_path / "roster.csv"
    roster.write_text("id\nann\nbo\n")
    gs = _export(tmp_path, "gradescope", SET, extra=("--students", str(roster), "--seed", "4"))
    with zipfile.ZipFile(gs / "autograder.zip") as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "grade_submission.py", "questions.json"} <= names
        assert archive.getinfo("run_autograder").external_attr >> 16 & 0o111
    source = tmp_path / "source"
    with zipfile.ZipFile(gs / "autograder.zip") as archive:
        archive.extractall(source)
    manifest = tmp_path / "build"
    assert main(["build", str(SET), "-o", str(manifest), "--students", str(roster), "--seed", "4", "-q"]) == 0
    given = json.loads((manifest / "variants.json").read_text())
    bo_function = next(f for f in given["folders"] if f["id"] == "bo")["problems"]["trace"]["values"]["function"]
    answer = {"tr(A*X*B)": "A'*B'", "tr(A*X*B*B'*X'*A')": "2*A'*A*X*B*B'",
              "logdet(A*X*B)": "inv(X)'"}[bo_function]

    def grade(lines: str, sid: str) -> dict:
        submission = tmp_path / f"submission-{sid}"
        submission.mkdir(exist_ok=True)
        (submission / "answers.txt").write_text(lines)
        metadata = tmp_path / f"meta-{sid}.json"
        metadata.write_text(json.dumps({"users": [{"sid": sid, "email": f"{sid}@example.org"}]}))
        results = tmp_path / f"results-{sid}" / "results.json"
        bindir = str(Path(numpy_python).parent)
        run = subprocess.run(["bash", str(source / "run_autograder")], capture_output=True, text=True, timeout=600,
                             env={"PATH": bindir + os.pathsep + "/usr/bin:/bin", "DERIVGEN_AUTOGRADER_SOURCE": str(source),
                                  "DERIVGEN_AUTOGRADER_SUBMISSION": str(submission),
                                  "DERIVGEN_AUTOGRADER_RESULTS": str(results),
                                  "DERIVGEN_AUTOGRADER_METADATA": str(metadata)})
        assert run.returncode == 0, run.stderr
        return json.loads(results.read_text())

    good = grade(f"# answers\nplain.x = 2*x\ncombined.x = 0\ntrace.X = {answer}\n", "bo")
    tests = {t["name"]: t for t in good["tests"]}
    assert tests["plain.x"]["score"] == 1.0 and tests["trace.X"]["score"] == 1.0, tests
    assert tests["combined.x"]["score"] == 0.0
    bad = grade("plain.x = -2*x\ntrace.X = 2*y\nnonsense line\n", "bo")
    tests = {t["name"]: t for t in bad["tests"]}
    assert tests["plain.x"]["score"] == 0.0 and "opposite sign" in tests["plain.x"]["output"]
    assert "unknown name 'y'" in tests["trace.X"]["output"]
    assert "line 3" in bad["output"] and bad["score"] == 0.0

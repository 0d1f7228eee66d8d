"""Issue 11, item 5: bounded work per problem.

Each attack of the issue is a problem in one set with good problems. The whole set builds in
seconds and in bounded memory (measured on a real `derivgen build` in a subprocess, workers
included); every bad problem gets a located error (file:line:column, a caret, a hint), never
"a bug"; the problems that only look big (a declared size of 10⁸, a family of 10⁸ samples, a
sum of 1000 terms) build and verify at small check sizes; the good problems still build.
A runaway that passes every static limit is stopped by the worker's time budget, an allocation
past the memory budget is a located error, and a worker that dies takes only its problem.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from derivgen import limits
from derivgen.errors import DerivgenError
from derivgen.parse import PlainSource, Scope, check_size, parse_expr, parse_syntax
from derivgen.problem import load_problem, load_problem_text
from derivgen.worker import problem_documents

ROOT = Path(__file__).resolve().parent.parent

LONG_SUM = " + ".join(["x'*x"] * 1000)
DEEP = "sigma(" * 100 + "s" + ")" * 100

# name -> (problem file, (line, column) of the error, words of its message)
REFUSED: dict[str, tuple[str, tuple[int, int], str]] = {
    "matrix_power": ("variables:\n  X: [n, n]\nfunction: tr(X^1000000)\nwrt: [X]\n", (3, 16), "exponent 1000000"),
    "scalar_power": ("variables:\n  s: []\nfunction: 2^99999 * s\nwrt: [s]\n", (3, 13), "exponent 99999"),
    "power_of_power": ("variables:\n  s: []\nfunction: s^(2^64)\nwrt: [s]\n", (3, 13), "exponent (2^64)"),
    "folded_number": ("variables:\n  s: []\nfunction: 2^64 * 2^64 * s\nwrt: [s]\n", (3, 11), "too large"),
    "long_sum": (f'variables:\n  x: [n]\nfunction: "{LONG_SUM}"\nwrt: [x]\n', (3, 12 + limits.MAX_EXPR_CHARS),
                 "longer than"),
    "many_parts": ("variables:\n  x: [n]\nfunction: " + " + ".join(["x'*x"] * 450) + "\nwrt: [x]\n", None,
                   f"more than {limits.MAX_NODES} parts"),
    "deep": (f"variables:\n  s: []\nfunction: {DEEP}\nwrt: [s]\n", (3, 11 + 6 * limits.MAX_DEPTH), "nested"),
    "long_number": ("variables:\n  s: []\nfunction: " + "9" * 50 + " * s\nwrt: [s]\n", (3, 11), "number"),
    "number_exponent": ("variables:\n  s: []\nfunction: 1e999999999 * s\nwrt: [s]\n", (3, 11), "number"),
    "huge_dimension": ("variables:\n  x: [100000000000000000000000]\nfunction: x'*x\nwrt: [x]\n", (2, 7),
                       "too large"),
    "huge_digits": ("variables:\n  x: [" + "1" * 5000 + "]\nfunction: x'*x\nwrt: [x]\n", (2, 7), "too large"),
    "many_wrt": ("variables:\n" + "".join(f"  x{i}: [n]\n" for i in range(25)) + "function: "
                 + " + ".join(f"x{i}'*x{i}" for i in range(25)) + "\nwrt: [" + ", ".join(f"x{i}" for i in range(25))
                 + "]\n", (28, 7 + sum(len(f"x{i}, ") for i in range(20))), f"more than {limits.MAX_WRT} wrt"),
    "many_where": ("variables:\n  x: [n]\nwhere:\n" + "".join(f"  y{i}: 2*x\n" for i in range(60))
                   + "function: x'*x\nwrt: [x]\n", (4 + limits.MAX_WHERE, 3), "more than"),
    "many_dimensions": ("variables:\n" + "".join(f"  x{i}: [d{i}]\n" for i in range(25)) + "function: x0'*x0\nwrt: [x0]\n",
                        (2 + limits.MAX_DIMENSION_SYMBOLS, 9), "dimension symbols"),
    "big_file": ("statement: |\n" + "  padding\n" * 30000 + "variables:\n  x: [n]\nfunction: x'*x\nwrt: [x]\n", (1, 1),
                 "longer than"),
}

# problems that only look big: they build and verify, at small check sizes
BUILT: dict[str, str] = {
    "big_vector": "variables:\n  x: [100000000]\nfunction: x'*x\nwrt: [x]\n",
    "big_matrix": "variables:\n  X: [100000, 100000]\nfunction: tr(X)\nwrt: [X]\n",
    "big_family": "variables:\n  x_t: [n]\n  w: [n]\nindices: {t: 100000000}\nfunction: sum(t, w' * x_t)\nwrt: [w]\n",
    "big_hessian": "variables:\n  X: [40, 40]\nfunction: tr(X^64) + sum(exp(X) .^ 2)\nwrt: [X]\norder: 2\n",
    "sum_of_1000": 'variables:\n  s: []\nfunction: "' + " + ".join(["s"] * 1000) + '"\nwrt: [s]\n',
    "named_np": "variables:\n  np: [n]\n  a: [n]\nfunction: sum(exp(a .* np))\nwrt: [np]\n",
}
GOOD = ("n001_least_squares", "n002_logdet", "n001_gaussian_mle")


def _write_set(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, (text, _, _) in REFUSED.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name, text in BUILT.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name in GOOD:
        (directory / f"{name}.yaml").write_bytes((ROOT / "problems" / f"{name}.yaml").read_bytes())
    return directory


def _located(err: dict, path: Path, where: tuple[int, int] | None) -> None:
    """A located error: file:line:column, the caret, a hint, and never 'bug'."""
    assert err["location"].startswith(f"{path}:"), err["location"]
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+:\d+", err["location"]), err["location"]
    if where is not None:
        assert err["location"] == f"{path}:{where[0]}:{where[1]}", err["rendered"]
    assert "^" in err["rendered"] and err["hint"], err["rendered"]
    assert "bug" not in err["rendered"].lower(), err["rendered"]
    assert err["kind"] == "LimitError", err


def test_every_attack_is_a_located_limit_error_and_the_rest_builds(tmp_path):
    d = _write_set(tmp_path / "set")
    names = [*REFUSED, *BUILT, *GOOD]
    started = time.monotonic()
    docs = dict(zip(names, problem_documents([d / f"{n}.yaml" for n in names])))
    assert time.monotonic() - started < 30
    for name, (_, where, words) in REFUSED.items():
        doc = docs[name]
        assert doc["ok"] is False, name
        _located(doc["error"], d / f"{name}.yaml", where)
        assert words in doc["error"]["message"], (name, doc["error"]["message"])
    for name in [*BUILT, *GOOD]:
        doc = docs[name]
        assert doc["ok"] is True, (name, doc["error"])
        assert all(r["verification"]["passed"] for r in doc["results"])
    # the declared sizes were never allocated: each was checked at a small stand-in size
    for name, size in (("big_vector", "100000000"), ("big_matrix", "100000"), ("big_family", "100000000"),
                       ("big_hessian", "40")):
        stand_in = docs[name]["results"][0]["verification"]["stand_ins"][size]
        assert stand_in <= 2 * limits.MAX_CHECK_SIZE
    assert docs["big_matrix"]["results"][0]["numpy"] == "np.eye(100000)"  # the result keeps the declared size
    assert docs["sum_of_1000"]["results"][0]["text"] == "1000"


def test_the_whole_set_builds_in_seconds_and_bounded_memory(tmp_path):
    """A real `derivgen build` of the set in a subprocess: wall time, and the peak memory of the
    build and of its worker processes."""
    d, out = _write_set(tmp_path / "set"), tmp_path / "out"
    probe = (
        "import json, resource, sys\n"
        "from derivgen.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "own, kids = (resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))\n"
        "print(json.dumps({'status': status, 'self_kb': own, 'children_kb': kids}), file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "home-cache")}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", probe, "build", str(d), "-o", str(out), "--format", "md,json"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    elapsed = time.monotonic() - started
    figures = json.loads(proc.stderr.strip().splitlines()[-1])
    assert figures["status"] == 1  # the refused problems fail the build
    assert elapsed < 30, elapsed
    assert max(figures["self_kb"], figures["children_kb"]) < 600_000, figures  # KB: under 600 MB each
    err = proc.stderr
    assert "Traceback" not in err and "bug" not in err.lower()
    for name, (_, where, _) in REFUSED.items():
        spot = f"{d / name}.yaml:{where[0]}:{where[1]}:" if where else f"{d / name}.yaml:3:"
        assert spot in err, (name, err[:3000])
    for name in [*BUILT, *GOOD]:
        doc = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert doc["ok"] is True and doc["results"], name
    for name in REFUSED:
        assert not (out / f"{name}.json").exists()  # a refused problem is not published


def test_numpy_code_never_lets_a_variable_shadow_np(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(BUILT["named_np"], encoding="utf-8")
    text = ("variables:\n  x_np: [n]\n  w: [n]\n  range: [n]\nindices: {np: N}\n"
            "function: sum(np, exp(w' * x_np)) + range' * w\nwrt: [w]\n")
    (tmp_path / "q.yaml").write_text(text, encoding="utf-8")
    doc, other = problem_documents([path, tmp_path / "q.yaml"])
    code = doc["results"][0]["numpy"]
    assert "np_" in code and not re.search(r"\bnp\b(?!\.)", code), code
    rng = np.random.default_rng(0)
    a, x = rng.standard_normal((4, 1)), rng.standard_normal((4, 1))
    got = eval(code, {"np": np, "np_": x, "a": a})  # noqa: S307 - our own generated code, in a test
    assert np.allclose(got, np.exp(a * x) * a)
    code = other["results"][0]["numpy"]
    samples, w, r = rng.standard_normal((4, 5)), rng.standard_normal((4, 1)), rng.standard_normal((4, 1))
    got = eval(code, {"np": np, "x_np": samples, "w": w, "range_": r})  # noqa: S307
    want = sum(np.exp((w.T @ samples[:, [k]]).item()) * samples[:, [k]] for k in range(5)) + r
    assert np.allclose(got, want)


# ----------------------------------------------------------------------------- the worker's budget


CHAIN = ("variables:\n  X: [m, m]\nwhere:\n  Y1: X * X\n" + "".join(f"  Y{i}: Y{i - 1} * Y{i - 1} + X\n" for i in range(2, 19))
         + "function: tr(Y18)\nwrt: [X]\n")  # within every static limit; derivation and check grow as 2^18


def test_a_runaway_problem_is_stopped_by_the_time_limit_and_the_rest_builds(tmp_path, capsys, monkeypatch):
    from derivgen.cli import main

    d = tmp_path / "set"
    d.mkdir()
    (d / "a_runaway.yaml").write_text(CHAIN, encoding="utf-8")
    (d / "b_good.yaml").write_bytes((ROOT / "problems" / "n001_least_squares.yaml").read_bytes())
    monkeypatch.setenv("DERIVGEN_TIME_LIMIT", "3")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    started = time.monotonic()
    status = main(["build", str(d), "-o", str(tmp_path / "out"), "--format", "json"])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert status == 1 and elapsed < 20, elapsed
    assert f"{d / 'a_runaway.yaml'}:22:11: deriving and checking this problem took longer than 3 s" in err, err
    assert "DERIVGEN_TIME_LIMIT" in err and "bug" not in err.lower()
    assert json.loads((tmp_path / "out" / "b_good.json").read_text(encoding="utf-8"))["ok"] is True


def _sabotage(monkeypatch, action) -> None:
    """Make solving the problem whose id starts with "bad" do `action` (the workers fork, so they see it)."""
    import derivgen.pipeline as pipeline

    real = pipeline.solve

    def solve(problem, *args, **kwargs):
        if problem.id.startswith("bad"):
            action()
        return real(problem, *args, **kwargs)

    monkeypatch.setattr(pipeline, "solve", solve)


def _pair(tmp_path: Path) -> list[Path]:
    good = tmp_path / "good.yaml"
    good.write_text("variables: {x: [n], A: [n, n]}\nfunction: x'*A*x\nwrt: [x]\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("variables: {x: [n]}\n\nfunction: x'*x\nwrt: [x]\n", encoding="utf-8")
    return [bad, good]


def test_an_allocation_past_the_memory_limit_is_a_located_error(tmp_path, monkeypatch):
    _sabotage(monkeypatch, lambda: bytearray(1 << 30))  # 1 GB, past a 200 MB budget
    bad, good = problem_documents(_pair(tmp_path), megabytes=200)
    assert bad["ok"] is False and good["ok"] is True
    err = bad["error"]
    assert err["location"] == f"{tmp_path / 'bad.yaml'}:3:11" and "more memory than the limit of 200 MB" in err["message"]
    assert "bug" not in err["rendered"].lower()


def test_a_worker_that_dies_takes_only_its_problem(tmp_path, monkeypatch):
    import signal

    _sabotage(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGKILL))
    paths = _pair(tmp_path)
    bad, good = problem_documents(paths)
    assert good["ok"] is True and bad["ok"] is False
    assert bad["error"]["location"] == f"{paths[0]}:3:11" and "stopped" in bad["error"]["message"]
    assert bad["error"]["kind"] == "LimitError"


def test_a_deep_recursion_anywhere_is_a_located_limit_error(tmp_path, monkeypatch):
    def recurse():
        recurse()

    _sabotage(monkeypatch, recurse)
    bad, good = problem_documents(_pair(tmp_path))
    assert good["ok"] is True
    assert bad["error"]["kind"] == "LimitError" and bad["error"]["location"] == f"{tmp_path / 'bad.yaml'}:3:11"
    assert "nested too deeply" in bad["error"]["message"] and "bug" not in bad["error"]["rendered"].lower()


# ----------------------------------------------------------------------------- the limits themselves


def _expressions(problem) -> list:
    return [problem.function, *(source for _, source in problem.where)]


def test_real_coursework_stays_far_inside_the_limits():
    """Every example problem, and every problem file the tests write, uses a small part of each
    limit (a quarter at most), so the limits never get in a course's way."""
    files = sorted((ROOT / "problems").glob("n*.yaml")) + sorted((ROOT / "problems").glob("ext_*.yaml"))
    assert len(files) > 30
    worst = {"chars": 0, "nodes": 0, "depth": 0, "where": 0, "wrt": 0, "variables": 0}
    for path in files:
        problem = load_problem(path)
        worst["where"] = max(worst["where"], len(problem.where))
        worst["wrt"] = max(worst["wrt"], len(problem.wrt))
        worst["variables"] = max(worst["variables"], len(problem.variables))
        for source in _expressions(problem):
            tree = parse_syntax(source)
            nodes, depth = _size(tree)
            worst["chars"] = max(worst["chars"], len(source.text))
            worst["nodes"], worst["depth"] = max(worst["nodes"], nodes), max(worst["depth"], depth)
    assert worst["chars"] * 4 < limits.MAX_EXPR_CHARS and worst["nodes"] * 4 < limits.MAX_NODES
    assert worst["depth"] * 4 < limits.MAX_DEPTH, worst
    assert worst["where"] * 4 < limits.MAX_WHERE and worst["wrt"] * 4 < limits.MAX_WRT
    assert worst["variables"] * 4 < limits.MAX_VARIABLES


def _size(tree) -> tuple[int, int]:
    from lark import Tree

    nodes, depth, stack = 0, 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        nodes, depth = nodes + 1, max(depth, level)
        stack += [(c, level + 1) for c in node.children if isinstance(c, Tree)]
    return nodes, depth


SCOPE = Scope(shapes={"X": ("n", "n"), "x": ("n", 1), "s": (1, 1)}, dims={"n"})


@pytest.mark.parametrize("text, ok", [
    ("X^64", True), ("X^-64", True), ("X^65", False), ("s^(1/64)", True), ("s^(1/65)", False),
    ("s.^64", True), ("x.^100", False), ("1e30*s", True), ("1e31*s", False), ("0.000001*s", True),
    ("2^64*s", True), ("(10^30)^2*s", False), (" + ".join(["s"] * 1000), True),
    ("sigma(" * (limits.MAX_DEPTH - 1) + "s" + ")" * (limits.MAX_DEPTH - 1), True),
    ("sigma(" * limits.MAX_DEPTH + "s" + ")" * limits.MAX_DEPTH, False),
    ("-" * 70 + "s", False), ("x" + "'" * 70, False), ("(" * 500 + "s" + ")" * 500, True),
    (" * ".join(["s"] * 999), True), ("x' * " + " * ".join(["X"] * 900) + " * x", True),
])
def test_each_expression_limit_is_where_it_says(text, ok):
    try:
        e = parse_expr(PlainSource(text, "p.yaml", 3, 11), SCOPE)
    except DerivgenError as err:
        assert not ok, err.render()
        assert type(err).__name__ == "LimitError" and re.match(r"p\.yaml:3:\d+$", str(err.location))
        assert "^" in err.render() and err.hint
        return
    assert ok, f"accepted: {e}"


def test_a_long_chain_of_products_and_sums_types_without_recursion():
    """A chain as long as the part limit allows types, with the default recursion limit."""
    text = " + ".join(["2*s*s"] * (limits.MAX_NODES // 6))
    assert parse_expr(PlainSource(text), SCOPE).is_scalar
    problem = load_problem_text(f"variables:\n  s: []\nfunction: {text}\nwrt: [s]\n", "p.yaml")
    assert check_size(parse_syntax(problem.function), problem.function) is None

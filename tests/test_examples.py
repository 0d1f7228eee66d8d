"""Every example in `problems/` is checked numerically, independently of the engine.

For each problem file this module holds, written by hand, a plain NumPy implementation of its
function `f` (the full composition for problems with `where:` definitions). The engine builds the
whole set once (`derivgen build problems -o <tmp> --format json`); for every result, the NumPy
code it emits for the gradient is evaluated at random inputs that satisfy the problem's
assumptions, with distinct sizes for distinct dimension symbols, and compared with central
finite differences of the hand-written `f` along random directions (see `fd.py`).

No expected gradient is written here: the engine's answer is judged only against `f`.
"""

from __future__ import annotations

import json
import keyword
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

try:  # `tests/` on sys.path (pytest's default rootdir-less import)
    from fd import check_gradient, numerical_gradient
except ModuleNotFoundError:  # `tests` imported as a package
    from tests.fd import check_gradient, numerical_gradient

PROBLEMS_DIR = Path(__file__).resolve().parent.parent / "problems"
RTOL = 1e-6          # largest accepted relative error of <G, V> against finite differences
TRIALS = 2           # random points per result
RANDOM_DIRECTIONS = 3  # random directions per point (plus the direction of G itself)

# One size per dimension symbol, all distinct, so that a missing or extra transpose shows up as a
# shape error or a wrong number. Symbols not listed get further distinct sizes (see `dimension_sizes`).
DIM_SIZES = {"l": 2, "m": 3, "n": 4, "p": 5, "q": 6, "N": 7}


# --------------------------------------------------------------------------------------------
# The problem files
# --------------------------------------------------------------------------------------------

def _load_problems() -> dict[str, dict]:
    problems = {}
    for path in sorted(PROBLEMS_DIR.glob("*.yaml")):
        if path.name == "derivgen.yaml":  # the set file, not a problem
            continue
        with path.open(encoding="utf-8") as fh:
            problems[path.stem] = yaml.safe_load(fh)
    return problems


PROBLEMS = _load_problems()


def _scalar_valued(problem: dict) -> bool:
    """Problems whose f is a scalar (gradients); the others have Jacobians."""
    return not str(problem["title"]).startswith(("Jacobian", "A Jacobian", "Derivative of"))


def _plain_gradient(problem: dict) -> bool:
    """A gradient in denominator layout without the symmetric constraint (checked the usual way)."""
    return _scalar_valued(problem) and problem.get("layout", "denominator") == "denominator" \
        and not problem.get("constrain_symmetric")


CASES = [(pid, wrt) for pid, problem in PROBLEMS.items() if _plain_gradient(problem) for wrt in problem["wrt"]]
JACOBIANS = [(pid, wrt) for pid, p in PROBLEMS.items() if not _scalar_valued(p) for wrt in p["wrt"]]
HESSIANS = [(pid, wrt) for pid, p in PROBLEMS.items() if p.get("order") == 2 for wrt in p["wrt"]]
SOLUTIONS = [(pid, wrt) for pid, p in PROBLEMS.items() if p.get("solve") for wrt in p["wrt"]]


# --------------------------------------------------------------------------------------------
# Reference implementations of f, one per problem id
# --------------------------------------------------------------------------------------------

def _s(a) -> float:
    """The value of a 1x1 array (or a scalar) as a float."""
    return float(np.asarray(a).item())


def _sigma(x):
    return 1.0 / (1.0 + np.exp(-x))


def _log_softmax(z):
    zmax = np.max(z)
    return z - (zmax + np.log(np.sum(np.exp(z - zmax))))


def _gaussian_log_likelihood(v) -> float:
    """-N/2 log|Sigma| - 1/2 sum_t (x_t - mu)^T Sigma^{-1} (x_t - mu), over the columns x_t of X."""
    X, mu, Sigma = v["X"], v["mu"], v["Sigma"]
    n_samples = X.shape[1]
    quad = 0.0
    for t in range(n_samples):
        r = X[:, [t]] - mu
        quad += _s(r.T @ np.linalg.solve(Sigma, r))
    return -n_samples / 2 * np.linalg.slogdet(Sigma)[1] - quad / 2


F = {
    # 000: worked examples of the method
    "n000_atxb": lambda v: _s(v["a"].T @ v["X"] @ v["b"]),
    "n000_chain_axb": lambda v: 0.5 * np.sum((v["A"] @ v["X"] @ v["B"] - v["Z"]) ** 2),
    "n000_a_exp_xb": lambda v: _s(v["a"].T @ np.exp(v["X"] @ v["b"])),
    "n000_sigmoid_quadratic": lambda v: np.trace(
        _sigma(v["W"] @ v["X"]).T @ v["M"] @ _sigma(v["W"] @ v["X"])),
    "n000_sigmoid_quadratic_sym": lambda v: np.trace(
        _sigma(v["W"] @ v["X"]).T @ v["M"] @ _sigma(v["W"] @ v["X"])),
    # 001: homework set
    "n001_least_squares": lambda v: 0.5 * np.sum((v["A"] @ v["x"] + v["b"] - v["y"]) ** 2),
    "n001_quadratic_form": lambda v: _s(v["x"].T @ v["A"] @ v["x"]),
    "n001_trace_inverse": lambda v: np.trace(np.linalg.inv(v["W"])),
    "n001_softmax_cross_entropy": lambda v: -_s(v["p"].T @ _log_softmax(v["z"])),
    "n001_softmax_cross_entropy_linear": lambda v: -_s(v["p"].T @ _log_softmax(v["W"] @ v["x"])),
    "n001_gaussian_log_likelihood": _gaussian_log_likelihood,
    "n001_det_power": lambda v: np.linalg.det(v["X"] @ v["X"] @ v["X"]),
    "n001_trace_axbxtc": lambda v: np.trace(v["A"] @ v["X"] @ v["B"] @ v["X"].T @ v["C"]),
    # 002: definitions and frequently used formulas
    "n002_xtx": lambda v: float(np.sum(v["x"] ** 2)),
    "n002_trace": lambda v: np.trace(v["X"]),
    "n002_det": lambda v: np.linalg.det(v["X"]),
    "n002_logdet": lambda v: np.linalg.slogdet(v["X"])[1],
    "n002_quadratic_symmetric": lambda v: _s(v["x"].T @ v["A"] @ v["x"]),
    # 003: trace-gradient identities
    "n003_trace_ab": lambda v: np.trace(v["A"] @ v["B"]),
    "n003_trace_abatc": lambda v: np.trace(v["A"] @ v["B"] @ v["A"].T @ v["C"]),
    "n003_trace_atb": lambda v: np.trace(v["A"].T @ v["B"]),
    "n003_trace_atba": lambda v: np.trace(v["A"].T @ v["B"] @ v["A"]),
    "n003_trace_abat": lambda v: np.trace(v["A"] @ v["B"] @ v["A"].T),
    "n003_norm_xu_v": lambda v: np.sum((v["X"] @ v["U"] - v["V"]) ** 2),
    "n003_utxv": lambda v: _s(v["U"].T @ v["X"] @ v["V"]),
    "n003_utxtxu": lambda v: _s(v["U"].T @ v["X"].T @ v["X"] @ v["U"]),
    # beyond the notes
    "ext_rayleigh_quotient": lambda v: _s(v["x"].T @ v["A"] @ v["x"]) / _s(v["x"].T @ v["x"]),
    # Jacobians (vector- or matrix-valued f: the reference returns the array)
    "n002_jacobian_linear": lambda v: v["A"] @ v["x"],
    "n002_jacobian_sigmoid": lambda v: _sigma(v["W"] @ v["x"]),
    "n002_jacobian_softmax": lambda v: np.exp(_log_softmax(v["z"])),
    "n002_jacobian_hadamard": lambda v: v["x"] * v["y"],
    "n002_jacobian_exp": lambda v: np.exp(v["A"] @ v["x"]),
    "n003_layout_numerator": lambda v: _sigma(v["W"] @ v["x"]),
    "ext_matrix_axb": lambda v: v["A"] @ v["X"] @ v["B"],
    "ext_matrix_inverse": lambda v: np.linalg.inv(v["X"]),
    "ext_matrix_xtx": lambda v: v["X"].T @ v["X"],
    "ext_matrix_hadamard": lambda v: v["X"] * v["X"],
    # gradients with Hessians, other layouts, the symmetric gradient, stationary points
    "n002_hessian_quadratic": lambda v: _s(v["x"].T @ v["A"] @ v["x"]),
    "ext_hessian_logistic": lambda v: float(np.sum(np.log1p(np.exp(v["X"] @ v["w"])))) - _s(v["y"].T @ v["X"] @ v["w"]),
    "ext_hessian_logsumexp": lambda v: float(np.log(np.sum(np.exp(v["z"])))),
    "n003_gradient_numerator": lambda v: _s(v["x"].T @ v["A"] @ v["x"]),
    "ext_symmetric_gradient": lambda v: float(np.trace(v["A"] @ v["X"]) + np.linalg.slogdet(v["X"])[1]),
    "n001_least_squares_solution": lambda v: 0.5 * float(np.sum((v["A"] @ v["x"] - v["b"]) ** 2)),
    "ext_ridge_regression": lambda v: 0.5 * float(np.sum((v["A"] @ v["x"] - v["b"]) ** 2)) + v["lambda"] / 2 * _s(v["x"].T @ v["x"]),
    "n001_gaussian_mle": lambda v: _gaussian_log_likelihood({"X": v["x_t"], "mu": v["mu"], "Sigma": v["Sigma"]}),
    # the registry's functions: kinks (checked away from them: the random points have no entry at 0)
    "ext_relu_layer": lambda v: _s(v["a"].T @ np.maximum(v["W"] @ v["x"], 0)),
    "ext_least_absolute_deviations": lambda v: float(np.sum(np.abs(v["A"] @ v["x"] - v["b"]))),
    "ext_softmax_batch": lambda v: -float(np.sum(v["Y"] * np.log(_softmax_columns(v["W"] @ v["X"])))),
}


def _softmax_columns(z):
    w = np.exp(z - z.max(axis=0))
    return w / w.sum(axis=0)


# --------------------------------------------------------------------------------------------
# Random inputs that satisfy the assumptions
# --------------------------------------------------------------------------------------------

KNOWN_ASSUMPTIONS = {"symmetric", "spd", "invertible", "orthogonal", "diagonal", "positive", "onehot"}


def dimension_sizes(problem: dict) -> dict[str, int]:
    """A distinct size for every dimension symbol of the problem."""
    symbols = sorted({d for shape in problem["variables"].values() for d in shape if isinstance(d, str)}
                     | {d for d in (problem.get("indices") or {}).values() if isinstance(d, str)})
    sizes = {}
    taken = {d for shape in problem["variables"].values() for d in shape if isinstance(d, int)}
    taken |= {DIM_SIZES[s] for s in symbols if s in DIM_SIZES}
    spare = (k for k in range(8, 100) if k not in taken)
    for sym in symbols:
        sizes[sym] = DIM_SIZES[sym] if sym in DIM_SIZES else next(spare)
    assert len(set(sizes.values())) == len(sizes), f"sizes not distinct: {sizes}"
    return sizes


def sample_value(shape: tuple[int, ...], assumptions: list[str], rng: np.random.Generator):
    """A random scalar (float), vector (k, 1) or matrix (r, c) satisfying `assumptions`."""
    unknown = set(assumptions) - KNOWN_ASSUMPTIONS
    assert not unknown, f"the test sampler does not know the assumption(s) {sorted(unknown)}"
    if len(shape) == 0:
        x = float(rng.standard_normal())
        return abs(x) + 0.5 if "positive" in assumptions else x
    if len(shape) == 1 and "onehot" in assumptions:
        return np.eye(shape[0])[:, [int(rng.integers(shape[0]))]]
    if len(shape) == 1:
        x = rng.standard_normal((shape[0], 1))
        return np.abs(x) + 0.5 if "positive" in assumptions else x
    r, c = shape
    if "onehot" in assumptions:  # one entry 1 in each column
        return np.eye(r)[:, rng.integers(r, size=c)]
    x = rng.standard_normal((r, c))
    square = {"symmetric", "spd", "invertible", "orthogonal", "diagonal"} & set(assumptions)
    assert not square or r == c, f"{sorted(square)} needs a square matrix, got {r}x{c}"
    if "diagonal" in assumptions:
        x = np.diag(np.diag(x))
    if "symmetric" in assumptions:
        x = (x + x.T) / 2
    if "spd" in assumptions:
        x = x @ x.T / r + np.eye(r)
    elif "orthogonal" in assumptions:
        q, upper = np.linalg.qr(x)
        x = q * np.sign(np.diag(upper))
    elif "invertible" in assumptions:
        # eigenvalues within about 1 of 2: well conditioned, and (unless symmetric) x != x.T
        x = x / np.sqrt(r) + 2 * np.eye(r)
    if "positive" in assumptions:
        x = np.abs(x) + 0.5
    return x


def sample_inputs(pid: str, trial: int) -> tuple[dict[str, object], dict[str, int]]:
    """Values for every variable of problem `pid` (seeded by id and trial), and the sizes used."""
    problem = PROBLEMS[pid]
    sizes = dimension_sizes(problem)
    assume = problem.get("assume") or {}
    rng = np.random.default_rng([zlib.crc32(pid.encode()), trial])
    values = {}
    indices = problem.get("indices") or {}
    for name, shape in problem["variables"].items():
        concrete = tuple(sizes[d] if isinstance(d, str) else int(d) for d in shape)
        base, _, index = name.rpartition("_")
        if base and index in indices:  # a family: its samples side by side, one per column
            count = indices[index]
            concrete = (concrete[0], sizes[count] if isinstance(count, str) else int(count))
        values[name] = sample_value(concrete, list(assume.get(name, [])), rng)
    return values, sizes


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------

def test_every_problem_has_a_reference_function():
    """A new problem file cannot slip in untested, nor a stale entry stay behind."""
    assert PROBLEMS, f"no problems found in {PROBLEMS_DIR}"
    missing = sorted(set(PROBLEMS) - set(F))
    stale = sorted(set(F) - set(PROBLEMS))
    assert not missing, f"problems without a reference f in F: {missing}"
    assert not stale, f"entries of F without a problem file: {stale}"


@pytest.mark.parametrize("pid", sorted(PROBLEMS))
def test_reference_function_is_finite(pid):
    """Sanity of the hand-written f and of the sampler (needs no engine)."""
    for trial in range(TRIALS):
        values, _ = sample_inputs(pid, trial)
        value = F[pid](values)
        assert np.all(np.isfinite(value)), f"{pid}: f = {value} at trial {trial}"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Build the whole example set once, as JSON; returns (exit status, output directory)."""
    from derivgen.cli import main

    out = tmp_path_factory.mktemp("examples_out")
    try:
        rc = main(["build", str(PROBLEMS_DIR), "-o", str(out), "--format", "json"])
    except SystemExit as exc:  # a CLI may exit instead of returning its status
        rc = 0 if exc.code is None else exc.code
    return rc, out


def test_build_succeeds(build):
    rc, out = build
    assert rc == 0, f"derivgen build exited with {rc}"
    written = sorted(p.stem for p in out.glob("*.json"))
    assert set(PROBLEMS) <= set(written), f"no JSON for {sorted(set(PROBLEMS) - set(written))}"


def _result(out: Path, pid: str, wrt: str, kind: str = "gradient") -> dict:
    path = out / f"{pid}.json"
    assert path.exists(), f"{path.name} was not written"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc.get("id") == pid
    assert doc.get("ok") is True, f"{pid} failed to build: {doc.get('error')}"
    matches = [r for r in doc.get("results", []) if r.get("wrt") == wrt and r.get("kind") == kind]
    assert len(matches) == 1, f"{pid}: expected one {kind} for {wrt}, got {len(matches)}"
    result = matches[0]
    assert isinstance(result.get("numpy"), str) and result["numpy"].strip()
    return result


@pytest.mark.parametrize("pid, wrt", CASES, ids=[f"{pid}-{wrt}" for pid, wrt in CASES])
def test_gradient_matches_finite_differences(build, pid, wrt):
    _, out = build
    code = _result(out, pid, wrt)["numpy"]
    for trial in range(TRIALS):
        values, sizes = sample_inputs(pid, trial)
        namespace = _namespace(values, sizes)
        grad = np.asarray(eval(code, namespace), dtype=float)  # our own engine's generated code
        x = np.asarray(values[wrt], dtype=float)
        assert grad.shape == x.shape, (
            f"{pid}: gradient wrt {wrt} has shape {grad.shape}, the variable has {x.shape}\n  numpy: {code}")
        assert np.all(np.isfinite(grad)), f"{pid}/{wrt}: non-finite gradient\n  numpy: {code}"

        def f_of(xv, values=values):
            return F[pid]({**values, wrt: xv})

        rng = np.random.default_rng([zlib.crc32(f"{pid}/{wrt}".encode()), trial])
        checks = check_gradient(f_of, x, grad, rng, n_random=RANDOM_DIRECTIONS)
        worst = max(checks, key=lambda c: c.error)
        if worst.error >= RTOL:
            lines = [f"  {c.label:9s} fd={c.fd:.12g} <G,V>={c.claimed:.12g} rel.err={c.error:.2e}" for c in checks]
            pytest.fail(
                f"{pid}: gradient wrt {wrt} disagrees with finite differences of f "
                f"(trial {trial}, sizes {sizes})\n  numpy: {code}\n" + "\n".join(lines)
                + f"\n  engine gradient:\n{grad}\n  finite-difference gradient:\n{numerical_gradient(f_of, x)}"
            )


# --------------------------------------------------------------------------------------------
# Jacobians, Hessians, other layouts, the symmetric gradient, stationary points
# --------------------------------------------------------------------------------------------


def _vec(a) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1, 1, order="F")


def fd_jacobian(f, x, h=1e-5) -> np.ndarray:
    """Column k: the central difference of vec f along the k-th entry of vec x."""
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        e = e.reshape(x.shape, order="F")
        cols.append((_vec(f(x + e)) - _vec(f(x - e))) / (2 * h))
    return np.hstack(cols)


def _namespace(values, sizes):
    """The names the engine's NumPy code uses: a Python keyword such as lambda is `lambda_`; no
    builtins (the documented contract: an expression over np and the variable names)."""
    return {"__builtins__": {}, "np": np, **sizes, **{k + "_" if keyword.iskeyword(k) else k: v for k, v in values.items()}}


@pytest.mark.parametrize("pid, wrt", JACOBIANS, ids=[f"{p}-{w}" for p, w in JACOBIANS])
def test_jacobian_matches_finite_differences(build, pid, wrt):
    _, out = build
    result = _result(out, pid, wrt, "jacobian")
    for trial in range(TRIALS):
        values, sizes = sample_inputs(pid, trial)
        got = np.asarray(eval(result["numpy"], _namespace(values, sizes)), dtype=float)
        want = fd_jacobian(lambda xv: F[pid]({**values, wrt: xv}), np.asarray(values[wrt], dtype=float))
        if result["layout"] == "denominator":  # rows follow the variable
            want = want.T
        assert got.shape == want.shape, f"{pid}: Jacobian shape {got.shape}, expected {want.shape}"
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8 * (1 + np.abs(want).max()))


@pytest.mark.parametrize("pid, wrt", HESSIANS, ids=[f"{p}-{w}" for p, w in HESSIANS])
def test_hessian_matches_second_differences(build, pid, wrt):
    _, out = build
    result = _result(out, pid, wrt, "hessian")
    for trial in range(TRIALS):
        values, sizes = sample_inputs(pid, trial)
        x0 = np.asarray(values[wrt], dtype=float)
        h = 1e-3 * max(1.0, float(np.abs(x0).max()))

        def f_at(steps):
            x = x0.reshape(-1, order="F").copy()
            for k, s in steps:
                x[k] += s
            return F[pid]({**values, wrt: x.reshape(x0.shape, order="F")})

        n = x0.size
        want = np.array([[(f_at([(i, h), (j, h)]) - f_at([(i, h), (j, -h)]) - f_at([(i, -h), (j, h)])
                           + f_at([(i, -h), (j, -h)])) / (4 * h * h) for j in range(n)] for i in range(n)])
        got = np.asarray(eval(result["numpy"], _namespace(values, sizes)), dtype=float)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * (1 + np.abs(want).max()))
        np.testing.assert_allclose(got, got.T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pid, wrt", SOLUTIONS, ids=[f"{p}-{w}" for p, w in SOLUTIONS])
def test_gradient_vanishes_at_the_solution(build, pid, wrt):
    _, out = build
    result = _result(out, pid, wrt, "solution")
    problem = PROBLEMS[pid]
    for trial in range(TRIALS):
        values, sizes = sample_inputs(pid, trial)
        ns = _namespace(values, sizes)
        # the solution for one variable may use another's solution (Σ̂ uses μ̂): solve in wrt order
        for other in problem["wrt"]:
            if other == wrt:
                break
            ns[other] = values[other] = np.asarray(eval(_result(out, pid, other, "solution")["numpy"], ns), dtype=float)
        x_star = np.asarray(eval(result["numpy"], ns), dtype=float)
        x0 = np.asarray(values[wrt], dtype=float)
        assert x_star.shape == x0.shape
        f_of = lambda xv, values=values: F[pid]({**values, wrt: xv})  # noqa: E731
        typical = np.linalg.norm(numerical_gradient(f_of, x0))
        at_star = np.linalg.norm(numerical_gradient(f_of, x_star))
        assert at_star <= 1e-6 * max(typical, 1.0), f"{pid}: |grad f| = {at_star:.2e} at the solution"


NUMERATOR = [(pid, wrt) for pid, p in PROBLEMS.items()
             if _scalar_valued(p) and p.get("layout") == "numerator" for wrt in p["wrt"]]


@pytest.mark.parametrize("pid, wrt", NUMERATOR, ids=[f"{p}-{w}" for p, w in NUMERATOR])
def test_numerator_layout_gradient_is_the_transpose(build, pid, wrt):
    _, out = build
    result = _result(out, pid, wrt)
    assert result["layout"] == "numerator" and result["note"]
    values, sizes = sample_inputs(pid, 0)
    got = np.asarray(eval(result["numpy"], _namespace(values, sizes)), dtype=float)
    x0 = np.asarray(values[wrt], dtype=float)
    want = numerical_gradient(lambda xv: F[pid]({**values, wrt: xv}), x0).T
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


SYMMETRIC = [(pid, wrt) for pid, p in PROBLEMS.items() if p.get("constrain_symmetric") for wrt in p["wrt"]]


@pytest.mark.parametrize("pid, wrt", SYMMETRIC, ids=[f"{p}-{w}" for p, w in SYMMETRIC])
def test_symmetric_gradient_on_symmetric_directions(build, pid, wrt):
    _, out = build
    result = _result(out, pid, wrt)
    assert result["symmetric"] is True
    values, sizes = sample_inputs(pid, 0)
    g = np.asarray(eval(result["numpy"], _namespace(values, sizes)), dtype=float)
    rng = np.random.default_rng(7)
    x0 = np.asarray(values[wrt], dtype=float)
    for _ in range(3):
        w = rng.standard_normal(x0.shape)
        w = (w + w.T) / 2
        h = 1e-5
        df = (F[pid]({**values, wrt: x0 + h * w}) - F[pid]({**values, wrt: x0 - h * w})) / (2 * h)
        assert abs(np.sum(np.triu(g * w)) - df) <= 1e-6 * max(1.0, abs(df))

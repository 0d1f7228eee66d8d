"""Issue 11, item 8: fuzzing the loader, the parser and the whole pipeline (no traceback ever).

Random bytes, random YAML documents, mutated example problems and random expression strings
go to `load_problem` / `load_problem_text`, `parse_expr` and `problem_document`. The only
exception that may come out is a `DerivgenError` carrying a location, and `problem_document`
never answers with an "internal error … a bug" for them. A property that accepts a clean error
also bounds how often it refuses where it should not: generated valid expressions are all
accepted, and most generated valid problems build.

Every run is derandomised (CI sees the same examples each time), as in the other property tests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivgen.errors import DerivgenError
from derivgen.parse import Scope, parse_expr
from derivgen.pipeline import problem_document
from derivgen.problem import PROBLEM_KEYS, load_problem, load_problem_text

from test_properties import VARIABLES, functions  # noqa: E402  (the valid-expression generator)

SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "problems").glob("n*.yaml"))
EXAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
_TMP = tempfile.TemporaryDirectory(prefix="derivgen-fuzz-")  # hypothesis re-runs a test: no function fixture
TMP = Path(_TMP.name)


def _write(name: str, data: bytes | str) -> Path:
    path = TMP / f"{name}.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return path


def _clean(err: DerivgenError, path: str | None) -> None:
    assert err.location is not None, f"{type(err).__name__} without a location: {err.message}"
    if path is not None:
        assert err.location.file == path, (err.location, path)
    assert "bug" not in err.render().lower(), err.render()


# ----------------------------------------------------------------------------- bytes and YAML

# what contributed files get wrong, and what attackers write
NASTY = [
    "\x00", "\ufeff", "\t", "\r", "\x85", "\u2028", ": ", "- ", "&a ", "*a", "!!python/object:os.system ", "!x ",
    "{", "}", "[", "]", "'", '"', "|", ">", "#", "%YAML 1.1\n", "---\n", "...\n", "\\U0010FFFF", "\\UFFFFFFFF",
    "function: ", "wrt: ", "variables: ", "where: ", "indices: ", "[100000000]", "[0]", "[-1]", "1e999",
    "^1000000", "9" * 5000, "(" * 200, ")" * 200, "x'*x + " * 50, "np", "lambda", "sum(t, ", "order: 2\n",
]


@st.composite
def mutated(draw, texts=EXAMPLE_TEXTS) -> str:
    """An example problem with a few edits: characters deleted, replaced or inserted."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        piece = draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=3)))
        edit = draw(st.sampled_from(["insert", "replace", "delete"]))
        if edit == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)):]
        elif edit == "replace":
            text = text[:i] + piece + text[i + len(piece):]
        else:
            text = text[:i] + piece + text[i:]
    return text


@settings(max_examples=300, **SETTINGS)
@given(st.one_of(st.binary(max_size=2000), mutated().map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_random_bytes_load_or_give_a_located_error(data):
    path = _write("bytes", data)
    try:
        load_problem(path)
    except DerivgenError as err:
        _clean(err, str(path))


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True), st.text(max_size=30),
    st.sampled_from(["n", "m", "X", "x", "tr(X)", "x'*x", "[n]", "symmetric", "np", "1e999", "2^99999"]),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(PROBLEM_KEYS), st.text(max_size=8), st.integers()), inner,
                        max_size=5),
    ),
    max_leaves=20,
)


@settings(max_examples=300, **SETTINGS)
@given(st.dictionaries(st.sampled_from(PROBLEM_KEYS), yaml_values, max_size=len(PROBLEM_KEYS)) | yaml_values,
       st.sampled_from([None, "flow", "block"]))
def test_random_yaml_documents_load_or_give_a_located_error(document, style):
    text = yaml.safe_dump(document, allow_unicode=True,
                          default_flow_style={"flow": True, "block": False}.get(style), sort_keys=False)
    try:
        load_problem_text(text, "fuzz.yaml")
    except DerivgenError as err:
        _clean(err, "fuzz.yaml")


@settings(max_examples=300, **SETTINGS)
@given(mutated())
def test_problem_document_of_a_mutated_problem_never_reports_a_bug(text):
    path = _write("mutated", text)
    doc = problem_document(path)
    if not doc["ok"]:
        error = doc["error"]
        assert error["location"] is not None and error["location"].startswith(str(path)), error
        assert "bug" not in error["rendered"].lower(), error["rendered"]


# ----------------------------------------------------------------------------- expression strings

TOKENS = ["X", "A", "x", "a", "s", "n", "np", "I", "1", "0", "2", "0.5", "1e-3", "1e31", "9" * 40, "^", ".^", "'",
          "^T", "^-1", "^1000000", "^(2^64)", "*", ".*", "/", "./", "+", "-", "(", ")", ",", "tr(", "inv(", "exp(",
          "sum(", "sum(t, ", "norm(", "sigma(", "ones(", "eye(100000000)", "kron(", "vec(", " ", "[", "!", "\\"]


def _scope() -> Scope:
    scope = Scope()
    for name, shape in VARIABLES.items():
        scope.declare(name, shape)
    scope.dims = {"m", "n", "p"}
    return scope


@settings(max_examples=500, **SETTINGS)
@given(st.one_of(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=40).map("".join),
    st.text(min_size=1, max_size=60),
    st.tuples(st.sampled_from(["sigma(", "-", "(", "x'*", "2*"]), st.integers(1, 300)).map(lambda t: t[0] * t[1] + "s"),
    st.tuples(st.sampled_from(["s + ", "s * ", "x' * x - ", "C * "]), st.integers(1, 1200)).map(lambda t: t[0] * t[1] + "s"),
))
def test_random_expression_strings_parse_or_give_a_located_error(source):
    try:
        parse_expr(source, _scope())
    except DerivgenError as err:
        assert err.location is not None and err.location.column is not None, err.render()
        assert "bug" not in err.render().lower()


# ----------------------------------------------------------------------------- valid input is accepted


@settings(max_examples=200, **SETTINGS)
@given(functions())
def test_generated_valid_functions_are_all_accepted(text):
    """The limits never refuse what the property tests' generator writes (coursework-like)."""
    assert parse_expr(text, _scope()).is_scalar


def _problem(function: str, wrt: str) -> str:
    dims = {name: [str(d) for d in shape if d != 1] for name, shape in VARIABLES.items()}  # (n, 1) -> [n]
    variables = "".join(f"  {name}: [{', '.join(d)}]\n" for name, d in dims.items())
    return (f"variables:\n{variables}assume:\n  S: [symmetric]\n  C: [invertible]\n"
            f"function: \"{function}\"\nwrt: [{wrt}]\n")


@settings(max_examples=12, **SETTINGS)
@given(st.lists(st.tuples(functions(max_depth=3), st.sampled_from(["X", "x", "C"])), min_size=5, max_size=5))
def test_generated_valid_problems_mostly_build_and_never_report_a_bug(cases):
    built = 0
    for i, (function, wrt) in enumerate(cases):
        doc = problem_document(_write(f"valid{i}", _problem(function, wrt)))
        if doc["ok"]:
            built += 1
        else:
            assert "bug" not in doc["error"]["rendered"].lower(), doc["error"]["rendered"]
    assert built >= 4, f"only {built} of {len(cases)} valid problems built"

"""derivgen's Python API: derive one function, load a problem file, build a problem set.

Three functions, for scripts, notebooks and the integrations (the command line, the Sphinx
extension and the MkDocs plugin are thin layers over them)::

    import derivgen

    d = derivgen.derive("x'*A*x", x="n", A=("n", "n"), assume={"A": "symmetric"}, wrt="x")
    d.text           # "2*A*x"            — the expression syntax (parses back to the same value)
    d.latex          # "2 A x"            — LaTeX
    d.numpy          # "2 * A @ x"        — a Python expression over np and the variable names
    d.steps          # [Step(...), ...]   — each line of the derivation with the rules it uses
    d.verification   # Verification(passed=True, max_rel_error=..., trials=3, ...)

    problem = derivgen.load_problem("problems/least_squares.yaml")
    derivgen.derive(problem).text

    result = derivgen.build(["problems/"], "out", formats="md,html", lang="en")
    result.failed    # ids of the problems that failed (their errors: result.docs / result.errors)

Every function raises a `derivgen.DerivgenError` subclass (with the file, line and column of
the mistake and a hint) for bad input; none prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DerivgenError, ProblemError
from .problem import Problem, SetConfig

__all__ = [
    "Derivation", "Result", "Step", "Verification", "BuildSet",
    "derive", "load_problem", "build", "check", "find_set", "build_set", "check_set", "CheckReport",
    "set_document", "parse_formats",
]



# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Step:
    """One line of a derivation: what it produced and the rules (ids, see `derivgen rules`) it uses.

    `lhs` is set on the first line of a block (``df``, ``∂f/∂x``, ``dY``); `rel` is the
    relation written before the line (``=``, or ``⟺`` in a solution)."""

    text: str
    latex: str
    rules: tuple[str, ...]
    lhs: str | None = None
    lhs_latex: str | None = None
    rel: str = "="
    block: str = ""

    def __str__(self) -> str:
        head = f"{self.lhs} {self.rel} " if self.lhs else f"{self.rel} "
        return head + self.text + (f"    [{', '.join(self.rules)}]" if self.rules else "")


@dataclass(frozen=True)
class Verification:
    """How a result was checked: finite differences at `trials` random points, `checks` in all."""

    passed: bool
    max_rel_error: float
    tolerance: float
    trials: int
    checks: int
    sizes: dict[str, int] = field(default_factory=dict)  # the size given to each dimension symbol

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={n}" for k, n in self.sizes.items())
        return (f"verified at {self.trials} random points ({self.checks} checks"
                f"{', sizes ' + sizes if sizes else ''}); largest relative error {self.max_rel_error:.1e}")


@dataclass(frozen=True)
class Result:
    """One result of a problem: the gradient (or Jacobian, Hessian, solution) for one variable."""

    wrt: str
    kind: str  # "gradient", "jacobian", "hessian" or "solution"
    lhs: str  # e.g. "∂f/∂x"
    text: str  # the result in the expression syntax
    latex: str
    numpy: str  # a Python expression over `np` and the variable names (see the README)
    steps: tuple[Step, ...]
    verification: Verification
    layout: str = "denominator"
    note: str | None = None

    def __str__(self) -> str:
        return f"{self.lhs} = {self.text}"

    def __repr__(self) -> str:
        return f"<derivgen.Result {self.lhs} = {self.text} ({len(self.steps)} steps, {_verified(self.verification)})>"


class Derivation:
    """The derivations of one problem, verified: one `Result` per variable of `wrt` (and kind).

    `.text`, `.latex`, `.numpy`, `.steps` and `.verification` are those of the first result —
    the only one for a single `wrt` — and ``d["X"]`` is the (first) result for variable X.
    `.document` is the full problem document (the dict the templates render; `docs/schema.md`).
    """

    def __init__(self, problem: Problem, document: dict):
        self.problem = problem
        self.document = document
        self.results: tuple[Result, ...] = tuple(_result(r) for r in document["results"])

    @property
    def first(self) -> Result:
        """The first result (the only one when `wrt` names one variable)."""
        return self.results[0]

    text = property(lambda self: self.first.text, doc="The first result in the expression syntax.")
    latex = property(lambda self: self.first.latex, doc="The first result in LaTeX.")
    numpy = property(lambda self: self.first.numpy, doc="The first result as a NumPy expression.")
    steps = property(lambda self: self.first.steps, doc="The lines of the first result's derivation.")
    verification = property(lambda self: self.first.verification, doc="How the first result was checked.")

    @property
    def function(self) -> str:
        """The function, as written."""
        return self.problem.function.text

    def __getitem__(self, wrt: str) -> Result:
        for result in self.results:
            if result.wrt == wrt:
                return result
        raise KeyError(f"no result for {wrt!r} (results for: {', '.join(r.wrt for r in self.results)})")

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __str__(self) -> str:
        lines = [f"f = {self.function}"]
        for result in self.results:
            lines += ["", f"{result.lhs}:"] + [f"  {step}" for step in result.steps]
            lines += [f"  result: {result}", f"  {result.verification}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        shown = "; ".join(f"{r.lhs} = {r.text}" for r in self.results)
        steps = sum(len(r.steps) for r in self.results)
        ok = all(r.verification.passed for r in self.results)
        return f"<derivgen.Derivation f = {self.function}: {shown} ({steps} steps, {'verified' if ok else 'NOT verified'})>"


def _verified(v: Verification) -> str:
    return f"verified, max rel. error {v.max_rel_error:.1e}" if v.passed else "NOT verified"


def _result(r: dict) -> Result:
    v = r["verification"]
    steps = tuple(
        Step(text=s["text"], latex=s["latex"], rules=tuple(s["rules"]), lhs=s.get("lhs"),
             lhs_latex=s.get("lhs_latex"), rel=s.get("rel") or "=", block=s.get("block", ""))
        for s in r["steps"]
    )
    verification = Verification(passed=bool(v["passed"]), max_rel_error=float(v["max_rel_error"]),
                                tolerance=float(v["tolerance"]), trials=int(v["trials"]),
                                checks=int(v["checks"]), sizes=dict(v["sizes"]))
    return Result(wrt=r["wrt"], kind=r["kind"], lhs=r["lhs"], text=r["text"], latex=r["latex"],
                  numpy=r["numpy"], steps=steps, verification=verification, layout=r.get("layout", "denominator"),
                  note=r.get("note"))


# ----------------------------------------------------------------------------- derive


def load_problem(path: str | Path) -> Problem:
    """Read and validate a problem file (YAML, loaded safely); its id is the file name's stem.

    Raises `derivgen.ProblemError` (or another `DerivgenError`) located at the offending key.
    """
    from .problem import load_problem as _load

    return _load(path)


def derive(
    function: str | Problem | Path,
    *,
    wrt: str | Sequence[str] | None = None,
    assume: Mapping[str, str | Sequence[str]] | None = None,
    where: Mapping[str, str] | None = None,
    variables: Mapping[str, Any] | None = None,
    order: int = 1,
    layout: str | None = None,
    solve: bool = False,
    detail: str | None = None,
    lang: str = "en",
    **shapes: Any,
) -> Derivation:
    """Derive and verify the derivative of `function`; returns a `Derivation`.

    `function` is an expression in derivgen's syntax (``"tr(A*X*B*X'*C)"``), a `Problem`
    (from `load_problem`) or the path of a problem file. For an expression, give each
    variable's shape as a keyword — ``x="n"`` a vector of n entries, ``A=("m", "n")`` (or
    ``"m,n"``) a matrix, ``s=()`` a scalar, a dimension a letter or a positive integer — or in
    `variables` (for names that clash with the parameters). `wrt` is the variable (or list of
    variables) to differentiate with respect to; it may be left out when there is one
    variable. `assume` maps names to assumptions (``{"A": "symmetric"}`` or
    ``{"S": ["spd"]}``), `where` holds ordered intermediate definitions (``{"Y": "sigma(W*X)"}``).
    `order=2` adds the Hessian, `layout="numerator"` switches the layout, `solve=True` also
    solves ∂f/∂X = 0, `detail` ("brief", "normal" — the default — or "full", one rule per
    line) sets how fine the steps are.

    Every step and result is checked numerically before it is returned; a mistake in the input
    or a derivation that cannot be done or verified raises a `DerivgenError` subclass.
    """
    from .pipeline import document, solve as _solve

    if isinstance(function, Problem):
        problem = function
    elif isinstance(function, Path) or (isinstance(function, str) and function.strip().endswith((".yaml", ".yml"))):
        problem = load_problem(function)  # a ProblemError when there is no such file
    else:
        problem = _problem_from(str(function), wrt, assume, where, {**(variables or {}), **shapes},
                                order, layout, solve)
    if detail is not None:
        from .derive.detail import check

        try:
            problem.options["detail"] = check(detail)
        except ValueError as err:
            raise ProblemError(str(err)) from None
    return Derivation(problem, document(_solve(problem), lang))


def _problem_from(function, wrt, assume, where, shapes, order, layout, solve) -> Problem:
    """A Problem from keyword arguments, validated exactly like a problem file."""
    import yaml

    from .problem import load_problem_text

    if not shapes:
        raise ProblemError("no variables given", hint='give each variable\'s shape, e.g. derive("x\'*A*x", x="n", A=("n", "n"))')
    if wrt is None:
        if len(shapes) != 1:
            raise ProblemError("wrt is required when there are several variables",
                               hint=f"e.g. wrt={next(iter(shapes))!r}")
        wrt = next(iter(shapes))
    data: dict[str, Any] = {"variables": {name: list(_shape(spec)) for name, spec in shapes.items()}}
    if assume:
        data["assume"] = {name: [a] if isinstance(a, str) else list(a) for name, a in assume.items()}
    if where:
        data["where"] = dict(where)
    data["function"] = function
    data["wrt"] = [wrt] if isinstance(wrt, str) else list(wrt)
    if order != 1:
        data["order"] = order
    if layout:
        data["layout"] = layout
    if solve:
        data["solve"] = True
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return load_problem_text(text, "<derivgen.derive>", "expr")


def _shape(spec: Any) -> tuple:
    """``"n"`` → (n,), ``"m,n"`` → (m, n), ``""``/``()`` → (), 3 → (3,), ("m", 2) → (m, 2)."""
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
    elif isinstance(spec, int) and not isinstance(spec, bool):
        parts = [spec]
    elif isinstance(spec, Sequence):
        parts = list(spec)
    else:
        raise ProblemError(f"a shape is a dimension or a tuple of them, not {type(spec).__name__}",
                           hint='e.g. x="n", A=("m", "n"), s=()')
    return tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in parts)


# ----------------------------------------------------------------------------- build


@dataclass
class BuildSet:
    """What a build is about to do: the set settings, the problem files, formats and language."""

    config: SetConfig
    paths: list[Path]
    formats: list[str]
    lang: str
    refused: list[DerivgenError] = field(default_factory=list)  # files leading out of their set

    @property
    def templates(self) -> str | None:
        """The set's template folder (`templates:` of derivgen.yaml), or None."""
        return str(self.config.templates_dir) if self.config.templates_dir else None


def parse_formats(value: str | Iterable[str] | None, configured: Iterable[str] | None = None) -> list[str]:
    """The formats asked for (``"md,json"`` or a list), else `configured`, else md and json."""
    from .build import FORMATS

    if isinstance(value, str):
        chosen = value.split(",")
    elif value is not None:
        chosen = list(value)
    else:
        chosen = list(configured or ("md", "json"))
    chosen = [f.strip() for f in chosen if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise DerivgenError(f"unknown format {unknown[0]!r}", hint=f"choose among {', '.join(FORMATS)}")
    return chosen


def find_set(paths: str | Path | Iterable[str | Path], formats: str | Iterable[str] | None = None,
             lang: str | None = None) -> BuildSet:
    """The problem files named by `paths` (files or set folders) with the set's settings.

    `formats` and `lang` default to the set file's `formats:` and `language:`. A problem file
    that leads out of its set (a symlink) is not read: it is kept in `refused`. Raises a
    `DerivgenError` for a path that does not exist or an unknown format."""
    from .problem import find_problems

    if isinstance(paths, (str, Path)):
        paths = [paths]
    refused: list[DerivgenError] = []
    config, found = find_problems(list(paths), refused)
    chosen = parse_formats(formats, config.formats)
    if lang is not None and lang not in ("en", "zh"):
        raise DerivgenError(f"unknown language {lang!r}", hint="choose en or zh")
    return BuildSet(config, found, chosen, lang or config.language or "en", refused)


def build_set(found: BuildSet, out: str | Path, templates: str | None = None, *, placeholders: bool = False,
              on_wait: Callable[[str], None] | None = None,
              progress: Callable[[str, int, int], None] | None = None, self_check: str | bool | None = None,
              assets_url: str | None = None):
    """Build `found` (from `find_set`) into the folder `out`; returns the `BuildResult`.

    `templates` is a folder of template overrides (the set's own one is not added here: pass
    ``found.templates``). `progress`, if given, is called as ``progress(stage, done, total)``
    while documents are derived (stage ``"documents"``, those not in the cache) and PDFs
    compiled (``"pdfs"``). `self_check` ("sheets", "all" or False) overrides the set's
    `self_check:` for the problems that do not say (the HTML self-check boxes). `assets_url`: where
    the HTML pages link their CSS and scripts (default: the ``derivgen-assets/`` folder written
    beside them, which is written in any case). Raises `DerivgenError` only when the output folder cannot be used;
    a problem that fails is in the result (``result.failed``, its document's ``error``), as is
    every other error (``result.errors``)."""
    from .build import Builder

    builder = Builder(Path(out), found.formats, found.lang, templates, found.config,
                      placeholders=placeholders, on_wait=on_wait, progress=progress, self_check=self_check,
                      assets_url=assets_url)
    result = builder.run(found.paths, lambda docs: set_document(found.config, docs, found.lang))
    result.errors[:0] = found.refused
    return result


def build(paths: str | Path | Iterable[str | Path], out: str | Path = "out", *,
          formats: str | Iterable[str] | None = None, lang: str | None = None, templates: str | Path | None = None,
          placeholders: bool = False):
    """Derive, verify and write handouts for problem files or set folders into `out`.

    Does what ``derivgen build PATHS -o OUT --format FORMATS --lang LANG`` does, printing
    nothing: `formats` (``"md,json,html"`` or a list among md, json, html, tex, pdf) and `lang`
    (en, zh) default to the set's `derivgen.yaml`, `templates` to its `templates:` folder.
    Returns the `derivgen.build.BuildResult`: ``.docs`` (one document per problem, ``ok`` or
    with its ``error``), ``.failed`` (ids), ``.errors`` (other errors, e.g. a PDF that did not
    compile), ``.written``, ``.unchanged``. Raises `DerivgenError` when the paths or formats
    are wrong or the output folder cannot be used."""
    found = find_set(paths, formats, lang)
    return build_set(found, out, str(templates) if templates else found.templates, placeholders=placeholders)


@dataclass
class CheckReport:
    """What `check` found: one document per problem (``ok`` or with its ``error``), other errors."""

    docs: list[dict]
    errors: list[DerivgenError] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """The ids of the problems that could not be read, derived or verified."""
        return [d["id"] for d in self.docs if not d["ok"]]

    @property
    def ok(self) -> bool:
        """True when every problem derived and verified, and nothing else was wrong."""
        return not self.failed and not self.errors

    def summary(self) -> str:
        """One line: how many problems and results were checked, and what failed."""
        good = [d for d in self.docs if d["ok"]]
        n = sum(len(d["results"]) for d in good)
        if not self.docs:
            head = "no problem found"
        else:
            head = (f"checked {len(self.docs)} problem{'s' if len(self.docs) != 1 else ''}: "
                    f"{len(good)} derived and verified ({n} result{'s' if n != 1 else ''})")
        parts = [head]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({', '.join(self.failed[:4])}{', …' if len(self.failed) > 4 else ''})")
        if self.errors:
            parts.append(f"{len(self.errors)} other error{'s' if len(self.errors) != 1 else ''}")
        return "; ".join(parts) + "; nothing written"


def check_set(found: BuildSet) -> CheckReport:
    """Read, derive and verify every problem of `found` as a build would, writing nothing.

    Each problem runs in a worker process within the build's time and memory limits. With
    tex, pdf or html among the formats, statements' formulas that those formats would refuse
    are errors too (as in a build)."""
    from .worker import problem_documents

    docs = problem_documents(found.paths, found.lang, layout=found.config.layout or "denominator")
    errors = list(found.refused)
    if {"tex", "pdf", "html"} & set(found.formats):
        from .latex import statement_math_errors

        for doc in docs:
            if doc["ok"]:
                errors.extend(statement_math_errors(doc))
    return CheckReport(docs, errors)


def check(paths: str | Path | Iterable[str | Path], *, formats: str | Iterable[str] | None = None,
          lang: str | None = None) -> CheckReport:
    """Derive and verify every problem named by `paths` (files or set folders); write nothing.

    What ``derivgen check`` does: returns a `CheckReport` (``.ok``, ``.failed``, ``.docs``,
    ``.errors``, ``.summary()``). Raises `DerivgenError` for a path that does not exist."""
    return check_set(find_set(paths, formats, lang))


def set_document(config: SetConfig, docs: list[dict], lang: str) -> dict:
    """The set document: header from derivgen.yaml, the problems, the union of their rules."""
    from .rules import rules_list

    ids = [r["id"] for d in docs for r in d["rules"]]
    return {
        "title": config.title or "Matrix calculus",
        "course": config.course,
        "author": config.author,
        "date": config.date,
        "language": lang,
        "problems": docs,
        "rules": rules_list(ids, lang),
    }

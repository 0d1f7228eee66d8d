"""Per-student variants: the `vary:` key of a problem file, and builds of one variant each.

`vary:` says what differs between variants, in one of two forms (docs/schema.md):

```yaml
vary:                       # independent choices: a variant takes one alternative of each key
  function: ["tr(A*X*B)", "tr(A*X*B*B'*X'*A')"]
  variables.B: [[n, p], [n, n]]
```

```yaml
vary:                       # alternatives that go together: a variant is one list item
  - {function: "tr(A*X)", variables.A: [n, m]}
  - {function: "logdet(A*X)", variables.A: [n, n]}
```

A key is a top-level key of the problem file (any but `vary`), or a path into one: `variables.A`,
`assume.B`, `where.Y`, `wrt.0`. A path may name a new entry of a mapping (`variables.C`, `assume.A` in a file
without `assume:`); an alternative `null` removes the entry. The file as written (without `vary:`) is what a normal
build shows; variants draw only from the alternatives.

Everything is done on the composed YAML nodes, which keep their place in the file: a variant is
the problem's root node with the chosen alternatives' nodes put in, read by the ordinary problem
loader (`problem.load_problem_text(..., variant=...)`). So an error in an alternative points at the
alternative in the file, and every alternative is checked (read and parsed) whenever the file
is loaded. `derivgen build DIR --variants N --seed S` (or `--students roster.csv`) builds
one complete, verified folder per variant or student through `derivgen.build.Builder`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import DerivgenError, Location, ProblemError

#: At most this many variants of one problem (the product of the alternatives' counts).
MAX_VARIANTS = 100_000
#: At most this many alternatives in all (each is read and parsed when the file is loaded).
MAX_ALTERNATIVES = 200
#: Every combination is read and parsed when there are at most this many; else each alternative once.
CHECK_ALL_UP_TO = 64
#: Student ids: what can name a folder on every system.
_STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
_TAKEN = ("variants.json", "variants.csv")  # the manifest's names, next to the folders
_STR = "tag:yaml.org,2002:str"
_EXAMPLE = "`vary: {function: [\"tr(A*X)\", \"tr(X'*A)\"]}`"


@dataclass(frozen=True)
class Vary:
    """The validated `vary:` of a problem: its keys, and the alternatives as nodes of the file."""

    keys: tuple[str, ...]  # the paths, as written (`variables.A`)
    paths: tuple[tuple[str, ...], ...]
    # mapping form: one list of alternative nodes per key; list form: one list of items, each a
    # tuple with a node (or None: the key is not overridden by this item) per key
    alternatives: tuple[tuple[object, ...], ...]
    combined: bool  # True for the list form (each item one variant)
    location: Location | None = None

    @property
    def count(self) -> int:
        if self.combined:
            return len(self.alternatives)
        total = 1
        for alts in self.alternatives:
            total *= len(alts)
        return total

    def choice(self, index: int) -> dict[str, int]:
        """The alternative each key takes in variant `index` (0-based), by key."""
        if self.combined:
            return {"item": index}
        out = {}
        for key, alts in zip(reversed(self.keys), reversed(self.alternatives)):
            index, out[key] = divmod(index, len(alts))
        return dict(reversed(list(out.items())))

    def overrides(self, index: int) -> list[tuple[tuple[str, ...], Node | None, bool]]:
        """(path, node, set) for variant `index`: `set` False leaves the path as written."""
        if self.combined:
            return [(p, None if n is _KEEP else n, n is not _KEEP) for p, n in zip(self.paths, self.alternatives[index])]
        choice = self.choice(index)
        return [(p, alts[choice[k]], True) for k, p, alts in zip(self.keys, self.paths, self.alternatives)]


# ----------------------------------------------------------------------------- reading `vary:`


def read_vary(src, node: Node, problem_keys: tuple[str, ...]) -> Vary:
    """The `vary:` node of a problem file, validated (a ProblemError located in the file)."""
    from . import problem as P

    loc = src.at(node)
    if isinstance(node, MappingNode):
        keys, paths, alternatives = [], [], []
        for name, key, value in P._entries(src, node, "vary", _EXAMPLE):
            path = _path(src, name, key, problem_keys)
            items = P._items(src, value, f"the alternatives of '{name}'", f"`{name}: [first, second]`")
            if not items:
                raise src.error(f"'{name}' lists no alternatives", value, hint="give a list of at least one")
            keys.append(name)
            paths.append(path)
            alternatives.append(tuple(None if P._is_null(n) else n for n in items))
        if not keys:
            raise src.error("vary lists nothing", node, hint=f"for example: {_EXAMPLE}")
        vary = Vary(tuple(keys), tuple(paths), tuple(alternatives), False, loc)
    elif isinstance(node, SequenceNode):
        items = P._items(src, node, "vary", _EXAMPLE)
        if not items:
            raise src.error("vary lists no variants", node, hint=f"for example: {_EXAMPLE}")
        keys: list[str] = []
        paths = []
        rows: list[dict[str, Node | None]] = []
        for item in items:
            row = {}
            for name, key, value in P._entries(src, item, "a variant under vary",
                                               "`- {function: \"tr(A*X)\", variables.A: [n, m]}`"):
                path = _path(src, name, key, problem_keys)
                if name not in keys:
                    keys.append(name)
                    paths.append(path)
                row[name] = None if P._is_null(value) else value
            if not row:
                raise src.error("this variant changes nothing", item, hint="give at least one `key: value`")
            rows.append(row)
        alternatives = tuple(tuple(row.get(k, _KEEP) for k in keys) for row in rows)
        vary = Vary(tuple(keys), tuple(paths), alternatives, True, loc)
    else:
        raise src.error(f"vary must be a mapping or a list, not {P._kind(node)}", node, hint=f"for example: {_EXAMPLE}")
    listed = len(vary.alternatives) if vary.combined else sum(len(alts) for alts in vary.alternatives)
    if listed > MAX_ALTERNATIVES:
        raise src.error(f"vary lists {listed} alternatives; at most {MAX_ALTERNATIVES} are allowed", node,
                        hint="list fewer alternatives (each one is read and checked)")
    if vary.count > MAX_VARIANTS:
        raise src.error(f"vary gives {vary.count} variants; at most {MAX_VARIANTS} are allowed", node,
                        hint="list fewer alternatives")
    for i, (p, k) in enumerate(zip(vary.paths, vary.keys)):
        for q, other in zip(vary.paths[i + 1:], vary.keys[i + 1:]):
            if p[:len(q)] == q or q[:len(p)] == p:
                raise ProblemError(f"'{k}' and '{other}' overlap: one is inside the other", loc,
                                   hint=f"vary either '{k}' or '{other}'")
    return vary


class _Keep:
    """In the list form: a key this item does not change (None, written `null`, removes it)."""

    def __repr__(self) -> str:
        return "KEEP"


_KEEP = _Keep()


def _path(src, name: str, key: ScalarNode, problem_keys: tuple[str, ...]) -> tuple[str, ...]:
    parts = tuple(name.split("."))
    top = parts[0]
    if top == "vary":
        raise src.error("vary cannot vary itself", key)
    if top not in problem_keys:
        from .problem import _did_you_mean

        raise src.error(f"unknown key '{top}' under vary", key,
                        hint=_did_you_mean(top, [k for k in problem_keys if k != "vary"], "keys that can vary are"))
    if any(not part for part in parts):
        raise src.error(f"'{name}' is not a path", key, hint="write a key, or key.name: `function`, `variables.A`")
    return parts


# ----------------------------------------------------------------------------- applying a variant


def _entry_key(value: str, mark_node: Node) -> ScalarNode:
    return ScalarNode(_STR, value, mark_node.start_mark, mark_node.end_mark)


def _replace(node: Node | None, path: tuple[str, ...], value: Node | None, where: Node, src) -> Node | None:
    """`node` with the part at `path` replaced by `value` (None removes it); nodes copied on the way."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, MappingNode):
        entries = list(node.value)
        for i, (k, v) in enumerate(entries):
            if isinstance(k, ScalarNode) and k.value == head:
                new = _replace(v, rest, value, where, src)
                if new is None:
                    del entries[i]
                else:
                    entries[i] = (k, new)
                break
        else:  # a new entry (and the mappings on its way: `assume.A` in a file without `assume:`)
            if rest:
                value = _replace(MappingNode("tag:yaml.org,2002:map", [], where.start_mark, where.end_mark, True),
                                 rest, value, where, src)
            if value is not None:
                entries.append((_entry_key(head, where), value))
        return MappingNode(node.tag, entries, node.start_mark, node.end_mark, node.flow_style)
    if isinstance(node, SequenceNode):
        if not head.isdigit() or int(head) >= len(node.value):
            raise src.error(f"'{head}' is not an item of this list (0 to {len(node.value) - 1})", where)
        items = list(node.value)
        new = _replace(items[int(head)], rest, value, where, src)
        if new is None:
            del items[int(head)]
        else:
            items[int(head)] = new
        return SequenceNode(node.tag, items, node.start_mark, node.end_mark, node.flow_style)
    raise src.error(f"cannot vary '{head}' inside a value that is not a mapping or a list", where)


def variant_root(src, root: MappingNode, vary: Vary, index: int) -> MappingNode:
    """The root node of variant `index`: `vary:` removed, the chosen alternatives put in."""
    entries = [(k, v) for k, v in root.value if not (isinstance(k, ScalarNode) and k.value == "vary")]
    node: Node = MappingNode(root.tag, entries, root.start_mark, root.end_mark, root.flow_style)
    vary_key = next(k for k, _ in root.value if isinstance(k, ScalarNode) and k.value == "vary")
    for path, value, apply in vary.overrides(index):
        if apply:
            node = _replace(node, path, value, value if value is not None else vary_key, src)
    return node  # type: ignore[return-value]


def _vary_of(src, root) -> Vary | None:
    from .problem import PROBLEM_KEYS

    if not isinstance(root, MappingNode):
        return None
    for k, v in root.value:
        if isinstance(k, ScalarNode) and k.value == "vary":
            return read_vary(src, v, PROBLEM_KEYS)
    return None


def check_vary(src, node: Node, draft=None) -> None:
    """Validate `vary:` while a problem file is read (the hook in `problem.py`): its form, and
    every variant read and its expressions parsed, so that an error in an alternative is
    reported where the alternative is written. With more than CHECK_ALL_UP_TO variants, each
    alternative is checked once (with the first of the others)."""
    from .problem import PROBLEM_KEYS, _compose

    vary = read_vary(src, node, PROBLEM_KEYS)
    root = _compose(src)
    if vary.combined or vary.count <= CHECK_ALL_UP_TO:
        indices = range(vary.count)
    else:
        indices, stride = [], 1
        for alts in reversed(vary.alternatives):
            indices += [i * stride for i in range(len(alts))]
            stride *= len(alts)
    for index in sorted(set(indices)):
        try:
            _load_and_parse(src, root, vary, index)
        except DerivgenError as err:
            line = f" (line {vary.location.line})" if vary.location and vary.location.line else ""
            where = f"in variant {index + 1} of `vary:`{line}: {_describe(vary.choice(index))}"
            err.hint = f"{err.hint}; {where}" if err.hint else where
            raise


def _load_and_parse(src, root, vary: Vary, index: int):
    from .pipeline import build_context
    from .problem import load_problem_text

    problem = load_problem_text(src.text, src.file, _stem(src.file),
                                variant=lambda s, r: variant_root(s, root, vary, index))
    build_context(problem)
    return problem


def _stem(file: str | None) -> str:
    return Path(file).stem if file else "problem"


# ----------------------------------------------------------------------------- the variants of a file


@dataclass(frozen=True)
class ProblemVariants:
    """A problem file and its `vary:` (None when it has none)."""

    path: Path
    text: str
    vary: Vary | None

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def count(self) -> int:
        return self.vary.count if self.vary else 1

    def yaml(self, index: int) -> str:
        """The text of variant `index` as a problem file of its own (no `vary:`)."""
        from .problem import _compose, _Source

        src = _Source(self.text, str(self.path))
        root = _compose(src)
        body = yaml.serialize(variant_root(src, root, self.vary, index), Dumper=yaml.SafeDumper, allow_unicode=True,
                              width=1 << 16)
        return (f"# variant {index + 1} of {self.count} of {self.path.name} ({_describe(self.vary.choice(index))}),"
                " written by derivgen build --variants\n" + body)

    def values(self, index: int) -> dict[str, object]:
        """What variant `index` sets, key by key, as plain data (for the manifest)."""
        out: dict[str, object] = {}
        for key, (_, node, apply) in zip(self.vary.keys, self.vary.overrides(index)):
            if apply:
                out[key] = None if node is None else yaml.safe_load(yaml.serialize(node, Dumper=yaml.SafeDumper))
        return out


def _describe(choice: dict[str, int]) -> str:
    return ", ".join(f"{k} #{v + 1}" for k, v in choice.items())


def problem_variants(path: str | Path) -> ProblemVariants:
    """Read a problem file (validating it, `vary:` included) and its variants."""
    from .problem import _compose, _read_file, _Source, load_problem

    path = Path(path)
    load_problem(path)  # every error of the file, the alternatives' included, located
    text = _read_file(path)
    src = _Source(text, str(path))
    return ProblemVariants(path, text, _vary_of(src, _compose(src)))


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "big")


def numbered_choices(problem: ProblemVariants, n: int, seed: int) -> list[int]:
    """The variant of `problem` in each of `n` numbered folders: distinct while there are enough
    (a seeded permutation), deterministic for the seed and the problem's id."""
    count = problem.count
    rng = random.Random(_digest("numbered", seed, problem.id))
    order = rng.sample(range(count), min(n, count)) if count > 1 else [0]
    return [order[k % len(order)] for k in range(n)]


def student_choice(problem: ProblemVariants, student: str, seed: int) -> int:
    """The variant of `problem` a student gets: from the seed, the student's id and the problem's id
    alone, so it does not change when the roster does."""
    return _digest("student", seed, problem.id, student) % problem.count


def read_roster(path: str | Path) -> list[str]:
    """The student ids of a roster CSV (an `id` column), checked: each a folder name, none twice."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DerivgenError(f"cannot read the roster {path}: {getattr(exc, 'strerror', None) or exc}",
                            Location(str(path))) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "id" not in fields:
        raise DerivgenError("the roster has no `id` column", Location(str(path), 1, 1, text.splitlines()[0] if text else ""),
                            hint="the first line names the columns, e.g. `id,name`")
    column = (reader.fieldnames or [])[fields.index("id")]
    ids: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        student = (row.get(column) or "").strip()
        source = text.splitlines()[line - 1] if line - 1 < len(text.splitlines()) else None
        if not student:
            continue
        if not _STUDENT_ID.fullmatch(student) or student.casefold() in _TAKEN:
            raise DerivgenError(f"the student id {student!r} cannot name a folder", Location(str(path), line, 1, source),
                                hint="ids are letters, digits and . _ @ + - (starting with a letter or digit)")
        if student.casefold() in {s.casefold() for s in ids}:
            raise DerivgenError(f"the student id {student!r} is listed twice", Location(str(path), line, 1, source),
                                hint=f"it is first on line {ids.get(student, '?')}")
        ids[student] = line
    if not ids:
        raise DerivgenError("the roster lists no student", Location(str(path)), hint="add one id per line")
    return list(ids)


@dataclass
class Assignment:
    """Who gets what: for each folder (a variant number or a student id), each problem's variant."""

    folder: str
    choices: dict[str, int]  # problem id -> variant index (0-based)


def assign(problems: list[ProblemVariants], seed: int, n: int | None = None,
           students: list[str] | None = None) -> list[Assignment]:
    """The folders of a variants build: `n` numbered ones (v1 … vn) or one per student."""
    if students is not None:
        return [Assignment(s, {p.id: student_choice(p, s, seed) for p in problems}) for s in students]
    assert n is not None
    per_problem = {p.id: numbered_choices(p, n, seed) for p in problems}
    return [Assignment(f"v{k + 1}", {p.id: per_problem[p.id][k] for p in problems}) for k in range(n)]


def manifest(problems: list[ProblemVariants], assignments: list[Assignment], seed: int, by: str) -> dict:
    """The manifest (OUT/variants.json): for each folder and problem, the variant and what it sets."""
    folders = []
    for a in assignments:
        entry = {"id": a.folder, "folder": a.folder, "problems": {}}
        for p in problems:
            index = a.choices[p.id]
            if p.vary is None:
                entry["problems"][p.id] = {"variant": None}
            else:
                entry["problems"][p.id] = {"variant": index + 1, "of": p.count, "choice": p.vary.choice(index),
                                           "values": p.values(index)}
        folders.append(entry)
    return {"seed": seed, "by": by, "folders": folders}


def manifest_csv(data: dict) -> str:
    """The manifest as CSV: one line per folder and varied problem."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "problem", "variant", "of", "values"])
    for folder in data["folders"]:
        for pid, entry in folder["problems"].items():
            if entry["variant"] is not None:
                writer.writerow([folder["id"], pid, entry["variant"], entry["of"],
                                 json.dumps(entry["values"], ensure_ascii=False, sort_keys=True)])
    return out.getvalue()


# ----------------------------------------------------------------------------- building


VARIANT_SOURCES = ".derivgen-variants"  # inside each folder: the problem files of its variants


@dataclass
class VariantsResult:
    """What a variants build did: each folder's BuildResult, the manifest and the errors."""

    results: dict[str, object]
    manifest: dict
    errors: list[DerivgenError]


def build_variants(paths, out: str | Path, seed: int = 0, n: int | None = None, roster: str | Path | None = None,
                   formats: str | None = None, lang: str | None = None, templates: str | None = None,
                   placeholders: bool = False, on_wait=None) -> VariantsResult:
    """Build one complete folder per variant (`n` of them) or per student of `roster`, each
    through `derivgen.build.Builder`, and write the manifest OUT/variants.json and .csv.

    A problem without `vary:` is the same in every folder; a problem whose file fails to read
    is reported once and left out of every folder."""
    from .build import Builder
    from .cli import _formats, set_document
    from .output import write_atomic
    from .problem import find_problems

    out = Path(out)
    errors: list[DerivgenError] = []
    config, files = find_problems(paths, errors)
    chosen_formats = _formats(formats, config.formats)
    lang = lang or config.language or "en"
    templates = templates or (str(config.templates_dir) if config.templates_dir else None)
    students = read_roster(roster) if roster is not None else None
    problems: list[ProblemVariants] = []
    for path in files:
        try:
            problems.append(problem_variants(path))
        except DerivgenError as err:
            errors.append(err)
    assignments = assign(problems, seed, n, students)
    results = {}
    for a in assignments:
        folder = out / a.folder
        sources = []
        for p in problems:
            if p.vary is None:
                sources.append(p.path)
                continue
            generated = folder / VARIANT_SOURCES / p.path.name
            text = p.yaml(a.choices[p.id])
            try:
                if not generated.exists() or generated.read_text(encoding="utf-8") != text:
                    write_atomic(generated, text.encode("utf-8"))
            except OSError as exc:
                errors.append(DerivgenError(f"cannot write {generated}: {exc.strerror or exc}", Location(str(generated))))
                continue
            sources.append(generated)
        builder = Builder(folder, chosen_formats, lang, templates, config, placeholders=placeholders, on_wait=on_wait)

        def setdoc(docs, folder_id=a.folder):
            doc = set_document(config, docs, lang)
            doc["title"] = f"{doc['title']} — {folder_id}"
            doc["variant"] = folder_id
            return doc

        results[a.folder] = builder.run(sources, setdoc)
    data = manifest(problems, assignments, seed, "roster" if students is not None else "number")
    write_atomic(out / "variants.json", (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    write_atomic(out / "variants.csv", manifest_csv(data).encode("utf-8"))
    return VariantsResult(results, data, errors)


# ----------------------------------------------------------------------------- command line


def command(args, console) -> int:
    """`derivgen build … --variants N | --students roster.csv`: 0 when everything built, else 1 (2: usage)."""
    if args.variants is not None and args.variants < 1:
        console.error("error: --variants needs a positive number", action=None)
        return 2
    try:
        result = build_variants(args.paths, args.output, args.seed, args.variants, args.students, args.format,
                                args.lang, args.templates, args.placeholders,
                                None if args.quiet else console.info)
    except DerivgenError as err:
        console.error(err.render())
        return 2
    failed = bool(result.errors)
    for err in result.errors:
        console.error(err.render())
    reported: set[str] = set()
    for folder, r in result.results.items():
        for doc in r.docs:
            if not doc["ok"] and doc["error"]["rendered"] not in reported:
                reported.add(doc["error"]["rendered"])
                console.error(doc["error"]["rendered"])
        for err in r.errors:
            console.error(err.render())
        failed = failed or bool(r.failed or r.errors)
        if not args.quiet:
            from .cli import summary

            console.info(f"{folder}: " + summary(r, Path(args.output) / folder, args.placeholders))
    if not args.quiet:
        console.info(f"{len(result.results)} folders; who got what: {Path(args.output) / 'variants.json'}")
    return 1 if failed else 0

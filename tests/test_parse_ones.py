"""`1'`, `I` and `1*1'` in products (issue 7 item 3): each takes its size from its neighbours,
or the product is an error — never a guess, and `1'` never the scalar one.

Random chains of factors are typed by the parser and, independently, by this test's own
reading: every adjacent pair must conform, a row of ones has one row, I is square, and a size
nothing tells is unknown. Where the test's reading gives every size, the parser must give the
same value (checked in NumPy with explicit ones and identities); where a size is unknown, it
must refuse with a ShapeError. The parser may refuse none of the determined chains."""

from __future__ import annotations

import random

import numpy as np
import pytest

from derivgen.errors import ShapeError
from derivgen.numeric import evaluate
from derivgen.parse import Scope, parse_expr

SIZES = {"m": 3, "n": 4, "p": 5}
KNOWN = {"X": ("m", "n"), "X'": ("n", "m"), "C": ("m", "p"), "C'": ("p", "m"), "A": ("n", "n"),
         "x": ("n", 1), "x'": (1, "n"), "mu": ("m", 1), "mu'": (1, "m")}
FLEXIBLE = ("1'", "I", "(1*1')")


def scope() -> Scope:
    sc = Scope()
    for name, shape in {"X": ("m", "n"), "C": ("m", "p"), "A": ("n", "n"), "x": ("n", 1), "mu": ("m", 1)}.items():
        sc.declare(name, shape)
    sc.dims |= set(SIZES)
    return sc


def size(d) -> int:
    return SIZES[d] if isinstance(d, str) else d


def reading(chain: list[str]):
    """Sizes of every factor by conformity alone: a list of (rows, cols), 'conflict' or 'unknown'."""
    parent: dict = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    fixed: dict = {}
    for i, f in enumerate(chain):
        r, c = ("r", i), ("c", i)
        if f in KNOWN:
            fixed[r], fixed[c] = size(KNOWN[f][0]), size(KNOWN[f][1])
        elif f == "1'":
            fixed[r] = 1
        elif f == "I":
            parent[find(c)] = find(r)
    for i in range(len(chain) - 1):
        parent[find(("c", i))] = find(("r", i + 1))
    value: dict = {}
    for slot, v in fixed.items():
        root = find(slot)
        if value.setdefault(root, v) != v:
            return "conflict"
    sizes = []
    for i in range(len(chain)):
        rc = tuple(value.get(find((k, i))) for k in ("r", "c"))
        if None in rc:
            return "unknown"
        sizes.append(rc)
    return sizes


def degenerate(chain, sizes) -> bool:
    """A reading with a row of ones of length 1 or a 1×1 identity: no user writes `1'` for the
    number one (`1'*mu'`), so refusing it is as right as reading it."""
    return any(f in FLEXIBLE and (r == 1 and c == 1 or f == "(1*1')" and 1 in (r, c))
               for f, (r, c) in zip(chain, sizes))


def numpy_value(chain, sizes, values):
    out = None
    for f, (r, c) in zip(chain, sizes):
        if f in KNOWN:
            v = values[f.rstrip("'")]
            v = v.T if f.endswith("'") else v
        elif f == "I":
            v = np.eye(r)
        else:
            v = np.ones((r, c))
        out = v if out is None else out @ v
    return out


def chains(count: int, seed: int = 7):
    rng = random.Random(seed)
    vocabulary = list(KNOWN) + list(FLEXIBLE) * 3
    seen = set()
    while len(seen) < count:
        chain = tuple(rng.choice(vocabulary) for _ in range(rng.randint(2, 5)))
        if any(f in FLEXIBLE for f in chain) and chain not in seen:
            seen.add(chain)
            yield list(chain)


def test_products_with_rows_of_ones_and_identities() -> None:
    rng = np.random.default_rng(0)
    values = {"X": rng.standard_normal((3, 4)), "C": rng.standard_normal((3, 5)), "A": rng.standard_normal((4, 4)),
              "x": rng.standard_normal((4, 1)), "mu": rng.standard_normal((3, 1))}
    determined = refused = ambiguous_refused = ambiguous = 0
    wrong = []
    for chain in chains(600):
        source = "*".join(chain)
        want = reading(chain)
        if want == "conflict":
            continue  # a 1×1 factor may scale what follows: either reading is the user's
        try:
            got = parse_expr(source, scope())
        except ShapeError:
            got = None
        if want == "unknown":
            ambiguous += 1
            if got is None:
                ambiguous_refused += 1
            else:
                wrong.append(f"{source}: guessed {got.shape}")
            continue
        if got is None and degenerate(chain, want):
            continue
        determined += 1
        if got is None:
            refused += 1
            wrong.append(f"{source}: refused, but it reads as {want}")
            continue
        expected = numpy_value(chain, want, values)
        value = evaluate(got, values, SIZES)
        if value.shape != expected.shape or not np.allclose(value, expected):
            wrong.append(f"{source}: {value.shape} ≠ {expected.shape} or a different value")
    assert determined > 60 and ambiguous > 50, (determined, ambiguous)
    assert not wrong, "\n".join(wrong[:20])
    assert refused == 0 and ambiguous_refused == ambiguous


@pytest.mark.parametrize("source, shape", [
    ("x'*(I - 1*1'/n)*x", (1, 1)), ("x'*(1*1')*x", (1, 1)), ("x - 1*1'*x/n", ("n", 1)),
    ("mu'*1*1'*mu", (1, 1)), ("X*(I - 1*1'/n)", ("m", "n")), ("(I - 1*1'/m)*X", ("m", "n")),
])
def test_centring_and_outer_products_of_ones(source, shape) -> None:
    assert parse_expr(source, scope()).shape == shape


@pytest.mark.parametrize("source", ["1*1'*x", "x*1'", "X*1*1'", "sum(X*1*1')"])
def test_a_row_of_ones_nothing_sizes_is_an_error_with_the_fix(source) -> None:
    with pytest.raises(ShapeError) as info:
        parse_expr(source, scope())
    assert "ones(n)" in info.value.hint

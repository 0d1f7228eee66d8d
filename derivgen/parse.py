"""Expression text → typed expression tree, with shapes inferred and checked.

The grammar lives in `grammar.lark`. Parsing happens in two passes: lark builds a syntax tree
with positions, then `_Typer` walks it, inferring every shape. The constants `1`, `I` and `0`
take the size that fits where they stand (`1'*x`, `X - mu*1'`, `I - A`); `1` and `0` are the
scalar one and zero wherever a scalar fits. Every error becomes an `ExprSyntaxError` or
`ShapeError` pointing at the file, line and column of the offending spot.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import lark
from lark import Token, Tree

from . import expr as E
from . import functions, limits
from .errors import DerivgenError, ExprSyntaxError, Location, ShapeError, UnsupportedError
from .limits import LimitError
from .expr import SCALAR, Expr, Shape, shape_str

# the names a problem may call: the functions of the registry and the constructors (inv, ones, …)
USER_FUNCTIONS = frozenset(functions.USER_NAMES)
RESERVED = frozenset(USER_FUNCTIONS) | {"I", "T"}


class Located(Protocol):
    """What the parser needs from the source of an expression (see `problem.SourceText`)."""

    text: str

    def location_at(self, offset: int) -> Location: ...


@dataclass(frozen=True)
class PlainSource:
    """An expression typed on the command line or in a test: one line, no file."""

    text: str
    file: str | None = None
    line: int = 1
    column: int = 1

    def location_at(self, offset: int) -> Location:
        return Location(self.file, self.line, self.column + offset, " " * (self.column - 1) + self.text)


@dataclass
class Scope:
    """The names an expression may use: their shapes and roles."""

    shapes: dict[str, Shape] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # name -> "var" | "where"
    dims: set[str] = field(default_factory=set)  # dimension symbols, usable as scalars
    indices: dict[str, object] = field(default_factory=dict)  # index -> its range (`t: N`)
    indexed: dict[str, str] = field(default_factory=dict)  # family member x_t -> its index t

    def declare(self, name: str, shape: Shape, role: str = "var") -> None:
        self.shapes[name] = shape
        self.roles[name] = role


def shape_from_dims(dims: tuple) -> Shape:
    """`()` → scalar, `(n,)` → n×1, `(m, n)` → m×n."""
    if len(dims) == 0:
        return SCALAR
    if len(dims) == 1:
        return (dims[0], 1)
    return (dims[0], dims[1])


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_syntax(source: Located) -> Tree:
    """Text → lark tree; syntax errors become ExprSyntaxError at the right spot."""
    text = source.text
    if not text.strip():
        raise ExprSyntaxError("empty expression", source.location_at(0), "write an expression, e.g. `tr(A*X)`")
    if len(text) > limits.MAX_EXPR_CHARS:
        raise LimitError(f"the expression is longer than {limits.MAX_EXPR_CHARS} characters",
                         source.location_at(limits.MAX_EXPR_CHARS),
                         "split it into parts defined under `where:`")
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedCharacters as err:
        ch = text[err.pos_in_stream]
        hint = None
        if ch in "[{":
            hint = "use round parentheses ( ) for grouping"
        elif ch == "^":
            hint = "powers are written `A^2`, `A^-1`, `A^T`; elementwise `A.^2`"
        elif ch in "\"`":
            hint = "remove the quotes inside the expression"
        elif ch == "@" or text.startswith((".T", ".t"), err.pos_in_stream):
            hint = ("this is NumPy's notation; derivgen writes a product with `*` and a transpose with `'`: "
                    "`x'*A*x` for `x.T @ A @ x`")
        elif ch == "." and text[err.pos_in_stream + 1:err.pos_in_stream + 2].isalpha():
            hint = "elementwise operators are `.*`, `./` and `.^`; functions are called as `f(x)`"
        raise ExprSyntaxError(f"unexpected character {ch!r}", source.location_at(err.pos_in_stream), hint) from None
    except lark.exceptions.UnexpectedEOF as err:
        raise ExprSyntaxError(
            "the expression ends too early",
            source.location_at(len(text.rstrip())),
            _eof_hint(text),
        ) from None
    except lark.exceptions.UnexpectedToken as err:
        tok = err.token
        if tok.type == "$END":
            raise ExprSyntaxError(
                "the expression ends too early", source.location_at(len(text.rstrip())), _eof_hint(text)
            ) from None
        pos = tok.start_pos if tok.start_pos is not None else 0
        before = text[:pos].rstrip()
        hint = None
        if tok.type in ("NAME", "NUMBER") or tok.value == "(":
            if before and (before[-1].isalnum() or before[-1] in ")'_"):
                hint = f"missing operator before {tok.value!r}? Products are written with `*`, e.g. `2*x`"
        elif tok.value == ")":
            hint = "unbalanced parentheses: this `)` has no matching `(`" if text[:pos].count("(") <= text[:pos].count(")") else "something is missing before `)`"
        elif tok.value == ",":
            hint = "commas only separate function arguments"
        raise ExprSyntaxError(f"unexpected {tok.value!r}", source.location_at(pos), hint) from None
    check_size(tree, source)
    return tree


# binary operators whose left operand continues the same chain: `a + b - c` is one sum of three terms
_CHAINS = {"add": "sum", "sub": "sum", "mul": "product", "div": "product", "hadamard": "product", "hdiv": "product"}
_NUMBER_PARTS = re.compile(r"([0-9]*)\.?([0-9]*)(?:[eE]([+-]?)([0-9]+))?")


def check_size(tree: Tree, source: Located) -> None:
    """Refuse an expression past the limits of `derivgen.limits`: too many nodes, nested too
    deeply (a chain `a + b + c` is one level), or a number too long or too large.

    Walks the tree without recursion, so any tree lark returns can be checked."""
    nodes = 0
    stack: list[tuple[Tree, int]] = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        nodes += 1
        if nodes > limits.MAX_NODES:
            raise LimitError(f"the expression has more than {limits.MAX_NODES} parts",
                             _position(node, source), "split it into parts defined under `where:`")
        if level > limits.MAX_DEPTH:
            raise LimitError(f"the expression is nested more than {limits.MAX_DEPTH} levels deep",
                             _position(node, source), "name inner parts under `where:`")
        chain = _CHAINS.get(node.data)
        for index, child in reversed(list(enumerate(node.children))):  # popped in reading order
            if isinstance(child, Tree):
                same = index == 0 and chain is not None and _CHAINS.get(child.data) == chain
                stack.append((child, level if same else level + 1))
            elif isinstance(child, Token) and child.type == "NUMBER":
                _check_number(child, source)


def _check_number(token: Token, source: Located) -> None:
    """A number literal of at most MAX_NUMBER_DIGITS digits and a decimal exponent of at most
    MAX_NUMBER_EXPONENT (so that its exact value stays small)."""
    match = _NUMBER_PARTS.fullmatch(str(token))
    digits = len(match[1] + match[2]) if match else len(token)
    exponent = match[4] if match and match[4] else "0"
    if digits > limits.MAX_NUMBER_DIGITS or len(exponent) > 4 or int(exponent) > limits.MAX_NUMBER_EXPONENT:
        raise LimitError(f"the number {_short(str(token))} is too long or too large",
                         source.location_at(token.start_pos or 0),
                         f"numbers have at most {limits.MAX_NUMBER_DIGITS} digits and an exponent up to "
                         f"e±{limits.MAX_NUMBER_EXPONENT}")


def _short(text: str) -> str:
    return text if len(text) <= 20 else text[:17] + "…"


def _position(node: Tree, source: Located) -> Location:
    return source.location_at(0 if node.meta.empty else node.meta.start_pos)


def _eof_hint(text: str) -> str:
    opened = text.count("(") - text.count(")")
    if opened > 0:
        return f"{opened} {'parentheses' if opened > 1 else 'parenthesis'} not closed: add `)`"
    return "an operator at the end needs something after it"


def parse_expr(source: Located | str, scope: Scope) -> Expr:
    """Parse and type-check one expression against the names in `scope`."""
    if isinstance(source, str):
        source = PlainSource(source)
    tree = parse_syntax(source)
    return _Typer(source, scope).top(tree)


# ----------------------------------------------------------------------------- typing


class _NeedsContext(Exception):
    """A constant (1, I, 0) whose size can't be told without its surroundings."""

    def __init__(self, node: Tree | Token):
        self.node = node


def _is_one_transposed(t) -> bool:
    """`1'` or `1^T`: a row of ones (never the scalar one)."""
    if isinstance(t, Tree) and t.data == "transpose":
        c = t.children[0]
        return isinstance(c, Tree) and c.data == "number" and c.children[0] == "1"
    if isinstance(t, Tree) and t.data == "pow" and isinstance(t.children[1], Tree) and t.children[1].data == "exp_transpose":
        c = t.children[0]
        return isinstance(c, Tree) and c.data == "number" and c.children[0] == "1"
    return False


def _is_const_name(t, name: str) -> bool:
    return isinstance(t, Tree) and t.data == "name" and t.children[0] == name


class _Typer:
    """Walks a lark tree and builds the typed expression (one instance per expression)."""

    def __init__(self, source: Located, scope: Scope):
        self.source = source
        self.scope = scope
        self.active: list[str] = []  # indices of the sums we are inside
        # (id(node), expected) -> (node, typed expression or _NeedsContext): a node is typed once
        # per expected shape, and the left spine of a long chain is typed bottom-up (no deep recursion)
        self.memo: dict[tuple[int, Shape | None], tuple[Tree, object]] = {}
        self.flags: dict[int, tuple[bool, bool, bool]] = {}  # id(node) -> (number, flexible, scales)

    # -- helpers
    def loc(self, node) -> Location:
        pos = 0
        if isinstance(node, Token):
            pos = node.start_pos or 0
        elif isinstance(node, Tree) and not node.meta.empty:
            pos = node.meta.start_pos
        return self.source.location_at(pos)

    def snippet(self, node) -> str:
        """The text of a node, for a message (a long one shortened)."""
        if isinstance(node, Tree) and not node.meta.empty:
            text = self.source.text[node.meta.start_pos:node.meta.end_pos]
        else:
            text = str(node)
        return text if len(text) <= 100 else text[:60] + " … " + text[-30:]

    def op_loc(self, node: Tree) -> Location:
        """The location of the binary operator between a node's two operands."""
        left, right = node.children[0], node.children[-1]
        try:
            start, end = left.meta.end_pos, right.meta.start_pos
        except AttributeError:
            return self.loc(node)
        gap = self.source.text[start:end]
        for i, ch in enumerate(gap):
            if not ch.isspace() and ch not in "()":
                return self.source.location_at(start + i)
        return self.loc(node)

    def shape_error(self, node, message: str, hint: str | None = None, at_op: bool = False):
        loc = self.op_loc(node) if at_op else self.loc(node)
        return ShapeError(message, loc, hint)

    def top(self, tree) -> Expr:
        self._classify(tree)
        try:
            return self.infer(tree, None)
        except _NeedsContext as nc:
            if self._has_row_of_ones(nc.node):
                hint = ("a row of ones `1'` takes its length from what it multiplies, and nothing here tells it; "
                        "give it: `ones(n)'`, `ones(n)*ones(n)'`")
            else:
                hint = "`1`, `I` and `0` take their size from their neighbours: write e.g. `1'*x`, `X - mu*1'`, `I - A`"
            raise ShapeError(f"cannot tell the size of `{self.snippet(nc.node)}` here", self.loc(nc.node), hint) from None

    # -- dispatch
    def infer(self, t, expected: Shape | None) -> Expr:
        known = self.memo.get((id(t), expected))
        if known is None:
            chain = _CHAINS.get(t.data)
            if chain is not None:
                self._type_spine(t, chain, expected)
            known = (t, self._infer(t, expected))
            self.memo[(id(t), expected)] = known
        if isinstance(known[1], Exception):
            raise known[1]
        return known[1]

    def _type_spine(self, t, chain: str, expected) -> None:
        """Type the left operands of a chain `a + b + c + …` innermost first, so that typing the
        chain finds each of them done instead of recursing down the whole chain."""
        spine = []
        parent, node = t, t.children[0]
        while isinstance(node, Tree) and _CHAINS.get(node.data) == chain:
            expected = None if parent.data == "mul" else expected  # what the parent asks of it first
            if (id(node), expected) in self.memo:
                break
            spine.append((node, expected))
            parent, node = node, node.children[0]
        for node, expected in reversed(spine):
            self.memo[(id(node), expected)] = (node, self._infer(node, expected))

    def _infer(self, t, expected):
        """The typed expression of `t`, or the _NeedsContext or DerivgenError it raised (kept, so
        that a chain whose inner part fails is not typed again and again)."""
        handler = getattr(self, "t_" + t.data, None)
        if handler is None:  # pragma: no cover - the grammar has no other rules
            raise ExprSyntaxError(f"unsupported construct {t.data}", self.loc(t))
        try:
            return self._bounded(t, handler(t, expected))
        except (_NeedsContext, DerivgenError) as failure:
            return failure
        except E.ShapeMismatch as err:  # from the tree's constructors, e.g. inv(0)
            return self.shape_error(t, str(err))

    def _bounded(self, t, e: Expr) -> Expr:
        """`e`, unless a number in it (a folded constant such as `2^64 * 2^64`) is too large."""
        value = e.value if isinstance(e, E.Num) else e.coeff if isinstance(e, E.MatMul) else None
        if value is not None and max(abs(value.numerator), value.denominator) > limits.MAX_NUMBER:
            raise LimitError(f"the number `{self.snippet(t)}` is too large to compute with exactly", self.loc(t),
                             f"numbers are at most 1e{len(str(limits.MAX_NUMBER)) - 1}; keep constants small")
        return e

    def _classify(self, tree) -> None:
        """Precompute `_is_number`, `_is_flexible`, `_scales_a_constant` for every node, children
        first, without recursion (a chain of a thousand terms is as deep as it is long)."""
        order, stack = [], [tree]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(c for c in node.children if isinstance(c, Tree))
        for node in reversed(order):
            self.flags[id(node)] = (self._number_rule(node), self._flexible_rule(node), self._scales_rule(node))

    def t_number(self, t, expected):
        text = str(t.children[0])
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise ExprSyntaxError(f"bad number {text!r}", self.loc(t)) from None
        if value in (0, 1) and expected is not None and not E.is_scalar_shape(expected):
            return E.Ones(expected) if value == 1 else E.Zero(expected)
        return E.Num(value)

    def t_name(self, t, expected):
        name = str(t.children[0])
        if name == "I":
            if expected is None:
                raise _NeedsContext(t)
            if expected[0] != expected[1]:
                raise self.shape_error(t, f"the identity I is square, but {shape_str(expected)} is needed here")
            return E.Eye(expected[0]) if not E.is_scalar_shape(expected) else E.ONE
        if name in self.scope.indexed:
            index = self.scope.indexed[name]
            if index not in self.active:
                raise ShapeError(f"{name} is one sample of a family indexed by {index}", self.loc(t),
                                 f"use it inside a sum over the samples: `sum({index}, ...)`")
            return E.Sym(name, self.scope.shapes[name], "var", index)
        if name in self.scope.shapes:
            return E.Sym(name, self.scope.shapes[name], self.scope.roles.get(name, "var"))
        if name in self.scope.dims:
            return E.Sym(name, SCALAR, "dim")
        if name in USER_FUNCTIONS:
            raise ExprSyntaxError(f"{name} is a function: write `{name}(...)`", self.loc(t))
        known = list(self.scope.shapes) + sorted(self.scope.dims)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "declare it under `variables:` (or define it under `where:`)"
        raise ShapeError(f"unknown name {name!r}", self.loc(t), hint)

    # -- sums
    def t_add(self, t, expected):
        return self._sum(t, [(t.children[0], 1), (t.children[1], 1)], expected)

    def t_sub(self, t, expected):
        return self._sum(t, [(t.children[0], 1), (t.children[1], -1)], expected)

    def _sum(self, t, parts, expected):
        typed: list[Expr | None] = []
        deferred = False
        for node, _ in parts:
            try:
                typed.append(self.infer(node, expected))
            except _NeedsContext:
                typed.append(None)
                deferred = True
        shape = expected
        for e in typed:
            if e is not None and (shape is None or E.is_scalar_shape(shape)):
                shape = e.shape
        if deferred:
            if shape is None:
                raise _NeedsContext(t)
            typed = [e if e is not None else self.infer(node, shape) for e, (node, _) in zip(typed, parts)]
            # a flexible term typed first as a scalar may now need the sum's shape
        typed = [
            self.infer(node, shape)
            if (e.is_scalar and not E.is_scalar_shape(shape) and (self._is_flexible(node) or self._scales_a_constant(node)))
            else e
            for e, (node, _) in zip(typed, parts)
        ]
        a, b = typed
        if a.shape != b.shape:
            op = "add" if parts[1][1] == 1 else "subtract"
            raise self.shape_error(
                t,
                f"cannot {op} {self.snippet(parts[0][0])} ({shape_str(a.shape)}) and "
                f"{self.snippet(parts[1][0])} ({shape_str(b.shape)})",
                (f"to add a number to every entry write it times `1`, e.g. `{self.snippet(parts[1][0])}*1`, or `1` alone"
                 if isinstance(b, E.Num) else
                 f"to add the scalar `{self.snippet(parts[k][0])}` to every entry write `{self.snippet(parts[k][0])}*1`"
                 if (k := next((i for i, e in enumerate((a, b)) if e.is_scalar), None)) is not None
                 else "terms of a sum must have the same shape"),
                at_op=True,
            )
        return E.add(a, b) if parts[1][1] == 1 else E.sub(a, b)

    def _flag(self, node, which: int, rule) -> bool:
        flags = self.flags.get(id(node)) if isinstance(node, Tree) else None
        return flags[which] if flags is not None else rule(node)

    def _scales_a_constant(self, node) -> bool:
        return self._flag(node, 2, self._scales_rule)

    def _is_number(self, node) -> bool:
        return self._flag(node, 0, self._number_rule)

    def _is_flexible(self, node) -> bool:
        return self._flag(node, 1, self._flexible_rule)

    def _scales_rule(self, node) -> bool:
        """`s*1`, `sigma(s)*1`, `1*s`: a scalar times a flexible constant."""
        if isinstance(node, Tree) and node.data in ("mul", "div", "neg"):
            return any(self._is_flexible(c) or self._scales_a_constant(c) for c in node.children)
        return False

    def _number_rule(self, node) -> bool:
        """A constant made of numbers only: `2`, `1/2`, `-1`, `(2*3)`."""
        if not isinstance(node, Tree):
            return False
        if node.data == "number":
            return True
        if node.data in ("neg", "mul", "div", "add", "sub"):
            return all(self._is_number(c) for c in node.children)
        return False

    def _flexible_rule(self, node) -> bool:
        if isinstance(node, Tree):
            if node.data == "number":
                return str(node.children[0]) in ("0", "1")
            if node.data == "name":
                return node.children[0] == "I"
            if node.data in ("neg", "transpose"):
                return self._is_flexible(node.children[0])
            if node.data in ("mul", "div"):  # e.g. `2*1`, `1/2*I`
                return all(self._is_number(c) or self._is_flexible(c) for c in node.children) and any(
                    self._is_flexible(c) for c in node.children
                )
        return False

    def t_neg(self, t, expected):
        return E.neg(self.infer(t.children[0], expected))

    # -- products
    def t_mul(self, t, expected):
        left, right = t.children
        a = None if self._is_flexible(left) else self._try(left, None)
        b = None if self._is_flexible(right) else self._try(right, None)
        if a is None and b is None and self._is_flexible(left) and not self._is_flexible(right):
            a = None
            b = self._try(right, None)
        if a is None and b is None and self._is_flexible(right) and not self._is_flexible(left):
            a = self._try(left, None)
        if a is None and b is None:
            if expected is not None and not E.is_scalar_shape(expected) and _is_one_transposed(right) \
                    and self._is_flexible(left):
                # `1*1'`: a column of ones times a row of ones, the matrix of ones
                a, b = self.infer(left, (expected[0], 1)), self.infer(right, (1, expected[1]))
            elif expected is not None and not E.is_scalar_shape(expected) and _is_const_name(right, "I"):
                a, b = self.infer(left, expected), self.infer(right, (expected[1], expected[1]))  # `1'*I`
            elif expected is not None and not E.is_scalar_shape(expected) and _is_const_name(left, "I"):
                a, b = self.infer(left, (expected[0], expected[0])), self.infer(right, expected)
            elif expected is not None and E.is_scalar_shape(expected):
                a, b = self.infer(left, SCALAR), self.infer(right, SCALAR)
            elif expected is not None and self._is_number(left):  # `0*I`, `2*1` in a sum
                a, b = self.infer(left, SCALAR), self.infer(right, expected)
            elif expected is not None and self._is_number(right):
                a, b = self.infer(left, expected), self.infer(right, SCALAR)
            else:
                raise _NeedsContext(t)
        elif a is None:
            a = self._left_flexible(left, b, expected, t)
        elif b is None:
            b = self._right_flexible(right, a, expected, t)
        return self._product(t, a, b)

    def _try(self, node, expected):
        try:
            return self.infer(node, expected)
        except _NeedsContext:
            return None

    def _left_flexible(self, node, b: Expr, expected, t) -> Expr:
        if b.is_scalar:
            if expected is None:
                if self._is_number(node):
                    return self.infer(node, SCALAR)
                raise _NeedsContext(node)
            return self.infer(node, expected)
        p = b.shape[0]
        if _is_one_transposed(node):
            return self.infer(node, (1, p))
        if _is_const_name(node, "I"):
            return self.infer(node, (p, p))
        if expected is not None and expected != b.shape and expected[1] == b.shape[1]:
            return self.infer(node, (expected[0], p))
        if self._has_identity_term(node):  # `(I - 1*1'/n)*x`: a sum with I in it is square
            return self.infer(node, (p, p))
        if self._has_row_of_ones(node):  # `1*1'*x`: a row of ones is never the scalar one
            rows = expected[0] if expected is not None and expected[1] == b.shape[1] else self._rows_alone(node)
            if rows is None:
                raise _NeedsContext(node)
            return self.infer(node, (rows, p))
        return self.infer(node, SCALAR)

    def _right_flexible(self, node, a: Expr, expected, t) -> Expr:
        if a.is_scalar:
            if expected is None:
                if self._is_number(node):
                    return self.infer(node, SCALAR)
                raise _NeedsContext(node)
            return self.infer(node, expected)
        p = a.shape[1]
        if _is_one_transposed(node):
            if p != 1:
                raise self.shape_error(t, f"cannot multiply {self.snippet(t.children[0])} ({shape_str(a.shape)}) by a row of ones", at_op=True)
            if expected is None:
                raise _NeedsContext(node)
            return self.infer(node, (1, expected[1]))
        if _is_const_name(node, "I"):
            return self.infer(node, (p, p))
        if self._has_identity_term(node):  # `x'*(I - 1*1'/n)`: a sum with I in it is square
            return self.infer(node, (p, p))
        if self._has_row_of_ones(node):  # `A*(1*1')`: its columns come from the context
            if expected is None or expected[0] != a.shape[0]:
                raise _NeedsContext(node)
            return self.infer(node, (p, expected[1]))
        if p == 1:
            return self.infer(node, SCALAR)
        if expected is not None and expected[0] == a.shape[0] and expected[1] != 1:
            return self.infer(node, (p, expected[1]))
        return self.infer(node, (p, 1))

    def _product(self, t, a: Expr, b: Expr) -> Expr:
        if not a.is_scalar and not b.is_scalar and a.shape[1] != b.shape[0]:
            raise self.shape_error(
                t,
                f"cannot multiply {self.snippet(t.children[0])} ({shape_str(a.shape)}) by "
                f"{self.snippet(t.children[1])} ({shape_str(b.shape)})",
                f"the inner dimensions {a.shape[1]} and {b.shape[0]} differ; a transpose missing?",
                at_op=True,
            )
        return E.mul(a, b)

    def t_div(self, t, expected):
        den = self._try(t.children[1], SCALAR)
        if den is None or not den.is_scalar:
            shape = den.shape if den is not None else None
            raise self.shape_error(
                t,
                f"can only divide by a scalar, but {self.snippet(t.children[1])} is {shape_str(shape) if shape else 'not'}",
                "for elementwise division write `./`; for a matrix inverse write `inv(A)`",
                at_op=True,
            )
        if isinstance(den, E.Num) and den.value == 0:
            raise self.shape_error(t, "division by zero", at_op=True)
        num = self.infer(t.children[0], expected)
        return E.mul(num, E.power(den, E.Num(Fraction(-1))))

    def t_hadamard(self, t, expected):
        return self._elementwise(t, expected, E.had, "elementwise product")

    def t_hdiv(self, t, expected):
        return self._elementwise(t, expected, E.hdiv, "elementwise quotient")

    def _elementwise(self, t, expected, build, what):
        left, right = t.children
        a, b = self._try(left, expected), self._try(right, expected)
        if a is None and b is None:
            raise _NeedsContext(t)
        if a is None:
            a = self.infer(left, b.shape)
        if b is None:
            b = self.infer(right, a.shape)
        if a.shape == b.shape:
            return build(a, b)
        if build is E.had and (a.is_scalar or b.is_scalar):
            return E.mul(a, b)  # a scalar times a matrix, elementwise or not
        if build is E.hdiv and b.is_scalar:
            return E.mul(a, E.power(b, E.Num(Fraction(-1))))
        return self._bad_elementwise(t, a, b, what)

    def _bad_elementwise(self, t, a, b, what):
        raise self.shape_error(
            t,
            f"{what} of {self.snippet(t.children[0])} ({shape_str(a.shape)}) and "
            f"{self.snippet(t.children[1])} ({shape_str(b.shape)})",
            "elementwise operations need equal shapes",
            at_op=True,
        )

    # -- postfix and powers
    def _has_row_of_ones(self, node) -> bool:
        """Whether `node` has an unsized `1'` among the factors, terms and signs it is built of
        (not inside a function call, whose argument is typed on its own)."""
        stack = [node]
        while stack:
            n = stack.pop()
            if _is_one_transposed(n):
                return True
            if isinstance(n, Tree) and n.data in ("mul", "div", "neg", "add", "sub", "paren"):
                stack.extend(n.children)
        return False

    def _has_identity_term(self, node) -> bool:
        """Whether `node` is a sum (or difference) with `I` (or a multiple of it) among its terms,
        and a row of ones somewhere in it: the sum is then square, whatever else it holds."""
        if not self._has_row_of_ones(node):
            return False
        while isinstance(node, Tree) and node.data in ("paren", "neg"):
            node = node.children[0]
        if not (isinstance(node, Tree) and node.data in ("add", "sub")):
            return False
        stack = list(node.children)
        while stack:
            n = stack.pop()
            if isinstance(n, Tree) and n.data in ("add", "sub", "paren", "neg"):
                stack.extend(n.children)
            elif _is_const_name(n, "I") or (isinstance(n, Tree) and n.data in ("mul", "div") and any(
                    _is_const_name(c, "I") for c in n.children) and all(
                    _is_const_name(c, "I") or self._is_number(c) for c in n.children)):
                return True
        return False

    def _rows_alone(self, node) -> int | str | None:
        """The number of rows of a product with a row of ones in it (`X*1'`, `x'*(1*1')`,
        `-X*1'/c`), told by its leftmost factor alone, if it can be."""
        while isinstance(node, Tree) and node.data in ("neg", "div", "paren"):
            node = node.children[0]
        if _is_one_transposed(node):
            return 1
        if isinstance(node, Tree) and node.data == "mul":
            left = node.children[0]
            if self._is_flexible(left):
                return 1 if _is_one_transposed(left) else None
            typed = self._try(left, None)
            if typed is None:
                return self._rows_alone(left)
            return self._rows_alone(node.children[1]) if typed.is_scalar else typed.shape[0]
        if isinstance(node, Tree) and not self._is_flexible(node):
            typed = self._try(node, None)
            return None if typed is None or typed.is_scalar else typed.shape[0]
        return None

    def t_transpose(self, t, expected):
        if expected is None and _is_one_transposed(t):
            raise _NeedsContext(t)  # a row of ones: its length comes from the neighbours
        if expected is not None and E.is_scalar_shape(expected) and _is_one_transposed(t):
            raise self.shape_error(t, f"cannot tell the length of the row of ones `{self.snippet(t)}` here",
                                   "`1'` is a row of ones, never the number one; give its length with "
                                   "`ones(n)'`, or write the product out, e.g. `ones(n)*ones(n)'`")
        inner_expected = None if expected is None else (expected[1], expected[0])
        return E.tp(self.infer(t.children[0], inner_expected))

    def t_pow(self, t, expected):
        base_node, exp_node = t.children
        if exp_node.data == "exp_transpose":
            return self.t_transpose(Tree("transpose", [base_node], t.meta), expected)
        base = self.infer(base_node, expected if exp_node.data != "exp_name" else None)
        exponent = self.exponent(exp_node)
        if isinstance(exponent, E.Num):
            k = exponent.value
            if not base.is_scalar:
                if not base.is_square:
                    raise self.shape_error(t, f"a matrix power needs a square matrix, but {self.snippet(base_node)} is {shape_str(base.shape)}",
                                           "for elementwise powers write `.^`")
                if k.denominator != 1:
                    raise self.shape_error(t, "a matrix power needs an integer exponent", "for elementwise powers write `.^`")
        else:
            if not base.is_scalar and not base.is_square:
                raise self.shape_error(t, f"a matrix power needs a square matrix, but {self.snippet(base_node)} is {shape_str(base.shape)}")
        return E.power(base, exponent)

    def t_hpow(self, t, expected):
        base = self.infer(t.children[0], expected)
        exponent = self.exponent(t.children[1])
        if not isinstance(exponent, E.Num):
            raise UnsupportedError("elementwise powers need a number exponent", self.loc(t.children[1]))
        return E.hpow(base, exponent.value)

    def exponent(self, node) -> Expr:
        e = self._exponent(node)
        if isinstance(e, E.Num) and max(abs(e.value.numerator), e.value.denominator) > limits.MAX_POWER:
            raise LimitError(f"the exponent {self.snippet(node)} is too large", self.loc(node),
                             f"powers are at most {limits.MAX_POWER} (and fractions have a denominator "
                             f"up to {limits.MAX_POWER}); a larger power is rarely meant, and costs a term per factor")
        return e

    def _exponent(self, node) -> Expr:
        kind = node.data
        if kind == "exp_number":
            return E.Num(Fraction(str(node.children[0])))
        if kind == "exp_neg_number":
            return E.Num(-Fraction(str(node.children[0])))
        if kind == "exp_name":
            name = str(node.children[0])
            e = self.t_name(Tree("name", [node.children[0]], node.meta), SCALAR)
            if not e.is_scalar:
                raise self.shape_error(node, f"the exponent {name} must be a scalar")
            return e
        if kind == "exp_group":
            e = self.infer(node.children[0], SCALAR)
            if not isinstance(e, E.Num):
                raise UnsupportedError("an exponent in parentheses must be a number like `(1/2)`", self.loc(node))
            return e
        if kind == "exp_transpose":  # pragma: no cover - handled by t_pow
            raise ExprSyntaxError("`^T` is only a transpose", self.loc(node))
        raise ExprSyntaxError("bad exponent", self.loc(node))  # pragma: no cover

    def sum_over(self, t, args, expected) -> Expr:
        """sum(t, body): Σ over the samples t = 1..N of an indexed family."""
        first, body = args
        index = str(first.children[0]) if isinstance(first, Tree) and first.data == "name" else None
        if index not in self.scope.indices:
            raise ShapeError("the first argument of sum(t, ...) must be an index declared under `indices:`",
                             self.loc(first), "e.g. `indices: {t: N}` and `sum(t, x_t' * x_t)`")
        self.active.append(index)
        try:
            value = self.infer(body, expected)
        finally:
            self.active.pop()
        return E.sumover(index, self.scope.indices[index], value)

    def _dimension(self, a):
        """A dimension written in ones(...)/eye(...): a letter, a positive integer or a product `m*n`."""
        if isinstance(a, Tree) and a.data == "number" and str(a.children[0]).isdigit() and int(a.children[0]) > 0:
            return int(a.children[0])
        if isinstance(a, Tree) and a.data == "name" and str(a.children[0]) in self.scope.dims:
            return str(a.children[0])
        if isinstance(a, Tree) and a.data == "mul":
            parts = [self._dimension(c) for c in a.children]
            return E.dim_mul(*parts) if all(p is not None for p in parts) else None
        return None

    def sized_constant(self, t, name: str, args) -> Expr:
        """ones(n) (a column), ones(m, n), eye(n): the size written out."""
        dims = []
        for a in args:
            d = self._dimension(a)
            if d is not None:
                dims.append(d)
            else:
                raise ShapeError(f"{name}(...) takes dimensions (a dimension letter or a positive integer)",
                                 self.loc(a), f"e.g. `{name}(n)`" + (" or `ones(m, n)`" if name == "ones" else ""))
        if name == "eye":
            if len(dims) != 1:
                raise ShapeError("eye(n) takes one dimension", self.loc(t))
            return E.Eye(dims[0]) if dims[0] != 1 else E.ONE
        if len(dims) not in (1, 2):
            raise ShapeError("ones takes one or two dimensions", self.loc(t))
        shape = (dims[0], dims[1] if len(dims) == 2 else 1)
        return E.ONE if E.is_scalar_shape(shape) else E.Ones(shape)

    # -- function calls
    def relu_of_max(self, t, args) -> Expr:
        """`max(A, 0)` (or `max(0, A)`): the elementwise maximum with zero, relu(A)."""
        zeros = [i for i, a in enumerate(args) if isinstance(a, Tree) and a.data == "number" and float(a.children[0]) == 0]
        if len(args) != 2 or len(zeros) != 1:
            raise UnsupportedError("max is supported as max(A, 0), the elementwise maximum with zero", self.loc(t),
                                   "write `max(A, 0)` or `relu(A)`; for other maxima derivgen has no rule")
        arg = self.infer(args[1 - zeros[0]], None)
        return E.fn("relu", arg)

    def t_call(self, t, expected):
        name_tok = t.children[0]
        args = t.children[1:]
        name = str(name_tok)
        if name not in USER_FUNCTIONS:
            if name in self.scope.shapes:
                raise ExprSyntaxError(f"{name} is a variable, not a function", self.loc(name_tok),
                                      f"products are written with `*`: `{name}*(...)`")
            close = difflib.get_close_matches(name, list(USER_FUNCTIONS), n=1, cutoff=0.75)
            hint = (f"did you mean {close[0]!r}? " if close else "") + "supported: " + ", ".join(sorted(USER_FUNCTIONS))
            raise UnsupportedError(f"unsupported function {name!r}", self.loc(name_tok), hint)
        if name in ("ones", "eye"):
            return self.sized_constant(t, name, args)
        if name == "sum" and len(args) == 2:
            return self.sum_over(t, args, expected)
        if name == "kron":
            if len(args) != 2:
                raise ExprSyntaxError(f"kron takes two arguments, got {len(args)}", self.loc(name_tok))
            return E.kron(self.infer(args[0], None), self.infer(args[1], None))
        if name == "max":
            return self.relu_of_max(t, args)
        if name == "commutation":
            dims = [self._dimension(a) for a in args]
            if len(dims) != 2 or None in dims:
                raise ShapeError("commutation(m, n) takes two dimensions", self.loc(t),
                                 "K = commutation(m, n) satisfies vec(X') = K*vec(X) for an m×n matrix X")
            return E.Commutation(dims[0], dims[1])
        if len(args) != 1:
            raise ExprSyntaxError(f"{name} takes one argument, got {len(args)}", self.loc(name_tok))
        arg_expected = expected if name in E.ELEMENTWISE else None
        arg = self.infer(args[0], arg_expected)
        internal = name
        if name == "inv":
            if not arg.is_square:
                raise self.shape_error(t, f"inv needs a square matrix, but {self.snippet(args[0])} is {shape_str(arg.shape)}")
            return E.inv(arg)
        if name == "diag" and arg.shape[1] != 1:
            internal = "diagvec"  # MATLAB's diag(A): the diagonal of a square matrix, as a vector
        if name == "vec":
            return E.vec(arg)
        try:
            return E.fn(internal, arg)
        except E.ShapeMismatch as err:
            raise self.shape_error(t, f"{name}({self.snippet(args[0])}): {err}") from None

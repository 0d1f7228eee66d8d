"""Layouts and the symmetric-constrained gradient: last blocks added to a gradient derivation.

Denominator layout (the default, the notes' choice): ∂f/∂X has the shape of X. Numerator layout
writes it transposed, ∂f/∂X = Gᵀ (rule L2). For a symmetric X whose independent entries are
Xᵢⱼ, i ≤ j, the constrained gradient is G + Gᵀ − I ⊙ G (rule Y1), labelled as such.
"""

from __future__ import annotations

from fractions import Fraction

from .. import expr as E
from .engine import Context
from . import detail as detail_
from .model import Block, Derivation, Step
from .simplify import push_transposes, simplify_steps


def numerator_gradient(d: Derivation, ctx: Context) -> Derivation:
    block = Block("gradT", d.wrt)
    first = Step(push_transposes(E.tp(d.result)), ("L2",))
    block.steps = detail_.simplification(first, simplify_steps(first.expr, ctx.assume), d.detail)
    d.blocks.append(block)
    d.result = block.last
    d.layout = "numerator"
    return d


def symmetric_gradient(d: Derivation, ctx: Context, convention: str = "entries") -> Derivation:
    """The gradient of f over symmetric X: over its independent entries, G + Gᵀ − I ⊙ G (Y1,
    `entries`), or in the space of symmetric matrices with the Frobenius inner product,
    sym(G) = (G + Gᵀ)/2 (Y2, `space`)."""
    g = d.result
    n = ctx.variables[d.wrt][0]
    block = Block("gradS", d.wrt)
    gt = push_transposes(E.tp(g))
    if convention == "space":
        first = Step(E.mul(E.Num(Fraction(1, 2)), E.add(g, gt)), ("Y2",))
    else:
        first = Step(E.add(g, gt, E.neg(E.had(E.Eye(n), g))), ("Y1",))
    block.steps = detail_.simplification(first, simplify_steps(first.expr, ctx.assume), d.detail)
    d.blocks.append(block)
    d.result = block.last
    d.symmetric = convention
    return d

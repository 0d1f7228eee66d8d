"""Steps as data: what a derivation is made of.

A derivation is a list of blocks; each block is one chain of equalities `lhs = e1 = e2 = ...`.
A step holds the expression it produced and the ids of the rules that justify it, so that
renderers never recompute mathematics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..expr import Expr


@dataclass(frozen=True)
class Step:
    """One line of a chain: `= expr`, justified by `rules` (ids in `derivgen.rules.RULES`).

    `folded`: bookkeeping rules this line also used without showing them as its own idea
    (a constant's zero differential, d(Uᵀ) = (dU)ᵀ, a scalar is its own trace, a transpose
    pushed inward), when steps were merged at a coarser `detail` (derivgen.derive.detail)."""

    expr: Expr
    rules: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()


@dataclass
class Block:
    """A chain of equalities with one left-hand side.

    kind: "f" (rewrites of f), "df" (the differential of f), "dY" (the differential of a
    `where:` name `var`), "grad" (the gradient with respect to `var`)."""

    kind: str
    var: str | None
    steps: list[Step] = field(default_factory=list)

    def add(self, expr: Expr, *rules: str) -> None:
        self.steps.append(Step(expr, tuple(rules)))

    @property
    def last(self) -> Expr:
        return self.steps[-1].expr


@dataclass
class Derivation:
    """The worked derivation of ∂f/∂wrt: its blocks and the (simplified) result."""

    wrt: str
    blocks: list[Block]
    result: Expr
    kind: str = "gradient"  # "gradient" | "jacobian" | "hessian"
    function: Expr | None = None  # what was differentiated, when not the problem's f (a Hessian: the gradient)
    layout: str = "denominator"
    symmetric: str | bool = False  # over symmetric matrices: "entries" (G + Gᵀ − I⊙G) or "space" (sym G)
    detail: str = "full"  # the granularity of the steps: "brief", "normal" or "full" (derive.detail)
    # the result as the handout writes it, when that differs from `result` (which is in the
    # problem's own variables): a solution with the estimates found before put in, Σ̂ in μ̂
    shown: Expr | None = None
    # a stationary point found jointly with others: the estimates found before (μ̂ for Σ̂), in the
    # problem's variables; the result holds, is verified and is graded where they are put in
    estimates: dict[str, Expr] = field(default_factory=dict)

    def rule_ids(self) -> list[str]:
        """The rules the derivation's lines cite (their tags; folded bookkeeping is not cited)."""
        return [r for b in self.blocks for s in b.steps for r in s.rules]

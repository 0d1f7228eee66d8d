"""The derivation engine: differentials, trace normal form, identification, simplification."""

from .engine import Context, derive_gradient
from .model import Block, Derivation, Step

__all__ = ["Block", "Context", "Derivation", "Step", "derive_gradient"]

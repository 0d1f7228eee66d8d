"""derivgen: step-by-step matrix calculus derivations, verified numerically, rendered into handouts."""

__version__ = "0.1.0"

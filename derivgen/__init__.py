"""derivgen: step-by-step matrix calculus derivations, verified numerically, rendered into handouts.

The Python API (`derivgen.api`; the command line is a thin layer over it)::

    import derivgen

    d = derivgen.derive("x'*A*x", x="n", A=("n", "n"), assume={"A": "symmetric"}, wrt="x")
    print(d.text, d.latex, d.numpy)      # 2*A*x  2 A x  2 * A @ x
    for step in d.steps: print(step)
    print(d.verification)

    derivgen.derive(derivgen.load_problem("problems/least_squares.yaml"))
    derivgen.build(["problems/"], "out", formats="md,html")

Errors are `DerivgenError` subclasses carrying the file, line and column and a hint.
"""

__version__ = "0.1.0"

# The engine subpackage `derivgen.derive` and the module `derivgen.build` are imported first, so
# that the functions `derive` and `build` below are what `derivgen.derive` and `derivgen.build`
# name (importing a submodule later would rebind the name to it); `from derivgen.derive import …`,
# `import derivgen.derive.engine` and `from derivgen.build import Builder` work either way.
from . import build as _build_module, derive as _engine  # noqa: E402,F401
from .api import Derivation, Result, Step, Verification, build, check, derive, load_problem  # noqa: E402
from .errors import DerivgenError, Location, ProblemError  # noqa: E402

__all__ = ["__version__", "derive", "load_problem", "build", "check", "Derivation", "Result", "Step", "Verification",
           "DerivgenError", "ProblemError", "Location"]

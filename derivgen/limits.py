"""The bounds on the work one problem may cause (a contributed problem set is untrusted data).

Every limit is generous for coursework (the example problems use a small fraction of each) and
small enough that no problem file can make a build run for minutes or exhaust memory. An
exceeded limit is a `LimitError` located at the offending value or expression, with a hint;
it is never reported as a bug in derivgen.

The per-problem time and memory budget is enforced by `derivgen.worker`, which derives each
problem in a worker process; `DERIVGEN_TIME_LIMIT` (seconds) and `DERIVGEN_MEMORY_LIMIT`
(megabytes) override its defaults.
"""

from __future__ import annotations

from .errors import UnsupportedError

# expressions (derivgen.parse)
MAX_EXPR_CHARS = 5_000  # characters of one expression
MAX_NODES = 2_000  # nodes of one expression's syntax tree
MAX_DEPTH = 60  # nesting levels; a chain `a + b + c` or `A * B * C` counts as one level
MAX_POWER = 64  # |k| of an exponent `A^k`, `x^k`, `A.^k` (and its denominator)
MAX_NUMBER_DIGITS = 30  # digits of a number written in an expression
MAX_NUMBER_EXPONENT = 30  # |e| of a number written `1e-6`
MAX_NUMBER = 10**30  # numerator and denominator of any number the parser folds (`2^64 * 2^64`)

# problem files (derivgen.problem)
MAX_FILE_CHARS = 200_000  # characters of one problem file
MAX_VARIABLES = 50
MAX_WHERE = 50  # `where:` definitions
MAX_WRT = 20  # `wrt:` entries (each is its own derivation and check)
MAX_DIMENSION_SYMBOLS = 20  # distinct dimension symbols (m, n, ...) and index ranges
MAX_INTEGER_DIMENSION = 10**9  # a dimension or family size written as a number

# verification (derivgen.verify): integer sizes above this are checked at a small stand-in size
MAX_CHECK_SIZE = 12

# the per-problem budget of a worker process (derivgen.worker)
TIME_LIMIT = 30.0  # seconds of wall time to load, derive, verify and document one problem
MEMORY_LIMIT = 2048  # megabytes of address space a worker may add to its start-up size


class LimitError(UnsupportedError):
    """A problem asks for more work than derivgen does for one problem (see `derivgen.limits`)."""

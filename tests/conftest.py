"""Shared test set-up, loaded by pytest before any test module."""

import warnings

# On a failure, hypothesis's pytest plugin imports `hypothesis.extra._patching` (libcst) to
# propose an @example patch; that import warns (mypy_extensions.TypedDict is deprecated), and
# with warnings as errors the failure turns into a pytest INTERNALERROR that hides the
# falsifying example. Import it once, here, for every hypothesis test file with exactly that warning silenced.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"mypy_extensions\.TypedDict is deprecated", category=DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # pragma: no cover - libcst not installed: nothing to import
        pass

"""Problems derived in worker processes, each within a time and a memory budget.

The static limits of `derivgen.limits` refuse what can be seen in a problem file; a problem
that passes them and still runs away (a derivation that grows, a check that takes too long) is
stopped here: each problem is loaded, derived, verified and documented in a worker process,
under a wall-time limit per problem (the worker is killed and replaced when it is exceeded)
and an address-space limit per worker (`RLIMIT_AS`, so an allocation past it is a
`MemoryError`, which the pipeline turns into a located error). The problem gets a located
error and the rest of the set builds.

The workers are one pool (pebble's `ProcessPool`) for a whole build, at most one per CPU, so
a set of many small problems pays for a few process starts, not one per problem. On Linux they
are forked after the engine is imported, so they start with it loaded (and with whatever the
calling process changed in it, as tests that call `cli.main` in-process expect).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from . import limits
from .errors import DerivgenError, Location, source_line
from .limits import LimitError

_FUNCTION_LINE = re.compile(r"function\s*:\s*")


def time_limit() -> float:
    """Seconds one problem may take: `DERIVGEN_TIME_LIMIT`, else `limits.TIME_LIMIT`."""
    return _positive(os.environ.get("DERIVGEN_TIME_LIMIT"), limits.TIME_LIMIT)


def memory_limit() -> int:
    """Megabytes a worker may allocate: in a worker, its own limit; else `DERIVGEN_MEMORY_LIMIT`,
    else `limits.MEMORY_LIMIT`."""
    if _worker_megabytes is not None:
        return _worker_megabytes
    return int(_positive(os.environ.get("DERIVGEN_MEMORY_LIMIT"), limits.MEMORY_LIMIT))


_worker_megabytes: int | None = None  # set in a worker process: the limit it runs under


def _positive(text: str | None, default: float) -> float:
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return value if value > 0 else default


def problem_documents(paths: list[Path], lang: str = "en", **budget) -> list[dict]:
    """The documents of `paths` (in order), each derived in a worker within the budget.

    `budget` is passed to `Workers` (`seconds`, `megabytes`, `workers`, and the set's
    `self_check` and `layout`, and `detail`, which overrides every problem's own)."""
    paths = [Path(p) for p in paths]
    if not paths:
        return []
    with Workers(lang, len(paths), **budget) as workers:
        return workers.documents(paths)


class Workers:
    """A pool of worker processes that derive problems, for one build; `close()` stops it.

    `seconds` and `megabytes` default to `time_limit()` and `memory_limit()`; `workers` to the
    number of CPUs, and never more than `problems` (how many the caller expects to derive)."""

    def __init__(self, lang: str = "en", problems: int | None = None, *, seconds: float | None = None,
                 megabytes: int | None = None, workers: int | None = None, self_check: str | bool = False,
                 layout: str = "denominator", detail: str | None = None):
        self.lang = lang
        self.layout = layout  # the set's layout: of derivgen.yaml (a problem's own wins)
        self.detail = detail  # `show DIR --detail`: this detail for every problem, its own or not
        self.self_check = self_check  # the default of problems without `self_check:` (derivgen.selfcheck)
        self.seconds = seconds or time_limit()
        self.megabytes = megabytes or memory_limit()
        count = workers or os.cpu_count() or 1
        self.count = max(1, min(count, problems) if problems else count)
        self._pool = None

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def documents(self, paths: list[Path], progress: Callable[[int], None] | None = None) -> list[dict]:
        """The document of each problem file, in order (an error document where one failed).

        `progress`, if given, is called with the number of documents delivered so far, after each."""
        paths = [Path(p) for p in paths]
        pool = self._start() if paths else None
        docs: list[dict] = []
        if pool is None:  # no process pool on this system: derived here, without a budget
            from .pipeline import problem_document

            for path in paths:
                docs.append(problem_document(path, self.lang, self.self_check, self.layout, self.detail))
                if progress is not None:
                    progress(len(docs))
            return docs
        futures = [pool.schedule(_document, args=(str(path), self.lang, self.self_check, self.layout, self.detail),
                                 timeout=self.seconds)
                   for path in paths]
        for future, path in zip(futures, paths):
            docs.append(_outcome(future, path, self.seconds, self.megabytes))
            if progress is not None:
                progress(len(docs))
        return docs

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join()

    def _start(self):
        if self._pool is None:
            _warm_up()
            try:
                import pebble

                self._pool = pebble.ProcessPool(max_workers=self.count, initializer=_init_worker,
                                                initargs=(self.megabytes,), context=_context())
            except (ImportError, OSError):
                return None
        return self._pool


def _warm_up() -> None:
    """Load the engine and build the expression parser before the workers fork from this process."""
    from . import pipeline  # noqa: F401
    from .derive import jacobian, solve  # noqa: F401
    from .parse import _parser

    _parser()


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _init_worker(megabytes: int) -> None:
    """Bound the worker's address space: its size at start plus `megabytes`."""
    global _worker_megabytes
    _worker_megabytes = megabytes
    try:
        import resource
    except ImportError:  # pragma: no cover - not a POSIX system: the time limit still applies
        return
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            start = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        start = 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = start + (megabytes << 20)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # pragma: no cover - a system that does not allow it
        pass


def _document(path: str, lang: str, self_check: str | bool = False, layout: str = "denominator",
              detail: str | None = None) -> dict:
    from .pipeline import problem_document

    return problem_document(path, lang, self_check, layout, detail)


def _outcome(future, path: Path, seconds: float, megabytes: int) -> dict:
    """The document a worker returned, or an error document saying why there is none."""
    import pebble

    from .pipeline import error_document

    try:
        return future.result()
    except FutureTimeout:
        err = LimitError(
            f"deriving and checking this problem took longer than {seconds:g} s; the limit is {seconds:g} s per problem",
            _function_location(path),
            "make the problem smaller (fewer variables, smaller powers, fewer terms) or split it into several; "
            "an instructor can raise the limit with DERIVGEN_TIME_LIMIT=seconds",
        )
    except pebble.ProcessExpired as exc:
        err = LimitError(
            f"the process deriving this problem stopped (exit status {exc.exitcode}), "
            f"most likely out of memory; the limit is {megabytes} MB per problem",
            _function_location(path),
            "make the problem smaller; an instructor can raise the limit with DERIVGEN_MEMORY_LIMIT=megabytes",
        )
    except MemoryError:
        err = LimitError(f"this problem needs more memory than the limit of {megabytes} MB per problem",
                         _function_location(path), "make the problem smaller")
    except Exception as exc:  # a failure of the pool itself, not of the problem: a bug
        err = DerivgenError(f"internal error ({type(exc).__name__}: {exc})", Location(str(path)),
                            "this is a bug in derivgen; please report it with the problem file")
    return error_document(path.stem, str(path), err)


def _function_location(path: Path) -> Location:
    """Where the `function:` of a problem file is written (the file itself if it is not found)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read(1 << 20)
    except OSError:
        return Location(str(path))
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FUNCTION_LINE.match(line)
        if match:
            return Location(str(path), number, match.end() + 1, source_line(None, number, text))
    return Location(str(path), 1, 1, source_line(None, 1, text))

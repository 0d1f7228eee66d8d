"""Writing output files so that no reader ever sees a half-written one.

Every file derivgen produces goes through `write_atomic`: the data is written to a temporary
file in the target's directory and moved over the target with `os.replace`, which is atomic on
POSIX and Windows when both are on the same file system. If anything fails, the temporary file
is removed and the previous version of the target, if any, is left untouched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from pathlib import Path


@functools.cache
def _default_mode() -> int:
    # The mode a plain open() would give a new file (mkstemp alone gives 0o600). Reading the
    # umask means setting it, so do that once rather than racing other threads on every write.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: str | os.PathLike[str], data: str | bytes, durable: bool = True) -> Path:
    """Write `data` to `path` atomically and return the path.

    `durable=False` skips the fsync: still atomic for readers, but after a power cut the file
    may be lost — fine for caches, which only cost time to rebuild.

    Text is written as UTF-8, byte for byte (no newline translation). Missing parent
    directories are created. An existing file keeps its permission bits; a new one gets the
    usual ones for the current umask.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = _default_mode()

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return target

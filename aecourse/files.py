"""Files written whole or not at all (a temporary file beside the target, renamed when complete), and the
temporary files of killed writes removed later. A temporary file is `.<target>.<pid>-<host>.<random>`: removed at
once when its writer is gone, left alone while it lives, and, where the writer cannot be checked (another machine,
no POSIX signals), removed after STALE_AFTER_S.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

STALE_AFTER_S = 600.0  # a write of the course takes seconds: a temporary file this old was left by a killed one


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temporary_prefix(name: str) -> str:
    """The prefix of the temporary files this process writes `name` through (mkstemp adds 8 random characters)."""
    return f".{name}.{os.getpid()}-{_host()}."


def _process_is_gone(pid: int) -> bool:
    if os.name != "posix":  # elsewhere os.kill(pid, 0) is not a harmless probe
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but another user's (EPERM), or unknown: not ours to judge
        return False
    return False


def remove_leftovers(
    folder: Path, names: Iterable[str], *, stale_after: float = STALE_AFTER_S, stacklevel: int = 3
) -> list[Path]:
    """Remove the temporary files that killed writes of `names` left in `folder`; return those removed.

    Only files named as this module names them (or as the versions before it did: `.<name>.` and 8 random
    characters) are touched. One that cannot be deleted (a read-only shared folder) is a warning, not an error: the
    complete files beside it are still good.
    """
    names = list(names)
    if not names or not folder.is_dir():
        return []
    alternatives = "|".join(re.escape(name) for name in names)
    pattern = re.compile(rf"\.(?:{alternatives})\.(?:(?P<pid>[0-9]+)-(?P<host>[A-Za-z0-9-]*)\.)?[A-Za-z0-9_]{{8}}")
    here, now, removed = _host(), time.time(), []
    for path in folder.iterdir():
        match = pattern.fullmatch(path.name)
        if match is None:
            continue
        try:
            if match["pid"] is not None and match["host"] == here:
                gone = int(match["pid"]) != os.getpid() and _process_is_gone(int(match["pid"]))
            else:
                gone = False
            if gone or now - path.stat().st_mtime > stale_after:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # another process cleaned it first
            continue
        except OSError as exc:
            message = f"could not delete {path}, left by an interrupted write ({exc}); delete it by hand."
            warnings.warn(message, stacklevel=stacklevel)
    return removed


def write_atomically(path: Path, write: Callable[[str], None], *, mode: int = 0o644) -> None:
    """Write `path` through a temporary file in its folder: `write(tmp)` fills it, then it takes the name. A failure
    leaves the old file (or none); a kill leaves a temporary file that `remove_leftovers` removes on a later run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, mode)  # mkstemp creates 0600; these are ordinary, readable files
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)

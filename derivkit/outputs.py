"""Everything derivkit writes to a file goes through here.

Outputs are checked before any work starts (so a long run never ends in "cannot
write"), only ever replace a regular file (never a device, a FIFO or a
directory: as root, ``-o /dev/null`` must not turn /dev/null into a file), are
written atomically (a report is complete or absent) and get ordinary
permissions (0666 less the umask, as ``open`` would give).
"""
from __future__ import annotations

import math
import os
import stat
import tempfile
from pathlib import Path

from .errors import Location, UserError


def check_output(path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` as a place to write ``what``: an existing regular file, or a new name under a
    writable directory (missing directories are created when written)."""
    p = Path(path)
    where = Location(str(p))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        anc = p.parent if str(p.parent) else Path(".")
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if not anc.is_dir():
            raise UserError(f"cannot write the {what}: {anc} is not a directory", where) from None
        if not os.access(anc, os.W_OK):
            raise UserError(f"cannot write the {what}: the directory {anc} is not writable", where) from None
        return p
    except OSError as exc:
        raise UserError(f"cannot write the {what}: {exc.strerror or exc}", where) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserError(f"cannot write the {what}: {p} is {kind} (derivkit writes only regular files)", where)
    if not os.access(p, os.W_OK):
        raise UserError(f"cannot write the {what}: {p} is not writable", where)
    return p


def check_output_dir(path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` as a folder to write ``what`` into: an existing writable directory, or a new
    name under one (created when written)."""
    p = Path(path)
    if not p.exists():
        check_output(p, what)               # the same rule as a new file: a writable ancestor
        return p
    if not p.is_dir():
        raise UserError(f"cannot write the {what}: {p} exists and is not a directory", Location(str(p)))
    if not os.access(p, os.W_OK):
        raise UserError(f"cannot write the {what}: the directory {p} is not writable", Location(str(p)))
    return p


def write_atomic(path: str | os.PathLike, data: str | bytes, what: str = "output") -> None:
    """Write ``data`` to ``path`` completely or not at all."""
    p = check_output(path, what)
    tmp = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        check_output(p, what)            # still not a device/FIFO/directory at the last moment
        os.replace(tmp, p)
        tmp = None
    except OSError as exc:
        raise UserError(f"cannot write the {what}: {exc.strerror or exc}", Location(str(p))) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def json_safe(x):
    """JSON has no inf/nan and no NumPy scalars: nulls and plain numbers instead."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:     # NumPy scalar
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x

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

from .errors import UserError


def check_output(path: str | os.PathLike, option: str = "-o") -> Path:
    """Refuse an output path that is not, or cannot become, a regular file."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UserError(f"{option} {p}: {exc.strerror or exc}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UserError(f"{option} {p}: not a regular file (derivkit writes only regular files)")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UserError(f"{option} {p}: {parent} is not a directory")
    if not parent.exists():
        # the nearest existing ancestor must be a directory we can create under
        anc = parent
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if not anc.is_dir():
            raise UserError(f"{option} {p}: {anc} is not a directory")
    return p


def write_atomic(path: str | os.PathLike, data: str | bytes, option: str = "-o") -> None:
    """Write ``data`` to ``path`` completely or not at all."""
    p = check_output(path, option)
    tmp = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        check_output(p, option)          # still not a device/FIFO/directory at the last moment
        os.replace(tmp, p)
        tmp = None
    except OSError as exc:
        raise UserError(f"cannot write {p}: {exc.strerror or exc}")
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

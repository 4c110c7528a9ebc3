"""Files the service reads and writes: inputs checked before they are opened, outputs written
whole or not at all (a temporary file beside the target, renamed over it)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from screener.errors import InputError


def input_file(path: str | Path, name: str | None = None) -> Path:
    """``path`` as a file that can be read; :class:`InputError` saying why not otherwise.

    ``name`` is how the message calls the file (default: its path), e.g. ``"bulk file x.cif"``.
    """
    path = Path(path)
    name = str(path) if name is None else name
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not a file")
    if not path.is_file():
        raise InputError(f"{name}: not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{name}: not readable (permission denied)")
    return path


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` through a temporary file in its directory, then rename it.

    Parameters
    ----------
    path
        The file to write; its directory is created when missing.
    text
        The content (UTF-8, no newline translation).
    mode
        Permissions of the file.  None: as ``open`` creates files (under the umask).  Given,
        the temporary file is private (0600) from its creation until it gets ``mode``, so a
        file that carries credentials is never readable by others on the way.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        handle = open(tmp, "x", encoding="utf-8", newline="")  # closed by the with below
    else:
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        handle = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path

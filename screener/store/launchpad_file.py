"""FireWorks' configuration files for the store in use, so FireWorks' own tools reach it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from screener.store.connect import Store


def write_yaml_atomic(path: Path, data: Any, *, mode: int = 0o644) -> Path:
    """Write ``data`` as YAML to ``path`` whole or not at all (a temporary file renamed).

    Parameters
    ----------
    path
        The file to write; its directory is created when missing.
    data
        What ``yaml.safe_dump`` writes.
    mode
        Permissions of the file (``0o600`` for one that may carry credentials).

    Returns
    -------
    Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp: 0600 from the start
            handle.write(yaml.safe_dump(data, sort_keys=True))
        os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path


def write_launchpad_file(store: Store, path: Path | None = None) -> Path:
    """Write ``my_launchpad.yaml`` for this store (default: in the data directory)."""
    path = path or store.settings.data_dir / "my_launchpad.yaml"
    return write_yaml_atomic(
        path, store.launchpad_spec(), mode=0o600
    )  # the URI may hold a password

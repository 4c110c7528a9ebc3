"""FireWorks' configuration files for the store in use, so FireWorks' own tools reach it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from screener.files import write_text_atomic
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
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=True), mode=mode)


def write_launchpad_file(store: Store, path: Path | None = None) -> Path:
    """Write ``my_launchpad.yaml`` for this store (default: in the data directory)."""
    path = path or store.settings.data_dir / "my_launchpad.yaml"
    return write_yaml_atomic(
        path, store.launchpad_spec(), mode=0o600
    )  # the URI may hold a password

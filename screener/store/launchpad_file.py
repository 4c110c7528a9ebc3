"""FireWorks' configuration files for the store in use, so FireWorks' own tools reach it."""

from __future__ import annotations

from pathlib import Path

import yaml

from screener.store.connect import Store


def write_launchpad_file(store: Store, path: Path | None = None) -> Path:
    """Write ``my_launchpad.yaml`` for this store (default: in the data directory)."""
    path = path or store.settings.data_dir / "my_launchpad.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.touch(mode=0o600)  # a MongoDB URI may carry credentials
    tmp.write_text(yaml.safe_dump(store.launchpad_spec(), sort_keys=True))
    tmp.replace(path)
    return path

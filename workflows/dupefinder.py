"""FireWorks duplicate finder on screener's step key.

A shared step (gas reference, bulk, slab) is identified by its ``spec["screener_key"]``
(``slab:<surface key>:<profile>`` and the like), so two workflows that need the same slab run it
once.  Matching on the key is an indexed equality query, where FireWorks' ``DupeFinderExact``
compares whole specs (structures included) against every firework.
"""

from __future__ import annotations

from typing import Any

from fireworks.features.dupefinder import DupeFinderBase
from fireworks.utilities.fw_utilities import explicit_serialize


@explicit_serialize
class DupeFinderKey(DupeFinderBase):
    """Fireworks with the same ``spec.screener_key`` are duplicates."""

    def verify(self, spec1: dict[str, Any], spec2: dict[str, Any]) -> bool:
        return spec1.get("screener_key") == spec2.get("screener_key") is not None

    def query(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"spec.screener_key": spec.get("screener_key")}

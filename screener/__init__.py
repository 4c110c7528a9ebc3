"""screener: closed-loop active-learning screening of adsorption sites (control plane)."""

from __future__ import annotations

__version__ = "0.1.0"

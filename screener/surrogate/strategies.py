"""The names of the acquisition strategies, and the one check of a name.

Kept apart from :mod:`screener.surrogate.acquisition` (which imports modAL and scikit-learn) so
that the command line can offer them as choices without importing either.
"""

from __future__ import annotations

from screener.errors import InputError

#: the acquisition strategies, the default first
STRATEGIES = ("target-window", "gaussian-target", "ei", "ucb", "max-std", "random")


def check_strategy(name: str) -> str:
    """Return ``name`` if it is a known strategy; raise :class:`InputError` naming them if not."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy '{name}' (one of: {', '.join(STRATEGIES)})")
    return name

"""Checks of everything a dashboard user sends, before it reaches a query.

Each check returns a plain value (a string from a fixed alphabet, a finite number in range, a
known name) or raises :class:`BadRequest` with a one-line message: no text a user types becomes a
MongoDB operator or a field name.  The JSON API answers a BadRequest with 400; the pages show
its message.
"""

from __future__ import annotations

import hmac
import math
import re

from screener.settings import ScreenerSettings

SPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SURFACE_KEY = re.compile(r"^[A-Za-z0-9_.:|/+-]{1,200}$")
MILLER = re.compile(r"^\s*(-?\d)\s*,?\s*(-?\d)\s*,?\s*(-?\d)\s*$")
MAX_LIMIT = 10_000


class BadRequest(Exception):
    """A parameter that cannot be used: nothing is read or written."""


def space_name(value: str | None) -> str:
    if not value or not SPACE_NAME.match(value):
        raise BadRequest("space: expected a space name (letters, digits, '-', '_', '.')")
    return value


def surface_key(value: str | None) -> str:
    if not value or not SURFACE_KEY.match(value):
        raise BadRequest("surface: expected a surface key")
    return value


def adsorbate_name(value: str | None, *, optional: bool = False) -> str | None:
    """A known adsorbate; with ``optional``, None for a missing or empty value."""
    from workflows.adsorbates import ADSORBATES

    if optional and not value:
        return None
    if value not in ADSORBATES:
        raise BadRequest(f"adsorbate: expected one of {', '.join(ADSORBATES)}")
    return value


def number(name: str, value: str | float | None, low: float, high: float) -> float | None:
    """A finite number in [low, high], or None for an empty value."""
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name}: expected a number") from None
    if not math.isfinite(result) or not low <= result <= high:
        raise BadRequest(f"{name}: expected a number from {low:g} to {high:g}")
    return result


def goal(target: str | float | None, window: str | float | None) -> dict[str, float | None]:
    """The ``target`` and ``window`` (eV) of a ranking, checked; None means the default."""
    return {
        "target": number("target", target, -20.0, 20.0),
        "window": number("window", window, 0.001, 5.0),
    }


def profile_name(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    from workflows.profiles import IDENTITY_PATTERN

    if not IDENTITY_PATTERN.match(value):
        raise BadRequest("calculator: expected a profile name, or name@8 hex digits")
    return value


def limit(value: str | None, default: int = 20) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) > MAX_LIMIT:
        raise BadRequest(f"limit: expected an integer from 0 to {MAX_LIMIT}")
    return int(value)


def elements(value: str | None) -> tuple[str, ...]:
    """Element symbols separated by commas, spaces or dashes ("Cu,Pd", "Cu Pd", "Cu-Pd")."""
    from ase.data import chemical_symbols

    if not value or not value.strip():
        return ()
    symbols = [s for s in re.split(r"[\s,;-]+", value.strip()) if s]
    known = set(chemical_symbols[1:])
    for symbol in symbols:
        if symbol not in known:
            shown = symbol if len(symbol) <= 12 else symbol[:12] + "..."
            raise BadRequest(f"elements: '{shown}' is not an element symbol")
    return tuple(dict.fromkeys(symbols))


def miller(value: str | None) -> tuple[int, int, int] | None:
    """A Miller index as "111", "1,1,0" or "-1 1 0"; None for an empty value."""
    if not value or not value.strip():
        return None
    found = MILLER.match(value)
    if not found:
        raise BadRequest("miller: expected three digits such as 111, 1,1,0 or -1 1 0")
    return tuple(int(i) for i in found.groups())  # type: ignore[return-value]


def check_token(settings: ScreenerSettings, given: str | None) -> tuple[int, str] | None:
    """None when ``given`` is the configured dashboard token; else (HTTP status, message):
    403 when no token is configured, 401 when it is missing or wrong."""
    token = settings.dashboard_token
    if token is None:
        return 403, "admin actions are off: no dashboard token is configured"
    secret = token.get_secret_value().encode()
    if not given or not hmac.compare_digest(given.strip().encode(), secret):
        return 401, "missing or wrong token"
    return None

"""The dashboard's HTTP JSON API (for scripts and tests), served beside its pages.

* ``GET /api/status``: the object ``screener status --json`` prints.
* ``GET /api/candidates?space=S&adsorbate=A&limit=N``: the rows ``screener candidates --json``
  prints (``target`` and ``window`` in eV are optional, as on the command line).
* ``POST /api/spaces/<space>/pause`` and ``/resume``: admin actions, with the header
  ``Authorization: Bearer <token>`` carrying ``SCREENER_DASHBOARD_TOKEN``.  With no token
  configured they answer 403; a missing or wrong token answers 401.

Every parameter is checked before it reaches the store (known adsorbate, a space name of
letters, digits and ``-_.``, finite numbers in range); a bad one answers 400 with a one-line
``{"error": ...}`` and nothing is written.  Errors about the data (an unknown space) answer 404.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from typing import Any

from flask import Blueprint, Response, current_app, request

from screener.errors import InputError, ScreenerError

SPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_LIMIT = 10_000


class BadRequest(Exception):
    """A request parameter that cannot be used: answered 400, nothing read or written."""


def _finite(value: Any) -> Any:
    """The value with NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(_finite(data), default=str, allow_nan=False)
    return Response(body, status=status, mimetype="application/json")


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


def _space(value: str | None) -> str:
    if not value or not SPACE_NAME.match(value):
        raise BadRequest("space: expected a space name (letters, digits, '-', '_', '.')")
    return value


def _adsorbate(value: str | None) -> str:
    from workflows.adsorbates import ADSORBATES

    if value not in ADSORBATES:
        raise BadRequest(f"adsorbate: expected one of {', '.join(ADSORBATES)}")
    return value


def _number(name: str, value: str | None, low: float, high: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"{name}: expected a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise BadRequest(f"{name}: expected a number from {low:g} to {high:g}")
    return number


def _profile(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not SPACE_NAME.match(value):
        raise BadRequest("calculator: expected a profile name (letters, digits, '-', '_', '.')")
    return value


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return 20
    if not value.isdigit() or int(value) > MAX_LIMIT:
        raise BadRequest(f"limit: expected an integer from 0 to {MAX_LIMIT}")
    return int(value)


def _authorised() -> Response | None:
    """None when the request carries the configured token; else the answer to give."""
    token = current_app.config["SCREENER_SETTINGS"].dashboard_token
    if token is None:
        return _error("admin actions are off: no dashboard token is configured", 403)
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    secret = token.get_secret_value().encode()
    if scheme != "Bearer" or not hmac.compare_digest(value.strip().encode(), secret):
        return _error("missing or wrong token", 401)
    return None


def blueprint() -> Blueprint:
    """The API's routes; the app's config holds ``SCREENER_STORE`` and ``SCREENER_SETTINGS``."""
    api = Blueprint("screener_api", __name__, url_prefix="/api")

    @api.errorhandler(BadRequest)
    def _bad(error: BadRequest) -> Response:
        return _error(str(error), 400)

    @api.errorhandler(InputError)
    def _unknown(error: InputError) -> Response:
        return _error(str(error), 404)

    @api.errorhandler(ScreenerError)
    def _failed(error: ScreenerError) -> Response:
        return _error(str(error), 503)

    @api.get("/status")
    def status() -> Response:
        from screener.queries import status as get_status

        return _json(get_status(current_app.config["SCREENER_STORE"]))

    @api.get("/candidates")
    def candidates() -> Response:
        from screener.candidates import candidates as rank

        args = request.args
        rows = rank(
            _space(args.get("space")),
            _adsorbate(args.get("adsorbate")),
            profile=_profile(args.get("calculator")),
            target=_number("target", args.get("target"), -20.0, 20.0),
            window=_number("window", args.get("window"), 0.001, 5.0),
            limit=_limit(args.get("limit")),
        )
        return _json(rows)

    def _set(space: str, paused: bool) -> Response:
        from screener.daemon import set_paused

        refused = _authorised()
        if refused is not None:
            return refused
        name = _space(space)
        set_paused(current_app.config["SCREENER_STORE"], name, paused)
        return _json({"space": name, "paused": paused})

    @api.post("/spaces/<space>/pause")
    def pause(space: str) -> Response:
        return _set(space, True)

    @api.post("/spaces/<space>/resume")
    def resume(space: str) -> Response:
        return _set(space, False)

    return api

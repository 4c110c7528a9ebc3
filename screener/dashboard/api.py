"""The dashboard's HTTP JSON API (for scripts and tests), served beside its pages.

* ``GET /api/status``: the object ``screener status --json`` prints.
* ``GET /api/candidates?space=S&adsorbate=A&limit=N``: the rows ``screener candidates --json``
  prints (``adsorbate``, default the space's first, and ``target`` and ``window`` in eV are
  optional, as on the command line).
* ``POST /api/spaces/<space>/pause`` and ``/resume``: admin actions, with the header
  ``Authorization: Bearer <token>`` carrying ``SCREENER_DASHBOARD_TOKEN``.  With no token
  configured they answer 403; a missing or wrong token answers 401.

Every parameter is checked before it reaches the store (known adsorbate, a space name of
letters, digits and ``-_.``, finite numbers in range); a bad one answers 400 with a one-line
``{"error": ...}`` and nothing is written.  Errors about the data (an unknown space) answer 404,
and so does any other path under ``/api``; a known path asked with another method answers 405
with an ``Allow`` header.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from screener.dashboard import inputs
from screener.dashboard.inputs import BadRequest
from screener.errors import InputError, ScreenerError

MAX_LIMIT = inputs.MAX_LIMIT
BLUEPRINT = "screener_api"
CATCH_ALL = f"{BLUEPRINT}.unknown"


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


def _authorised() -> Response | None:
    """None when the request carries the configured token; else the answer to give."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    refused = inputs.check_token(
        current_app.config["SCREENER_SETTINGS"], value if scheme == "Bearer" else None
    )
    return None if refused is None else _error(refused[1], refused[0])


def _api_rules():
    """The API's routes, without the catch-all (Flask's own table, so nothing restates them)."""
    return [
        rule
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{BLUEPRINT}.") and rule.endpoint != CATCH_ALL
    ]


def _endpoints() -> list[tuple[str, str]]:
    """(method, path) of every API endpoint, sorted by path."""
    pairs = {
        (method, rule.rule)
        for rule in _api_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    return sorted(pairs, key=lambda pair: (pair[1], pair[0]))


def _methods_of(path: str) -> list[str]:
    """The methods an API endpoint at ``path`` answers (empty: no endpoint there)."""
    adapter = current_app.url_map.bind("localhost")
    found = set()
    for rule in _api_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            try:
                endpoint, _ = adapter.match(path, method=method)
            except HTTPException:  # NotFound, MethodNotAllowed, RequestRedirect
                continue
            if endpoint == rule.endpoint:
                found.add(method)
    return sorted(found)


def blueprint() -> Blueprint:
    """The API's routes; the app's config holds ``SCREENER_STORE`` and ``SCREENER_SETTINGS``."""
    api = Blueprint(BLUEPRINT, __name__, url_prefix="/api")

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
            inputs.space_name(args.get("space")),
            inputs.adsorbate_name(args.get("adsorbate"), optional=True),
            profile=inputs.profile_name(args.get("calculator")),
            **inputs.goal(args.get("target"), args.get("window")),
            limit=inputs.limit(args.get("limit")),
        )
        return _json(rows)

    def _set(space: str, paused: bool) -> Response:
        from screener.daemon import set_paused

        refused = _authorised()
        if refused is not None:
            return refused
        name = inputs.space_name(space)
        set_paused(current_app.config["SCREENER_STORE"], name, paused)
        return _json({"space": name, "paused": paused})

    @api.post("/spaces/<space>/pause")
    def pause(space: str) -> Response:
        return _set(space, True)

    @api.post("/spaces/<space>/resume")
    def resume(space: str) -> Response:
        return _set(space, False)

    # any other /api path answers 404 in JSON (405 for a known path and another method);
    # without this, the pages' catch-all route served the dashboard's HTML with 200 to a
    # script that mistyped an endpoint
    @api.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    @api.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(path: str) -> Response:
        shown = f"/api/{path}"[:120]
        allowed = _methods_of(request.path)
        if allowed:
            answer = _error(f"{shown} answers {', '.join(allowed)}, not {request.method}", 405)
            answer.headers["Allow"] = ", ".join(allowed)
            return answer
        listed = ", ".join(f"{method} {rule}" for method, rule in _endpoints())
        return _error(f"no API endpoint {request.method} {shown} ({listed})", 404)

    return api

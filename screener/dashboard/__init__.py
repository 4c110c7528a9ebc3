"""The dashboard: one long-lived web process that reads the store live (``screener dashboard``).

It serves a Dash app whose scripts and styles come from the installed packages (nothing from a
CDN), and the HTTP JSON API of :mod:`screener.dashboard.api` beside it.  It reads through the
read side (:mod:`screener.queries`, :mod:`screener.candidates`) and writes only for the admin
actions (pause and resume a space's daemon), which need ``SCREENER_DASHBOARD_TOKEN``.
"""

from __future__ import annotations

from typing import Any

from screener.settings import ScreenerSettings
from screener.store import Store

REFRESH_S = 10.0  # the overview refreshes itself this often


def create_app(store: Store, settings: ScreenerSettings, *, refresh_s: float = REFRESH_S) -> Any:
    """The Dash app on an open store (its Flask server is ``app.server``)."""
    from dash import Dash, Input, Output, dcc, html

    from screener.dashboard.api import blueprint
    from screener.queries import status

    app = Dash(__name__, title="screener", serve_locally=True, update_title=None)
    app.server.config.update(SCREENER_STORE=store, SCREENER_SETTINGS=settings)
    app.server.register_blueprint(blueprint())
    app.layout = html.Div(
        [
            html.H1("screener"),
            html.Div(id="overview"),
            dcc.Interval(id="tick", interval=int(refresh_s * 1000)),
        ]
    )

    @app.callback(Output("overview", "children"), Input("tick", "n_intervals"))
    def _overview(_: int | None):
        return overview_table(status(store))

    return app


def overview_table(data: dict) -> Any:
    """Each space: bulks, surfaces, sites per adsorbate, its daemon and its queue."""
    from dash import html

    head = ["space", "elements", "bulks", "surfaces", "sites", "daemon", "paused", "queued"]
    head += ["last cycle"]
    rows = []
    for name, row in data["spaces"].items():
        daemon = row.get("daemon") or {}
        cycle = row.get("last_cycle") or {}
        beat = daemon.get("heartbeat_age_s")
        rows.append(
            [
                name,
                ",".join(row["elements"]),
                row["bulks"],
                row["surfaces"],
                ", ".join(f"{a} {n}" for a, n in row["sites"].items()),
                "none" if not daemon else f"{daemon.get('state')} ({beat} s ago)",
                "yes" if row.get("paused") else "no",
                row.get("queued", ""),
                cycle.get("number", ""),
            ]
        )
    body = html.Tbody([html.Tr([html.Td(str(v)) for v in r]) for r in rows])
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in head])), body], id="spaces")

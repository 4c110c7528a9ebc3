"""The dashboard: one long-lived web process that reads the store live (``screener dashboard``).

It serves a Dash app whose scripts, styles and fonts come from the installed packages and its
own ``assets/`` (nothing from a CDN), and the HTTP JSON API of :mod:`screener.dashboard.api`
beside it.  Pages (:mod:`screener.dashboard.pages`): overview (refreshes itself), candidates,
map, model, surface and jobs.  It reads through the read side (:mod:`screener.views`,
:mod:`screener.queries`) and writes only for the admin actions (pause and resume a space's
daemon), which need ``SCREENER_DASHBOARD_TOKEN``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from screener.settings import ScreenerSettings
from screener.store import Store

REFRESH_S = 10.0  # the overview refreshes itself this often

log = logging.getLogger(__name__)


def create_app(
    store: Store, settings: ScreenerSettings, *, refresh_s: float = REFRESH_S, warm: bool = True
) -> Any:
    """The Dash app on an open store (its Flask server is ``app.server``); with ``warm``, a
    background thread keeps the views of every space built (:func:`screener.views.warm_up`)."""
    from dash import Dash, dcc, html

    from screener.dashboard.api import blueprint
    from screener.dashboard.pages import PAGES, register

    app = Dash(
        __name__,
        title="screener",
        serve_locally=True,
        update_title=None,
        suppress_callback_exceptions=True,
        assets_folder=str(Path(__file__).with_name("assets")),
        external_stylesheets=[],
        external_scripts=[],
    )
    app.server.config.update(SCREENER_STORE=store, SCREENER_SETTINGS=settings)
    app.server.register_blueprint(blueprint())
    nav = [dcc.Link(name, href=path, className="nav") for path, name in PAGES]
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            dcc.Store(id="token", storage_type="session"),
            html.Header(
                [
                    html.Span("screener", className="brand"),
                    *nav,
                    html.Span(
                        [
                            dcc.Input(
                                id="token-input",
                                type="password",
                                placeholder="dashboard token",
                                debounce=True,
                                style={"width": "14em"},
                            ),
                            html.Span("no token", id="token-state", className="muted"),
                        ],
                        className="token",
                    ),
                ]
            ),
            html.Main(id="page"),
        ]
    )
    register(app, store, settings, refresh_s)
    if warm:
        threading.Thread(target=_keep_warm, args=(store, refresh_s), daemon=True).start()
    return app


def _keep_warm(store: Store, every_s: float) -> None:
    """Rebuild, in the background, the per-space views a page over every surface reads, as
    soon as a model or a result changes them (a million-site space takes seconds); stops when
    the store is closed."""
    from screener import views
    from screener.store import ElementSpace

    while not store.closed.is_set():
        try:
            for space in ElementSpace.objects.only("name"):
                if store.closed.is_set():
                    return
                views.warm_up(space.name)
        except Exception:  # a page shows the error; warming must not die of it
            if store.closed.is_set():
                return
            log.exception("warming the dashboard's views failed")
        store.closed.wait(every_s)

"""The dashboard's pages: overview, candidates, map, model, surface and jobs.

Each page is a layout function and the callbacks that fill it; :func:`register` adds them to
the app.  Pages read through :mod:`screener.views` and draw with :mod:`screener.figures`.
Every value a user sends is checked by :mod:`screener.dashboard.inputs` first; a bad one is
shown as a one-line message and nothing is read.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import parse_qs, urlencode

import dash_ag_grid as dag
from dash import MATCH, Dash, Input, Output, State, ctx, dcc, html, no_update

from screener.dashboard import inputs
from screener.dashboard.inputs import BadRequest
from screener.errors import ScreenerError
from screener.settings import ScreenerSettings
from screener.store import Store

PAGES = (
    ("/", "Overview"),
    ("/candidates", "Candidates"),
    ("/map", "Map"),
    ("/model", "Model"),
    ("/jobs", "Jobs"),
)
GRID_BLOCK = 100  # rows the candidates grid asks for at a time


def href(path: str, **query: Any) -> str:
    """A page's address with its query (values URL-encoded)."""
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(query) if query else "")


def query_of(search: str | None) -> dict[str, str]:
    """The first value of each parameter of a page's query string."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items() if v}


def _error(message: str) -> html.Div:
    return html.Div(message, className="error")


def _spaces() -> list[str]:
    from screener.store import ElementSpace

    return [s.name for s in ElementSpace.objects.only("name").order_by("name")]


def _space_adsorbates(space: str) -> list[str]:
    from screener.queries import get_space

    return list(get_space(space).adsorbates)


def _dropdown(id_: str, options: list[str], value: str | None, **kw: Any) -> dcc.Dropdown:
    return dcc.Dropdown(
        id=id_, options=options, value=value, clearable=False, style={"minWidth": "10em"}, **kw
    )


def _space_choice(id_: str, query: dict[str, str]) -> html.Label:
    """The labelled space dropdown of a page: the query's space if it exists, else the first."""
    spaces = _spaces()
    chosen = query.get("space") if query.get("space") in spaces else None
    return _label("space", _dropdown(id_, spaces, chosen or (spaces[0] if spaces else None)))


def _table(head: list[str], rows: list[list[Any]], id_: str | None = None) -> html.Table:
    body = html.Tbody([html.Tr([html.Td(v) for v in row]) for row in rows])
    table = html.Table([html.Thead(html.Tr([html.Th(h) for h in head])), body])
    if id_:
        table.id = id_
    return table


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def _miller(miller: Any) -> str:
    return "(" + "".join(str(i) for i in miller) + ")" if miller else ""


def _controls(*children: Any) -> html.Div:
    return html.Div(list(children), className="controls")


def _label(text: str, child: Any) -> html.Label:
    return html.Label([html.Span(text), child])


# -- overview -----------------------------------------------------------------------------------
def overview_layout(refresh_s: float) -> html.Div:
    return html.Div(
        [
            html.H2("Overview"),
            html.Div(id="overview"),
            html.H3("Admin"),
            html.P("Pause or resume a space's daemon (needs the dashboard token, entered above)."),
            _controls(
                dcc.Input(id="admin-space", placeholder="space", type="text"),
                html.Button("pause", id="admin-pause"),
                html.Button("resume", id="admin-resume"),
                html.Span(id="admin-result"),
            ),
            dcc.Interval(id="tick", interval=int(refresh_s * 1000)),
        ]
    )


def overview_content(store: Store) -> list[Any]:
    from screener.queries import job_counts, status
    from screener.views import fireworks_queue, recent_cycles

    data = status(store)
    head = ["space", "elements", "bulks", "surfaces", "sites", "done", "failed", "running"]
    head += ["daemon", "heartbeat", "paused", "cycle"]
    rows, cycle_blocks = [], []
    for name, row in data["spaces"].items():
        daemon = row.get("daemon") or {}
        cycle = row.get("last_cycle") or {}
        jobs = job_counts(name)
        rows.append(
            [
                dcc.Link(name, href=href("/candidates", space=name)),
                ",".join(row["elements"]),
                row["bulks"],
                row["surfaces"],
                ", ".join(f"{a} {n}" for a, n in row["sites"].items()),
                jobs.get("done", 0),
                jobs.get("failed", 0),
                jobs.get("queued", 0),
                daemon.get("state") or "none",
                "–" if not daemon else f"{daemon.get('heartbeat_age_s')} s ago",
                "yes" if row.get("paused") else "no",
                cycle.get("number", "–"),
            ]
        )
        cycles = recent_cycles(name)
        if cycles:
            steps = list(dict.fromkeys(k for c in reversed(cycles) for k in c.timings))
            cycle_blocks += [
                html.H4(f"{name}: last cycles"),
                _table(
                    ["cycle", "profile", "started", "seconds", "submitted", *steps],
                    [
                        [
                            c.number,
                            c.profile,
                            c.started.strftime("%Y-%m-%d %H:%M:%S") if c.started else "",
                            _fmt(c.seconds, ".1f"),
                            c.submitted,
                            *[_fmt(c.timings.get(s), ".2f") for s in steps],
                        ]
                        for c in cycles
                    ],
                    id_=f"cycles-{name}",
                ),
            ]
    queue = fireworks_queue(store.launchpad())
    return [
        _table(head, rows, id_="spaces"),
        html.H3("FireWorks queue"),
        _table(list(queue), [list(queue.values())], id_="fireworks"),
        *cycle_blocks,
        html.P(f"store: {data['store']['kind']} {data['store']['location']}", className="muted"),
    ]


# -- candidates ---------------------------------------------------------------------------------
COLUMNS = [
    ("surface", "surface", False),
    ("bulk_formula", "bulk", True),
    ("miller", "Miller", True),
    ("termination", "termination", False),
    ("energy", "dE (eV)", True),
    ("std", "std (eV)", True),
    ("distance", "|dE - target|", True),
    ("source", "source", True),
    ("n_calculated", "calculated sites", True),
    ("in_window", "in window", False),
]


def candidates_layout(query: dict[str, str]) -> html.Div:
    return html.Div(
        [
            html.H2("Candidates"),
            _controls(
                _space_choice("cand-space", query),
                _label("adsorbate", _dropdown("cand-adsorbate", [], None)),
                _label("target (eV)", dcc.Input(id="cand-target", type="number", debounce=True)),
                _label("window (eV)", dcc.Input(id="cand-window", type="number", debounce=True)),
                _label(
                    "elements",
                    dcc.Input(id="cand-elements", type="text", placeholder="Cu,Pd", debounce=True),
                ),
                _label(
                    "Miller",
                    dcc.Input(id="cand-miller", type="text", placeholder="111", debounce=True),
                ),
                _label(
                    "source",
                    dcc.Dropdown(
                        id="cand-source",
                        options=["calculated", "predicted"],
                        placeholder="any",
                        style={"minWidth": "9em"},
                    ),
                ),
                dcc.Checklist(id="cand-window-only", options=["in the window only"], value=[]),
                html.Button("CSV", id="cand-csv"),
                dcc.Download(id="cand-download"),
            ),
            html.Div(id="cand-message"),
            html.Div(id="cand-holder"),
        ]
    )


def candidates_grid(n: int) -> html.Div:
    """A fresh grid (new ids): the controls changed, so every block it cached is stale."""
    return html.Div(
        [
            html.Div(id={"type": "cand-summary", "n": n}),
            dag.AgGrid(
                id={"type": "cand-grid", "n": n},
                rowModelType="infinite",
                columnDefs=[
                    {
                        "field": f,
                        "headerName": h,
                        "sortable": s,
                        **({"cellRenderer": "markdown"} if f == "surface" else {}),
                    }
                    for f, h, s in COLUMNS
                ],
                defaultColDef={"resizable": True, "filter": False},
                dashGridOptions={
                    "cacheBlockSize": GRID_BLOCK,
                    "maxBlocksInCache": 20,
                    "rowBuffer": 0,
                },
                style={"height": "560px"},
                className="ag-theme-alpine",
            ),
        ]
    )


def _candidate_query(elements, miller, source, window_only, start=0, end=GRID_BLOCK, sort=None):
    from screener.views import SORTABLE, CandidateQuery

    sort_by, descending = "distance", False
    if sort:
        first = sort[0]
        if first.get("colId") in SORTABLE:
            sort_by, descending = first["colId"], first.get("sort") == "desc"
    if source not in (None, "calculated", "predicted"):
        raise BadRequest("source: expected calculated or predicted")
    start, end = int(start or 0), int(end or GRID_BLOCK)
    return CandidateQuery(
        elements=inputs.elements(elements),
        miller=inputs.miller(miller),
        source=source,
        in_window=bool(window_only),
        sort_by=sort_by,
        descending=descending,
        offset=max(start, 0),
        limit=min(max(end - start, 1), inputs.MAX_LIMIT),
    )


def _ranking(space: str | None, adsorbate: str | None) -> tuple[str, str]:
    """The checked space and adsorbate of a candidates request."""
    return inputs.space_name(space), inputs.adsorbate_name(adsorbate)


def _grid_row(row, space: str) -> dict[str, Any]:
    out = row.as_dict()
    out["miller"] = _miller(row.miller)
    out["energy"], out["std"] = round(row.energy, 4), round(row.std, 4)
    out["distance"] = round(row.distance, 4)
    out["in_window"] = "yes" if row.in_window else ""
    link = href("/surface", space=space, key=row.surface)
    out["surface"] = f"[{row.surface}]({link})"
    return out


# -- map ----------------------------------------------------------------------------------------
def map_layout(query: dict[str, str]) -> html.Div:
    return html.Div(
        [
            html.H2("Map"),
            _controls(
                _space_choice("map-space", query),
                _label("x", _dropdown("map-x", [], None)),
                _label("y", _dropdown("map-y", [], None)),
            ),
            html.Div(id="map-summary"),
            dcc.Graph(id="map-graph", style={"height": "640px"}),
        ]
    )


# -- model --------------------------------------------------------------------------------------
def model_layout(query: dict[str, str]) -> html.Div:
    return html.Div(
        [
            html.H2("Model"),
            _controls(
                _space_choice("model-space", query),
                _label("adsorbate", _dropdown("model-adsorbate", [], None)),
                _label("model version", _dropdown("model-version", ["all"], "all")),
            ),
            html.Div(id="model-summary"),
            html.Div(
                [
                    dcc.Graph(id="model-parity"),
                    dcc.Graph(id="model-curve"),
                    dcc.Graph(id="model-calibration"),
                ],
                className="grid3",
            ),
        ]
    )


# -- surface ------------------------------------------------------------------------------------
def surface_layout(store: Store, query: dict[str, str]) -> html.Div:
    from screener.views import surface_view

    try:
        key = inputs.surface_key(query.get("key"))
        space = query.get("space")
        if space is None:
            space = _space_of_surface(key)
        space = inputs.space_name(space)
        view = surface_view(store, space, key)
    except (BadRequest, ScreenerError) as error:
        return html.Div([html.H2("Surface"), _error(str(error))])
    info = view.info
    rows, options = [], []
    for s in view.sites:
        retries = "; ".join(f"try {a.step}: {a.reason} -> {a.action}" for a in s.retries)
        rows.append(
            [
                s.adsorbate,
                s.site_type,
                "-".join(s.binding_elements),
                _fmt(s.predicted),
                _fmt(s.std),
                _fmt(s.calculated),
                ", ".join(s.flags),
                s.job_state or "open",
                s.reason or "",
                retries,
            ]
        )
        if s.calculation_key and s.calculated is not None:
            options.append(
                {
                    "label": f"{s.adsorbate} {s.site_type} {s.calculated:.3f} eV",
                    "value": s.calculation_key,
                }
            )
    return html.Div(
        [
            html.H2(f"{info.bulk_formula} {_miller(info.miller)} {info.termination}"),
            html.P(f"surface {info.key}, space {view.space}, profile {view.profile}"),
            *(
                [
                    html.P(
                        f"no model of this profile yet for {', '.join(view.unmodelled)}: "
                        "no predictions for those sites",
                        id="surface-no-model",
                        className="muted",
                    )
                ]
                if view.unmodelled
                else []
            ),
            _table(
                ["adsorbate", "site", "binding", "predicted", "std", "calculated", "flags"]
                + ["job", "reason", "retries"],
                rows,
                id_="sites",
            ),
            html.H3("Relaxed structure"),
            _controls(
                _dropdown(
                    "surface-calc",
                    options,
                    options[0]["value"] if options else None,
                    placeholder="no finished calculation",
                ),
                html.Button("extxyz", id="surface-download-button"),
                dcc.Download(id="surface-download"),
            ),
            dcc.Graph(id="surface-structure"),
        ]
    )


def _space_of_surface(key: str) -> str:
    from screener.store import ElementSpace, Surface

    surface = Surface._get_collection().find_one({"key": key}, {"bulk": 1})
    if surface is None:
        raise BadRequest("surface: no such surface")
    for space in ElementSpace.objects.only("name", "bulks").order_by("name"):
        if surface["bulk"] in set(space.bulks):
            return space.name
    raise BadRequest("surface: it belongs to no space")


# -- jobs ---------------------------------------------------------------------------------------
def jobs_layout(query: dict[str, str]) -> html.Div:
    return html.Div(
        [
            html.H2("Jobs"),
            _controls(_space_choice("jobs-space", query)),
            html.Div(id="jobs"),
        ]
    )


def jobs_content(space: str) -> list[Any]:
    from screener.views import jobs_view

    view = jobs_view(space)
    failures = [
        [
            f.kind,
            f.adsorbate or "",
            f.reason,
            " -> ".join(a.action for a in f.retries) or "none",
            len(f.retries),
            f.key,
        ]
        for f in view.failures
    ]
    times = [
        [
            t.kind,
            t.n,
            _fmt(t.mean_wall_s, ".2f"),
            _fmt(t.total_wall_s, ".1f"),
            _fmt(t.mean_ionic_steps, ".1f"),
        ]
        for t in view.times
    ]
    states = ", ".join(f"{k} {n}" for k, n in sorted(view.states.items())) or "no jobs"
    return [
        html.P(f"profile {view.profile}: {states}; {view.retried} finished after retries"),
        html.H3(f"Failures ({len(view.failures)})"),
        _table(
            ["step", "adsorbate", "reason", "rungs climbed", "tries", "key"],
            failures,
            id_="failures",
        )
        if failures
        else html.P("no failed calculation"),
        html.H3("Time per step"),
        _table(
            ["step", "finished", "mean wall (s)", "total (s)", "mean ionic steps"],
            times,
            id_="times",
        ),
    ]


# -- the app ------------------------------------------------------------------------------------
def register(app: Dash, store: Store, settings: ScreenerSettings, refresh_s: float) -> None:
    """The page router and every page's callbacks."""
    import plotly.graph_objects as go

    from screener import figures, views

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def _route(path: str | None, search: str | None):
        query = query_of(search)
        path = (path or "/").rstrip("/") or "/"
        if path == "/":
            return overview_layout(refresh_s)
        if path == "/candidates":
            return candidates_layout(query)
        if path == "/map":
            return map_layout(query)
        if path == "/model":
            return model_layout(query)
        if path == "/surface":
            return surface_layout(store, query)
        if path == "/jobs":
            return jobs_layout(query)
        return html.Div([html.H2("Not found"), html.P("no such page")])

    # overview
    @app.callback(Output("overview", "children"), Input("tick", "n_intervals"))
    def _overview(_: int | None):
        try:
            return overview_content(store)
        except ScreenerError as error:
            return _error(str(error))

    @app.callback(
        Output("admin-result", "children"),
        Input("admin-pause", "n_clicks"),
        Input("admin-resume", "n_clicks"),
        State("admin-space", "value"),
        State("token", "data"),
        prevent_initial_call=True,
    )
    def _admin(_pause, _resume, space, token):
        from screener.daemon import set_paused

        refused = inputs.check_token(settings, token)
        if refused is not None:
            return _error(f"refused ({refused[0]}): {refused[1]}")
        try:
            name = inputs.space_name(space)
            paused = ctx.triggered_id == "admin-pause"
            set_paused(store, name, paused)
        except (BadRequest, ScreenerError) as error:
            return _error(str(error))
        return f"{name}: {'paused' if paused else 'resumed'}"

    @app.callback(
        Output("token", "data"),
        Output("token-state", "children"),
        Input("token-input", "value"),
        prevent_initial_call=True,
    )
    def _token(value):
        value = (value or "").strip()
        return (value or None), ("token set for this tab" if value else "no token")

    # adsorbate choices of a space
    def _adsorbate_options(space):
        try:
            names = _space_adsorbates(inputs.space_name(space))
        except (BadRequest, ScreenerError):
            return [], None
        return names, (names[0] if names else None)

    app.callback(
        Output("cand-adsorbate", "options"),
        Output("cand-adsorbate", "value"),
        Input("cand-space", "value"),
    )(_adsorbate_options)
    app.callback(
        Output("model-adsorbate", "options"),
        Output("model-adsorbate", "value"),
        Input("model-space", "value"),
    )(_adsorbate_options)

    @app.callback(
        Output("map-x", "options"),
        Output("map-x", "value"),
        Output("map-y", "options"),
        Output("map-y", "value"),
        Input("map-space", "value"),
    )
    def _map_options(space):
        names, _ = _adsorbate_options(space)
        x = "CO" if "CO" in names else (names[0] if names else None)
        y = "H" if "H" in names else (names[-1] if names else None)
        return names, x, names, y

    # candidates: the grid asks for blocks of rows; any control resets it
    controls = [
        State("cand-space", "value"),
        State("cand-adsorbate", "value"),
        State("cand-target", "value"),
        State("cand-window", "value"),
        State("cand-elements", "value"),
        State("cand-miller", "value"),
        State("cand-source", "value"),
        State("cand-window-only", "value"),
    ]

    def _page(request, space, adsorbate, target, window, elements, miller, source, window_only):
        request = request or {}
        query = _candidate_query(
            elements,
            miller,
            source,
            window_only,
            request.get("startRow", 0),
            request.get("endRow", GRID_BLOCK),
            request.get("sortModel"),
        )
        return views.candidate_page(
            *_ranking(space, adsorbate), query, **inputs.goal(target, window)
        )

    @app.callback(
        Output("cand-holder", "children"),
        Input("cand-adsorbate", "value"),
        Input("cand-target", "value"),
        Input("cand-window", "value"),
        Input("cand-elements", "value"),
        Input("cand-miller", "value"),
        Input("cand-source", "value"),
        Input("cand-window-only", "value"),
        State("cand-holder", "children"),
    )
    def _new_grid(*values):
        old = values[-1]
        n = 0
        if isinstance(old, dict):
            n = 1 + int(old["props"]["children"][1]["props"]["id"]["n"])
        return candidates_grid(n)

    @app.callback(
        Output({"type": "cand-grid", "n": MATCH}, "getRowsResponse"),
        Output({"type": "cand-summary", "n": MATCH}, "children"),
        Input({"type": "cand-grid", "n": MATCH}, "getRowsRequest"),
        *controls,
    )
    def _rows(request, *values):
        if request is None or not values[1]:
            return no_update, no_update
        try:
            page = _page(request, *values)
        except (BadRequest, ScreenerError) as error:
            return {"rowData": [], "rowCount": 0}, _error(str(error))
        rows = [_grid_row(r, values[0]) for r in page.rows]
        summary = (
            f"{page.total} of {page.surfaces} surfaces; target {page.target:g} +- "
            f"{page.window:g} eV, profile {page.profile}"
        )
        return {"rowData": rows, "rowCount": page.total}, summary

    @app.callback(
        Output("cand-download", "data"),
        Output("cand-message", "children"),
        Input("cand-csv", "n_clicks"),
        *controls,
        prevent_initial_call=True,
    )
    def _csv(_clicks, *values):
        space, adsorbate, target, window, elements, miller, source, window_only = values
        try:
            rows, *_ = views.candidate_rows(
                *_ranking(space, adsorbate), **inputs.goal(target, window)
            )
            query = _candidate_query(elements, miller, source, window_only)
        except (BadRequest, ScreenerError) as error:
            return no_update, _error(str(error))
        buffer = io.StringIO()
        names = [f for f, _, _ in COLUMNS if f != "in_window"] + [
            "in_window",
            "site_id",
            "surface_id",
        ]
        writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        for row in views.filter_candidates(rows, query):
            writer.writerow(row.as_dict() | {"miller": _miller(row.miller)})
        name = f"candidates-{values[0]}-{values[1]}.csv"
        return dcc.send_string(buffer.getvalue(), name), no_update

    # map
    @app.callback(
        Output("map-graph", "figure"),
        Output("map-summary", "children"),
        Input("map-space", "value"),
        Input("map-x", "value"),
        Input("map-y", "value"),
    )
    def _map(space, x, y):
        if not x or not y:
            return figures.empty_figure("this space has no adsorbate pair"), ""
        try:
            emap = views.energy_map(
                inputs.space_name(space), inputs.adsorbate_name(x), inputs.adsorbate_name(y)
            )
        except (BadRequest, ScreenerError) as error:
            return go.Figure(), _error(str(error))
        calculated = sum(p.calculated for p in emap.points)
        text = f"{len(emap.points)} surfaces ({calculated} calculated for both); click a point"
        return figures.map_figure(emap), text

    @app.callback(
        Output("url", "href", allow_duplicate=True),
        Input("map-graph", "clickData"),
        State("map-space", "value"),
        prevent_initial_call=True,
    )
    def _open_surface(click, space):
        try:
            key = inputs.surface_key(click["points"][0]["customdata"][0])
        except (BadRequest, KeyError, IndexError, TypeError):
            return no_update
        return href("/surface", space=space, key=key)

    # model
    @app.callback(
        Output("model-version", "options"),
        Output("model-version", "value"),
        Input("model-adsorbate", "value"),
        State("model-space", "value"),
    )
    def _versions(adsorbate, space):
        try:
            points = views.prospective(inputs.space_name(space), inputs.adsorbate_name(adsorbate))
        except (BadRequest, ScreenerError):
            return ["all"], "all"
        found = sorted({p.model_version for p in points if p.model_version is not None})
        return ["all"] + [str(v) for v in found], "all"

    @app.callback(
        Output("model-parity", "figure"),
        Output("model-curve", "figure"),
        Output("model-calibration", "figure"),
        Output("model-summary", "children"),
        Input("model-version", "value"),
        Input("model-adsorbate", "value"),
        State("model-space", "value"),
    )
    def _model(version, adsorbate, space):
        if not adsorbate:
            blank = figures.empty_figure("choose an adsorbate")
            return blank, blank, blank, ""
        try:
            found = views.results(inputs.space_name(space), inputs.adsorbate_name(adsorbate))
        except (BadRequest, ScreenerError) as error:
            blank = go.Figure()
            return blank, blank, blank, _error(str(error))
        points = views.prospective(space, adsorbate, found=found)
        if version not in (None, "all"):
            if not str(version).isdigit():
                blank = go.Figure()
                return blank, blank, blank, _error("model version: expected a number")
            points = [p for p in points if p.model_version == int(version)]
        curve = views.learning_curve(points, found)
        text = (
            f"{len(found)} {adsorbate} results, {len(points)} of them with a prediction made "
            "before the calculation"
        )
        return (
            figures.parity_figure(points, adsorbate),
            figures.learning_curve_figure(curve, adsorbate),
            figures.calibration_figure(views.calibration(points), adsorbate),
            text,
        )

    # surface
    @app.callback(Output("surface-structure", "figure"), Input("surface-calc", "value"))
    def _structure(key):
        from screener.export import calculation_record, record_atoms

        if not key:
            return figures.empty_figure("no finished calculation on this surface")
        record = calculation_record(key)
        if record is None:
            return figures.empty_figure("no such calculation")
        return figures.structure_figure(record_atoms(record), title=key)

    @app.callback(
        Output("surface-download", "data"),
        Input("surface-download-button", "n_clicks"),
        State("surface-calc", "value"),
        prevent_initial_call=True,
    )
    def _download(_clicks, key):
        from screener.export import calculation_record, write_extxyz

        record = calculation_record(key) if key else None
        if record is None:
            return no_update
        buffer = io.StringIO()
        write_extxyz([record], buffer)
        # a file name any tool reads: no ':', '/', '|' or '@' (ase.io.read takes name@index)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", key) + ".extxyz"
        return dcc.send_string(buffer.getvalue(), name)

    # jobs
    @app.callback(Output("jobs", "children"), Input("jobs-space", "value"))
    def _jobs(space):
        try:
            return jobs_content(inputs.space_name(space))
        except (BadRequest, ScreenerError) as error:
            return _error(str(error))

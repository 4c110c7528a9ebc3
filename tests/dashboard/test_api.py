"""The dashboard's JSON API, served by a real `screener dashboard` process, over HTTP."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import env_of
from tests.test_cli import run

SCREENER = str(Path(sys.executable).with_name("screener"))
TOKEN = "s3cret-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base: str, path: str, method: str = "GET", token: str | None = None):
    request = urllib.request.Request(base + path, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def serving(env: dict[str, str], token: str | None = TOKEN) -> Iterator[str]:
    """A real `screener dashboard` process on a free port; yields its base URL."""
    port = _free_port()
    extra = {"SCREENER_DASHBOARD_TOKEN": token} if token else {}
    proc = subprocess.Popen(
        [SCREENER, "dashboard", "--port", str(port)],
        env={**env, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(base + "/api/status", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    stderr = proc.communicate()[1][-2000:]
                    raise AssertionError(f"dashboard did not start: {stderr}") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.fixture
def dashboard(settings):
    """A seeded Cu space and a dashboard on it (token configured), its base URL and env."""
    env = env_of(settings)
    run(env, "seed", "--elements", "Cu", "--adsorbates", "CO,H", "--max-miller", "1")
    with serving(env) as base:
        yield base, env


def test_status_and_candidates_are_what_the_cli_prints(dashboard):
    base, env = dashboard
    code, data = _call(base, "/api/status")
    assert code == 200
    cli = json.loads(run(env, "status", "--json").stdout)
    assert data["spaces"].keys() == cli["spaces"].keys() == {"Cu"}
    for key in ("bulks", "surfaces", "sites"):
        assert data["spaces"]["Cu"][key] == cli["spaces"]["Cu"][key]
    assert data["spaces"]["Cu"]["sites"]["CO"] > 0
    code, rows = _call(base, "/api/candidates?space=Cu&adsorbate=CO&limit=5")
    assert (code, rows) == (200, [])  # no results and no model yet
    # one EMT cycle: a few calculated surfaces, which both rank the same way
    run(env, "run", "--space", "Cu", "--calculator", "emt", "--cycles", "1", "--batch", "4")
    code, rows = _call(base, "/api/candidates?space=Cu&adsorbate=CO&limit=5")
    assert code == 200
    cli_rows = json.loads(run(env, "candidates", "--space", "Cu", "--json", "--limit", "5").stdout)
    assert rows == cli_rows and rows and {r["source"] for r in rows} == {"calculated"}
    assert _call(base, "/api/candidates?space=Cu&limit=5") == (200, rows)  # the space's first
    page = urllib.request.urlopen(base + "/", timeout=30).read().decode()
    assert "_dash-renderer" in page or "dash_renderer" in page  # the app itself, served locally
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()


@pytest.mark.parametrize(
    "query,parameter",
    [
        ("space=Cu&adsorbate=NH3", "adsorbate"),
        ("space=Cu&adsorbate=CO&limit=-1", "limit"),
        ("space=Cu&adsorbate=CO&limit=abc", "limit"),
        ("space=Cu&adsorbate=CO&target=nan", "target"),
        ("space=Cu&adsorbate=CO&window=0", "window"),
        ("space=%7B%22%24ne%22%3A1%7D&adsorbate=CO", "space"),  # {"$ne":1}
        ("adsorbate=CO", "space"),
    ],
)
def test_bad_parameters_answer_400_with_one_line(dashboard, query, parameter):
    base, _ = dashboard
    code, data = _call(base, f"/api/candidates?{query}")
    assert code == 400 and set(data) == {"error"} and "\n" not in data["error"]
    assert data["error"].startswith(f"{parameter}: expected "), data["error"]


def test_unknown_space_answers_404(dashboard):
    base, _ = dashboard
    code, data = _call(base, "/api/candidates?space=Zz-Qq&adsorbate=CO")
    assert code == 404 and "Zz-Qq" in data["error"]
    # a mistyped endpoint answers in JSON too, not with the pages' HTML
    for path, method in (("/api/candidate", "GET"), ("/api/", "GET"), ("/api/spaces/Cu", "POST")):
        code, data = _call(base, path, method)
        assert code == 404 and set(data) == {"error"}, (path, method, code)
        assert f"{method} {path}" in data["error"]
        for endpoint in (
            "GET /api/status",
            "GET /api/candidates",
            "POST /api/spaces/<space>/pause",
        ):
            assert endpoint in data["error"]
    # a known path with another method: 405, naming what it answers (a GET of an admin action
    # does nothing)
    for path, method, allowed in (
        ("/api/status", "POST", "GET"),
        ("/api/spaces/Cu/pause", "GET", "POST"),
        ("/api/candidates", "DELETE", "GET"),
    ):
        code, data = _call(base, path, method)
        assert code == 405 and data["error"] == f"{path} answers {allowed}, not {method}"


def test_pause_and_resume_need_the_token(dashboard):
    base, env = dashboard
    assert _call(base, "/api/spaces/Cu/pause", "POST")[0] == 401
    assert _call(base, "/api/spaces/Cu/pause", "POST", token="wrong")[0] == 401
    code, data = _call(base, "/api/spaces/Cu/pause", "POST", token=TOKEN)
    assert code == 200 and data == {"space": "Cu", "paused": True}
    assert json.loads(run(env, "status", "--json").stdout)["spaces"]["Cu"]["paused"] is True
    assert _call(base, "/api/spaces/Cu/resume", "POST", token=TOKEN)[0] == 200
    assert json.loads(run(env, "status", "--json").stdout)["spaces"]["Cu"]["paused"] is False
    code, data = _call(base, "/api/spaces/Nope/pause", "POST", token=TOKEN)
    assert code == 404


def test_admin_actions_are_off_without_a_token(settings):
    """No SCREENER_DASHBOARD_TOKEN: 403, and nothing is written."""
    from screener.dashboard import create_app
    from screener.store import open_store
    from screener.store.documents import Lease

    with open_store(settings) as store:
        client = create_app(store, settings).server.test_client()
        answer = client.post("/api/spaces/Cu/pause", headers={"Authorization": "Bearer x"})
        assert answer.status_code == 403 and "token" in answer.get_json()["error"]
        assert Lease.objects.count() == 0

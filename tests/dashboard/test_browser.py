"""The dashboard in a real headless Chromium (Debian's chromium and chromedriver, via selenium).

One campaign (`screener demo` on Cu-Pd with EMT) feeds every test of this module; a real
`screener dashboard` process serves it.  The browser resolves no host but 127.0.0.1, so a page
that fetched anything from elsewhere would fail; the network log is checked too.  Screenshots of
every page are saved under ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import ase.io
import pymongo
import pytest

from tests.conftest import REPO
from tests.dashboard.test_api import SCREENER, _call, serving
from workflows.profiles import PROFILES

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TOKEN = "browser-token-42"
ARTIFACTS = REPO / "test-artifacts" / "dashboard"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)",
    ),
]


@pytest.fixture(scope="module")
def campaign(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory):
    """A demo campaign in its own database and a dashboard on it: (base URL, env)."""
    tmp = tmp_path_factory.mktemp("campaign")
    db_name = f"screener_browser_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    env.update(
        SCREENER_DATA_DIR=str(tmp / "data"),
        SCREENER_DASK_WORKERS="0",
        SCREENER_DB_NAME=db_name,
        SCREENER_MONGO_URI=mongo_uri,
    )
    demo = subprocess.run(
        [SCREENER, "demo", "--elements", "Cu,Pd", "--cycles", "5", "--batch", "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    with serving(env, TOKEN) as base:
        yield base, env, demo.stdout
    client = pymongo.MongoClient(mongo_uri)
    try:
        client.drop_database(db_name)
    finally:
        client.close()


@pytest.fixture(scope="module")
def browser(campaign, tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    downloads = tmp_path_factory.mktemp("downloads")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, predicate, timeout: float = 45.0, what: str = "the page"):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # Dash re-renders a component between finding it and reading it: poll again, do not fail
    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.25, ignored_exceptions=(StaleElementReferenceException,)
    )
    try:
        return wait.until(lambda d: predicate(d))
    except Exception:
        shot = ARTIFACTS / f"failed-{int(time.time())}.png"
        driver.save_screenshot(str(shot))
        raise AssertionError(f"timed out waiting for {what} (screenshot {shot})") from None


def _open(driver, base: str, path: str) -> None:
    driver.get(base + path)
    _wait(driver, lambda d: d.find_elements("css selector", "main h2"), what=f"{path} to render")


def _text(driver, css: str) -> str:
    found = driver.find_elements("css selector", css)
    return found[0].text if found else ""


def _rows(driver, css: str) -> int:
    return len(driver.find_elements("css selector", f"{css} tbody tr"))


def _traces(driver, graph_id: str) -> list[dict]:
    """The traces plotly drew in a graph: type, name and number of points."""
    script = """
    const el = document.querySelector(arguments[0] + ' .js-plotly-plot');
    if (!el || !el._fullData) return null;
    // _fullData: the traces as plotly drew them (numpy arrays arrive base64-encoded in data)
    return el._fullData.map(t => ({type: t.type || 'scatter', name: t.name || '',
                                   n: t._length ?? (t.x || []).length}));
    """
    return driver.execute_script(script, f"#{graph_id}") or []


def _shot(driver, name: str) -> None:
    time.sleep(0.5)  # let plotly finish its transitions
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_every_page_shows_the_campaign(campaign, browser):
    base, env, _ = campaign
    status = json.loads(
        subprocess.run([SCREENER, "status", "--json"], env=env, capture_output=True).stdout
    )
    space = status["spaces"]["Cu-Pd"]

    _open(browser, base, "/")
    _wait(browser, lambda d: _rows(d, "#spaces") == 1, what="the spaces table")
    row = _text(browser, "#spaces tbody tr")
    assert "Cu-Pd" in row and f" {space['bulks']} {space['surfaces']} " in f" {row} "
    _wait(browser, lambda d: _rows(d, "#fireworks") == 1, what="the FireWorks queue")
    assert "COMPLETED" in _text(browser, "#fireworks")
    assert _rows(browser, "#cycles-Cu-Pd") == 5  # the last five cycles, with their timings
    assert f" {PROFILES['emt'].identity} " in f" {_text(browser, '#cycles-Cu-Pd tbody tr')} "
    _shot(browser, "overview")

    _open(browser, base, "/candidates?space=Cu-Pd")
    _wait(browser, lambda d: len(d.find_elements("css selector", ".ag-row")) >= 5, what="rows")
    summary = _text(browser, "[id*='cand-summary']")
    assert f"of {space['surfaces']} surfaces" in summary
    assert "target -0.67" in summary  # CO's default target
    _shot(browser, "candidates")

    _open(browser, base, "/map?space=Cu-Pd")
    _wait(browser, lambda d: sum(t["n"] for t in _traces(d, "map-graph")) > 0, what="map points")
    names = {t["name"] for t in _traces(browser, "map-graph")}
    assert names & {"calculated", "predicted"}
    _shot(browser, "map")

    _open(browser, base, "/model?space=Cu-Pd")
    for graph in ("model-parity", "model-curve", "model-calibration"):
        _wait(browser, lambda d, g=graph: _traces(d, g), what=graph)
    parity = _traces(browser, "model-parity")
    assert any(t["name"].startswith("model v") and t["n"] > 0 for t in parity), parity
    assert sum(t["n"] for t in _traces(browser, "model-calibration")) >= 11
    _shot(browser, "model")

    _open(browser, base, "/jobs?space=Cu-Pd")
    _wait(browser, lambda d: _rows(d, "#times") >= 3, what="the time per step")
    assert "adslab" in _text(browser, "#times")
    _shot(browser, "jobs")


def test_clicking_a_map_point_opens_its_surface(campaign, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    base, _, _ = campaign
    _open(browser, base, "/map?space=Cu-Pd")
    points = _wait(
        browser,
        lambda d: d.find_elements("css selector", "#map-graph .scatterlayer path.point"),
        what="map markers",
    )
    ActionChains(browser).move_to_element(points[0]).click().perform()
    _wait(browser, lambda d: "/surface" in d.current_url, what="the surface page")
    _wait(browser, lambda d: _rows(d, "#sites") > 0, what="the site table")
    heading = _text(browser, "main h2")
    assert "(" in heading  # bulk formula, Miller index and termination
    # a site shows no prediction exactly when the page says its adsorbate has no model yet
    note = _text(browser, "#surface-no-model")
    unmodelled = set(note.split(" yet for ")[1].split(":")[0].split(", ")) if note else set()
    for tr in browser.find_elements("css selector", "#sites tbody tr"):
        adsorbate, _, _, predicted = (td.text for td in tr.find_elements("css selector", "td")[:4])
        assert (predicted == "–") == (adsorbate in unmodelled), (adsorbate, predicted, note)
    _wait(browser, lambda d: _traces(d, "surface-structure"), what="the 3D structure")
    kinds = {t["type"] for t in _traces(browser, "surface-structure")}
    assert kinds == {"scatter3d"}
    _shot(browser, "surface")

    # the download is the shown calculation, as extxyz that ase reads
    browser.find_element("id", "surface-download-button").click()
    found = _wait(browser, lambda d: list(d.downloads.glob("*.extxyz")), what="the extxyz download")
    atoms = ase.io.read(found[0])
    assert (atoms.get_tags() == 0).sum() >= 1 and "E_ads" in atoms.info


def test_admin_buttons_need_the_token(campaign, browser):
    base, _, _ = campaign
    _open(browser, base, "/")
    space = browser.find_element("id", "admin-space")
    space.send_keys("Cu-Pd")
    browser.find_element("id", "admin-pause").click()
    _wait(browser, lambda d: "refused (401)" in _text(d, "#admin-result"), what="a refusal")
    assert _call(base, "/api/status")[1]["spaces"]["Cu-Pd"]["paused"] is False

    token = browser.find_element("id", "token-input")
    token.send_keys("not-the-token\n")
    _wait(browser, lambda d: "token set" in _text(d, "#token-state"), what="the token")
    browser.find_element("id", "admin-pause").click()
    _wait(browser, lambda d: "refused (401)" in _text(d, "#admin-result"), what="a refusal")

    token.clear()
    token.send_keys(TOKEN + "\n")
    time.sleep(0.5)
    browser.find_element("id", "admin-pause").click()
    _wait(browser, lambda d: "Cu-Pd: paused" in _text(d, "#admin-result"), what="the pause")
    assert _call(base, "/api/status")[1]["spaces"]["Cu-Pd"]["paused"] is True
    browser.find_element("id", "admin-resume").click()
    _wait(browser, lambda d: "Cu-Pd: resumed" in _text(d, "#admin-result"), what="the resume")
    assert _call(base, "/api/status")[1]["spaces"]["Cu-Pd"]["paused"] is False


def test_candidate_filters_are_checked_and_applied(campaign, browser):
    base, _, _ = campaign
    _open(browser, base, "/candidates?space=Cu-Pd")
    _wait(browser, lambda d: len(d.find_elements("css selector", ".ag-row")) >= 5, what="rows")
    everything = _text(browser, "[id*='cand-summary']")
    field = browser.find_element("id", "cand-elements")
    field.send_keys('{"$ne": 1}\n')
    _wait(browser, lambda d: "not an element symbol" in d.page_source, what="the refusal")
    field.clear()
    field.send_keys("Pd\n")
    _wait(
        browser,
        lambda d: _text(d, "[id*='cand-summary']") not in ("", everything),
        what="the filtered rows",
    )
    bulks = [
        cell.text
        for cell in browser.find_elements("css selector", ".ag-row [col-id='bulk_formula']")
    ]
    assert bulks and all("Pd" in b for b in bulks), bulks


def test_no_request_left_loopback(campaign, browser):
    base, _, _ = campaign
    for path in ("/", "/candidates?space=Cu-Pd", "/map?space=Cu-Pd", "/model?space=Cu-Pd"):
        _open(browser, base, path)
        time.sleep(1.0)
    hosts = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = urlparse(message["params"]["request"]["url"])
            if url.scheme in ("http", "https", "ws", "wss"):
                hosts.add(url.hostname)
    assert hosts == {"127.0.0.1"}, hosts

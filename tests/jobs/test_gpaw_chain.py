"""One real GPAW chain at tiny settings (gpaw-fast): H on a 1x1 Cu(100) slab, 2 MPI ranks."""

from __future__ import annotations

import math

import pytest

from screener.enumerate.seed import plan_seed, seed
from screener.jobs.submit import submit
from screener.jobs.workers import run_workers
from screener.queries import list_results
from screener.settings import use_settings
from screener.store import Site, open_store
from screener.store.documents import Calculation

pytestmark = [pytest.mark.slow, pytest.mark.gpaw]


def test_gpaw_fast_chain_h_on_cu100(settings):
    pytest.importorskip("gpaw")
    small = {  # a 1x1 Cu(100) slab of 3 atoms keeps this to a few minutes
        **settings.model_dump(include={"data_dir", "mongo_uri", "db_name"}),
        "dask_workers": 0,
        "mpi_ranks": 2,
        "slab_min_thickness": 3.5,
        "slab_min_width": 2.5,
    }
    with use_settings(**small) as settings, open_store(settings) as store:
        seed(plan_seed("Cu", "H", max_miller=1, settings=settings), store)
        site = Site.objects(miller=[1, 0, 0], site_type="4-fold", adsorbate="H").get()
        assert submit(str(site.id), "gpaw-fast", store).new
        counts = run_workers(store)
        assert counts["rockets"] == 4  # H2, bulk, slab, adslab
        (row,) = list_results(profile="gpaw-fast")
        calcs = {c.kind: c for c in Calculation.objects}
    assert row["state"] == "done", row
    assert math.isfinite(row["energy"]) and -1.5 < row["energy"] < 0.5
    for kind in ("gas", "bulk", "slab", "adslab"):
        calc = calcs[kind]
        assert calc.state == "done" and calc.profile.startswith("gpaw-fast@")
        assert "gpaw" in calc.code_versions and calc.settings_hash and calc.wall_time > 0
        assert calc.settings["xc"] == "RPBE"
    assert calcs["adslab"].ionic_steps >= 1
    assert calcs["adslab"].adsorption_energy == pytest.approx(
        calcs["adslab"].energy - calcs["slab"].energy - 0.5 * calcs["gas"].energy
    )

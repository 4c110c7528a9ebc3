"""Seeding and scoring on dask-jobqueue's SLURMCluster (``SCREENER_DASK_CLUSTER=slurm``)."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from tests.cluster.slurmtools import SLURM_GROUP

pytestmark = [pytest.mark.slurm, SLURM_GROUP, pytest.mark.slow]


def _dask_jobs(since: str) -> int:
    out = subprocess.run(
        ["sacct", "-c", "-S", since, "-P", "-n", "-o", "JobName"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip() == "screener-dask")


def _dask_jobs_reach(since: str, least: int, wait: float = 30.0) -> int:
    """The dask worker jobs since ``since``, once there are ``least`` of them (or ``wait`` s)."""
    deadline = time.monotonic() + wait
    while (count := _dask_jobs(since)) < least and time.monotonic() < deadline:
        time.sleep(1)
    return count


def test_seeding_and_scoring_run_on_slurm_dask_workers(slurm, tmp_path, mongo_uri):
    from screener.enumerate.seed import plan_seed, seed
    from screener.learning import predict_chunked
    from screener.settings import use_settings
    from screener.store import Site, open_store
    from screener.surrogate.models import Surrogate

    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    values = {
        "data_dir": tmp_path / "data",
        "mongo_uri": mongo_uri,
        "db_name": f"screener_dask_{int(time.time())}",
        "dask_cluster": "slurm",
        "dask_workers": 2,
    }
    with use_settings(**values) as settings, open_store(settings) as store:
        report = seed(plan_seed("Cu,Pd", "CO", max_miller=1, settings=settings), store)
        assert not report.failed and report.added["sites"]["CO"] > 0
        after_seed = _dask_jobs_reach(since, 1)
        assert after_seed >= 1  # seeding's workers were Slurm jobs
        fps = [s["fingerprint"] for s in Site._get_collection().find({}, {"fingerprint": 1})]
        rng = np.random.default_rng(0)
        groups = [str(i % 7) for i in range(len(fps))]
        surrogate = Surrogate("CO", feature_set="tu+stats").fit(
            fps, rng.normal(-0.5, 0.2, len(fps)), groups, [None] * len(fps), seed=0
        )
        X = surrogate.features(fps)
        mean, std = predict_chunked(surrogate, X, settings, chunk=max(1, len(X) // 2))
        store.client.drop_database(settings.db_name)
    local_mean, local_std = surrogate.predict(X=X)
    np.testing.assert_allclose(mean, local_mean)
    np.testing.assert_allclose(std, local_std)
    assert _dask_jobs_reach(since, after_seed + 1) > after_seed  # and so were scoring's

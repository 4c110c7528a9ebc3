"""The Slurm the cluster tests run on: the local one ``scripts/local-slurm.sh start`` brings up.

The session fixture ``slurm`` checks that ``sinfo`` answers and that a node is idle or mixed
(waiting up to 30 s for a busy one), and skips the test otherwise; it hands out a
:class:`tests.cluster.slurmtools.Slurm` (sbatch, wait for a job's ``sacct -c`` record).
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.slurmtools import Slurm, probe


@pytest.fixture(scope="session")
def slurm() -> Slurm:
    """The local Slurm, ready for jobs; the test is skipped when it is not up."""
    found, reason = probe()
    if found is None:
        pytest.skip(reason)
    return found


@pytest.fixture(autouse=True)
def _one_slurm_test_at_a_time() -> Iterator[None]:
    """Slurm tests take the one node down, cancel jobs and drain the queue: one runs at a time,
    whichever pytest process or xdist worker it is in (``SLURM_GROUP`` keeps them on one
    worker; this lock holds should a scheduler not)."""
    with (Path(tempfile.gettempdir()) / "screener-slurm-tests.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

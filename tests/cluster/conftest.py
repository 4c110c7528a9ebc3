"""The Slurm the cluster tests run on: the local one ``scripts/local-slurm.sh start`` brings up.

The session fixture ``slurm`` checks that ``sinfo`` answers and that a node is idle or mixed
(waiting up to 30 s for a busy one), and skips the test otherwise; it hands out a
:class:`tests.cluster.slurmtools.Slurm` (sbatch, wait for a job's ``sacct -c`` record).
"""

from __future__ import annotations

import pytest

from tests.cluster.slurmtools import Slurm, probe


@pytest.fixture(scope="session")
def slurm() -> Slurm:
    """The local Slurm, ready for jobs; the test is skipped when it is not up."""
    found, reason = probe()
    if found is None:
        pytest.skip(reason)
    return found

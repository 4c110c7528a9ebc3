"""Where seeding and scoring run their dask work: one function that opens the client.

* ``dask_scheduler`` set: that running scheduler;
* ``dask_cluster="slurm"``: dask-jobqueue's ``SLURMCluster``, its workers Slurm jobs (one core
  each, the ``queue_*`` settings' partition, account, walltime and pre-rocket lines), closed
  (its jobs cancelled) on leaving;
* otherwise a ``LocalCluster`` of ``workers`` processes, or None (the caller works in-process)
  when ``workers`` is 0.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from screener.errors import ScreenerError
from screener.settings import ScreenerSettings

WORKER_MEMORY = "2GB"  # per Slurm dask worker (one core): enumeration of a bulk peaks well below
WAIT_FOR_WORKERS_S = 300.0  # the first worker job must start within this (a busy queue: longer)


@contextmanager
def dask_client(settings: ScreenerSettings, workers: int) -> Iterator[Any]:
    """A dask ``Client`` for up to ``workers`` workers (see the module docstring), or None."""
    from dask.distributed import Client

    # distributed sets its loggers to INFO when imported; keep them at the CLI's level
    logging.getLogger("distributed").setLevel(max(logging.getLogger().level, logging.WARNING))
    if settings.dask_scheduler:
        try:
            client = Client(settings.dask_scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ScreenerError(
                f"cannot reach the dask scheduler at {settings.dask_scheduler}: {exc}"
            ) from None
        with client:
            yield client
        return
    if settings.dask_cluster == "slurm":
        with _slurm_cluster(settings, max(1, workers)) as cluster, Client(cluster) as client:
            try:
                client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            except TimeoutError:
                raise ScreenerError(
                    f"no dask worker job started on Slurm within {WAIT_FOR_WORKERS_S:.0f} s "
                    "(squeue shows why)"
                ) from None
            yield client
        return
    if workers <= 0:
        yield None
        return
    from dask.distributed import LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextmanager
def _slurm_cluster(settings: ScreenerSettings, jobs: int) -> Iterator[Any]:
    from dask_jobqueue import SLURMCluster

    from screener.jobs.queue import queue_logdir

    prologue = [line for line in settings.queue_pre_rocket.splitlines() if line.strip()] + [
        "export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1"
    ]
    cluster = SLURMCluster(
        cores=1,
        processes=1,
        memory=WORKER_MEMORY,
        walltime=settings.queue_walltime,
        queue=settings.queue_partition,
        account=settings.queue_account,
        job_name="screener-dask",
        job_script_prologue=prologue,
        job_extra_directives=["--no-requeue"],
        log_directory=str(queue_logdir(settings) / "dask"),
        python=sys.executable,
        scheduler_options={"dashboard_address": None},
    )
    try:
        cluster.scale(jobs=jobs)
        yield cluster
    finally:
        cluster.close()

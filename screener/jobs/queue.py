"""FireWorks' queue adapter and worker files: rockets run as batch jobs on a cluster.

:func:`qadapter_spec` builds the ``CommonAdapter`` (Slurm) that FireWorks' queue launcher fills in
and submits, from the ``queue_*`` settings: the daemon's Slurm launcher uses it, and
:func:`write_deploy_files` (``screener deploy launchpad``) writes it, with the LaunchPad and worker
files its jobs read, for ``qlaunch``.  Two allocations exist: ``small`` for the gas, bulk and slab
steps (one node, ``queue_small_ranks`` tasks) and ``full`` for the adsorbate+slab steps
(``queue_nodes`` nodes, ``mpi_ranks`` tasks).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from screener.settings import ScreenerSettings
from screener.store.connect import Store
from screener.store.launchpad_file import write_launchpad_file, write_yaml_atomic

#: the allocations a step can get: gas, bulk and slab steps ``small``, adsorbate+slab ``full``
KINDS = ("small", "full")
LAUNCHPAD_FILE = "my_launchpad.yaml"
FWORKER_FILE = "my_fworker.yaml"
QADAPTER_FILE = "my_qadapter.yaml"
#: the job script: FireWorks' Slurm template's keys that screener sets, and --no-requeue
SLURM_TEMPLATE = Path(__file__).with_name("slurm_template.txt")


def allocation(settings: ScreenerSettings, kind: str) -> dict[str, int]:
    """Nodes and tasks of one kind of job.

    Parameters
    ----------
    settings
        ``queue_nodes``, ``queue_small_ranks`` and ``mpi_ranks`` are read.
    kind
        ``"small"`` (gas, bulk, slab) or ``"full"`` (adsorbate+slab).

    Returns
    -------
    dict
        ``{"nodes": ..., "ntasks": ...}``, as the qadapter's keys.
    """
    if kind == "small":
        return {"nodes": 1, "ntasks": settings.queue_small_ranks}
    if kind == "full":
        return {"nodes": settings.queue_nodes, "ntasks": settings.mpi_ranks}
    raise ValueError(f"unknown allocation kind {kind!r} (one of: {', '.join(KINDS)})")


def queue_logdir(settings: ScreenerSettings) -> Path:
    """Where jobs and the queue launcher write: ``queue_logdir``, else ``<data_dir>/queue``."""
    return Path(settings.queue_logdir or settings.data_dir / "queue").absolute()


def rlaunch_program() -> str:
    """FireWorks' ``rlaunch`` of this installation (a job need not have the venv on its PATH)."""
    beside = Path(sys.executable).parent / "rlaunch"
    return str(beside) if beside.exists() else "rlaunch"


def pre_rocket(settings: ScreenerSettings, ranks: int) -> str:
    """The shell lines a job runs before its rocket.

    GPAW's ranks (``SCREENER_MPI_RANKS``) follow the job's tasks (``SLURM_NTASKS``), so a step
    whose ``_queueadapter`` changed the allocation runs as many ranks as it got; ``ranks`` is the
    fallback outside Slurm.  One BLAS thread per rank.  The site's lines
    (``queue_pre_rocket``: modules, a virtual environment) come last and may override these.
    """
    lines = [
        f"export SCREENER_MPI_RANKS=${{SLURM_NTASKS:-{ranks}}}",
        "export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1",
    ]
    if settings.queue_pre_rocket.strip():
        lines.append(settings.queue_pre_rocket.strip())
    return "\n".join(lines)


def qadapter_spec(
    settings: ScreenerSettings, kind: str, *, directory: Path | None = None
) -> dict[str, Any]:
    """FireWorks' ``CommonAdapter`` (Slurm) for one kind of job, as a dict.

    Parameters
    ----------
    settings
        The ``queue_*`` settings (partition, account, walltime, nodes, small ranks, pre-rocket,
        logdir) and ``mpi_ranks``.
    kind
        ``"small"`` (gas, bulk, slab: 1 node, ``queue_small_ranks`` tasks) or ``"full"``
        (adsorbate+slab: ``queue_nodes`` nodes, ``mpi_ranks`` tasks).
    directory
        Where the job's ``rlaunch`` finds ``my_launchpad.yaml`` and ``my_fworker.yaml``
        (:func:`write_deploy_files`); default: the data directory.

    Returns
    -------
    dict
        Loadable by ``CommonAdapter.from_dict``; unset partition and account are left out, so the
        cluster's defaults apply.
    """
    size = allocation(settings, kind)
    where = Path(directory or settings.data_dir).absolute()
    spec: dict[str, Any] = {
        "_fw_name": "CommonAdapter",
        "_fw_q_type": "SLURM",
        "_fw_template_file": str(SLURM_TEMPLATE),
        "rocket_launch": (
            f"{rlaunch_program()} -l {where / LAUNCHPAD_FILE} -w {where / FWORKER_FILE} singleshot"
        ),
        **size,
        "walltime": settings.queue_walltime,
        "job_name": f"screener-{kind}",
        "pre_rocket": pre_rocket(settings, size["ntasks"]),
        "logdir": str(queue_logdir(settings)),
    }
    if settings.queue_partition:
        spec["queue"] = settings.queue_partition
    if settings.queue_account:
        spec["account"] = settings.queue_account
    return spec


def fworker_spec(settings: ScreenerSettings) -> dict[str, Any]:
    """FireWorks' worker of the jobs (``my_fworker.yaml``).

    It sets no ``env.mpi_ranks``: that would override the ranks each step's allocation gives it.
    """
    return {
        "name": f"screener-{settings.db_name}",
        "category": "",
        "query": "{}",
        "env": {},
    }


def write_deploy_files(store: Store, directory: Path) -> list[Path]:
    """Write ``my_launchpad.yaml``, ``my_fworker.yaml`` and ``my_qadapter.yaml`` into ``directory``.

    Each file is written whole or not at all (a temporary file renamed); the LaunchPad file,
    which holds the store's URI, is readable by its owner only.  The qadapter's log directory is
    created too (``qlaunch`` fails without it).  The qadapter is the ``full``
    one; in reservation mode (``qlaunch -r``) each step's ``_queueadapter`` resizes it.

    Parameters
    ----------
    store
        The store in use: its URI and database go into the LaunchPad file.
    directory
        Created when missing.

    Returns
    -------
    list of Path
        The three files, absolute, in that order.
    """
    directory = Path(directory).absolute()
    settings = store.settings
    queue_logdir(settings).mkdir(parents=True, exist_ok=True)  # FireWorks' queue logger opens it
    return [
        write_launchpad_file(store, directory / LAUNCHPAD_FILE),
        write_yaml_atomic(directory / FWORKER_FILE, fworker_spec(settings)),
        write_yaml_atomic(
            directory / QADAPTER_FILE, qadapter_spec(settings, "full", directory=directory)
        ),
    ]

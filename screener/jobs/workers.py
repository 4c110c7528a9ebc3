"""Local FireWorks workers inside the screener process (embedded store or a workstation).

Rockets run one after another in ``<data_dir>/launches/``; after each one the store is committed
and the result ingested, so a crash loses at most the rocket in flight, which FireWorks' lost-run
detection puts back on the next start.  On a cluster, use ``qlaunch`` with the templates in
``deploy/`` against the shared MongoDB instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from screener.faults import crash_point
from screener.jobs.ingest import ingest
from screener.store import Store

log = logging.getLogger(__name__)


@contextmanager
def _inside(directory: Path):
    previous = Path.cwd()
    directory.mkdir(parents=True, exist_ok=True)
    os.chdir(directory)
    try:
        yield directory
    finally:
        os.chdir(previous)


def run_workers(
    store: Store,
    *,
    max_rockets: int | None = None,
    on_rocket: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Run READY fireworks until none is left (or ``max_rockets``, or ``should_stop()`` says so
    between rockets); returns counts."""
    import fireworks.core.rocket
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import launch_rocket

    # rockets log to stdout at INFO by default; keep stdout for results (-v shows them on stderr)
    fireworks.core.rocket.ROCKET_STREAM_LOGLEVEL = "CRITICAL"
    launchpad = store.launchpad()
    if store.embedded:
        # This process holds the store's only writer lock, so whatever is RUNNING was left by a
        # dead worker: rerun it now.  Pings are not needed for that and would race the rocket's
        # own writes to the in-memory store from FireWorks' ping thread.
        expiration = 0
        launchpad.ping_launch = lambda *args, **kwargs: None
    else:
        expiration = int(store.settings.lostrun_hours * 3600)
    lost = launchpad.detect_lostruns(expiration_secs=expiration, rerun=True)
    counts: Counter[str] = Counter(lost_reruns=len(lost[1]) if lost else 0)
    fworker = FWorker(name=f"screener@{socket.gethostname()}")
    root = store.settings.data_dir.resolve() / "launches"
    while max_rockets is None or counts["rockets"] < max_rockets:
        if should_stop is not None and should_stop():
            break
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        with _inside(root / f"launcher_{stamp}"):
            ran = launch_rocket(launchpad, fworker, strm_lvl="CRITICAL")
        if not ran:
            break
        counts["rockets"] += 1
        store.commit()  # the firework's outcome is durable before it is recorded
        crash_point("after-rocket")
        counts.update(ingest(store))
        store.commit()
        if on_rocket:
            on_rocket(counts["rockets"])
    counts.update(ingest(store))
    store.commit()
    return dict(counts)

"""Named crash points for the crash-safety tests.

``SCREENER_FAULT_POINT=<name>`` makes the process kill itself (SIGKILL, no cleanup) when it
reaches that point, as a power cut would.  Unset in normal operation; the tests set it in the
environment of a subprocess only.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    """Die here, at once, if the environment asks for it."""
    if os.environ.get("SCREENER_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)

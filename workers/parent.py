"""Tie a local worker's life to its parent ``shift up``: it must not outlive the broker.

``shift up`` starts its workers with ``--parent-pid``. On Linux the worker asks the kernel
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to kill it the moment its parent dies, even by
``kill -9``; everywhere, the runtime also checks every heartbeat that its parent is still
the one it was started by (:func:`parent_gone`), so a worker never lingers as an orphan
that would compete with the next ``shift up``'s workers.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
"""``prctl`` option number from ``<linux/prctl.h>``."""


def die_with_parent(parent_pid: int) -> bool:
    """Have this process killed when ``parent_pid`` (its parent) dies; exit now if it has.

    Returns:
        True when the kernel will deliver the signal (Linux), False when only the
        heartbeat watch (:func:`parent_gone`) covers it.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if parent_gone(parent_pid):  # it died before prctl took effect
        log.error("parent process %d is gone; exiting", parent_pid)
        os._exit(1)
    return armed


def parent_gone(parent_pid: int) -> bool:
    """True when this process is no longer the child of ``parent_pid`` (it was orphaned)."""
    return os.getppid() != parent_pid

"""Background jobs: long engine work (extraction, training, maps) runs in a thread.

A page starts a :class:`Job`, the frame polls it from a fragment (``st.fragment(run_every=…)``),
and the person may stop it. The thread never touches Streamlit: it only writes its own fields
(under a lock), and the script adopts the result on its next run. That is why leaving a page
mid-run cannot crash it, and why a result is only ever shown once the job is ``done``.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import Cancelled, ClusterLensError

Status = Literal["running", "done", "failed", "cancelled"]
# work(report, should_stop) -> result; report(fraction in [0, 1] or None, message)
Work = Callable[[Callable[[float | None, str], None], Callable[[], bool]], Any]


@dataclass(eq=False)
class Job:
    kind: str                              # "features" | "cluster" | "map": what adopts the result
    title: str
    params: dict[str, Any] = field(default_factory=dict)   # what the result belongs to
    status: Status = "running"
    fraction: float | None = None          # None = no estimate yet
    message: str = "starting"
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    adopted: bool = False                  # the script has taken the result into the app state
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @staticmethod
    def start(kind: str, title: str, work: Work, **params: Any) -> Job:
        job = Job(kind=kind, title=title, params=params)
        job._thread = threading.Thread(target=job._run, args=(work,), name=f"clusterlens-{kind}", daemon=True)
        job._thread.start()
        return job

    # -- the worker side ------------------------------------------------------------------
    def _report(self, fraction: float | None, message: str) -> None:
        with self._lock:
            self.fraction = None if fraction is None else min(max(float(fraction), 0.0), 1.0)
            self.message = message

    def _run(self, work: Work) -> None:
        try:
            result = work(self._report, self._stop.is_set)
        except BaseException as e:  # noqa: BLE001 - every failure must reach the page, never the thread's stderr only
            cancelled = self._stop.is_set() or isinstance(e, Cancelled)
            with self._lock:
                self.status = "cancelled" if cancelled else "failed"
                self.error = _describe(e)
                if not cancelled and not isinstance(e, ClusterLensError) and not _disk_full(e):
                    traceback.print_exc()
                self.finished = time.monotonic()
            return
        with self._lock:
            self.result, self.status, self.fraction = result, "done", 1.0
            self.finished = time.monotonic()

    # -- the page side --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.status == "running"

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self.status == "running":
                self.message = "stopping…"

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` s for the job to end; True if it has."""
        if self._thread is not None and timeout > 0:
            self._thread.join(timeout)
        return not self.running

    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def snapshot(self) -> tuple[Status, float | None, str]:
        with self._lock:
            return self.status, self.fraction, self.message


def _disk_full(e: BaseException) -> bool:
    from core.store import DISK_FULL_ERRNOS

    return isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS


def _describe(e: BaseException) -> str:
    """The one line the page shows for a failed job."""
    if isinstance(e, ClusterLensError):
        return str(e)
    if _disk_full(e):   # a write no engine step translated (a cache or array file)
        from core.store import disk_full_message

        return disk_full_message(Path(e.filename).parent if e.filename else "the workspace")
    return f"{type(e).__name__}: {e}"

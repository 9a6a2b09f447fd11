"""Background jobs: long engine work (extraction, training, maps) runs in a thread.

A page starts a :class:`Job`, the frame polls it from a fragment (``st.fragment(run_every=…)``),
and the person may stop it. The thread never touches Streamlit: it only writes its own fields
(under a lock), and the script adopts the result on its next run. That is why leaving a page
mid-run cannot crash it, and why a result is only ever shown once the job is ``done``.

Settle and supersede (issue 26, item 7): a job started with ``settle_s`` waits that long before
any work, and a job that replaces another (``after``) first waits for the stale one to stop. A
newer setting stops the older job: one still settling ends at once, without doing anything, and a
running one stops at its next check (k-means: every iteration). So dragging a slider over ten
values starts one piece of work, not ten, and two never fight over the CPU.

Progress (the same item): every report carries a step (the text before the message's first
``:``); :meth:`Job.view` turns it into a bar and a line with a real fraction and rate where the
engine gives one ("3,200 / 10,000 images · 210 img/s · about 33 s left"), and otherwise the
step's elapsed time against an estimate from the data's size (:func:`estimate_seconds`).
"""
from __future__ import annotations

import math
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import Cancelled, ClusterLensError

Status = Literal["running", "done", "failed", "cancelled"]
# work(report, should_stop) -> result; report(fraction in [0, 1] or None, message[, estimate_s])
Work = Callable[[Callable[..., None], Callable[[], bool]], Any]


@dataclass(eq=False)
class Job:
    kind: str                              # "features" | "cluster" | "map": what adopts the result
    title: str
    params: dict[str, Any] = field(default_factory=dict)   # what the result belongs to
    status: Status = "running"
    fraction: float | None = None          # None = the step gives none (the view estimates from elapsed time)
    message: str = "starting"
    settle_s: float = 0.0                  # wait this long before any work (a newer setting cancels it)
    after: Job | None = field(default=None, repr=False)   # the stale job this one replaces: wait for it to stop
    step: str = ""                         # the current step (the message's text before ':')
    step_started: float = field(default_factory=time.monotonic)
    estimate_s: float | None = None        # the current step's expected length, where known
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    adopted: bool = False                  # the script has taken the result into the app state
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @staticmethod
    def start(kind: str, title: str, work: Work, *, settle_s: float = 0.0, after: Job | None = None,
              **params: Any) -> Job:
        job = Job(kind=kind, title=title, params=params, settle_s=float(settle_s),
                  after=after if after is not None and after.running else None)
        if job.settle_s > 0 or job.after is not None:
            job.message = ("waiting for the setting to settle" if job.settle_s > 0
                           else "waiting for the stale job to stop")
        job._thread = threading.Thread(target=job._run, args=(work,), name=f"clusterlens-{kind}", daemon=True)
        job._thread.start()
        return job

    # -- the worker side ------------------------------------------------------------------
    def _report(self, fraction: float | None, message: str, estimate_s: float | None = None) -> None:
        step = message.split(":", 1)[0] if ":" in message else message
        with self._lock:
            if step != self.step:
                self.step, self.step_started = step, time.monotonic()
                self.estimate_s = None
            self.fraction = None if fraction is None else min(max(float(fraction), 0.0), 1.0)
            self.message = message
            est = estimate_s if estimate_s is not None else estimate_from_message(message)
            if est is not None:
                self.estimate_s = float(est)

    def _wait_to_start(self) -> bool:
        """Settle, then let the replaced job stop; False if this job was itself replaced meanwhile."""
        if self.settle_s > 0 and self._stop.wait(self.settle_s):
            return False
        old = self.after
        while old is not None and old.running:
            with self._lock:
                self.message = f"waiting for the stale job to stop ({old.title})"
            if self._stop.wait(0.05):
                return False
            old.wait(0.2)
        self.after = None   # why: a chain of replaced jobs must not keep each other alive
        return True

    def _run(self, work: Work) -> None:
        try:
            if not self._wait_to_start():
                raise Cancelled("replaced by a newer setting before it started")
            with self._lock:
                self.message, self.step_started = "starting", time.monotonic()
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
            if _POINTS.search(self.message) and "UMAP" in self.message.upper():
                umap_finished()   # a map job's last step was a UMAP: it is compiled in this process now

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

    def view(self) -> tuple[float, str]:
        """(bar fraction, line) for the progress panel: see :func:`progress_line`."""
        with self._lock:
            fraction, message, est = self.fraction, self.message, self.estimate_s
            step_s = (self.finished or time.monotonic()) - self.step_started
        return progress_line(self.title, message, fraction, step_s, self.elapsed(), est)


SETTLE_S = 0.6   # a control's change waits this long for the next before re-clustering


# -- progress in words --------------------------------------------------------------------------

# Speeds measured on the 2-core build machine (shared/MEASURED.md); an estimate, said as one.
UMAP_COMPILE_S = 28.0          # numba compiles UMAP once per server process
_umap_compiled = False          # set once a UMAP step has finished in this process


def estimate_seconds(method: str, n: int, *, dims: int = 2, features: int = 50, k: int = 10,
                     restarts: int = 10) -> float | None:
    """How long a step without its own progress takes, from the data's size. ``method``: "umap",
    "tsne", "pca" or "kmeans"; ``dims``: output dimensions (UMAP); ``features``, ``k`` and
    ``restarts``: k-means' input width, clusters and restarts. None for a method not modelled."""
    n = max(int(n), 0)
    m = method.lower().replace("-", "")
    if m == "umap":   # 2-D: 10,000 points 4–8 s, 70,000 about 28 s; 10-D at 60,000 points 116 s
        per_point = 1 / 2500 if dims <= 2 else 1 / 520
        return 2.0 + n * per_point + (0.0 if _umap_compiled else UMAP_COMPILE_S)
    if m == "tsne":   # openTSNE: 10,000 points 25 s, 70,000 75 s
        return 17.0 + n / 1200
    if m == "pca":
        return 0.5 + n * features / 8e6
    if m == "kmeans":   # 70,000 × 784, k=10, 3 restarts: 5.7 s
        return 0.3 + 3.5e-9 * n * max(features, 1) * max(k, 1) * max(restarts, 1)
    return None


def umap_finished() -> None:
    """A UMAP step ended: later estimates in this process leave out the compilation."""
    global _umap_compiled
    _umap_compiled = True


_POINTS = re.compile(r"\b(UMAP|TSNE|T-SNE|PCA)(?:[-:](\d+))? of ([\d,]+) points", re.IGNORECASE)
_IMAGES = re.compile(r"(\d[\d,]*) ?(?:/| of ) ?(\d[\d,]*) (\w+), (\d[\d,]*(?:\.\d+)?) (\S+?)/s"
                     r"(?:, (\d+|nan) s left)?")
_SAMPLE = re.compile(r"UMAP on a sample of ([\d,]+) of ([\d,]+) points")


def estimate_from_message(message: str) -> float | None:
    """A map step says "UMAP of 10,000 points": its estimate from that size (past 100,000 rows UMAP
    is fitted on a sample: "UMAP on a sample of 50,000 of 1,000,000 points", the sample's size)."""
    sample = _SAMPLE.search(message)
    if sample:
        return estimate_seconds("umap", int(sample.group(1).replace(",", "")))
    m = _POINTS.search(message)
    if not m:
        return None
    dims = int(m.group(2)) if m.group(2) else 2
    return estimate_seconds(m.group(1), int(m.group(3).replace(",", "")), dims=dims)


def _secs(s: float) -> str:
    s = max(float(s), 0.0)
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def progress_line(title: str, message: str, fraction: float | None, step_s: float, total_s: float,
                  estimate_s: float | None = None) -> tuple[float, str]:
    """The panel's bar and line for one job. Never an empty bar that says nothing:

    - a count ("3200/10000 images, 210 img/s, 33 s left") → "3,200 / 10,000 images · 210 img/s ·
      about 33 s left", bar at the count's fraction;
    - a fraction (epochs, a route search) → the percentage, the rate it implies and the time left;
    - neither → the step's elapsed time against ``estimate_s`` ("12 s of about 30 s"), bar at that
      ratio (held under 95 % until the step ends), or only the elapsed time when nothing is known.
    The job's total elapsed time ends every line."""
    step, _, detail = message.partition(":")
    detail = detail.strip() if detail else ""
    head = f"**{title}** — {step.strip()}" + (f": {detail}" if detail else "")
    m = _IMAGES.search(message)
    if m:
        done, total = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
        rate, unit = float(m.group(4).replace(",", "")), m.group(5)
        frac = done / total if total else 0.0
        left = m.group(6)
        left_s = (total - done) / rate if rate > 0 else None
        if left and left != "nan":
            left_s = float(left)
        text = (f"**{title}** — {step.strip()}: {done:,} / {total:,} {m.group(3)} · {rate:,.0f} {unit}/s"
                + (f" · about {_secs(left_s)} left" if left_s is not None and math.isfinite(left_s) else ""))
        return min(max(frac, 0.0), 1.0), f"{text} · {_secs(total_s)} in all"
    if fraction is not None and fraction > 0:
        rate = fraction / step_s if step_s > 0 else 0.0
        left = (1 - fraction) / rate if rate > 0 else None
        text = f"{head} · {fraction:.0%}" + (f" · about {_secs(left)} left" if left is not None else "")
        return fraction, f"{text} · {_secs(total_s)} in all"
    if estimate_s is not None and estimate_s > 0:
        frac = min(step_s / estimate_s, 0.95)
        over = step_s > estimate_s
        est = (f" · {_secs(step_s)} of about {_secs(estimate_s)}, estimated from the size" if not over else
               f" · {_secs(step_s)}, longer than the {_secs(estimate_s)} estimated (a busy machine?)")
        return frac, f"{head}{est} · {_secs(total_s)} in all"
    return (fraction or 0.0), f"{head} · {_secs(step_s)} so far · {_secs(total_s)} in all"


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

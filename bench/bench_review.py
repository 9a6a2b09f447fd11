"""Review speed: one 500-sample move (durable commit included) and the review queue of a
10,000-sample run. Prints a table. `python bench/bench_review.py`"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.review import ReviewSession  # noqa: E402
from core.store import Store  # noqa: E402
from tests.review_helpers import make_run  # noqa: E402


def timed(fn, repeat=5):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out)) * 1000


def main() -> None:
    n, k, d = 10_000, 10, 64
    ws = Path(tempfile.mkdtemp()) / "ws"
    run, ids, base = make_run(ws, n=n, k=k)
    X = np.random.default_rng(0).normal(0, 1, (n, d)).astype(np.float32) + base[:, None]
    rows = []
    with Store(ws) as store:
        s = ReviewSession(store, run)
        rng = np.random.default_rng(1)
        targets = iter(range(10 ** 6))

        def move500():
            to = next(targets) % k
            sel = rng.choice(np.flatnonzero(s.current_labels() != to), 500, replace=False)
            s.move(sel, to)

        rows.append(("move 500 samples (commit, synchronous=FULL)", timed(move500), 200))
        rows.append(("open session + replay log (10k, 5 edits)", timed(lambda: ReviewSession(store, run)), None))
        rows.append(("review queue, confidence (10k)", timed(lambda: s.review_queue("confidence")), 1000))
        rows.append(("review queue, doubtful + Mahalanobis (10k x 64)", timed(lambda: s.review_queue(features=X)),
                     1000))
        rows.append(("undo", timed(s.undo, repeat=3), None))
    print(f"{'operation':52s} {'median ms':>10s} {'target ms':>10s}")
    for name, ms, target in rows:
        print(f"{name:52s} {ms:10.1f} {('≤ ' + str(target)) if target else '':>10s}")


if __name__ == "__main__":
    main()

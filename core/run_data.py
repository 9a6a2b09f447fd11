"""A finished run's images as the run saw them, even when its folder has changed since.

A run's assignments are row-aligned with the sample ids recorded when it ran; a fresh scan of a
folder that gained or lost files has other rows. :func:`run_dataset` compares the two by
fingerprint and, when they differ, returns the current dataset re-indexed by the run's own ids
(an image that is gone then shows as a placeholder, never as another sample's picture), with a
sentence saying what changed.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from core.data.base import ImageDataset
from core.errors import DataError
from core.store import Store


@dataclasses.dataclass(frozen=True)
class RunData:
    dataset: ImageDataset          # row i is the run's row i
    changed: str | None = None     # "the folder changed since run 3: 2 files removed, 1 added"
    removed: tuple[str, ...] = ()  # the run's ids that are no longer in the folder


def run_dataset(store: Store, run_id: int, current: ImageDataset) -> RunData:
    """``current`` (a fresh open of the run's source) made row-aligned with run ``run_id``."""
    run = store.run(run_id)
    rec = store.query("SELECT fingerprint, class_names FROM datasets WHERE id=?", (run["dataset_id"],))[0]
    if rec["fingerprint"] == current.fingerprint:
        return RunData(current)
    ids, _paths = store.samples(run["dataset_id"])
    if current.root is None:   # array datasets do not change under a run; a different one is not it
        raise DataError(f"the data of run {run_id} is not what it was when the run was made; "
                        "cluster it again to review it")
    now = set(current.ids)
    before = set(ids)
    removed = tuple(i for i in ids if i not in now)
    added = sum(1 for i in current.ids if i not in before)
    parts = [f"{len(removed):,} file(s) removed" if removed else "", f"{added:,} added" if added else ""]
    what = ", ".join(p for p in parts if p) or "some files' contents changed"
    labels = store.query("SELECT label FROM samples WHERE dataset_id=? ORDER BY idx", (run["dataset_id"],))
    truth = np.array([-1 if r["label"] is None else r["label"] for r in labels], dtype=np.int64)
    names = json.loads(rec["class_names"]) if rec["class_names"] else None
    aligned = dataclasses.replace(
        current, ids=list(ids), labels=truth if (truth >= 0).any() else None, class_names=names,
        fingerprint=rec["fingerprint"], duplicates=[])
    return RunData(aligned, f"the folder changed since run {run_id}: {what}. The run is shown by sample id; "
                            "images no longer there show as grey tiles. Cluster again to include new files.",
                   removed)

"""Shared fixtures for the review / export / durability tests: a real workspace with one run."""
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.base import ImageDataset
from core.store import Store


class FileDataset(ImageDataset):
    def path(self, i):
        return str(Path(self.root) / self.ids[i]) if self.root else None


def make_run(ws, n=12, k=3, *, files=False, seed=0, confidence=None):
    """A finished run over ``n`` samples with labels i % k; with ``files`` real PNGs on disk."""
    ws = Path(ws)
    root = None
    ids = [f"sub/img{i:05d}.png" for i in range(n)]
    if files:
        root = ws.parent / f"{ws.name}-images"
        (root / "sub").mkdir(parents=True, exist_ok=True)
        for i, sid in enumerate(ids):
            Image.fromarray(np.full((4, 4, 3), i % 256, np.uint8)).save(root / sid)
    ds = FileDataset(name="t", ids=ids, fingerprint=f"fp{n}-{seed}", root=str(root) if root else None)
    labels = np.arange(n) % k
    conf = np.random.default_rng(seed).random(n) if confidence is None else np.asarray(confidence)
    with Store(ws) as s:
        ds_id = s.upsert_dataset(ds, "src")
        run = s.start_run(ds_id, None, "kmeans", k, {})
        s.finish_run(run, labels, conf, {}, [], {})
    return run, ids, labels

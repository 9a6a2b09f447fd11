"""Streaming, resumable extraction: shards on disk as they complete, a stopped / interrupted /
killed extraction resumes where it stopped, damaged shards are redone, memory flat in N."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.features.cache as cache_mod
from core.errors import Cancelled
from core.features import FeatureCache, cached_extract, extract_features
from core.features.cache import ShardWriter

ROOT = Path(__file__).resolve().parents[2]


class LazyImages:
    """N distinct RGB images made from their index on demand (a folder's shape: one load per
    image, none held), recording which rows were loaded."""

    def __init__(self, n: int, size: int = 12, fingerprint: str = "lazy") -> None:
        from core.data.base import ImageDataset

        outer = self

        class _DS(ImageDataset):
            def load(self, i: int) -> Image.Image:
                outer.loaded.append(i)
                if outer.fail_at is not None and i == outer.fail_at:
                    raise KeyboardInterrupt
                rng = np.random.default_rng(i)
                return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))

        self.loaded: list[int] = []
        self.fail_at: int | None = None
        self.ds = _DS(name="lazy", ids=[f"img{i}.png" for i in range(n)], fingerprint=fingerprint)


@pytest.fixture
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "SHARD_ROWS", 8)


def _stop_after(calls: int):  # noqa: ANN202
    seen: list[int] = []

    def progress(done: int, total: int, rate: float) -> None:
        seen.append(done)

    return progress, (lambda: len(seen) >= calls), seen


def test_stop_keeps_the_shards_and_the_next_call_extracts_only_the_rest(tmp_path: Path, small_shards: None) -> None:
    imgs = LazyImages(40)
    cache = FeatureCache(tmp_path / "c")
    progress, stop, seen = _stop_after(3)
    with pytest.raises(Cancelled, match="after 12 of 40 images; the 12 extracted are kept"):
        cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4, progress=progress, should_stop=stop)
    part = json.loads((cache.partial(cache_mod.feature_key(cache_mod.feature_key_parts(
        imgs.ds, "pixels", image_size=8))) / "index.json").read_text())
    assert [(s["start"], s["stop"]) for s in part["shards"]] == [(0, 8), (8, 12)]   # full shard + the rest on stop

    imgs.loaded.clear()
    seen2: list[int] = []
    f, hit, key = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4,
                                 progress=lambda d, t, r: seen2.append(d))
    assert not hit and sorted(imgs.loaded) == list(range(12, 40))   # only the rest
    assert seen2[0] == 16 and seen2[-1] == 40                       # progress counts the kept rows
    assert not cache.partial(key).exists()                          # assembled, partial removed
    whole = extract_features(LazyImages(40).ds, "pixels", image_size=8, batch_size=4)
    np.testing.assert_array_equal(f, whole)                         # identical to an uninterrupted run
    again, hit, _ = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4)
    assert hit and np.array_equal(again, whole)


def test_ctrl_c_keeps_the_finished_batches(tmp_path: Path, small_shards: None) -> None:
    imgs = LazyImages(30)
    imgs.fail_at = 21   # KeyboardInterrupt while decoding row 21 (batch 20..23)
    cache = FeatureCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4)
    imgs.fail_at, imgs.loaded = None, []
    f, hit, _ = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4)
    assert not hit and sorted(imgs.loaded) == list(range(20, 30))
    np.testing.assert_array_equal(f, extract_features(LazyImages(30).ds, "pixels", image_size=8, batch_size=4))


def test_a_damaged_or_half_written_shard_is_redone(tmp_path: Path, small_shards: None) -> None:
    imgs = LazyImages(40)
    cache = FeatureCache(tmp_path)
    progress, stop, _ = _stop_after(8)   # 32 rows: shards 0-8, 8-16, 16-24, 24-32
    with pytest.raises(Cancelled):
        cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4, progress=progress, should_stop=stop)
    key = cache_mod.feature_key(cache_mod.feature_key_parts(imgs.ds, "pixels", image_size=8))
    part = cache.partial(key)
    names = sorted(p.name for p in part.glob("rows-*.npy"))
    assert len(names) == 4
    raw = bytearray((part / names[1]).read_bytes())
    raw[-3] ^= 0xFF                                          # one flipped byte: CRC-32 differs
    (part / names[1]).write_bytes(bytes(raw))
    (part / names[2]).write_bytes((part / names[2]).read_bytes()[:200])   # cut short
    imgs.loaded.clear()
    f, _, _ = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4)
    assert sorted(imgs.loaded) == list(range(8, 24)) + list(range(32, 40))
    np.testing.assert_array_equal(f, extract_features(LazyImages(40).ds, "pixels", image_size=8, batch_size=4))


def test_pca_features_resume_identically(tmp_path: Path, small_shards: None) -> None:
    imgs = LazyImages(24)
    cache = FeatureCache(tmp_path)
    progress, stop, _ = _stop_after(2)
    with pytest.raises(Cancelled):
        cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4, pca_dim=5, seed=1,
                       progress=progress, should_stop=stop)
    f, _, _ = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4, pca_dim=5, seed=1)
    whole = extract_features(LazyImages(24).ds, "pixels", image_size=8, batch_size=4, pca_dim=5, seed=1)
    assert f.shape == (24, 5)
    np.testing.assert_array_equal(f, whole)


def test_another_process_on_the_same_key_extracts_separately(tmp_path: Path) -> None:
    imgs = LazyImages(10)
    cache = FeatureCache(tmp_path)
    key = cache_mod.feature_key(cache_mod.feature_key_parts(imgs.ds, "pixels", image_size=8))
    with ShardWriter(cache, key, 10, {}) as holder:   # holds the partial's lock
        assert holder.dir == cache.partial(key)
        f, hit, _ = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4)
    assert not hit and f.shape == (10, 192) and cache.get(key) is not None
    assert not list(tmp_path.glob(".tmp-*"))   # the private partial is removed when done


def _extract_traced(tmp_path: Path, n: int, size: int) -> tuple[np.ndarray, int, list[tuple[int, int]]]:
    shards: list[tuple[int, int]] = []
    real_write = ShardWriter.write

    def spy(self: ShardWriter, start: int, raw: np.ndarray) -> None:
        shards.append((start, len(raw)))
        real_write(self, start, raw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ShardWriter, "write", spy)
        imgs = LazyImages(n, size=size, fingerprint=f"lazy-{n}")
        tracemalloc.start()
        try:
            f, _, _ = cached_extract(FeatureCache(tmp_path), imgs.ds, "pixels", image_size=size, batch_size=64)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return f, peak, shards


def test_memory_stays_flat_in_n_and_shards_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = 32
    monkeypatch.setattr(cache_mod, "SHARD_ROWS", 256)
    _, peak_1k, _ = _extract_traced(tmp_path, 1000, size)
    f, peak_3k, shards = _extract_traced(tmp_path, 3000, size)
    feature_bytes = 3000 * 3 * size * size * 4      # the whole float32 matrix: 36.9 MB
    image_bytes = 3000 * 3 * size * size            # every image as uint8: 9.2 MB
    assert f.shape == (3000, 3 * size * size)
    assert isinstance(f.base, np.memmap)            # the matrix is on disk, mapped: not in the heap
    assert len(shards) == 12 and all(rows <= 256 for _, rows in shards)
    assert [s for s, _ in shards] == list(range(0, 3000, 256))
    shard_bytes = 256 * 3 * size * size * 4         # one shard of rows: 3.1 MB
    # a shard and one temporary of its size (the norms' squares) at most: never N of anything
    assert peak_3k < 2.5 * shard_bytes < image_bytes < feature_bytes, peak_3k
    assert peak_3k < 1.2 * peak_1k, (peak_1k, peak_3k)   # 3x the images, the same peak


_KILLED = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    import core.features.cache as cache_mod
    from core.features import FeatureCache, cached_extract
    from tests.features.test_resume import LazyImages
    cache_mod.SHARD_ROWS = 8
    imgs = LazyImages(400)
    cached_extract(FeatureCache(sys.argv[2]), imgs.ds, "pixels", image_size=8, batch_size=4,
                   progress=lambda d, t, r: time.sleep(0.05))
""")


def test_a_killed_process_resumes_from_its_last_shard(tmp_path: Path, small_shards: None) -> None:
    cache = FeatureCache(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(ROOT), str(tmp_path)], env=env)
    imgs = LazyImages(400)
    key = cache_mod.feature_key(cache_mod.feature_key_parts(imgs.ds, "pixels", image_size=8))
    index = cache.partial(key) / "index.json"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if index.is_file() and len(json.loads(index.read_text())["shards"]) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the extraction ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    kept = {(s["start"], s["stop"]) for s in json.loads(index.read_text())["shards"]}
    done = sum(b - a for a, b in kept)
    assert 24 <= done < 400
    f, hit, _ = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=4)
    assert not hit and sorted(set(imgs.loaded)) == [i for i in range(400) if not any(a <= i < b for a, b in kept)]
    np.testing.assert_array_equal(f, extract_features(LazyImages(400).ds, "pixels", image_size=8, batch_size=4))

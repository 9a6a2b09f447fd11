"""Feature cache: content keys, hits without recomputing, shards, atomic writes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import core.features.cache as cache_mod
import core.features.extract as extract_mod
from core.errors import ParameterError
from core.features import ARCHS, FeatureCache, cached_extract, feature_key, feature_key_parts, save_backbone_checkpoint
from tests.features.conftest import ArrayDataset


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts real extractions (a model is built once per call that extracts)."""
    calls: list[str] = []
    real = extract_mod.FeatureMapper

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        calls.append(a[1])
        return real(*a, **k)

    monkeypatch.setattr(extract_mod, "FeatureMapper", spy)
    return calls


def test_hit_returns_identical_array_without_recomputing(tmp_path: Path, gray_arrays: np.ndarray,
                                                         counted: list[str]) -> None:
    cache, ds = FeatureCache(tmp_path), ArrayDataset(gray_arrays)
    f1, hit1, k1 = cached_extract(cache, ds, "pixels", pca_dim=4)
    f2, hit2, k2 = cached_extract(cache, ds, "pixels", pca_dim=4)
    assert (hit1, hit2, k1 == k2, len(counted)) == (False, True, True, 1)
    np.testing.assert_array_equal(f1, f2)
    assert f2.dtype == np.float32 and f2.shape == (10, 4)
    meta = cache.meta(k1)
    assert meta["meta"]["dataset"] == ds.fingerprint and meta["meta"]["pca_dim"] == 4
    _, hit3, k3 = cached_extract(cache, ds, "pixels", image_size=8)   # other size: other key
    assert not hit3 and k3 != k1 and len(counted) == 2


def test_key_parts_change_the_key(tmp_path: Path, gray_arrays: np.ndarray) -> None:
    ds = ArrayDataset(gray_arrays)
    base = feature_key(feature_key_parts(ds, "efficientnet_lite0"))
    assert base == feature_key(feature_key_parts(ds, "efficientnet_lite0", image_size=224))  # the default
    others = {feature_key(feature_key_parts(ds, "efficientnet_lite0", image_size=64)),
              feature_key(feature_key_parts(ds, "resnet18")),
              feature_key(feature_key_parts(ArrayDataset(gray_arrays[:5]), "efficientnet_lite0")),
              feature_key(feature_key_parts(ds, "pixels", pca_dim=4, seed=0)),
              feature_key(feature_key_parts(ds, "pixels", pca_dim=4, seed=1))}
    assert base not in others and len(others) == 5
    # checkpoints are identified by their content, not their name
    model = ARCHS.get("efficientnet_lite0").build()   # the smallest arch: a quick save and hash
    p = save_backbone_checkpoint(tmp_path / "a.pt", "efficientnet_lite0", {}, model)
    k1 = feature_key(feature_key_parts(ds, "checkpoint", checkpoint=p))
    with torch.no_grad():
        model.net._conv_stem.weight.add_(1)
    save_backbone_checkpoint(p, "efficientnet_lite0", {}, model)
    assert feature_key(feature_key_parts(ds, "checkpoint", checkpoint=p)) != k1


def test_entry_is_one_memory_mapped_matrix_and_old_sharded_entries_still_read(tmp_path: Path) -> None:
    a = np.random.default_rng(0).random((10, 3), dtype=np.float32)
    cache, key = FeatureCache(tmp_path), "ab" * 16
    cache.put(key, a, {"note": "x"})
    index = json.loads((tmp_path / key / "index.json").read_text())
    assert (index["format"], index["file"], index["shape"]) == ("clusterlens-features/2", "features.npy", [10, 3])
    got = cache.get(key)
    np.testing.assert_array_equal(got, a)
    assert isinstance(got.base, np.memmap) and not got.flags.writeable   # mapped, not read into memory
    assert isinstance(cache.get(key, mmap=False), np.ndarray) and cache.get(key, mmap=False).flags.writeable
    # an entry in the layout before this one (format 1: shard-*.npy listed in the index)
    old = "12" * 16
    (tmp_path / old).mkdir()
    for i, start in enumerate(range(0, 10, 4)):
        np.save(tmp_path / old / f"shard-{i:05d}.npy", a[start: start + 4])
    (tmp_path / old / "index.json").write_text(json.dumps({
        "format": "clusterlens-features/1", "key": old, "shape": [10, 3], "dtype": "float32", "shard_rows": 4,
        "shards": ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"], "meta": {}}))
    np.testing.assert_array_equal(cache.get(old), a)
    (tmp_path / old / "shard-00001.npy").write_bytes(b"garbage")   # damaged entry: a miss
    assert cache.get(old) is None
    (tmp_path / key / "features.npy").write_bytes(b"\x93NUMPY garbage")
    assert cache.get(key) is None
    cache.put(key, a)   # a damaged entry is replaced, not kept
    np.testing.assert_array_equal(cache.get(key), a)


def test_crash_during_put_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, key, a = FeatureCache(tmp_path), "cd" * 16, np.ones((3, 2), np.float32)

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.os, "rename", crash)
    with pytest.raises(OSError):
        cache.put(key, a)
    monkeypatch.undo()
    assert cache.get(key) is None and key not in cache and not list(tmp_path.iterdir())
    cache.put(key, a)
    np.testing.assert_array_equal(cache.get(key), a)


def test_leftover_temp_dir_is_not_an_entry(tmp_path: Path) -> None:
    cache, key = FeatureCache(tmp_path), "ef" * 16
    cache.put(key, np.ones((2, 2), np.float32))
    shutil.move(tmp_path / key, tmp_path / f".tmp-{key}-killed")   # as if killed before the rename
    assert cache.get(key) is None and key not in cache


def test_bad_key_and_no_fingerprint(tmp_path: Path, gray_arrays: np.ndarray, counted: list[str]) -> None:
    with pytest.raises(ParameterError, match="hex digest"):
        FeatureCache(tmp_path).get("../etc")
    ds = ArrayDataset(gray_arrays)
    ds.fingerprint = ""
    for _ in range(2):
        f, hit, key = cached_extract(FeatureCache(tmp_path), ds, "pixels")
        assert (hit, key, f.shape) == (False, "", (10, 256))
    assert len(counted) == 2 and not list(tmp_path.iterdir())

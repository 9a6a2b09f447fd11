"""Extraction on Ray Data (issue 28 item 5): a local Ray cluster started by the test itself."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray

import core.features.cache as cache_mod
from core.errors import Cancelled
from core.features import FeatureCache, cached_extract, extract_features
from tests.features.test_resume import LazyImages


@pytest.fixture(scope="module")
def local_cluster():  # noqa: ANN201
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_map_batches_gives_the_local_features_and_resumes(tmp_path: Path, local_cluster: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from core.features.ray_extract import ray_extract

    monkeypatch.setattr(cache_mod, "SHARD_ROWS", 16)
    imgs = LazyImages(100)
    whole = extract_features(LazyImages(100).ds, "pixels", image_size=8, batch_size=8)
    cache = FeatureCache(tmp_path)
    seen: list[int] = []
    with pytest.raises(Cancelled, match="on Ray stopped after 32 of 100 images; the 32 extracted are kept"):
        ray_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=8, device="cpu",
                    progress=lambda d, t, r: seen.append(d), should_stop=lambda: len(seen) >= 2)
    f, hit, key = ray_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=8, device="cpu")
    assert not hit and f.shape == (100, 192)
    np.testing.assert_array_equal(f, whole)
    again, hit, key2 = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=8)   # the same entry
    assert hit and key2 == key and np.array_equal(again, whole)


def test_cli_extract_with_ray(tmp_path: Path, local_cluster: None, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main
    from core.data.demos import load_digits_demo

    argv = ["extract", "--data", "digits", "--backbone", "pixels", "--device", "cpu", "--ray", "auto",
            "--actors", "1", "--workspace", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "features 1,797 x 64 in" in out and "on Ray" in out
    (entry,) = [p for p in (tmp_path / "features").iterdir() if not p.name.startswith(".")]
    np.testing.assert_array_equal(FeatureCache(tmp_path / "features").get(entry.name),
                                  extract_features(load_digits_demo(), "pixels"))

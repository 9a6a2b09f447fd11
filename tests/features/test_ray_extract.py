"""Extraction on Ray Data (issue 28 item 5), on a local Ray cluster the test starts itself:
``ray start --head --block`` (2 CPUs, 200 MB object store, no dashboard) in a subprocess, which
the driver (this process, and the CLI in another) joins by its address; stopped at the end."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import ray

import core.features.cache as cache_mod
from core.data.arrays import ArrayDataset
from core.data.registry import head
from core.errors import Cancelled, DataError
from core.features import FeatureCache, cached_extract, extract_features
from core.features.cache import feature_key, feature_key_parts
from core.features.ray_extract import ray_extract
from tests.features.test_resume import LazyImages

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CountedImages(ArrayDataset):
    """An array dataset read image by image (the path a folder takes) that appends every row it
    loads to ``log``: the actors run in other processes, so they count in a file."""

    log: str = ""

    def native_array(self) -> None:
        return None

    def load(self, i: int):  # noqa: ANN201
        with open(self.log, "a") as f:
            f.write(f"{i}\n")
        return super().load(i)

    def seen(self) -> list[int]:
        return [int(x) for x in Path(self.log).read_text().split()] if Path(self.log).exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    # a local test cluster on its own port: no token (Ray 2.5x's `ray start` turns token auth on,
    # and this process read RAY_AUTH_MODE when it imported ray)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "disabled"}
    head_proc = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus", "2",
         "--num-gpus", "0", "--port", str(port), "--object-store-memory", str(200 * 2**20),
         "--include-dashboard", "false", "--temp-dir", str(temp), "--disable-usage-stats"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120   # the head takes a few seconds to come up on a loaded machine
        while not ray.is_initialized():
            assert head_proc.poll() is None, "ray start --head exited"
            try:
                ray.init(address=address, log_to_driver=False)
            except ConnectionError:
                assert time.monotonic() < deadline, f"no Ray head at {address} after 120 s"
                time.sleep(1)
        assert ray.is_initialized()
        yield address
    finally:
        ray.shutdown()
        os.killpg(head_proc.pid, signal.SIGTERM)   # the head and what it started (its own session)
        try:
            head_proc.wait(timeout=5)   # (in Ray 2.60 it leaves the GCS running on SIGTERM)
        except subprocess.TimeoutExpired:
            os.killpg(head_proc.pid, signal.SIGKILL)
            head_proc.wait()


def test_lite0_on_ray_resumes_a_local_partial_with_the_local_features(tmp_path: Path, cluster: str) -> None:
    from core.data.demos import load_digits_demo

    digits = head(load_digits_demo(), 300)
    ds = CountedImages(**{f: getattr(digits, f) for f in ("name", "ids", "labels", "class_names", "fingerprint",
                                                            "images")}, log=str(tmp_path / "rows.txt"))
    whole = extract_features(ds, "efficientnet_lite0", image_size=32, batch_size=50, device="cpu")
    Path(ds.log).unlink()
    cache = FeatureCache(tmp_path / "features")
    seen: list[int] = []
    with pytest.raises(Cancelled, match="after 100 of 300 images; the 100 extracted are kept"):   # a stopped run
        cached_extract(cache, ds, "efficientnet_lite0", image_size=32, batch_size=50, device="cpu",
                       progress=lambda d, t, r: seen.append(d), should_stop=lambda: len(seen) >= 2)
    key = feature_key(feature_key_parts(ds, "efficientnet_lite0", image_size=32))
    part = json.loads((cache.partial(key) / "index.json").read_text())
    assert [(s["start"], s["stop"]) for s in part["shards"]] == [(0, 100)]
    Path(ds.log).unlink()   # (a local run may have read a batch ahead)

    f, hit, key2 = ray_extract(cache, ds, "efficientnet_lite0", image_size=32, batch_size=50, device="cpu", actors=2)
    assert sorted(ds.seen()) == list(range(100, 300))   # only the missing rows went to the actors, each once
    assert not hit and f.shape == whole.shape == (300, 1280)
    np.testing.assert_allclose(f, whole, atol=1e-5)
    assert key2 == key and not cache.partial(key).exists()
    again, hit, key3 = cached_extract(cache, ds, "efficientnet_lite0", image_size=32)   # the entry a local run reads
    assert hit and key3 == key and np.array_equal(again, f)


def test_stop_on_ray_keeps_its_shards_and_a_local_run_finishes(tmp_path: Path, cluster: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "SHARD_ROWS", 16)
    imgs = LazyImages(100)
    whole = extract_features(LazyImages(100).ds, "pixels", image_size=8, batch_size=8)
    cache = FeatureCache(tmp_path)
    seen: list[int] = []
    with pytest.raises(Cancelled) as stopped:
        ray_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=8, device="cpu", actors=1,
                    progress=lambda d, t, r: seen.append(d), should_stop=lambda: len(seen) >= 2)
    kept = int(re.search(r"stopped after (\d+) of 100 images", str(stopped.value))[1])
    assert 0 < kept < 100 and kept == seen[-1]
    key = feature_key(feature_key_parts(imgs.ds, "pixels", image_size=8))
    part = json.loads((cache.partial(key) / "index.json").read_text())
    assert sum(s["stop"] - s["start"] for s in part["shards"]) == kept
    assert part["shards"][0]["start"] == 0 and max(s["stop"] - s["start"] for s in part["shards"]) <= 16

    imgs.loaded.clear()   # this process's loads: the local run does only what Ray did not
    f, hit, key2 = cached_extract(cache, imgs.ds, "pixels", image_size=8, batch_size=8)
    assert not hit and key2 == key and sorted(imgs.loaded) == list(range(kept, 100))
    np.testing.assert_array_equal(f, whole)


def test_cli_extract_on_the_cluster_gives_the_local_entry(tmp_path: Path, cluster: str) -> None:
    from core.data.demos import load_digits_demo

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}
    out = subprocess.run([sys.executable, "-m", "core", "extract", "--data", "digits", "--limit", "200",
                          "--backbone", "pixels", "--ray", cluster, "--workspace", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"features 200 x 64 in [\d.]+ s on Ray: ", out.stdout), out.stdout
    digits = head(load_digits_demo(), 200)
    local, _, key = cached_extract(FeatureCache(tmp_path / "local"), digits, "pixels")
    (entry,) = [p.name for p in (tmp_path / "features").iterdir() if not p.name.startswith(".")]
    assert entry == key   # the cache key a local extraction computes
    np.testing.assert_allclose(FeatureCache(tmp_path / "features").get(entry), local, atol=1e-5)


def test_workers_that_see_other_data_at_the_path_are_refused(tmp_path: Path, cluster: str) -> None:
    imgs = LazyImages(20)   # the driver's data; the workers reopen "digits" by name: another data set
    with pytest.raises(DataError, match="is not what the driver opened .* same files at the same path"):
        ray_extract(FeatureCache(tmp_path), imgs.ds, "pixels", source="digits", image_size=8, batch_size=8,
                    device="cpu", actors=1)


def test_without_ray_installed_the_error_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.errors import ParameterError

    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` now fails as on a machine without it
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ParameterError, match=r"pip install 'ray\[data\]'\`, or extract without --ray"):
        ray_extract(FeatureCache(tmp_path), LazyImages(4).ds, "pixels", image_size=8, address="auto")
    assert not any(tmp_path.iterdir())   # nothing was started or written
    code = "import sys; sys.modules['ray'] = None; import core.cli, core.pipeline, core.features.ray_extract"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0   # core imports without ray


def test_run_with_ray_extracts_on_the_cluster_and_clusters_the_cached_features(
        tmp_path: Path, cluster: str, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    base = ["run", "--data", "digits", "--limit", "150", "--reduce", "none", "--map", "pca", "--k", "10",
            "--ray", cluster, "--workspace", str(tmp_path)]
    assert main(base) != 0   # the default route picks its backbone from the data: not one to send to Ray
    assert "run --ray extracts one built-in backbone's features on the cluster, not 'auto': give --backbone NAME" \
        in capsys.readouterr().err
    assert main([*base, "--backbone", "pixels"]) == 0
    assert "run 1: 150 images, 10 clusters (cached features)" in capsys.readouterr().out   # Ray's entry, read back

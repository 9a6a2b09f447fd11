"""k-means past 200,000 rows: seeded on a sample, refined on all rows; progress and stop."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import core.cluster.kmeans as km
from core.cluster.kmeans import KMeans
from core.errors import ParameterError


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8)).astype(np.float32) * 4
    y = rng.integers(0, 6, 3000)
    return (centres[y] + rng.normal(size=(3000, 8)).astype(np.float32)), y


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3,000-row set counts as large: sampled on 600 rows."""
    monkeypatch.setattr(km, "SAMPLED_ABOVE", 2000)
    monkeypatch.setattr(km, "SAMPLE_MIN", 600)
    monkeypatch.setattr(km, "SAMPLE_PER_CLUSTER", 50)


def test_auto_keeps_lloyd_below_the_threshold(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    a = KMeans(n_clusters=6, random_state=3).fit(X)
    b = KMeans(n_clusters=6, random_state=3, algorithm="lloyd").fit(X)
    assert a.sample_size_ is None
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_sampled_on_a_read_only_memory_map_matches_lloyd(tmp_path: Path, blobs: tuple[np.ndarray, np.ndarray],
                                                         small_threshold: None) -> None:
    from sklearn.metrics import adjusted_rand_score

    X, y = blobs
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    s = KMeans(n_clusters=6, random_state=0).fit(mm)
    full = KMeans(n_clusters=6, random_state=0, algorithm="lloyd").fit(X)
    assert s.sample_size_ == 600 and full.sample_size_ is None
    assert s.inertia_ <= full.inertia_ * 1.01
    assert adjusted_rand_score(y, s.labels_) > 0.95 and s.labels_.shape == (3000,)
    again = KMeans(n_clusters=6, random_state=0).fit(mm)   # seeded: the same sample, the same labels
    np.testing.assert_array_equal(again.labels_, s.labels_)
    with pytest.raises(ParameterError, match="auto, lloyd, sampled"):
        KMeans(n_clusters=6, algorithm="fast").fit(X)


def test_progress_reports_passes_and_rate_and_false_stops(blobs: tuple[np.ndarray, np.ndarray],
                                                          small_threshold: None) -> None:
    X, _ = blobs
    calls: list[tuple[int, int, str]] = []
    records: list[dict] = []
    KMeans(n_clusters=6, random_state=0).fit(X, progress=lambda d, t, w: calls.append((d, t, w)),
                                             callback=records.append)
    assert calls and all(0 < d <= t for d, t, _ in calls)
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)          # never goes back
    assert calls[0][2].startswith("seeding on a sample: k-means iteration 1")
    assert calls[-1][2].startswith("all points: ") and "3,000 points" in calls[-1][2]
    assert all("points/s" in w for _, _, w in calls)
    fr = [r["progress"] for r in records]
    assert fr == sorted(fr) and 0 < fr[0] and fr[-1] <= 1 and {r["stage"] for r in records} == {"sample", "all"}

    seen: list[int] = []
    stopped = KMeans(n_clusters=6, random_state=0, algorithm="lloyd").fit(
        X, progress=lambda d, t, w: seen.append(d) or len(seen) < 2)
    assert seen == [1, 2] and stopped.n_iter_ == 2 and stopped.labels_.shape == (3000,)

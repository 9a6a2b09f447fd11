"""2-D maps past 100,000 rows: UMAP on a sample, the other rows placed from their nearest sample
rows; progress (done, total, what) and stop."""
from __future__ import annotations

import numpy as np
import pytest

import core.projection as proj
from core.errors import Cancelled


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 60)).astype(np.float32) * 6
    y = rng.integers(0, 4, 900)
    return centres[y] + rng.normal(size=(900, 60)).astype(np.float32), y


def test_sampled_umap_places_every_row_near_its_own_cluster(blobs, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from sklearn.neighbors import KNeighborsClassifier

    X, y = blobs
    monkeypatch.setattr(proj, "UMAP_SAMPLE_ABOVE", 500)
    monkeypatch.setattr(proj, "UMAP_SAMPLE", 300)
    monkeypatch.setattr(proj, "PLACE_CHUNK", 250)
    calls: list[tuple[int, int, str]] = []
    xy = proj.project(X, "umap", seed=0, progress=lambda d, t, w: calls.append((d, t, w)))
    assert xy.shape == (900, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    # the placed rows land among their own cluster's sample rows (labels only score here)
    idx = np.sort(np.random.default_rng(0).choice(900, 300, replace=False))
    placed = np.setdiff1d(np.arange(900), idx)
    knn = KNeighborsClassifier(5).fit(xy[idx], y[idx])
    assert (knn.predict(xy[placed]) == y[placed]).mean() > 0.97
    assert [d for d, _, _ in calls] == [0, 300, 550, 800, 900] and {t for _, t, _ in calls} == {900}
    assert calls[0][2].startswith("UMAP on a sample of 300 of 900 points") and "points/s" in calls[-1][2]
    np.testing.assert_array_equal(xy, proj.project(X, "umap", seed=0))   # seeded
    with pytest.raises(Cancelled):
        proj.project(X, "umap", seed=0, progress=lambda d, t, w: d < 300)
    z = proj.reduce(X, "umap:3", seed=0)   # the clustering reduction takes the same path
    assert z.shape == (900, 3) and np.isfinite(z).all()


def test_small_maps_report_start_and_end(blobs) -> None:  # noqa: ANN001
    X, _ = blobs
    calls: list[tuple[int, int]] = []
    xy = proj.project(X, "pca", progress=lambda d, t, w: calls.append((d, t)))
    np.testing.assert_array_equal(xy, proj.project(X, "pca"))
    assert calls == [(0, 900), (900, 900)]

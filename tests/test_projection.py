"""Projection: shapes, seeding, PCA pre-reduction, unknown names, reduce specs."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from core import projection
from core.errors import ParameterError, UnknownNameError


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    X, _ = make_blobs(n_samples=120, centers=3, n_features=60, random_state=0)
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def umap_maps(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One module-scoped fixture: numba compiles once for all UMAP assertions."""
    a = projection.project(data, "umap", seed=0)
    b = projection.project(data, "umap", seed=0)
    r = projection.reduce(data, "umap:5", seed=0)
    return a, b, r


def test_umap_shape_and_reproducible(umap_maps):
    a, b, r = umap_maps
    assert a.shape == (120, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert r.shape == (120, 5)


def test_pca_and_tsne_shapes(data):
    p = projection.project(data, "pca", n_components=3)
    assert p.shape == (120, 3) and p.dtype == np.float32
    t = projection.project(data[:40], "tsne", seed=0)
    assert t.shape == (40, 2) and np.isfinite(t).all()


def test_pca_first_is_applied(data, monkeypatch):
    seen = {}
    fake = lambda X, n, s: seen.setdefault("d", X.shape[1]) and X[:, :n]
    monkeypatch.setitem(projection.METHODS._items, "tsne", fake)
    projection.project(data, "tsne", pca_first=10)
    assert seen["d"] == 10


def test_unknown_method_lists_choices(data):
    with pytest.raises(UnknownNameError, match="choose one of: pca, tsne, umap"):
        projection.project(data, "isomap")


def test_reduce_specs(data):
    assert projection.reduce(data, "none") is not None and projection.reduce(data, "none").shape == data.shape
    assert projection.reduce(data, "pca:7").shape == (120, 7)
    with pytest.raises(ParameterError, match="only 60"):
        projection.reduce(data, "pca:100")
    with pytest.raises(ParameterError, match="not understood"):
        projection.reduce(data, "tsne:2")


_PCA_DIGEST = """
import hashlib, sys
from sklearn.datasets import load_digits
from core.projection import _pca
X = load_digits().data.astype("float32")
sys.stdout.write(hashlib.sha1(_pca(X, 50, 0).tobytes()).hexdigest())
"""


def test_pca_bits_do_not_depend_on_thread_count():
    """UMAP after PCA amplifies last-bit differences into a different map, so PCA must give the
    same bits whatever the BLAS thread count (it did not: digits differed between 1 and 2)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    digests = set()
    for threads in ("1", "2", "4"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads, "PYTHONPATH": root}
        out = subprocess.run([sys.executable, "-c", _PCA_DIGEST], env=env, capture_output=True, text=True,
                             check=True, cwd=root)
        digests.add(out.stdout.strip())
    assert len(digests) == 1, digests

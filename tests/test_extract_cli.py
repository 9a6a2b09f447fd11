"""`python -m core extract`: features into the workspace's cache; a second run reads them back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.data.demos import load_digits_demo
from core.features import FeatureCache, extract_features
from core.store import Store


def test_extract_then_again_from_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["extract", "--data", "digits", "--backbone", "pixels", "--workspace", str(tmp_path)]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "features 1,797 x 64 in" in first.out and "features: 1,797/1,797 images" in first.err
    assert main(argv) == 0
    assert "features 1,797 x 64 from the cache" in capsys.readouterr().out
    with Store(tmp_path) as store:
        (key,) = [r[0] for r in store._db.execute("SELECT cache_key FROM feature_sets")]
    np.testing.assert_array_equal(FeatureCache(tmp_path / "features").get(key),
                                  extract_features(load_digits_demo(), "pixels"))

import numpy as np
import pytest

import core.data.demos as demos
from core.data.demos import DEMOS, open_demo, read_idx
from core.errors import DataError, UnknownNameError
from tests.data.idx import write_idx, write_mnist_like

fashion_ok = DEMOS.get("fashion-mnist").available()[0]
needs_fashion = pytest.mark.skipif(not fashion_ok, reason="apt-get install dataset-fashion-mnist")


def test_digits():
    from sklearn.datasets import load_digits

    ds = open_demo("digits")
    x = ds.native_array()
    assert len(ds) == 1797 and x.shape == (1797, 8, 8) and x.dtype == np.uint8
    assert ds.ids[:2] == ["all/0", "all/1"] and ds.ids[-1] == "all/1796"
    assert x.max() == 255 and x.min() == 0
    np.testing.assert_array_equal(x[5], np.rint(load_digits().images[5] * 255 / 16))
    assert sorted(set(ds.labels.tolist())) == list(range(10)) and len(ds.class_names) == 10
    img = ds.load(5)
    assert img.mode == "RGB" and img.size == (8, 8) and img.getpixel((3, 2))[0] == x[5, 2, 3]
    assert ds.path(0) is None and ds.root is None
    assert open_demo("digits").fingerprint == ds.fingerprint != ""


@needs_fashion
def test_fashion_mnist_test_split():
    ds = open_demo("fashion-mnist")
    assert len(ds) == 10_000 and ds.ids[0] == "test/0" and ds.ids[-1] == "test/9999"
    assert ds.native_array().shape == (10_000, 28, 28)
    assert np.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.load(0).size == (28, 28)


@needs_fashion
def test_fashion_mnist_all_has_train_then_test():
    ds = open_demo("fashion-mnist-all")
    assert len(ds) == 70_000 and ds.ids[59_999] == "train/59999" and ds.ids[60_000] == "test/0"
    assert np.bincount(ds.labels).tolist() == [7000] * 10
    test = open_demo("fashion-mnist")
    np.testing.assert_array_equal(ds.native_array()[60_000:], test.native_array())
    assert ds.fingerprint != test.fingerprint


def test_fashion_from_torchvision_root(tmp_path, monkeypatch):
    images, labels = write_mnist_like(tmp_path / "FashionMNIST" / "raw", 3, 4, gz=False)
    monkeypatch.setenv("CLUSTERLENS_DATA_ROOT", str(tmp_path))   # searched before the Debian folder
    ds = open_demo("fashion-mnist")
    assert ds.ids == ["test/0", "test/1", "test/2", "test/3"]
    np.testing.assert_array_equal(ds.native_array(), images)
    assert ds.labels.tolist() == labels.tolist()
    assert len(open_demo("fashion-mnist-all")) == 7


def test_fashion_missing_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("CLUSTERLENS_DATA_ROOT", raising=False)
    monkeypatch.setattr(demos, "FASHION_DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(demos, "DEFAULT_DATA_ROOT", tmp_path / "none2")
    ok, why = DEMOS.get("fashion-mnist").available()
    assert not ok
    assert why.startswith(f"Fashion-MNIST files not found in {tmp_path / 'none'}: `apt-get install "
                          "dataset-fashion-mnist` or pass a torchvision root")
    with pytest.raises(DataError, match="demo 'fashion-mnist' is not available"):
        open_demo("fashion-mnist")


def test_bad_idx_file(tmp_path):
    good = write_idx(tmp_path / "x.gz", np.zeros((2, 3, 3), np.uint8))
    assert read_idx(good, 3).shape == (2, 3, 3)
    short = tmp_path / "short"
    short.write_bytes(good.read_bytes()[:10])
    with pytest.raises(DataError, match="not a valid IDX file"):
        read_idx(short, 3)
    with pytest.raises(DataError, match="not a valid IDX file"):
        read_idx(write_idx(tmp_path / "labels", np.zeros(4, np.uint8)), 3)   # a label file as images


def test_lfw():
    ds = open_demo("lfw")
    assert len(ds) == 200 and ds.native_array().shape == (200, 25, 25)
    assert ds.class_names == ["face", "non-face"]
    assert np.bincount(ds.labels).tolist() == [100, 100] and ds.labels[:100].max() == 0
    assert ds.native_array().dtype == np.uint8 and ds.native_array().max() > 200


def test_unknown_demo_lists_names():
    with pytest.raises(UnknownNameError, match="choose one of: digits, fashion-mnist, .*lfw"):
        open_demo("mnist")

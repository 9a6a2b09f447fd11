from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
import torchvision.datasets.mnist as tv_mnist

from core.data.tv import open_torchvision, parse
from core.errors import DataError, UnknownNameError
from tests.data.idx import write_mnist_like


def test_parse():
    assert parse("torchvision:mnist") == ("mnist", "test")
    assert parse("torchvision:CIFAR10:train") == ("cifar10", "train")
    with pytest.raises(UnknownNameError, match="choose one of: torchvision:mnist, torchvision:cifar10"):
        parse("torchvision:imagenet")
    with pytest.raises(UnknownNameError, match="unknown split 'val'"):
        parse("torchvision:stl10:val")


def no_network(*args, **kwargs):
    raise URLError("[Errno -3] Temporary failure in name resolution")


def test_existing_files_used_without_download(tmp_path, monkeypatch):
    images, labels = write_mnist_like(tmp_path / "MNIST" / "raw", 2, 5, gz=False)
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    ds = open_torchvision("torchvision:mnist", root=tmp_path)
    assert ds.name == "torchvision:mnist:test" and ds.ids == [f"test/{i}" for i in range(5)]
    np.testing.assert_array_equal(ds.native_array(), images)
    assert ds.labels.tolist() == labels.tolist() and ds.class_names[0] == "0 - zero"
    assert ds.load(0).mode == "RGB"


def test_download_failure_says_what_to_do(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", lambda *a, **k: calls.append(k) or no_network())
    monkeypatch.setenv("CLUSTERLENS_DATA_ROOT", str(tmp_path))
    with pytest.raises(DataError) as e:
        open_torchvision("torchvision:mnist:train")
    msg = str(e.value)
    assert msg.startswith(f"could not download torchvision mnist (train) into {tmp_path}: RuntimeError")
    assert "Temporary failure in name resolution" in msg
    assert f"Put the dataset files under {tmp_path}" in msg and "fashion-mnist" in msg
    assert calls and calls[0]["download_root"] == str(tmp_path / "MNIST" / "raw")


class FakeDownload:
    """Stands in for a torchvision class: no files until asked to download."""

    seen: list[dict] = []

    def __init__(self, root, download, train=None, split=None):
        FakeDownload.seen.append({"root": root, "download": download, "train": train, "split": split})
        if not download:
            raise RuntimeError("Dataset not found or corrupted. You can use download=True to download it")
        self.classes = ["a", "b"]
        if split is not None:                      # STL-10 layout: (N, 3, H, W) and .labels
            self.data = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
            self.labels = np.array([1, 0])
        else:                                      # CIFAR layout: (N, H, W, 3) and .targets list
            self.data = np.full((3, 4, 4, 3), 7, np.uint8)
            self.targets = [0, 1, 1]


def test_download_path_used_when_files_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(tvd, "CIFAR10", type("CIFAR10", (FakeDownload,), {}))
    monkeypatch.setattr(tvd, "STL10", type("STL10", (FakeDownload,), {}))
    FakeDownload.seen = []
    ds = open_torchvision("torchvision:cifar10:train", root=tmp_path)
    assert [s["download"] for s in FakeDownload.seen] == [False, True] and FakeDownload.seen[1]["train"] is True
    assert ds.ids == ["train/0", "train/1", "train/2"] and ds.labels.tolist() == [0, 1, 1]
    assert ds.native_array().shape == (3, 4, 4, 3) and ds.class_names == ["a", "b"]
    stl = open_torchvision("torchvision:stl10", root=tmp_path)
    assert FakeDownload.seen[-1]["split"] == "test"
    assert stl.native_array().shape == (2, 4, 4, 3)       # channels moved last
    assert stl.native_array()[0, 0, 1].tolist() == [1, 17, 33]


def test_torch_tensor_targets_converted(tmp_path, monkeypatch):
    class Tensors(FakeDownload):
        def __init__(self, root, download, train=None):
            self.data, self.targets, self.classes = torch.zeros(2, 5, 5, dtype=torch.uint8), torch.tensor([3, 4]), []

    monkeypatch.setattr(tvd, "MNIST", Tensors)
    ds = open_torchvision("torchvision:mnist", root=tmp_path)
    assert ds.native_array().shape == (2, 5, 5) and ds.labels.dtype == np.int64 and ds.class_names is None

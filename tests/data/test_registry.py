import zipfile

import numpy as np
import pytest

import core.data as data
from core.data import list_datasets, open_dataset
from core.data.folder import FolderDataset
from core.errors import DataError, UnknownNameError
from tests.data.conftest import write_image


def test_public_api_exported():
    assert {"open_dataset", "list_datasets", "open_image", "probe_image", "ImageDataset",
            "SkippedFile", "BadImageError"} <= set(data.__all__)


def test_folder_and_zip_sources(tmp_path, workspace):
    for i in range(3):
        write_image(tmp_path / "imgs" / f"{i}.png", (i, i, i))
    ds = open_dataset(str(tmp_path / "imgs"), workspace=workspace)
    assert isinstance(ds, FolderDataset) and ds.ids == ["0.png", "1.png", "2.png"]
    assert list((workspace / "manifests").glob("*.json"))      # manifest cached in the workspace
    with zipfile.ZipFile(tmp_path / "imgs.ZIP", "w") as zf:
        for i in range(3):
            zf.write(tmp_path / "imgs" / f"{i}.png", f"{i}.png")
    z = open_dataset(str(tmp_path / "imgs.ZIP"), workspace=workspace, limit=2)
    assert z.ids == ["0.png", "1.png"] and z.name == "imgs"
    assert open_dataset(str(tmp_path / "imgs.ZIP"), workspace=workspace).fingerprint == ds.fingerprint


def test_limit_keeps_first_ids_and_changes_fingerprint(workspace):
    full = open_dataset("digits", workspace=workspace)
    head = open_dataset("digits", workspace=workspace, limit=10)
    assert head.ids == full.ids[:10] and head.native_array().shape == (10, 8, 8)
    np.testing.assert_array_equal(head.labels, full.labels[:10])
    assert head.fingerprint != full.fingerprint
    assert head.fingerprint == open_dataset("digits", workspace=workspace, limit=10).fingerprint
    assert open_dataset("digits", workspace=workspace, limit=5000).fingerprint == full.fingerprint
    assert len(full) == 1797                                   # the original is untouched


def test_limit_drops_duplicates_outside_the_head(tmp_path, workspace):
    write_image(tmp_path / "a.png", (1, 1, 1))
    write_image(tmp_path / "b.png", (2, 2, 2))
    (tmp_path / "c.png").write_bytes((tmp_path / "a.png").read_bytes())
    assert open_dataset(str(tmp_path), workspace=workspace).duplicates == [["a.png", "c.png"]]
    assert open_dataset(str(tmp_path), workspace=workspace, limit=2).duplicates == []


def test_unknown_source_messages(tmp_path, workspace):
    with pytest.raises(UnknownNameError) as e:
        open_dataset("digitz", workspace=workspace)
    msg = str(e.value)
    assert "unknown dataset 'digitz'" in msg and "digits, fashion-mnist" in msg and "lfw" in msg
    assert "a folder of images, a .zip file" in msg and "does not exist" not in msg
    with pytest.raises(UnknownNameError, match=r"missing/photos does not exist\. Give a folder"):
        open_dataset(str(tmp_path / "missing" / "photos"), workspace=workspace)
    with pytest.raises(UnknownNameError, match="does not exist"):
        open_dataset(str(tmp_path / "gone.zip"), workspace=workspace)
    single = write_image(tmp_path / "one.png")
    with pytest.raises(DataError, match="is a single file"):
        open_dataset(str(single), workspace=workspace)


def test_torchvision_routed(workspace):
    with pytest.raises(UnknownNameError, match="unknown torchvision dataset 'nope'"):
        open_dataset("torchvision:nope", workspace=workspace)


def test_list_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERLENS_DATA_ROOT", str(tmp_path))
    rows = {r["name"]: r for r in list_datasets()}
    assert list(rows)[:5] == ["digits", "fashion-mnist", "fashion-mnist-train", "fashion-mnist-all", "lfw"]
    assert {"torchvision:mnist", "torchvision:cifar10", "torchvision:stl10"} <= set(rows)
    for r in rows.values():
        assert set(r) == {"name", "description", "size", "available", "why"}
        assert isinstance(r["available"], bool) and (r["why"] == "") == r["available"]
    assert rows["digits"]["size"] == 1797 and rows["digits"]["available"]
    assert rows["fashion-mnist-all"]["size"] == 70_000 and rows["lfw"]["size"] == 200
    assert not rows["torchvision:mnist"]["available"] and str(tmp_path) in rows["torchvision:mnist"]["why"]

"""Checkpoint backbone: round trip, plain torchvision state dicts, and clear errors for bad files."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import ClusterLensError, ParameterError
from core.features import ARCHS, CheckpointError, extract_features, get_backbone, save_backbone_checkpoint
from core.features.extract import l2_normalize
from core.features.preprocess import to_model_input
from tests.features.conftest import ArrayDataset


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHS.get("resnet18").build().eval()


def _direct(model: torch.nn.Module, arr: np.ndarray, size: int) -> np.ndarray:
    """What extraction should give: the same preprocessing, the model called by hand."""
    bb = get_backbone("resnet18")
    x = to_model_input(torch.from_numpy(arr)[..., None], size, bb.mean, bb.std)
    with torch.inference_mode():
        return l2_normalize(model(x).numpy())


def test_round_trip_gives_identical_features(tmp_path: Path, model: torch.nn.Module,
                                             gray_arrays: np.ndarray) -> None:
    path = save_backbone_checkpoint(tmp_path / "bb.pt", "resnet18", {}, model, {"epochs": 3})
    ds = ArrayDataset(gray_arrays)
    f = extract_features(ds, "checkpoint", checkpoint=path, image_size=32, device="cpu")
    np.testing.assert_allclose(f, _direct(model, gray_arrays, 32), atol=1e-5)
    np.testing.assert_array_equal(f, extract_features(ds, "checkpoint", checkpoint=path, image_size=32))
    assert not list(tmp_path.glob(".tmp-*"))   # the atomic write left nothing behind


def test_meta_overrides_preprocessing(tmp_path: Path, model: torch.nn.Module) -> None:
    path = save_backbone_checkpoint(tmp_path / "bb.pt", "resnet18", None, model,
                                    {"image_size": 48, "mean": [0.5] * 3, "std": [0.25] * 3})
    bb = get_backbone("checkpoint", checkpoint=path)
    assert (bb.default_size, bb.dim, bb.mean, bb.std) == (48, 512, (0.5,) * 3, (0.25,) * 3)


def test_plain_torchvision_state_dict_needs_and_uses_arch(tmp_path: Path, gray_arrays: np.ndarray) -> None:
    import torchvision

    torch.manual_seed(1)
    full = torchvision.models.resnet18(weights=None).eval()   # a classifier, like resnet18-*.pth
    path = tmp_path / "resnet18-plain.pth"
    torch.save({f"module.{k}": v for k, v in full.state_dict().items()}, path)   # DataParallel style
    with pytest.raises(ParameterError, match="checkpoint_arch"):
        get_backbone("checkpoint", checkpoint=path)
    f = extract_features(ArrayDataset(gray_arrays), "checkpoint", checkpoint=path, checkpoint_arch="resnet18",
                         image_size=32, device="cpu")
    full.fc = torch.nn.Identity()
    np.testing.assert_allclose(f, _direct(full, gray_arrays, 32), atol=1e-5)


def test_not_a_state_dict(tmp_path: Path) -> None:
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    with pytest.raises(CheckpointError, match="holds a list, not a state dict.*save_backbone_checkpoint"):
        get_backbone("checkpoint", checkpoint=p)
    p = tmp_path / "notes.txt"
    p.write_text("hello, not weights\n")
    with pytest.raises(CheckpointError, match="is not a PyTorch weights file"):
        get_backbone("checkpoint", checkpoint=p)
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps(Path("x")))   # arbitrary objects are refused, never unpickled
    with pytest.raises(CheckpointError):
        get_backbone("checkpoint", checkpoint=p)


def test_wrong_keys_and_shapes(tmp_path: Path, model: torch.nn.Module) -> None:
    p = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, p)
    bb = get_backbone("checkpoint", checkpoint=p, checkpoint_arch="resnet18")
    with pytest.raises(CheckpointError, match="do not fit arch 'resnet18'.*missing keys"):
        bb.build(torch.device("cpu"))
    sd = model.state_dict()
    sd["conv1.weight"] = torch.zeros(8, 3, 7, 7)
    torch.save(sd, p)
    with pytest.raises(CheckpointError, match="shapes differ"):
        get_backbone("checkpoint", checkpoint=p, checkpoint_arch="resnet18").build(torch.device("cpu"))


def test_checkpoint_argument_errors(tmp_path: Path, model: torch.nn.Module) -> None:
    with pytest.raises(ParameterError, match="checkpoint=PATH"):
        get_backbone("checkpoint")
    with pytest.raises(ParameterError, match="does not exist"):
        get_backbone("checkpoint", checkpoint=tmp_path / "missing.pt")
    path = save_backbone_checkpoint(tmp_path / "bb.pt", "resnet18", {}, model)
    with pytest.raises(ParameterError, match="only used with backbone='checkpoint'"):
        get_backbone("pixels", checkpoint=path)
    with pytest.raises(ClusterLensError, match="choose one of"):
        save_backbone_checkpoint(tmp_path / "x.pt", "resnet9000", {}, model)


def test_checkpoint_of_a_plugin_arch_loads_without_importing_it_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gray_arrays: np.ndarray) -> None:
    import core.features.archs as archs

    (tmp_path / "tiny_arch_plugin.py").write_text(
        "import torch\nfrom core.features.archs import ARCHS, ArchSpec\n"
        "ARCHS.add('tiny_test', ArchSpec('tiny_test', 'test', lambda width=4: torch.nn.Sequential(\n"
        "    torch.nn.Conv2d(3, width, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()),\n"
        "    lambda width=4: width, default_size=16))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(archs, "ARCH_PLUGINS", ["tiny_arch_plugin"])
    monkeypatch.setattr(archs.ARCHS, "_items", dict(archs.ARCHS._items))   # undone after the test
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    torch.save({"format": "clusterlens-backbone/1", "arch": "tiny_test", "arch_params": {"width": 6},
                "state_dict": model.state_dict(), "meta": {}}, tmp_path / "tiny.pt")
    assert "tiny_test" not in archs.ARCHS
    f = extract_features(ArrayDataset(gray_arrays), "checkpoint", checkpoint=tmp_path / "tiny.pt")
    assert f.shape == (10, 6)

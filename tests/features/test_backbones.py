"""Backbone registry: the offline EfficientNet-Lite0 really works; torchvision download paths."""
from __future__ import annotations

import os
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from core.errors import ClusterLensError, UnknownNameError
from core.features import extract_features, get_backbone, list_backbones
from core.features.archs import ARCHS
from core.features.extract import resolve_image_size
from core.features.preprocess import pil_to_array, to_model_input
from tests.features.conftest import PILDataset

CPU = torch.device("cpu")


def test_efficientnet_lite0_classifies_chelsea_as_egyptian_cat() -> None:
    bb = get_backbone("efficientnet_lite0")
    model = bb.build(CPU)
    x = to_model_input(torch.from_numpy(np.array(pil_to_array(Image.fromarray(skdata.chelsea()), 224)))[None],
                       224, bb.mean, bb.std)
    with torch.inference_mode():
        logits = model.net(x)          # the ImageNet classifier kept inside the feature module
        feats = model(x)
    assert int(logits.argmax()) == 285   # "Egyptian cat"
    assert feats.shape == (1, 1280)


def test_lite0_features_are_semantic() -> None:
    cat = Image.fromarray(skdata.chelsea())
    w, h = cat.size
    variant = cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((20, 10, w - 30, h - 15))
    ds = PILDataset([cat, variant, Image.fromarray(skdata.rocket())])
    f = extract_features(ds, "efficientnet_lite0", device="cpu")
    assert f.shape == (3, 1280) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert f[0] @ f[1] > f[0] @ f[2] + 0.1


def test_lite0_load_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    get_backbone("efficientnet_lite0").build(CPU)
    assert capsys.readouterr().out == ""


def test_list_backbones_rows() -> None:
    rows = {r["name"]: r for r in list_backbones()}
    assert {"pixels", "efficientnet_lite0", "resnet18", "resnet50", "efficientnet_b0", "convnext_tiny",
            "vit_b_16", "checkpoint"} <= set(rows)
    assert rows["efficientnet_lite0"]["available"] and rows["efficientnet_lite0"]["dim"] == 1280
    assert {"name", "description", "default_size", "dim", "available", "why"} <= set(rows["resnet18"])
    assert list_backbones(workspace="/nonexistent-ws")[-1]["name"] == "checkpoint"   # none trained there


def test_unknown_backbone_lists_names() -> None:
    with pytest.raises(UnknownNameError, match="efficientnet_lite0"):
        get_backbone("resnet9000")


def test_vit_input_is_always_224() -> None:
    ds = PILDataset([Image.new("RGB", (40, 40))])
    assert resolve_image_size(get_backbone("vit_b_16"), ds, 64) == 224


@pytest.fixture
def hub_dir(tmp_path: os.PathLike, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return str(tmp_path)


def test_torchvision_download_failure_says_what_to_do(hub_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*a: object, **k: object) -> None:
        raise URLError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    bb = get_backbone("resnet18")
    ok, why = bb.available()
    assert not ok and "resnet18-f37072fd.pth" in why
    with pytest.raises(ClusterLensError, match="efficientnet_lite0") as e:
        bb.build(CPU)
    assert "resnet18-f37072fd.pth" in str(e.value) and hub_dir in str(e.value)


def test_torchvision_download_success_builds(hub_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    full = torchvision.models.resnet18(weights=None).state_dict()   # includes the fc head
    seen: dict[str, object] = {}

    def fake(url: str, **kw: object) -> dict[str, torch.Tensor]:
        seen.update(url=url, **kw)
        return full

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake)
    model = get_backbone("resnet18").build(CPU)
    assert seen["model_dir"] == os.path.join(hub_dir, "checkpoints") and seen["weights_only"] is True
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 512)
    torch.testing.assert_close(model.conv1.weight, full["conv1.weight"])


def test_torchvision_available_when_cached(hub_dir: str) -> None:
    os.makedirs(os.path.join(hub_dir, "checkpoints"))
    open(os.path.join(hub_dir, "checkpoints", "resnet18-f37072fd.pth"), "wb").close()
    assert get_backbone("resnet18").available()[0]


def test_arch_dims_match_modules() -> None:
    for name in ("resnet18", "efficientnet_lite0"):
        spec = ARCHS.get(name)
        with torch.inference_mode():
            assert spec.build().eval()(torch.zeros(1, 3, 32, 32)).shape == (1, spec.dim())


def test_torchvision_weight_urls_match_torchvision() -> None:
    from torchvision.models import get_model_weights

    from core.features.backbones import TORCHVISION_WEIGHTS

    for arch, url in TORCHVISION_WEIGHTS.items():
        assert get_model_weights(arch).DEFAULT.url == url

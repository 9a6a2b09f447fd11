"""Features page with the foundation backbones: each shows its state; offline it cannot be
started and says to use efficientnet_lite0; once its weights are in the hub cache it extracts."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.features import FeatureCache
from core.features import foundation as fd
from tests.app.helpers import choose_digits, run_until
from tests.features.hubcache import publish

OFFLINE = "no internet: use efficientnet_lite0 (ships offline)"


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(fd, "_probe", {})
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "hub"
    torch.set_num_threads(before)


def test_offline_foundation_backbones_say_so_and_cannot_start(hub_env: Path, app: AppTest) -> None:
    choose_digits(app)
    app.switch_page("pages/features.py").run()
    box = app.selectbox(key="w_backbone")
    assert f"dinov2_vits14 ({OFFLINE})" in box.options and f"siglip_vitb16 ({OFFLINE})" in box.options
    box.select("dinov2_vitb14").run()
    button = app.button(key="w_extract")
    assert button.disabled and button.help == OFFLINE
    why = {r["backbone"]: r["why"] for r in app.dataframe[0].value.to_dict("records")}
    assert why["clip_vitb16"] == OFFLINE


def test_ready_foundation_backbone_extracts(hub_env: Path, app: AppTest, allowed: Path) -> None:
    publish(hub_env, "dinov2_vits14", seed=0, commit="e" * 40)
    choose_digits(app)
    app.switch_page("pages/features.py").run()
    box = app.selectbox(key="w_backbone")
    assert "dinov2_vits14 (ready)" in box.options and f"dinov2_vitb14 ({OFFLINE})" in box.options
    box.select("dinov2_vits14").run()
    app.select_slider(key="w_size").set_value(32).run()   # rounded to 28, DINOv2's 14-px patch multiple
    app.button(key="w_extract").click().run()
    run_until(app, lambda a: any("Features ready" in s.value for s in a.success), timeout=600)
    cache = FeatureCache(allowed.parent / "workspace" / "features")
    (entry,) = [p for p in cache.root.iterdir() if not p.name.startswith(".")]
    meta = cache.meta(entry.name)["meta"]
    assert meta["backbone"] == "dinov2_vits14" and meta["image_size"] == 28
    assert meta["weights"].startswith(f"hf:timm/vit_small_patch14_dinov2.lvd142m@{'e' * 40}:sha256:")
    assert cache.get(entry.name).shape == (1797, 384)

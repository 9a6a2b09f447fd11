"""train_backbone: features change, checkpoints reload exactly, stops keep a usable checkpoint,
clear errors for bad input, and the workspace index of trained backbones."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import core.ssl.arch  # noqa: F401  (registers convnet_small before checkpoints load)
from core.data.arrays import make_array_dataset
from core.errors import ParameterError, TrainingError, UnknownNameError
from core.features.archs import ARCHS
from core.features.checkpoint import save_backbone_checkpoint
from core.features.extract import extract_features
from core.ssl.data import embed, load_images
from core.ssl.method import Method
from core.ssl.registry import list_trained_backbones, trained_backbone_path, unique_name
from core.ssl.train import TrainingStopped, train_backbone, trained_model

FAST = dict(epochs=2, batch_size=16, seed=0, device="cpu")


@pytest.fixture(scope="module")
def ds():
    """48 grey 16x16 images: horizontal bars, vertical bars, blobs (+ noise)."""
    rng = np.random.default_rng(0)
    imgs = np.zeros((48, 16, 16), np.float32)
    for i in range(48):
        k, o = i % 3, rng.integers(0, 4)
        if k == 0:
            imgs[i, o::4, :] = 1
        elif k == 1:
            imgs[i, :, o::4] = 1
        else:
            imgs[i, 4 + o: 10 + o, 4: 10] = 1
    imgs = np.clip(imgs * 200 + rng.normal(0, 20, imgs.shape), 0, 255).astype(np.uint8)
    return make_array_dataset("bars", imgs, np.arange(48) % 3, None, [("all", 48)])


def _features(path, ds):
    return extract_features(ds, "checkpoint", checkpoint=path, batch_size=32, device="cpu")


def test_training_changes_features_and_checkpoint_reloads_identically(ds, tmp_path):
    seen = []
    res = train_backbone(ds, "simclr", workspace=tmp_path, progress=lambda e, n, r: seen.append((e, n, r)), **FAST)
    assert [(e, n) for e, n, _ in seen] == [(1, 2), (2, 2)]
    assert len(res.history) == 2
    assert {"loss", "seconds", "images_per_s"} <= set(res.history[0])
    assert res.name == "simclr-convnet_small-bars" and res.path.is_file()

    after = _features(res.path, ds)
    # the same weights, embedded in memory with the trainer's preprocessing
    model = trained_model(res.path)
    direct = embed(model, load_images(ds, 16), ARCHS.get("convnet_small").mean, ARCHS.get("convnet_small").std,
                   device=torch.device("cpu"))
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    np.testing.assert_allclose(after, direct, atol=1e-6)
    np.testing.assert_array_equal(after, _features(res.path, ds))     # reload twice: identical

    # features of the untrained (epoch-0) network, same seed: training moved them
    stopped = train_backbone(ds, "simclr", workspace=tmp_path, **{**FAST, "epochs": 1, "lr": 0.0})
    assert np.abs(_features(stopped.path, ds) - after).max() > 1e-3


def test_same_seed_same_weights(ds, tmp_path):
    a = train_backbone(ds, "rotation", workspace=tmp_path, **{**FAST, "epochs": 1})
    b = train_backbone(ds, "rotation", workspace=tmp_path, **{**FAST, "epochs": 1})
    assert b.name == a.name + "-2"
    np.testing.assert_array_equal(_features(a.path, ds), _features(b.path, ds))


def test_interrupted_run_leaves_last_finished_epoch_usable(ds, tmp_path):
    done = []
    res = train_backbone(ds, "rotation", workspace=tmp_path, progress=lambda e, n, r: done.append(e),
                         should_stop=lambda: bool(done), **{**FAST, "epochs": 5})
    assert len(res.history) == 1 and done == [1]
    ck = torch.load(res.path, weights_only=True)
    assert ck["meta"]["epochs"] == 1 and ck["arch"] == "convnet_small"
    assert _features(res.path, ds).shape == (48, 256)
    assert list_trained_backbones(tmp_path)[0]["epochs"] == 1
    assert not list((tmp_path / "backbones").glob(".tmp-*"))


def test_stop_before_first_epoch_says_nothing_was_saved(ds, tmp_path):
    with pytest.raises(TrainingStopped, match="no checkpoint"):
        train_backbone(ds, "simclr", workspace=tmp_path, should_stop=lambda: True, **FAST)


def test_fewer_images_than_batch_size(ds, tmp_path):
    with pytest.raises(ParameterError, match=r"has 48 images, fewer than batch_size=64; use batch_size <= 48"):
        train_backbone(ds, "simclr", workspace=tmp_path, **{**FAST, "batch_size": 64})


def test_a_single_image_and_a_built_in_name_are_refused_before_any_work(ds, tmp_path):
    from core.data.arrays import make_array_dataset

    one = make_array_dataset("one", np.zeros((1, 8, 8), np.uint8), None, None, [("all", 1)])
    with pytest.raises(ParameterError, match=r"has 1 image\(s\); training needs at least 2"):
        train_backbone(one, "simclr", workspace=tmp_path, **{**FAST, "batch_size": 2})
    with pytest.raises(ParameterError, match=r"name 'Pixels' is a built-in backbone's"):
        train_backbone(ds, "simclr", workspace=tmp_path, name="Pixels", **FAST)
    assert not (tmp_path / "backbones").exists() or not any((tmp_path / "backbones").glob("*.pt"))


def test_init_checkpoint_of_another_architecture(ds, tmp_path):
    other = save_backbone_checkpoint(tmp_path / "other.pt", "convnet_small", {"width": 8},
                                     ARCHS.get("convnet_small").build(width=8), {"image_size": 16})
    with pytest.raises(ParameterError, match=r"holds a 'convnet_small' backbone but arch='resnet18_small'"):
        train_backbone(ds, "simclr", workspace=tmp_path, arch="resnet18_small", init_checkpoint=other, **FAST)
    # a checkpoint whose tensors do not fit the arch it claims
    bad = tmp_path / "bad.pt"
    torch.save({"format": "clusterlens-backbone/1", "arch": "convnet_small", "arch_params": {},
                "state_dict": ARCHS.get("convnet_small").build(width=8).state_dict(), "meta": {}}, bad)
    with pytest.raises(ParameterError, match="init_checkpoint does not fit"):
        train_backbone(ds, "simclr", workspace=tmp_path, init_checkpoint=bad, **FAST)


def test_init_from_checkpoint_with_other_params_keeps_them(ds, tmp_path):
    small = save_backbone_checkpoint(tmp_path / "w8.pt", "convnet_small", {"width": 8},
                                     ARCHS.get("convnet_small").build(width=8), {"image_size": 16})
    res = train_backbone(ds, "rotation", workspace=tmp_path, init_checkpoint=small, **{**FAST, "epochs": 1})
    assert _features(res.path, ds).shape == (48, 64)


def test_metric_refines_from_registered_name_and_needs_init(ds, tmp_path):
    with pytest.raises(ParameterError, match="init_checkpoint"):
        train_backbone(ds, "metric", workspace=tmp_path, **FAST)
    base = train_backbone(ds, "simclr", workspace=tmp_path, **{**FAST, "epochs": 1})
    res = train_backbone(ds, "metric", workspace=tmp_path, init_checkpoint=base.name, n_clusters=3, **FAST)
    assert res.history[0]["pseudo_clusters"] == 3
    assert np.isfinite([r["loss"] for r in res.history]).all()
    res2 = train_backbone(ds, "metric", workspace=tmp_path, init_checkpoint=base.path, n_clusters=3,
                          metric_loss="contrastive", **{**FAST, "epochs": 1})
    assert res2.name == "metric-convnet_small-bars-2"


def test_nan_loss_is_a_clear_error(ds, tmp_path, monkeypatch):
    from core.ssl.simclr import SimCLR

    def nan_loss(self, backbone, head, x, *a):
        return backbone(x).sum() * float("nan")

    monkeypatch.setattr(SimCLR, "loss", nan_loss)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1.*Lower lr"):
        train_backbone(ds, "simclr", workspace=tmp_path, **FAST)
    assert issubclass(SimCLR, Method)


def test_unknown_method_lists_methods(ds, tmp_path):
    with pytest.raises(UnknownNameError, match="rotation, simclr, metric"):
        train_backbone(ds, "byol", workspace=tmp_path, **FAST)


def test_registry_listing_dedup_and_lookup(ds, tmp_path):
    assert list_trained_backbones(tmp_path) == []
    assert unique_name(tmp_path, "SimCLR convnet/Fashion MNIST") == "simclr-convnet-fashion-mnist"
    a = train_backbone(ds, "rotation", workspace=tmp_path, **{**FAST, "epochs": 1})
    b = train_backbone(ds, "rotation", workspace=tmp_path, **{**FAST, "epochs": 1})
    c = train_backbone(ds, "rotation", workspace=tmp_path, name="mine", **{**FAST, "epochs": 1})
    rows = list_trained_backbones(tmp_path)
    assert [r["name"] for r in rows] == [a.name, a.name + "-2", "mine"] and b.name == a.name + "-2"
    assert {"name", "method", "arch", "dataset", "epochs", "path", "created"} <= set(rows[0])
    assert rows[0]["method"] == "rotation" and rows[0]["dataset"] == "bars" and rows[0]["arch"] == "convnet_small"
    assert trained_backbone_path(tmp_path, "mine") == c.path.resolve()
    with pytest.raises(UnknownNameError, match=rf"available: {a.name}, {a.name}-2, mine"):
        trained_backbone_path(tmp_path, "nope")
    c.path.unlink()   # a deleted checkpoint is no longer listed
    assert [r["name"] for r in list_trained_backbones(tmp_path)] == [a.name, a.name + "-2"]
    assert json.loads((tmp_path / "backbones" / "index.json").read_text())["backbones"]


def test_simclr_views_auto_by_image_size():
    """"auto" uses the gentle view (no mirror) up to GENTLE_MAX px, the mild one (mirror, crops of
    70-100 % of the area) up to MILD_MAX px, and SimCLR's standard one (20 %-area crops) above."""
    from core.ssl.method import MethodConfig
    from core.ssl.simclr import GENTLE_MAX, MILD_MAX, SimCLR, auto_augment

    def shares(method, side):
        """(share of views still left-heavy, share of views cutting the object at the border)."""
        x = torch.zeros(64, 3, side, side)
        x[..., side // 8: -side // 8, 1: side // 3] = 1.0     # a bar on the left
        v = method.view(x, torch.Generator().manual_seed(0))
        assert v.shape == x.shape and 0 <= v.min() and v.max() <= 1
        left = (v[..., : side // 2].sum((1, 2, 3)) > v[..., side // 2:].sum((1, 2, 3))).float().mean()
        x = torch.zeros(64, 3, side, side)
        x[..., 3 * side // 8: 5 * side // 8, 3 * side // 8: side // 2] = 1.0   # a small central object
        v = method.view(x, torch.Generator().manual_seed(0))
        rim = torch.cat([v[..., 0, :], v[..., -1, :], v[..., 0], v[..., -1]], -1).amax((1, 2))
        lit = rim - v.amin((1, 2, 3))      # jitter lifts the background evenly: compare with it
        return float(left), float((lit > 0.05).float().mean())

    assert [auto_augment(s) for s in (8, GENTLE_MAX, GENTLE_MAX + 1, 28, MILD_MAX, MILD_MAX + 1)] == \
        ["gentle", "gentle", "mild", "mild", "mild", "standard"]
    auto = SimCLR(MethodConfig())
    assert shares(auto, GENTLE_MAX)[0] == 1.0                  # gentle: never mirrored
    left, cut = shares(auto, 28)                               # mild: mirrored, never cut
    assert left < 0.8 and cut == 0.0
    left, cut = shares(auto, 64)                               # standard: mirrored, some cut
    assert left < 0.8 and cut > 0.1
    assert shares(SimCLR(MethodConfig(augment="standard")), GENTLE_MAX)[0] < 0.8
    assert shares(SimCLR(MethodConfig(augment="gentle")), 32)[0] == 1.0
    assert shares(SimCLR(MethodConfig(augment="mild")), 64)[1] == 0.0
    with pytest.raises(ParameterError, match="auto, standard, gentle, mild"):
        SimCLR(MethodConfig(augment="flips"))
    with pytest.raises(ParameterError, match="auto, backbone, projection"):
        SimCLR(MethodConfig(feature="head"))


@pytest.fixture(scope="module")
def ds28(ds):
    """The bars at 28 px (nearest-neighbour upscale + crop): the size "auto" trains with mild views."""
    imgs = ds.native_array()[..., 0] if ds.native_array().ndim == 4 else ds.native_array()
    big = np.repeat(np.repeat(imgs, 2, axis=1), 2, axis=2)[:, 2:30, 2:30]
    return make_array_dataset("bars28", np.ascontiguousarray(big), np.arange(48) % 3, None, [("all", 48)])


def test_simclr_feature_projection_saves_backbone_and_head(ds, ds28, tmp_path):
    """feature="projection" saves backbone + projection head (128-d output) and the checkpoint
    reloads to exactly that function; "auto" (28 px mild views, 16 px digits) saves the backbone."""
    res = train_backbone(ds28, "simclr", workspace=tmp_path, feature="projection", **FAST)
    ck = torch.load(res.path, weights_only=True)
    assert ck["arch_params"] == {"proj_dim": 128} and ck["meta"]["feature"] == "projection"
    assert ck["meta"]["image_size"] == 28
    f = _features(res.path, ds28)
    assert f.shape == (48, 128)
    model = trained_model(res.path)
    x = load_images(ds28, 28)
    spec = ARCHS.get("convnet_small")
    direct = embed(model, x, spec.mean, spec.std, device=torch.device("cpu"))
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    np.testing.assert_allclose(f, direct, atol=1e-6)
    # the projection is the head applied to the backbone's output, not a copy of it
    with torch.no_grad():
        inner = embed(model.encoder, x, spec.mean, spec.std, device=torch.device("cpu"))
        np.testing.assert_allclose(model.proj(torch.from_numpy(inner)).numpy(),
                                   embed(model, x, spec.mean, spec.std, device=torch.device("cpu")),
                                   rtol=1e-4, atol=1e-5)

    plain = train_backbone(ds28, "simclr", workspace=tmp_path, **{**FAST, "epochs": 1})
    ckp = torch.load(plain.path, weights_only=True)
    assert ckp["arch_params"] == {} and ckp["meta"]["feature"] == "backbone" and ckp["meta"]["augment"] == "auto"
    assert _features(plain.path, ds28).shape == (48, 256)
    tiny = train_backbone(ds, "simclr", workspace=tmp_path, **{**FAST, "epochs": 1})
    assert torch.load(tiny.path, weights_only=True)["arch_params"] == {}
    assert _features(tiny.path, ds).shape == (48, 256)

    # refining a projected backbone keeps its layout (no second head is wrapped around it)
    ref = train_backbone(ds28, "metric", workspace=tmp_path, init_checkpoint=res.name, n_clusters=3,
                         **{**FAST, "epochs": 1})
    assert torch.load(ref.path, weights_only=True)["arch_params"] == {"proj_dim": 128}
    assert _features(ref.path, ds28).shape == (48, 128)
    again = train_backbone(ds28, "simclr", workspace=tmp_path, init_checkpoint=res.path, feature="projection",
                           **{**FAST, "epochs": 1})
    assert torch.load(again.path, weights_only=True)["arch_params"] == {"proj_dim": 128}


def test_default_epochs_scale_with_dataset_size(ds, tmp_path, monkeypatch):
    import core.ssl.train as train_mod
    from core.ssl.train import MIN_EPOCHS, default_epochs

    assert default_epochs(1797, 128) == 40            # the digits: 14 steps an epoch
    assert default_epochs(10_000, 128) == MIN_EPOCHS  # big sets: at least as many epochs as before
    assert default_epochs(100, 128) >= MIN_EPOCHS     # fewer images than a batch: no division by 0
    monkeypatch.setattr(train_mod, "DEFAULT_STEPS", 6)   # keep the run short: 3 epochs of 2 steps
    monkeypatch.setattr(train_mod, "MIN_EPOCHS", 2)
    seen = []
    train_backbone(ds, "rotation", workspace=tmp_path, epochs=None, batch_size=24, seed=0, device="cpu",
                   progress=lambda e, n, r: seen.append(n))
    assert seen[-1] == default_epochs(48, 24) == 3 and len(seen) == 3


def test_cli_train_backbone_offers_every_view_and_feature_with_the_engine_defaults():
    import inspect

    from core.cli import build_parser
    from core.ssl.simclr import AUGMENTS, FEATURES

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train-backbone"]
    opts = {a.dest: a for a in sub._actions}
    assert list(opts["augment"].choices) == list(AUGMENTS)
    assert list(opts["feature"].choices) == list(FEATURES)
    engine = inspect.signature(train_backbone).parameters
    for name in ("augment", "feature", "epochs", "batch_size", "temperature", "lr", "seed"):
        assert opts[name].default == engine[name].default, name

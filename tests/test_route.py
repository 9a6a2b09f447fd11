"""The default route (core.route): candidates from the data, the choice by cross-route agreement,
a person's fixed choices winning, and ground truth never read."""
from __future__ import annotations

import json

import numpy as np
import pytest

import core.pipeline
from core.cli import main
from core.data.arrays import make_array_dataset
from core.route import Route, agreement, candidate_routes, choose_route


class NoPeeking:
    """Stands in for ground truth: any use of it fails the test."""

    def __getattr__(self, name):  # noqa: ANN001, ANN204
        raise AssertionError("the route read the ground truth")

    def __len__(self) -> int:
        raise AssertionError("the route read the ground truth")


def dataset(n: int = 120, side: int = 8):
    ds = make_array_dataset("t", np.random.default_rng(0).integers(0, 255, (n, side, side), dtype=np.uint8),
                            None, None, [("x", n)])
    ds.labels = NoPeeking()
    return ds


def test_agreement_is_each_partition_mean_nmi_with_the_others() -> None:
    a = np.repeat([0, 1, 2], 9)
    b = np.repeat([2, 0, 1], 9)                     # the same partition, renamed
    c = np.tile([0, 1, 2], 9)                        # independent of a: each group holds 3 of each
    got = agreement([a, b, c])
    assert got[0] == pytest.approx((1.0 + 0.0) / 2, abs=1e-9)
    assert got[1] == pytest.approx(got[0]) and got[2] == pytest.approx(0.0, abs=1e-9)
    assert agreement([a]).tolist() == [0.0]


def test_candidates_follow_the_data_and_fixed_choices_win() -> None:
    small = dataset()
    assert candidate_routes(small) == [Route("pixels", None, "none"), Route("pixels", None, "umap:10"),
                                       Route("efficientnet_lite0", 64, "none"),
                                       Route("efficientnet_lite0", 64, "umap:10"),
                                       Route("pixels", None, "umap:10", ("efficientnet_lite0@64",))]
    joined = candidate_routes(small)[-1]
    assert joined.name == "pixels → umap:10 + efficientnet_lite0@64 → umap:10"
    assert joined.parts == (Route("pixels", None, "umap:10"), Route("efficientnet_lite0", 64, "umap:10"))
    assert candidate_routes(small, backbone="pixels", reduce="none") == [Route("pixels", None, "none")]
    assert candidate_routes(small, reduce="pca:20") == [Route("pixels", None, "pca:20"),
                                                        Route("efficientnet_lite0", 64, "pca:20")]
    assert candidate_routes(small, backbone="efficientnet_lite0", image_size=128) == [
        Route("efficientnet_lite0", 128, "none"), Route("efficientnet_lite0", 128, "umap:10")]
    photos = dataset(n=60, side=160)                 # big images, few of them: the CNN's own size too
    assert Route("efficientnet_lite0", 224, "none") in candidate_routes(photos)
    assert candidate_routes(photos)[-1].join == ("efficientnet_lite0@64", "efficientnet_lite0@224")
    assert [r.reduce for r in candidate_routes(dataset(n=20))] == ["none", "none"]   # too few for UMAP


def test_the_route_the_others_agree_with_is_chosen_and_truth_is_never_read(monkeypatch, tmp_path) -> None:
    """Three spaces of the same 90 samples: two show the same three groups (one noisier), the
    third is noise. The choice is a space with the groups; the noise route comes last."""
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1, 2], 30)
    centres = rng.normal(0, 10, (3, 5))
    spaces = {"pixels": centres[groups] + rng.normal(0, 0.5, (90, 5)),
              "efficientnet_lite0": centres[groups] + rng.normal(0, 3.0, (90, 5)),
              "noise": rng.normal(0, 1, (90, 5))}

    def fake_features(ds, cfg, workspace, **kw):  # noqa: ANN001, ANN202
        return spaces[cfg.backbone].astype(np.float32), True, f"key-{cfg.backbone}", tmp_path

    monkeypatch.setattr(core.pipeline, "compute_features", fake_features)
    monkeypatch.setattr("core.route.candidate_routes", lambda ds, **kw: [
        Route("noise", None, "none"), Route("efficientnet_lite0", None, "none"), Route("pixels", None, "none")])
    choice = choose_route(dataset(n=90), 3, tmp_path, seed=0)
    assert choice.chosen.backbone in ("pixels", "efficientnet_lite0")
    assert [e.route.backbone for e in choice.evidence][-1] == "noise"
    # the two group spaces agree fully with each other and not at all with the noise: (1 + 0) / 2
    assert choice.evidence[0].agreement > 0.45 > 0.1 > choice.evidence[-1].agreement
    assert choice.why.startswith(f"{choice.chosen.name}: its k-means clusters agree most with the other 2")
    d = choice.as_dict()
    assert d["chosen_name"] == choice.chosen.name and len(d["candidates"]) == 3
    again = choose_route(dataset(n=90), 3, tmp_path, seed=0)
    assert again.chosen == choice.chosen and [e.agreement for e in again.evidence] == [
        e.agreement for e in choice.evidence]                                     # seeded


def test_cli_run_with_no_flags_chooses_and_shows_the_route(tmp_path, capsys) -> None:
    assert main(["run", "--data", "digits", "--limit", "300", "--k", "10", "--map", "none",
                 "--workspace", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    route = summary["route"]
    names = [c["name"] for c in route["candidates"]]
    assert sorted(names) == sorted(["pixels", "pixels → umap:10", "efficientnet_lite0@64",
                                    "efficientnet_lite0@64 → umap:10",
                                    "pixels → umap:10 + efficientnet_lite0@64 → umap:10"])
    assert route["chosen_name"] == names[0]
    agree = [c["agreement"] for c in route["candidates"]]
    assert agree == sorted(agree, reverse=True) and all(0 < a <= 1 for a in agree)
    # a person's fixed choice wins: no route search at all
    assert main(["run", "--data", "digits", "--limit", "300", "--k", "10", "--map", "none", "--backbone",
                 "pixels", "--reduce", "none", "--workspace", str(tmp_path), "--json"]) == 0
    assert "route" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_with_a_fixed_backbone_the_other_spaces_still_vote(monkeypatch, tmp_path) -> None:
    """Two routes on one backbone have equal mean NMI with each other: the automatic candidates
    vote too, so the one that agrees with the other spaces wins and only eligible routes are listed."""
    rng = np.random.default_rng(2)
    groups = np.repeat([0, 1, 2], 30)
    centres = rng.normal(0, 10, (3, 5))
    clean = lambda noise: centres[groups] + rng.normal(0, noise, (90, 5))  # noqa: E731
    spaces = {("pixels", "none"): rng.normal(0, 1, (90, 5)), ("pixels", "umap:10"): clean(0.5),
              ("cnn", "none"): clean(1.0), ("cnn", "umap:10"): clean(2.0)}

    def fake_features(ds, cfg, workspace, **kw):  # noqa: ANN001, ANN202
        return np.zeros((90, 1), np.float32), True, cfg.backbone, tmp_path

    def fake_space(feats, cfg, **kw):  # noqa: ANN001, ANN202
        return spaces[(kw["feature_key"], cfg.reduce)]

    def fake_candidates(ds, *, backbone="auto", image_size=None, reduce="auto", device="auto"):  # noqa: ANN001, ANN202
        names = ["pixels", "cnn"] if backbone == "auto" else [backbone]
        return [Route(b, None, r) for b in names for r in (("none", "umap:10") if reduce == "auto" else (reduce,))]

    monkeypatch.setattr(core.pipeline, "compute_features", fake_features)
    monkeypatch.setattr(core.pipeline, "clustering_space", fake_space)
    monkeypatch.setattr("core.route.candidate_routes", fake_candidates)
    choice = choose_route(dataset(n=90), 3, tmp_path, backbone="pixels")
    assert choice.chosen == Route("pixels", None, "umap:10")
    assert [e.route for e in choice.evidence] == [Route("pixels", None, "umap:10"), Route("pixels", None, "none")]
    assert "agree most with the other 3 routes'" in choice.why
    only = choose_route(dataset(n=90), 3, tmp_path, backbone="pixels", reduce="none")
    assert only.chosen == Route("pixels", None, "none") and only.as_dict()["candidates"][0]["agreement"] is None


def test_a_joined_route_wins_when_each_space_sees_only_part_of_the_groups(monkeypatch, tmp_path) -> None:
    """Four groups; one space tells 0 from 1 but not 2 from 3, the other the reverse. Side by side
    they tell all four apart, and that partition is the one the single spaces both confirm."""
    rng = np.random.default_rng(3)
    g = np.repeat([0, 1, 2, 3], 30)
    a = np.array([[0, 0], [12, 0], [0, 12], [0, 12]])[g] + rng.normal(0, 1, (120, 2))   # 2 and 3 as one
    b = np.array([[0, 0], [0, 0], [12, 0], [0, 12]])[g] + rng.normal(0, 1, (120, 2))    # 0 and 1 as one
    spaces = {"pixels": a, "cnn": b}

    def fake_features(ds, cfg, workspace, **kw):  # noqa: ANN001, ANN202
        return spaces[cfg.backbone].astype(np.float32), True, cfg.backbone, tmp_path

    monkeypatch.setattr(core.pipeline, "compute_features", fake_features)
    monkeypatch.setattr(core.pipeline, "clustering_space", lambda feats, cfg, **kw: feats)
    monkeypatch.setattr("core.route.candidate_routes", lambda ds, **kw: [
        Route("pixels", None, "umap:10"), Route("cnn", None, "umap:10"), Route("pixels", None, "umap:10", ("cnn",))])
    choice = choose_route(dataset(n=120), 4, tmp_path, seed=0)
    assert choice.chosen == Route("pixels", None, "umap:10", ("cnn",))
    assert choice.as_dict()["chosen"]["join"] == ("cnn",)


def test_a_cached_foundation_backbone_is_a_candidate_where_it_fits_the_time(monkeypatch) -> None:
    """Weights already in the hub cache: a space like any other (joined too), on a CPU only for
    few images; never when the person fixed a backbone or an image size. Nothing is downloaded."""
    import core.features.backbones as bbs
    from core.route import FOUNDATION_CPU_MAX_IMAGES

    monkeypatch.setattr(bbs, "ready_foundation_backbones", lambda: ["dinov2_vits14"])
    few = candidate_routes(dataset(n=100), device="cpu")
    assert Route("dinov2_vits14", None, "none") in few and Route("dinov2_vits14", None, "umap:10") in few
    assert few[-1].join == ("efficientnet_lite0@64", "dinov2_vits14")
    many = dataset(n=FOUNDATION_CPU_MAX_IMAGES + 1)
    assert all(r.backbone != "dinov2_vits14" for r in candidate_routes(many, device="cpu"))
    monkeypatch.setattr("core.device.torch.cuda.is_available", lambda: True)
    assert Route("dinov2_vits14", None, "none") in candidate_routes(many, device="auto")   # a GPU: any count
    assert all("dinov2" not in r.name for r in candidate_routes(dataset(n=100), image_size=96, device="cpu"))

"""Foundation backbones (DINOv2, CLIP, SigLIP through timm), tested offline through the real loading code.

No weights can be downloaded here, so each architecture is built by timm with random weights and
written in the published format (timm's own ``save_for_hf``: ``config.json`` + ``model.safetensors``)
into a temporary Hugging Face hub cache laid out as huggingface_hub lays it out
(``models--timm--<arch>.<tag>/{refs/main, snapshots/<commit>/, blobs/<sha256>}``), which our code
then finds through ``HF_HUB_CACHE`` with ``HF_HUB_OFFLINE=1``. The download is replaced by a fake
``huggingface_hub.hf_hub_download`` that writes the same layout.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from core.errors import ClusterLensError
from core.features import extract_features, feature_key, feature_key_parts, list_backbones
from core.features import foundation as fd
from core.features.backbones import FOUNDATION_BACKBONES, ready_foundation_backbones
from core.features.checkpoint import file_sha256
from core.features.extract import resolve_image_size
from tests.features.conftest import ArrayDataset, PILDataset
from tests.features.hubcache import hub, publish

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
EXPECTED = {   # name -> (timm repo, output dim, patch, what the embedding is)
    "dinov2_vits14": ("timm/vit_small_patch14_dinov2.lvd142m", 384, 14, "cls"),
    "dinov2_vits14_reg": ("timm/vit_small_patch14_reg4_dinov2.lvd142m", 384, 14, "cls"),
    "dinov2_vitb14": ("timm/vit_base_patch14_dinov2.lvd142m", 768, 14, "cls"),
    "dinov2_vitb14_reg": ("timm/vit_base_patch14_reg4_dinov2.lvd142m", 768, 14, "cls"),
    "clip_vitb16": ("timm/vit_base_patch16_clip_224.openai", 512, 16, "projected cls"),
    "siglip_vitb16": ("timm/vit_base_patch16_siglip_224.webli", 768, 16, "map"),
}


class Published:
    """A module-wide hub cache; each model is written once, when a test first needs it
    (all six: about 1.6 GB of fp32 weights)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    def ensure(self, *names: str) -> Path:
        for name in names or FOUNDATION_BACKBONES:
            i = FOUNDATION_BACKBONES.index(name)
            if not (self.cache / f"models--{hub(name).repo_id.replace('/', '--')}").is_dir():
                publish(self.cache, name, seed=i, commit=f"{i + 1:040x}")
        return self.cache


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    pub = Published(tmp_path_factory.mktemp("hf") / "hub")
    yield pub
    shutil.rmtree(pub.cache, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Offline, an empty cache by default, no remembered probe, and no real download possible."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(fd, "_probe", {})
    import huggingface_hub

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("a test reached the real hf_hub_download")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch, published: Published) -> Published:
    """HF_HUB_CACHE = the module's cache (models published on demand with ``use.ensure(...)``)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(published.cache))
    return published


def test_registry_declares_timm_published_preprocessing() -> None:
    assert FOUNDATION_BACKBONES == list(EXPECTED)
    for name, (repo, dim, patch, _) in EXPECTED.items():
        bb = hub(name)
        cfg = timm.get_pretrained_cfg(f"{bb.arch}.{bb.tag}")
        assert (bb.repo_id, bb.dim, bb.patch_size) == (repo, dim, patch) and cfg.hf_hub_id == repo
        assert bb.mean == tuple(cfg.mean) and bb.std == tuple(cfg.std)
        assert bb.interpolation == cfg.interpolation == "bicubic"
        assert bb.default_size == 224 and bb.default_size % patch == 0 and not bb.keeps_gray
        if name.startswith(("clip", "siglip")):   # trained at 224; DINOv2's timm cfg says 518 (its last stage)
            assert cfg.input_size[-1] == 224
    assert hub("clip_vitb16").mean == (0.48145466, 0.4578275, 0.40821073)
    assert hub("siglip_vitb16").std == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_published_files_load_through_our_path(use: Published, name: str) -> None:
    use.ensure(name)
    repo, dim, patch, pooled = EXPECTED[name]
    bb = hub(name)
    assert bb.available() == (True, "ready")
    files = bb.cached()
    assert files is not None and files.commit == f"{FOUNDATION_BACKBONES.index(name) + 1:040x}"
    model = bb.build(CPU)
    assert isinstance(model, fd.FoundationFeatures) and not model.training
    # every published tensor was loaded, under its own name and shape
    from safetensors.torch import load_file

    saved = load_file(files.weights)
    loaded = model.model.state_dict()
    assert set(saved) == set(loaded)
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    n_params = sum(v.numel() for v in saved.values())
    assert abs(n_params / 1e6 - bb.params_m) < 0.1
    assert abs(os.path.getsize(files.weights) / 1e6 - bb.download_mb) < 1.0   # what "downloads N MB" says
    # the embedding the model card recommends, at a size that is not the checkpoint's own
    x = torch.randn(2, 3, 2 * patch, 3 * patch)
    with torch.inference_mode():
        out = model(x)
        tokens = model.model.forward_features(x)
    assert out.shape == (2, dim) and out.dtype == torch.float32 and model.precision == "float32"
    if pooled == "cls":
        ref = tokens[:, 0]
    elif pooled == "projected cls":
        assert model.model.head.weight.shape == (512, 768)
        ref = model.model.head(tokens[:, 0])
    else:
        assert model.model.global_pool == "map"
        ref = model.model.attn_pool(tokens)
    torch.testing.assert_close(out, ref)
    sha = file_sha256(files.weights)
    assert bb.weights_id() == f"hf:{repo}@{files.commit}:sha256:{sha}"


@pytest.fixture
def model_inputs(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Every batch the foundation module receives (random-init ViTs give nearly input-independent
    CLS tokens, so what reaches the model is checked directly)."""
    seen: list[torch.Tensor] = []
    forward = fd.FoundationFeatures.forward

    def record(self: fd.FoundationFeatures, x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().clone())
        return forward(self, x)

    monkeypatch.setattr(fd.FoundationFeatures, "forward", record)
    return seen


def test_dinov2_extraction_two_sizes_grayscale_and_determinism(use: Published,
                                                               model_inputs: list[torch.Tensor]) -> None:
    use.ensure("dinov2_vits14")
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))
    gray = Image.fromarray(rng.integers(0, 256, (25, 40), dtype=np.uint8), mode="L")
    ds = PILDataset([rgb, gray])   # one batch, two image sizes, one grayscale
    a = extract_features(ds, "dinov2_vits14", image_size=28, device="cpu")
    b = extract_features(ds, "dinov2_vits14", image_size=28, device="cpu")   # a fresh build, same files
    assert a.shape == (2, 384) and np.isfinite(a).all()
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    x = model_inputs[0]
    assert x.shape == (2, 3, 28, 28) and x.dtype == torch.float32
    # normalised with DINOv2's ImageNet mean/std after a bicubic resize (PIL) and centre crop
    mean, std = np.array(hub("dinov2_vits14").mean), np.array(hub("dinov2_vits14").std)
    want = np.asarray(rgb.resize((28, 42), Image.Resampling.BICUBIC, reducing_gap=3.0))[7:35] / 255.0
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), (want - mean) / std, atol=1e-5)
    torch.testing.assert_close(x[1, 0] * std[0] + mean[0], x[1, 2] * std[2] + mean[2])   # gray: 3 equal channels
    c = extract_features(ds, "dinov2_vits14", image_size=42, device="cpu")
    assert c.shape == (2, 384) and model_inputs[-1].shape == (2, 3, 42, 42)
    assert not np.array_equal(a, c)
    # a grayscale array dataset is expanded to 3 channels on the way in: the RGB copy's input exactly
    g = rng.integers(0, 256, (3, 16, 16), dtype=np.uint8)
    fg = extract_features(ArrayDataset(g), "dinov2_vits14", image_size=28, device="cpu")
    frgb = extract_features(ArrayDataset(np.repeat(g[..., None], 3, axis=3)), "dinov2_vits14", image_size=28,
                            device="cpu")
    assert fg.shape == (3, 384) and model_inputs[-2].shape == (3, 3, 28, 28)
    torch.testing.assert_close(model_inputs[-2], model_inputs[-1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(fg, frgb, atol=1e-6)


def test_image_size_rounds_to_the_patch_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    ds = PILDataset([Image.new("RGB", (40, 40))])
    fd._say_rounded.cache_clear()   # said once per process: an earlier test (the app's 32 px) may have said it
    with caplog.at_level(logging.WARNING, logger="core.features.foundation"):
        assert resolve_image_size(hub("dinov2_vits14"), ds, 28) == 28
        assert not caplog.records
        assert resolve_image_size(hub("dinov2_vits14"), ds, 32) == 28
        assert resolve_image_size(hub("dinov2_vitb14"), ds, 100) == 98
        assert resolve_image_size(hub("siglip_vitb16"), ds, 50) == 48
        assert resolve_image_size(hub("clip_vitb16"), ds, 8) == 16   # never below one patch
        assert resolve_image_size(hub("dinov2_vits14"), ds, None) == 224
    said = [r.getMessage() for r in caplog.records]
    assert "image size 32 is not a multiple of dinov2_vits14's 14-pixel patch: using 28 px" in said
    assert len(said) == 4


def test_cache_key_names_the_exact_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snap = publish(cache, "dinov2_vits14", seed=0, commit="a" * 40)
    ds = ArrayDataset(np.zeros((2, 8, 8), np.uint8))
    parts = feature_key_parts(ds, "dinov2_vits14")
    sha = file_sha256(snap / fd.WEIGHTS_FILE)
    assert parts["weights"] == f"hf:timm/vit_small_patch14_dinov2.lvd142m@{'a' * 40}:sha256:{sha}"
    assert parts["image_size"] == 224
    key = feature_key(parts)
    # the hub moves main to new weights: another key
    publish(cache, "dinov2_vits14", seed=1, commit="b" * 40)
    new = feature_key_parts(ds, "dinov2_vits14")
    assert new["weights"].startswith(f"hf:timm/vit_small_patch14_dinov2.lvd142m@{'b' * 40}:sha256:")
    assert feature_key(new) != key
    # same commit name but other bytes (a cache copied without symlinks, then replaced): another key
    other = tmp_path / "hub2"
    monkeypatch.setenv("HF_HUB_CACHE", str(other))
    publish(other, "dinov2_vits14", seed=2, commit="a" * 40, symlinks=False)
    copied = feature_key_parts(ds, "dinov2_vits14")["weights"]
    assert copied.startswith(f"hf:timm/vit_small_patch14_dinov2.lvd142m@{'a' * 40}:sha256:")
    assert copied != parts["weights"]
    assert copied.endswith(file_sha256(other / "models--timm--vit_small_patch14_dinov2.lvd142m" / "snapshots"
                                       / ("a" * 40) / fd.WEIGHTS_FILE))


def test_download_on_first_use_through_hf_hub_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    remote = tmp_path / "remote"   # what the hub would serve: the published files
    rsnap = publish(remote, "dinov2_vits14_reg", seed=5, commit="c" * 40)
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(fd, "hub_reachable", lambda *a, **k: True)
    calls = []

    def fake_download(repo_id: str, filename: str, *, cache_dir: str, **kw: object) -> str:
        calls.append((repo_id, filename, cache_dir))
        repo = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
        (repo / "snapshots" / ("c" * 40)).mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text("c" * 40)
        dst = repo / "snapshots" / ("c" * 40) / filename
        shutil.copyfile(rsnap / filename, dst)
        return str(dst)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    bb = hub("dinov2_vits14_reg")
    assert bb.available() == (True, "downloads 88 MB on first use")
    assert ready_foundation_backbones() == []
    model = bb.build(CPU)
    repo = "timm/vit_small_patch14_reg4_dinov2.lvd142m"
    assert calls == [(repo, "config.json", str(cache)), (repo, "model.safetensors", str(cache))]
    assert model.model.num_prefix_tokens == 5   # CLS + 4 registers
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 28, 28)).shape == (1, 384)
    assert bb.available() == (True, "ready") and ready_foundation_backbones() == ["dinov2_vits14_reg"]
    bb.build(CPU)
    assert len(calls) == 2   # cached: no second download


def test_download_failure_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(fd, "hub_reachable", lambda *a, **k: True)

    def no_dns(*a: object, **k: object) -> None:
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_dns)
    with pytest.raises(ClusterLensError) as e:
        hub("clip_vitb16").build(CPU)
    msg = str(e.value)
    assert "timm/vit_base_patch16_clip_224.openai" in msg and "no internet: use efficientnet_lite0" in msg
    assert str(tmp_path / "empty-hub") in msg and "Name or service not known" in msg
    with pytest.raises(ClusterLensError, match="efficientnet_lite0"):   # the cache key needs the weights too
        feature_key_parts(ArrayDataset(np.zeros((1, 8, 8), np.uint8)), "clip_vitb16")


def test_offline_build_fails_at_once_without_trying_the_hub(tmp_path: Path) -> None:
    # HF_HUB_OFFLINE=1 and an empty cache; the autouse fixture's hf_hub_download raises AssertionError
    with pytest.raises(ClusterLensError) as e:
        hub("dinov2_vits14").build(CPU)
    msg = str(e.value)
    assert msg.startswith("dinov2_vits14's weights (timm/vit_small_patch14_dinov2.lvd142m) are not in the "
                          f"Hugging Face cache {tmp_path / 'empty-hub'} and the hub cannot be reached: "
                          "no internet: use efficientnet_lite0 (ships offline)")
    assert "models--timm--vit_small_patch14_dinov2.lvd142m" in msg


def test_offline_state_and_the_reachability_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(*a: object, **k: object) -> None:
        raise AssertionError("probed the network although HF_HUB_OFFLINE=1")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    assert hub("dinov2_vitb14").available() == (False, "no internet: use efficientnet_lite0 (ships offline)")
    assert fd.hub_reachable() is False
    monkeypatch.undo()
    monkeypatch.setattr(fd, "_probe", {})
    monkeypatch.setenv("HF_HUB_OFFLINE", "")
    with socket.socket() as server:   # a listening "proxy" on this machine: reachable
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        assert fd._probe_target() == ("127.0.0.1", port)
        assert fd.hub_reachable() is True
        assert hub("dinov2_vitb14").available() == (True, "downloads 346 MB on first use")
    assert fd.hub_reachable() is True   # remembered for a minute: no second probe
    monkeypatch.setattr(fd, "_probe", {})
    assert fd.hub_reachable() is False   # the port is closed now


def test_a_config_or_weights_that_do_not_match_fail_clearly(use: Published, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    use.ensure("dinov2_vits14_reg")
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snap = publish(cache, "dinov2_vits14", seed=0, commit="d" * 40, symlinks=False)
    good = json.loads((snap / "config.json").read_text())
    assert good["architecture"] == "vit_small_patch14_dinov2"
    bad = json.loads(json.dumps(good))
    bad["pretrained_cfg"]["mean"] = [0.5, 0.5, 0.5]
    (snap / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ClusterLensError, match=r"does not describe dinov2_vits14: mean \[0.5, 0.5, 0.5\]"):
        hub("dinov2_vits14").build(CPU)
    bad = {**good, "architecture": "vit_small_patch14_reg4_dinov2"}
    (snap / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ClusterLensError, match="architecture 'vit_small_patch14_reg4_dinov2', expected"):
        hub("dinov2_vits14").build(CPU)
    # the right config, but the weights of ViT-S with registers (one more key, other shapes)
    (snap / "config.json").write_text(json.dumps(good))
    reg = use.cache / "models--timm--vit_small_patch14_reg4_dinov2.lvd142m" / "snapshots" / f"{2:040x}"
    shutil.copyfile(os.path.realpath(reg / "model.safetensors"), snap / "model.safetensors")
    with pytest.raises(ClusterLensError, match="does not hold vit_small_patch14_dinov2 weights"):
        hub("dinov2_vits14").build(CPU)


def test_fp32_on_cpu_and_the_low_precision_check(use: Published, monkeypatch: pytest.MonkeyPatch) -> None:
    use.ensure("dinov2_vits14")
    model = hub("dinov2_vits14").build(CPU)
    x = torch.randn(3, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = model(x)
    assert model.precision == "float32" and model.check_cosine is None and ref.dtype == torch.float32
    model = hub("dinov2_vits14").build(CPU)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x)   # first autocast batch: checked against fp32
        again = model(x)
    assert model.precision == "bfloat16" and not torch.equal(low.float(), ref)   # it did run in bf16
    assert model.check_cosine is not None and model.check_cosine > 0.99
    cos = torch.nn.functional.cosine_similarity(again.float(), ref, dim=1)
    assert float(cos.min()) > 0.99
    # when low precision moves the features too far, fp32 is used from the first batch on
    monkeypatch.setattr(fd.FoundationFeatures, "MIN_COSINE", 1.01)
    model = hub("dinov2_vits14").build(CPU)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        first, second = model(x), model(x)
    assert model.precision == "float32" and first.dtype == second.dtype == torch.float32
    torch.testing.assert_close(first, ref)
    torch.testing.assert_close(second, ref)


def test_ready_foundation_backbones_reads_only_the_cache(use: Published, monkeypatch: pytest.MonkeyPatch) -> None:
    use.ensure()
    def no_socket(*a: object, **k: object) -> None:
        raise AssertionError("ready_foundation_backbones touched the network")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert ready_foundation_backbones() == FOUNDATION_BACKBONES
    rows = {r["name"]: r for r in list_backbones()}
    assert rows["dinov2_vitb14"]["state"] == "ready" and rows["dinov2_vitb14"]["available"] is True
    assert rows["clip_vitb16"]["source"] == "timm/vit_base_patch16_clip_224.openai"
    monkeypatch.setenv("HF_HUB_CACHE", str(use.cache.parent / "nothing-here"))
    assert ready_foundation_backbones() == []


def cli_backbones(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "backbones", *extra], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_cli_lists_the_three_states(use: Published, tmp_path: Path) -> None:
    ready = cli_backbones({"HF_HUB_CACHE": str(use.ensure())})
    assert ready.returncode == 0, ready.stderr
    lines = {ln.split()[0]: ln for ln in ready.stdout.splitlines() if ln.strip()}
    for name in FOUNDATION_BACKBONES:
        assert lines[name].endswith("[ready]")
    assert "timm/vit_base_patch16_siglip_224.webli (372 MB)" in lines["siglip_vitb16"]
    empty = {"HF_HUB_CACHE": str(tmp_path / "none")}
    off = cli_backbones({**empty, "HF_HUB_OFFLINE": "1"}, "--json")
    rows = {r["name"]: r for r in json.loads(off.stdout)}
    assert rows["dinov2_vits14"]["available"] is False
    assert rows["dinov2_vits14"]["state"] == "no internet: use efficientnet_lite0 (ships offline)"
    assert rows["efficientnet_lite0"]["available"] is True
    text = cli_backbones({**empty, "HF_HUB_OFFLINE": "1"}).stdout
    assert next(ln for ln in text.splitlines() if ln.startswith("clip_vitb16 ")).endswith(
        "[no internet: use efficientnet_lite0 (ships offline)]")
    with socket.socket() as server:   # online: a reachable HTTPS proxy on this machine
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        online = {**empty, "HF_HUB_OFFLINE": "", "HTTPS_PROXY": f"http://127.0.0.1:{server.getsockname()[1]}"}
        text = cli_backbones(online).stdout
    lines = {ln.split()[0]: ln for ln in text.splitlines() if ln.strip()}
    assert lines["dinov2_vits14"].endswith("[downloads 88 MB on first use]")
    assert lines["dinov2_vitb14_reg"].endswith("[downloads 346 MB on first use]")
    assert lines["clip_vitb16"].endswith("[downloads 345 MB on first use]")
    assert lines["siglip_vitb16"].endswith("[downloads 372 MB on first use]")

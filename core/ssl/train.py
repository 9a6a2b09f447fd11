"""Train a backbone on a dataset's own images, without labels, and register it in the workspace.

``train_backbone`` saves a checkpoint after every finished epoch (atomically), so a run that is
stopped or crashes leaves the last finished epoch usable with ``backbone="checkpoint"``.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

import core.ssl.arch  # noqa: F401  (registers convnet_small / resnet18_small in ARCHS)
from core.data.base import ImageDataset
from core.device import resolve_device, set_cpu_threads
from core.errors import ClusterLensError, ParameterError, TrainingError
from core.features.archs import ARCHS
from core.features.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    load_weights,
    read_checkpoint,
    save_backbone_checkpoint,
)
from core.registry import Registry
from core.ssl.arch import PROJ_DIM, SSL_MEAN, SSL_STD, ArchChoice, Projected, choose_arch
from core.ssl.data import load_images, normalise, to_unit
from core.ssl.method import EpochContext, Method, MethodConfig
from core.ssl.metric import MetricRefine
from core.ssl.registry import backbones_dir, record_backbone, slug, trained_backbone_path, unique_name
from core.ssl.rotation import Rotation
from core.ssl.simclr import SimCLR

Progress = Callable[[int, int, dict[str, Any]], None]   # (epoch, n_epochs, record)

METHODS: Registry[type[Method]] = Registry("training method")
for _m in (Rotation, SimCLR, MetricRefine):
    METHODS.add(_m.name, _m)

WARMUP_FRACTION = 0.05
# epochs=None: enough epochs for about this many optimiser steps, at least MIN_EPOCHS. 560 steps =
# 40 epochs of the 1,797 digits at batch 128, where SimCLR's clusters became stable over seeds;
# 10,000+ images get MIN_EPOCHS (bench/RESULTS.md, "Self-supervised backbones").
DEFAULT_STEPS = 560
MIN_EPOCHS = 10
WEIGHT_DECAY = 1e-5


class TrainingStopped(ClusterLensError):
    """Stopped (``should_stop()``) before the first epoch finished: there is no checkpoint."""


@dataclass(frozen=True)
class TrainedBackbone:
    name: str                                  # registered name (see core.ssl.registry)
    path: Path                                 # checkpoint for backbone="checkpoint"
    history: list[dict[str, Any]] = field(default_factory=list)   # one record per finished epoch


def _init_checkpoint(workspace: str | os.PathLike, init: str | os.PathLike | None) -> LoadedCheckpoint | None:
    """A path, or the name of a backbone trained in this workspace."""
    if init is None:
        return None
    p = Path(init)
    if not p.is_file() and not any(c in str(init) for c in "/\\") and not str(init).endswith((".pt", ".pth")):
        p = trained_backbone_path(workspace, str(init))
    return read_checkpoint(p)


def _choose(dataset: ImageDataset, arch: str, image_size: int | None,
            init: LoadedCheckpoint | None) -> ArchChoice:
    native = dataset.native_array()
    if init is None:
        return choose_arch(arch, native, image_size)
    if arch not in ("auto", init.arch):
        raise ParameterError(
            f"init_checkpoint {init.path} holds a {init.arch!r} backbone but arch={arch!r} was asked for; "
            f"pass arch={init.arch!r} (or 'auto'), or start from a {arch!r} checkpoint")
    size = image_size or int(init.meta.get("image_size") or choose_arch(init.arch, native, None).image_size)
    return ArchChoice(init.arch, dict(init.arch_params), size)


def default_epochs(n_images: int, batch_size: int) -> int:
    """Epochs for ``epochs=None``: about DEFAULT_STEPS optimiser steps, at least MIN_EPOCHS."""
    return max(MIN_EPOCHS, math.ceil(DEFAULT_STEPS / max(1, n_images // batch_size)))


def _lr_at(step: int, total: int, base: float) -> float:
    """Linear warm-up over the first 5 % of steps, then cosine decay to 0."""
    warm = max(1, int(total * WARMUP_FRACTION))
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def train_backbone(dataset: ImageDataset, method: str, *, workspace: str | os.PathLike, arch: str = "auto",
                   image_size: int | None = None, epochs: int | None = None, batch_size: int = 128,
                   lr: float | None = None, temperature: float = 0.5, seed: int = 0, device: str = "auto",
                   progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                   init_checkpoint: str | os.PathLike | None = None, margin: float = 0.2,
                   n_clusters: int = 10, metric_loss: str = "triplet", name: str | None = None,
                   augment: str = "auto", feature: str = "auto") -> TrainedBackbone:
    """Train ``method`` ("rotation" | "simclr" | "metric") on ``dataset``'s images (labels unused).

    ``arch``: "auto" (small ConvNet for array datasets up to 64 px, else ResNet-18 at 64 px),
    "convnet_small", "resnet18_small" or any arch of ``core.features.archs.ARCHS``.
    ``init_checkpoint``: a checkpoint path or a trained backbone's name to start from (required
    by "metric", which refines an existing backbone using k-means pseudo-labels, ``n_clusters``
    clusters, ``metric_loss`` "triplet" | "contrastive" with ``margin``). ``temperature``: SimCLR.
    ``augment``: SimCLR's views, "auto" (gentle for images up to 16 px, e.g. digits: no mirror,
    milder crops, small rotations; "mild" up to 32 px, e.g. Fashion-MNIST: crops of 70-100 % of
    the area + mirror; SimCLR's standard recipe above) | "standard" | "gentle" | "mild".
    ``feature``: what the saved SimCLR checkpoint outputs, "auto" = "backbone" (the layer before
    the projection head) | "projection" (backbone + head, 128-d).
    ``lr`` None = the method's default (Adam-W, warm-up + cosine decay). ``epochs`` None =
    :func:`default_epochs` (about 560 steps, at least 10 epochs: 40 for the 1,797 digits at batch 128).
    After each epoch: checkpoint saved to ``<workspace>/backbones/<name>.pt``, index updated,
    ``progress(epoch, epochs, record)`` called. ``should_stop()`` is polled between batches; a
    stop keeps the last finished epoch's checkpoint (:class:`TrainingStopped` if there is none).
    """
    cls = METHODS.get(method)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ParameterError(f"epochs must be an integer >= 1, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ParameterError(f"batch_size must be an integer >= 2 (contrastive losses compare images "
                             f"within a batch), got {batch_size!r}")
    n = len(dataset)
    if n < 2:
        raise ParameterError(f"dataset {dataset.name!r} has {n} image(s); training needs at least 2 "
                             "(batches compare images with each other): add images")
    if n < batch_size:
        suggest = max(2, 2 ** int(math.log2(max(2, n // 2))))
        raise ParameterError(f"dataset {dataset.name!r} has {n} images, fewer than batch_size={batch_size}; "
                             f"use batch_size <= {n} (e.g. {suggest}) or add images")
    if name is not None:
        from core.features.backbones import BACKBONES

        if slug(name) in BACKBONES:
            raise ParameterError(f"name {name!r} is a built-in backbone's; the trained one could never be "
                                 f"chosen by it: pick another name (built-ins: {', '.join(BACKBONES)})")
    if epochs is None:
        epochs = default_epochs(n, batch_size)
    if temperature <= 0:
        raise ParameterError(f"temperature must be > 0, got {temperature}")
    meth = cls(MethodConfig(temperature=temperature, margin=margin, n_clusters=n_clusters, metric_loss=metric_loss,
                            augment=augment, feature=feature))
    init = _init_checkpoint(workspace, init_checkpoint)
    if meth.needs_init and init is None:
        raise ParameterError(f"method {method!r} refines an existing backbone: pass init_checkpoint= a trained "
                             "backbone's name or checkpoint path (e.g. a 'simclr' run)")
    choice = _choose(dataset, arch, image_size, init)
    spec = ARCHS.get(choice.arch)
    mean, std = (tuple(init.meta.get("mean", SSL_MEAN)), tuple(init.meta.get("std", SSL_STD))) if init \
        else (spec.mean, spec.std)

    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    if not cuda:
        set_cpu_threads()
    gen = torch.Generator().manual_seed(int(seed))   # the run's only source of randomness
    with torch.random.fork_rng(devices=[]):          # why: nn.Module init reads the global RNG
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
        backbone = spec.build(**choice.params)
        dim = spec.dim(**choice.params)
        head = meth.make_head(dim)
    if init is not None:
        try:
            load_weights(backbone, init.state_dict, init.path, choice.arch)
        except CheckpointError as e:
            raise ParameterError(f"init_checkpoint does not fit: {e}") from None
    # feature="projection": save backbone + head as one extractor; a backbone that already ends in
    # a projection (init from such a checkpoint) is not wrapped again
    project = meth.exports_projection() and not choice.params.get("proj_dim")
    saved, saved_params = (Projected(backbone, head), {**choice.params, "proj_dim": PROJ_DIM}) if project \
        else (backbone, choice.params)
    images = load_images(dataset, choice.image_size)
    # why: on a GPU keep small datasets there (no per-batch host copies); big ones stay on the host
    pool = images.to(dev) if cuda and images.numel() < (2 << 30) else images
    backbone.to(dev).train()
    head.to(dev).train()
    if cuda:
        backbone.to(memory_format=torch.channels_last)
    params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
    base_lr = float(lr if lr is not None else meth.default_lr)
    opt = torch.optim.AdamW(params, lr=base_lr, weight_decay=WEIGHT_DECAY)

    ws = Path(workspace)
    run_name = unique_name(ws, name or f"{method}-{choice.arch}-{dataset.name}")
    path = backbones_dir(ws) / f"{run_name}.pt"
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    norm = lambda x: normalise(x, mean, std).contiguous(   # noqa: E731
        memory_format=torch.channels_last if cuda else torch.contiguous_format)
    steps_per_epoch = n // batch_size
    total, step = epochs * steps_per_epoch, 0
    history: list[dict[str, Any]] = []

    for epoch in range(1, epochs + 1):
        extra = meth.begin_epoch(EpochContext(backbone, images, mean, std, dev, gen))
        backbone.train()
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        for idx in meth.batches(n, batch_size, gen):
            if should_stop is not None and should_stop():
                return _stopped(run_name, path, history, epoch)
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, total, base_lr)
            x = to_unit(pool[idx.to(pool.device)].to(dev, non_blocking=True))
            with _autocast(dev):
                loss = meth.loss(backbone, head, x, idx, gen, norm)
            if not torch.isfinite(loss):
                kept = f"the checkpoint of epoch {epoch - 1} is kept at {path}" if history else "nothing was saved"
                raise TrainingError(f"{method} training diverged: the loss became {loss.item()} at epoch {epoch}, "
                                    f"step {step + 1}; {kept}. Lower lr (was {base_lr:g}) or raise batch_size.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(idx)
            loss_sum += float(loss.detach()) * len(idx)
        secs = time.perf_counter() - t0
        rec = {"epoch": epoch, "loss": loss_sum / max(seen, 1), "seconds": secs,
               "images_per_s": seen / max(secs, 1e-9), "lr": opt.param_groups[0]["lr"], **extra}
        history.append(rec)
        meta = {"method": method, "dataset": dataset.name, "trained_on": dataset.fingerprint,
                "image_size": choice.image_size, "mean": list(mean), "std": list(std), "epochs": epoch,
                "seed": int(seed), "batch_size": batch_size, "lr": base_lr, "history": history,
                "init": None if init is None else init.path}
        if method == "simclr":
            meta["temperature"] = temperature
            meta["augment"] = augment
            meta["feature"] = "projection" if project else "backbone"
        save_backbone_checkpoint(path, choice.arch, saved_params, saved, meta)
        record_backbone(ws, {"name": run_name, "method": method, "arch": choice.arch, "dataset": dataset.name,
                             "epochs": epoch, "path": str(path.resolve()), "created": created,
                             "image_size": choice.image_size, "loss": rec["loss"]})
        if progress is not None:
            progress(epoch, epochs, rec)
    return TrainedBackbone(run_name, path, history)


def _stopped(name: str, path: Path, history: list[dict[str, Any]], epoch: int) -> TrainedBackbone:
    if not history:
        raise TrainingStopped(f"training was stopped during epoch {epoch}, before any epoch finished; "
                              "no checkpoint was saved")
    return TrainedBackbone(name, path, history)


def trained_model(ckpt_path: str | os.PathLike, device: str = "cpu") -> nn.Module:
    """The backbone module of a trained checkpoint (eval mode), e.g. to embed images directly."""
    ck = read_checkpoint(ckpt_path)
    model = ARCHS.get(ck.arch).build(**ck.arch_params)
    load_weights(model, ck.state_dict, ck.path, ck.arch)
    return model.to(resolve_device(device)).eval()

"""Backbone checkpoint files: save (for self-supervised training) and load, always weights-only.

Two layouts are read:
(a) ClusterLens's own dict ``{"format": FORMAT, "arch", "arch_params", "state_dict", "meta"}``;
(b) a plain ``state_dict`` (optionally under a ``"state_dict"`` / ``"model"`` key) for an arch
    the caller names (``checkpoint_arch=``), e.g. torchvision's ``resnet50-*.pth``.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import ClusterLensError, ParameterError
from core.features.archs import ARCHS, HEAD_PREFIXES, get_arch

FORMAT = "clusterlens-backbone/1"
_EXPECTED = (f"expected a file written by save_backbone_checkpoint (a dict with format={FORMAT!r}) "
             "or torch.save(model.state_dict()) of one of the architectures: ")


class CheckpointError(ClusterLensError):
    """A checkpoint file that cannot be used as a backbone."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    path: str
    arch: str
    state_dict: dict[str, torch.Tensor]
    sha256: str
    arch_params: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_backbone_checkpoint(path: str | os.PathLike, arch: str, arch_params: dict[str, Any] | None,
                             model: nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights so ``backbone="checkpoint"`` can load them (atomic write).

    ``model`` must be ``get_arch(arch).build(**arch_params)`` (possibly trained); ``meta`` holds
    plain values only (str, int, float, bool, lists, dicts), e.g. ``{"mean": [...], "std": [...],
    "image_size": 32, "trained_on": fingerprint}`` — mean/std/image_size override the arch defaults.
    """
    get_arch(arch)   # fail early, listing valid names
    payload = {
        "format": FORMAT, "arch": arch, "arch_params": dict(arch_params or {}),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=path.parent)
    os.close(fd)
    try:   # temp file + rename: a crash never leaves a truncated checkpoint under the real name
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_checkpoint(path: str | os.PathLike, arch: str | None = None) -> LoadedCheckpoint:
    """Load and validate a checkpoint file (no code is executed: ``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"checkpoint file {str(p)!r} does not exist; pass the path of a .pt/.pth file")
    archs = ", ".join(ARCHS.names())
    try:
        with warnings.catch_warnings():   # why: pickle-protocol notes are noise for a user's file
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:   # why: torch raises UnpicklingError/RuntimeError/EOFError/... by format
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p} is not a PyTorch weights file ({reason}); {_EXPECTED}{archs}") from None
    digest = file_sha256(p)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        sd, name = obj.get("state_dict"), obj.get("arch")
        if not _is_state_dict(sd) or not isinstance(name, str):
            raise CheckpointError(f"{p} says format {FORMAT!r} but lacks a valid 'arch' or 'state_dict'; "
                                  "re-save it with save_backbone_checkpoint")
        if arch is not None and arch != name:
            raise ParameterError(f"{p} holds a {name!r} checkpoint but checkpoint_arch={arch!r} was given; "
                                 "drop checkpoint_arch or pass the matching one")
        get_arch(name)
        return LoadedCheckpoint(str(p), name, sd, digest, dict(obj.get("arch_params") or {}),
                                dict(obj.get("meta") or {}))
    if isinstance(obj, dict) and not _is_state_dict(obj):   # common wrappers of a state dict
        inner = obj.get("state_dict", obj.get("model"))
        obj = inner if _is_state_dict(inner) else obj
    if not _is_state_dict(obj):
        found = f"a dict with keys {list(obj)[:5]}" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise CheckpointError(f"{p} holds {found}, not a state dict of tensors; {_EXPECTED}{archs}")
    if arch is None:
        raise ParameterError(f"{p} is a plain state dict that does not name its architecture; "
                             f"pass checkpoint_arch= one of: {archs}")
    get_arch(arch)
    sd = {k.removeprefix("module."): v for k, v in obj.items()}   # why: DataParallel saves "module.*"
    return LoadedCheckpoint(str(p), arch, sd, digest)


def load_weights(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str, arch: str) -> None:
    """Load ``state_dict`` into a headless feature ``module``; classifier-head keys are ignored."""
    try:
        res = module.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:   # size mismatches raise even with strict=False
        raise CheckpointError(f"{source}: the weights do not fit arch {arch!r} (tensor shapes differ: "
                              f"{str(e).splitlines()[-1].strip()[:200]}); is it another architecture?") from None
    missing = [k for k in res.missing_keys if not k.startswith(HEAD_PREFIXES)]
    unexpected = [k for k in res.unexpected_keys if not k.startswith(HEAD_PREFIXES)]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: the weights do not fit arch {arch!r}: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]}); "
            f"pass the checkpoint_arch it was trained with (one of: {', '.join(ARCHS.names())})")

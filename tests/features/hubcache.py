"""Write foundation models in their published hub format into a temporary Hugging Face cache.

Each architecture is built by timm with random weights and saved by timm's own ``save_for_hf``
(``config.json`` + ``model.safetensors``), laid out as huggingface_hub lays out its cache:
``models--timm--<arch>.<tag>/{refs/main, snapshots/<commit>/, blobs/<hash>}``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import timm
import torch
from timm.models._hub import save_for_hf

from core.features import foundation as fd
from core.features import get_backbone
from core.features.backbones import HubBackbone
from core.features.checkpoint import file_sha256


def hub(name: str) -> HubBackbone:
    bb = get_backbone(name)
    assert isinstance(bb, HubBackbone)
    return bb


def publish(cache: Path, name: str, *, seed: int, commit: str, symlinks: bool = True) -> Path:
    """Random-init ``name``'s architecture and write it as its hub repo would be in the cache;
    returns the snapshot folder. ``symlinks``: blobs named by hash + links, as huggingface_hub does."""
    bb = hub(name)
    torch.manual_seed(seed)
    model = timm.create_model(f"{bb.arch}.{bb.tag}", pretrained=False, num_classes=bb.num_classes)
    repo = cache / f"models--{bb.repo_id.replace('/', '--')}"
    staging = cache / f".staging-{name}-{commit}"
    save_for_hf(model, str(staging), safe_serialization=True)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for fname in (fd.CONFIG_FILE, fd.WEIGHTS_FILE):
        src = staging / fname
        if symlinks:   # LFS blobs are named by their sha256, small files by their git sha1
            digest = file_sha256(src) if fname == fd.WEIGHTS_FILE else hashlib.sha1(src.read_bytes()).hexdigest()
            (repo / "blobs").mkdir(exist_ok=True)
            os.replace(src, repo / "blobs" / digest)
            (snap / fname).symlink_to(os.path.relpath(repo / "blobs" / digest, snap))
        else:
            os.replace(src, snap / fname)
    shutil.rmtree(staging)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snap

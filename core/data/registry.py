"""One entry point from a user's "source" string (folder, .zip, demo name, torchvision:...) to a dataset."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from core.data.arrays import ArrayDataset
from core.data.base import ImageDataset
from core.data.demos import DEMOS, data_root, open_demo
from core.data.folder import open_folder
from core.data.stored import raise_if_removed
from core.data.tv import PREFIX, TV_DATASETS, is_present, open_torchvision
from core.data.zipdata import open_zip
from core.errors import DataError, UnknownNameError


def _looks_like_path(source: str) -> bool:
    return any(c in source for c in "/\\~") or source.lower().endswith(".zip") or source.startswith(".")


def head(ds: ImageDataset, n: int) -> ImageDataset:
    """The first ``n`` samples; its fingerprint is derived from the full one and ``n``."""
    if n < 1:
        raise DataError(f"limit must be at least 1, got {n}")
    if n >= len(ds):
        return ds
    keep = set(ds.ids[:n])
    changes: dict[str, Any] = {
        "ids": ds.ids[:n],
        "labels": None if ds.labels is None else ds.labels[:n],
        "fingerprint": hashlib.blake2b(f"{ds.fingerprint}|first {n}".encode(), digest_size=16).hexdigest(),
        "duplicates": [g for g in ([i for i in grp if i in keep] for grp in ds.duplicates) if len(g) > 1],
    }
    if isinstance(ds, ArrayDataset):
        changes["images"] = ds.images[:n]
    return dataclasses.replace(ds, **changes)


def open_dataset(source: str, *, workspace: str | os.PathLike, limit: int | None = None) -> ImageDataset:
    """Folder, .zip file, demo name or ``torchvision:NAME[:SPLIT]`` -> dataset (first ``limit`` ids)."""
    source = str(source).strip()
    path = Path(source).expanduser()
    if source.lower().startswith(PREFIX):
        ds: ImageDataset = open_torchvision(source)
    elif path.is_dir():
        ds = open_folder(path, cache_dir=Path(workspace) / "manifests")
    elif path.is_file() and path.suffix.lower() == ".zip":
        ds = open_zip(path, workspace=workspace)
    elif source in DEMOS:
        ds = open_demo(source)
    elif path.is_file():
        raise DataError(f"{path} is a single file; give a folder of images, a .zip file or a demo name")
    else:
        raise_if_removed(path)   # a stored upload removed since: say how to get it back
        missing = f"{path} does not exist. " if _looks_like_path(source) else ""
        raise UnknownNameError(
            f"unknown dataset {source!r}. {missing}Give a folder of images, a .zip file, a demo name "
            f"({', '.join(DEMOS.names())}) or {', '.join(PREFIX + n for n in TV_DATASETS)}"
        )
    return head(ds, limit) if limit is not None else ds


def list_datasets() -> list[dict[str, Any]]:
    """Built-in datasets for ``python -m core datasets``: name, description, size, available, why."""
    rows = []
    for name in DEMOS.names():
        demo = DEMOS.get(name)
        ok, why = demo.available()
        rows.append({"name": name, "description": demo.description, "size": demo.size,
                     "available": ok, "why": "" if ok else why})
    for name, spec in TV_DATASETS.items():
        split = spec.splits[0]
        ok = is_present(name, split)
        why = "" if ok else (f"not under {data_root()} yet; downloaded there on first use (needs internet), "
                             "or set CLUSTERLENS_DATA_ROOT to a folder that has it")
        rows.append({"name": PREFIX + name, "description": f"{spec.description} ({split} split; "
                     f"{PREFIX}{name}:{'/'.join(spec.splits)})", "size": spec.size[split],
                     "available": ok, "why": why})
    return rows

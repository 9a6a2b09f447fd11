"""The workspace's trained backbones: ``<workspace>/backbones/index.json`` plus one ``.pt`` each.

The index is small JSON rewritten atomically (temp file + rename); an entry whose file was
deleted is not listed.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from core.errors import UnknownNameError, WorkspaceError

INDEX = "index.json"
FIELDS = ("name", "method", "arch", "dataset", "epochs", "path", "created")


def backbones_dir(workspace: str | os.PathLike) -> Path:
    return Path(workspace) / "backbones"


def slug(text: str) -> str:
    """A file-name-safe lowercase name: 'Fashion MNIST/test' -> 'fashion-mnist-test'."""
    s = re.sub(r"[^a-z0-9._]+", "-", str(text).lower()).strip("-.")
    return s or "images"


def _read(workspace: str | os.PathLike) -> list[dict[str, Any]]:
    p = backbones_dir(workspace) / INDEX
    if not p.is_file():
        return []
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise WorkspaceError(f"{p} is unreadable ({e}); delete it to start a fresh list "
                             "(the .pt files stay usable with backbone='checkpoint')") from None
    return list(data.get("backbones", []))


def _write(workspace: str | os.PathLike, entries: list[dict[str, Any]]) -> None:
    folder = backbones_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"backbones": entries}, f, indent=1)
        os.replace(tmp, folder / INDEX)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def unique_name(workspace: str | os.PathLike, base: str) -> str:
    """``base`` if neither the index nor a file uses it, else ``base-2``, ``base-3``, ..."""
    base = slug(base)
    taken = {e["name"] for e in _read(workspace)}
    folder = backbones_dir(workspace)
    name, i = base, 1
    while name in taken or (folder / f"{name}.pt").exists():
        i += 1
        name = f"{base}-{i}"
    return name


def record_backbone(workspace: str | os.PathLike, entry: dict[str, Any]) -> None:
    """Add or replace (by name) one index entry; it must carry every field of ``FIELDS``."""
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise ValueError(f"index entry lacks {missing}")
    entries = [e for e in _read(workspace) if e["name"] != entry["name"]]
    _write(workspace, entries + [dict(entry)])


def list_trained_backbones(workspace: str | os.PathLike) -> list[dict[str, Any]]:
    """One dict per trained backbone (name, method, arch, dataset, epochs, path, created, ...),
    oldest first; entries whose checkpoint file is gone are left out."""
    return [e for e in _read(workspace) if Path(e["path"]).is_file()]


def trained_backbone_path(workspace: str | os.PathLike, name: str) -> Path:
    """The checkpoint file of a trained backbone, for ``backbone='checkpoint', checkpoint=...``."""
    rows = list_trained_backbones(workspace)
    for e in rows:
        if e["name"] == name:
            return Path(e["path"])
    have = ", ".join(e["name"] for e in rows) or "none yet (train one with train_backbone)"
    raise UnknownNameError(f"no trained backbone {name!r} in {backbones_dir(workspace)}; available: {have}")

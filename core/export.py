"""Export a run's current labels (the run's clusters with every applied correction).

Formats: ``csv`` and ``json`` (sample id, path, cluster, cluster name, corrected, confidence) and
``imagefolder`` (one folder per cluster name holding copies of — or links to — the images).
An export never clobbers silently: an existing file or a non-empty folder is refused unless
``overwrite=True``, and with ``allowed_roots`` given a path outside them is refused. Files are
written to a temporary name and renamed into place, so a crash leaves no half-written export.
:func:`read_labels_csv` and :func:`read_labels_json` read an export back.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DataError, ParameterError
from core.review import ReviewSession
from core.store import Store

FORMATS = ("csv", "json", "imagefolder")
CSV_COLUMNS = ["sample_id", "path", "cluster", "cluster_name", "corrected", "confidence"]
MARKER = ".clusterlens-export.json"


def export_run(store: Store, run_id: int, fmt: str, out: str | Path, *, overwrite: bool = False,
               link: bool = False, allowed_roots: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Write the export; returns a summary (path, format, n_samples, n_corrected, clusters)."""
    if fmt not in FORMATS:
        raise ParameterError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out).expanduser().resolve()
    if allowed_roots is not None:
        roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        if not any(out == r or out.is_relative_to(r) for r in roots):
            raise ParameterError(f"{out} is outside the folders exports may go to "
                                 f"({', '.join(str(r) for r in roots)}); choose a path inside one")
    rows = export_rows(ReviewSession(store, run_id))
    if fmt == "imagefolder":
        _write_imagefolder(rows, out, overwrite=overwrite, link=link, run_id=run_id)
    else:
        if out.is_dir():
            raise ParameterError(f"{out} is a folder; give a file name for a {fmt} export")
        if out.exists() and not overwrite:
            raise ParameterError(f"{out} already exists; pass overwrite (--overwrite) to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            _atomic_write(out, _csv_text(rows))
        else:
            _atomic_write(out, json.dumps({"run": run_id, "samples": rows}, indent=1))
    return {"path": str(out), "format": fmt, "n_samples": len(rows),
            "n_corrected": sum(r["corrected"] for r in rows),
            "clusters": len({r["cluster"] for r in rows})}


def export_rows(session: ReviewSession) -> list[dict[str, Any]]:
    labels = session.current_labels()
    corrected = session.corrected_mask()
    names = session.cluster_names()
    return [{"sample_id": sid, "path": session.paths[i], "cluster": int(labels[i]),
             "cluster_name": names[int(labels[i])], "corrected": bool(corrected[i]),
             "confidence": round(float(session.confidence[i]), 6)}
            for i, sid in enumerate(session.ids)]


def read_labels_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(sample ids, (N,) int64 clusters) from a CSV export (or a run's labels.csv)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"sample_id", "cluster"} <= set(reader.fieldnames):
                raise DataError(f"{path} is not a ClusterLens labels CSV (needs sample_id and cluster columns)")
            ids, labels = [], []
            for row in reader:
                ids.append(row["sample_id"])
                labels.append(int(row["cluster"]))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise DataError(f"{path}: a cluster value is not an integer ({e})") from None
    return ids, np.asarray(labels, dtype=np.int64)


def read_labels_json(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(sample ids, (N,) int64 clusters) from a JSON export: ``{"run": …, "samples": [{"sample_id":
    …, "cluster": …, …}, …]}`` (a bare list of such objects is read too)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); is it a ClusterLens JSON export?") from None
    rows = doc.get("samples") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise DataError(f"{path} is not a ClusterLens labels JSON (needs a \"samples\" list)")
    ids, labels = [], []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or "sample_id" not in row or "cluster" not in row:
            raise DataError(f"{path}: sample {n} lacks sample_id or cluster; is it a ClusterLens JSON export?")
        c = row["cluster"]
        if isinstance(c, bool) or not isinstance(c, int | str):
            raise DataError(f"{path}: sample {row['sample_id']!r} has cluster {c!r}, not an integer")
        try:
            labels.append(int(c))
        except ValueError:
            raise DataError(f"{path}: sample {row['sample_id']!r} has cluster {c!r}, not an integer") from None
        ids.append(str(row["sample_id"]))
    return ids, np.asarray(labels, dtype=np.int64)


# -- internals ------------------------------------------------------------------------------
def _csv_text(rows: list[dict[str, Any]]) -> str:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "path": r["path"] or "", "corrected": int(r["corrected"])})
    return buf.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _folder_names(rows: list[dict[str, Any]]) -> dict[int, str]:
    """Cluster → a safe, unique folder name derived from the cluster name."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for c, name in sorted({(r["cluster"], r["cluster_name"]) for r in rows}):
        safe = re.sub(r"[^\w.\- ]+", "_", name).strip(" .") or f"cluster_{c}"
        if safe.lower() in used:
            safe = f"{safe}_{c}"
        used.add(safe.lower())
        out[c] = safe
    return out


def _write_imagefolder(rows: list[dict[str, Any]], out: Path, *, overwrite: bool, link: bool, run_id: int) -> None:
    missing = [r["sample_id"] for r in rows if not r["path"]]
    if missing:
        raise DataError(f"{len(missing)} sample(s) have no image file (an array dataset, e.g. {missing[0]!r}); "
                        "export csv or json instead")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out} is a file; give a folder for an imagefolder export")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ParameterError(f"{out} already has files; choose an empty folder or pass overwrite (--overwrite)")
        if not (out / MARKER).exists():
            raise ParameterError(f"{out} has files but is not an earlier ClusterLens export, so it will not be "
                                 "replaced even with overwrite; choose an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp"))
    try:
        folders = _folder_names(rows)
        for r in rows:
            src = Path(r["path"])
            if not src.is_file():
                raise DataError(f"image {src} (sample {r['sample_id']!r}) is gone; cannot export it")
            d = tmp / folders[r["cluster"]]
            d.mkdir(exist_ok=True)
            dst = d / r["sample_id"].replace("/", "__").replace("\\", "__")
            if link:
                dst.symlink_to(src.resolve())
            else:
                shutil.copy2(src, dst)
        (tmp / MARKER).write_text(json.dumps({"run": run_id, "folders": {str(k): v for k, v in folders.items()}}),
                                  encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

"""Which images a gallery shows, in which order (pure numpy; the page only draws them)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from core.review import cluster_name
from ui.figures import colour
from ui.widgets import Tile

ORDERS = ("most typical first", "most doubtful first")


def cluster_rows(labels: np.ndarray, confidence: np.ndarray, cluster: int, order: str) -> np.ndarray:
    """Rows of one cluster sorted by confidence (ties by row, so the order is stable)."""
    rows = np.flatnonzero(labels == cluster)
    key = confidence[rows] if order == ORDERS[1] else -confidence[rows]
    return rows[np.lexsort((rows, key))]


def prototypes(labels: np.ndarray, confidence: np.ndarray, cluster: int, n: int = 8) -> np.ndarray:
    """The ``n`` most confident members: what the cluster looks like at its most typical."""
    return cluster_rows(labels, confidence, cluster, ORDERS[0])[:n]


def tiles(rows: Sequence[int] | np.ndarray, labels: np.ndarray, confidence: np.ndarray, ids: Sequence[str],
          truth_names: Sequence[str] | None = None, truth: np.ndarray | None = None, *,
          name: Callable[[int], str] = cluster_name, corrected: np.ndarray | None = None) -> list[Tile]:
    """Gallery tiles: each in its cluster's colour, captioned with its cluster's name
    (``name``: the run's names, renames included) and confidence; ✎ where a person corrected it."""
    out = []
    for r in rows:
        r = int(r)
        c, conf = int(labels[r]), float(confidence[r])
        fixed = corrected is not None and bool(corrected[r])
        tip = describe(r, labels, confidence, ids, truth_names, truth, name=name) + (" · corrected" if fixed else "")
        out.append(Tile(row=r, caption=f"{name(c)} · {conf:.2f}", tooltip=tip, colour=colour(c),
                        mark="✎" if fixed else ""))
    return out


def describe(row: int, labels: np.ndarray, confidence: np.ndarray, ids: Sequence[str],
             truth_names: Sequence[str] | None = None, truth: np.ndarray | None = None, *,
             name: Callable[[int], str] = cluster_name) -> str:
    """One image in words: id, cluster, confidence and (if known) its true class."""
    text = f"{ids[row]} · {name(int(labels[row]))} · confidence {float(confidence[row]):.2f}"
    if truth is not None and truth_names is not None and truth[row] >= 0:
        text += f" · true class {truth_names[truth[row]]}"
    return text


def rows_of(ids: Sequence[str], index: Mapping[str, int]) -> np.ndarray:
    return np.asarray([index[i] for i in ids if i in index], dtype=np.int64)


def selected_ids(event: Any) -> list[str]:
    """Sample ids of the selected points, read from customdata (never point indices; DESIGN.md)."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    seen: dict[str, None] = {}
    for p in points:
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if cd is not None:
            seen[str(cd)] = None
    return list(seen)

"""The Explore map while another is being drawn (issue 26, item 7): the map last shown stays, said
as such, instead of an empty page for the minute a UMAP or t-SNE of many points takes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.config import MapConfig
from ui import engine
from ui.state import MAP_METHODS, get_state


def remember(feature_key: str, cfg: MapConfig) -> None:
    """The map drawn on the page now (the one to keep in view while the next is drawn)."""
    get_state().map_shown = (feature_key, cfg.method, cfg.seed)


def last_map(workspace: Path, feature_key: str, run_id: int, wanted: MapConfig) -> tuple[np.ndarray | None, str]:
    """A map of these features to show until ``wanted`` is ready: the one last shown, else any drawn
    one (PCA first: it is the quickest to have). (None, "") when there is none yet."""
    shown = get_state().map_shown
    order: list[MapConfig] = []
    if shown is not None and shown[0] == feature_key:
        order.append(MapConfig(method=shown[1], seed=int(shown[2])))
    order += [MapConfig(method=m, seed=wanted.seed) for m in MAP_METHODS]
    names = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    for cfg in order:
        if cfg == wanted:
            continue
        xy = engine.saved_map(workspace, feature_key, cfg)
        if xy is None:
            xy = engine.run_map(workspace, run_id, cfg)
        if xy is not None:
            return xy, (f"Showing the {names.get(cfg.method, cfg.method)} map until the "
                        f"{names.get(wanted.method, wanted.method)} map is ready (it is being drawn above).")
    return None, ""

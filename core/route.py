"""The default route: when a person has not fixed the clustering space, choose it from the data.

A *route* is a backbone, an image size and a reduction (the space k-means, DAC and RUC see). The
candidates come from what the images are (count, size); each is clustered with k-means, and the
route whose clustering **agrees most with the other candidates'** (mean NMI) wins. Why that signal:
each space makes its own mistakes, and the partition the others confirm is the one least likely
to follow one space's artefact (the idea behind TURTLE's search for the labelling several
representations agree on, used here only to pick a space). Measured without labels, checked
against them in bench/bench_defaults.py: it picked the best of the four candidates on digits
(pixels → UMAP-10) and lfw (EfficientNet-Lite0), where silhouette or k-means stability would not
tell spaces apart (bench/RESULTS.md, "Default route").

A person's explicit choice always wins: a fixed backbone, size or reduction keeps only the
candidates that match it. Ground truth never takes part.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data.base import ImageDataset

Progress = Callable[[str, float, str], None]
ShouldStop = Callable[[], bool]

AUTO = "auto"                 # FeatureConfig.backbone / ClusterConfig.reduce: "choose from the data"
OFFLINE_CNN = "efficientnet_lite0"
SMALL_SIZE = 64               # px: 3.4x faster than 224 on 10,000 28x28 images, and better there
LARGE_SIZE = 224              # the CNN's own size, for photos when there are few enough of them
LARGE_MAX_IMAGES = 2000       # ~24 img/s at 224 on 2 cores: 2,000 images ≈ 90 s
UMAP_MIN_IMAGES = 50          # below this a 30-neighbour UMAP graph says little


@dataclass(frozen=True)
class Route:
    backbone: str
    image_size: int | None    # None: the backbone's own (pixels: native size for array data)
    reduce: str               # "none" | "umap:10" | ...

    @property
    def name(self) -> str:
        size = f"@{self.image_size}" if self.image_size else ""
        return f"{self.backbone}{size} → {self.reduce}" if self.reduce != "none" else f"{self.backbone}{size}"


@dataclass(frozen=True)
class RouteEvidence:
    route: Route
    agreement: float          # mean NMI of its k-means labels with the other candidates'
    seconds: float            # features (0 when cached) + reduction + k-means


@dataclass(frozen=True)
class RouteChoice:
    chosen: Route
    evidence: tuple[RouteEvidence, ...]   # best first
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"chosen": asdict(self.chosen), "chosen_name": self.chosen.name, "why": self.why,
                "criterion": "agreement: mean NMI of the route's k-means labels with the other routes'",
                "candidates": [{"route": asdict(e.route), "name": e.route.name,
                                "agreement": None if np.isnan(e.agreement) else round(e.agreement, 4),
                                "seconds": round(e.seconds, 2)} for e in self.evidence]}


def _side(dataset: ImageDataset, n: int = 16) -> int:
    """Median longer side of a few images (array datasets: their shape)."""
    arr = dataset.native_array()
    if arr is not None:
        return int(max(arr.shape[1:3]))
    idx = np.linspace(0, len(dataset) - 1, min(n, len(dataset))).astype(int)
    sides = []
    for i in idx:
        try:
            sides.append(max(dataset.load(int(i)).size))
        except Exception:  # noqa: BLE001 - an unreadable image says nothing about the others' size
            continue
    return int(np.median(sides)) if sides else 32


def candidate_routes(dataset: ImageDataset, *, backbone: str = AUTO, image_size: int | None = None,
                     reduce: str = AUTO) -> list[Route]:
    """The routes worth trying on ``dataset``; fixed choices (not ``auto``) keep only matching ones."""
    side = _side(dataset)
    spaces: list[tuple[str, int | None]] = [("pixels", None), (OFFLINE_CNN, SMALL_SIZE)]
    if side >= 128 and len(dataset) <= LARGE_MAX_IMAGES:
        spaces.append((OFFLINE_CNN, LARGE_SIZE))   # photos, few enough to afford the CNN's own size
    if backbone != AUTO:
        sizes = {s for b, s in spaces if b == backbone}
        spaces = [(backbone, image_size if image_size is not None else (min(sizes) if sizes else None))]
    elif image_size is not None:
        spaces = [(b, image_size if b != "pixels" else None) for b, _ in spaces[:2]]
    reductions = ["none", "umap:10"] if len(dataset) >= UMAP_MIN_IMAGES else ["none"]
    if reduce != AUTO:
        reductions = [reduce]
    return [Route(b, s, r) for b, s in dict.fromkeys(spaces) for r in reductions]


def agreement(partitions: list[np.ndarray]) -> np.ndarray:
    """(R,) mean NMI of each partition with every other (0.0 each when there is only one)."""
    from sklearn.metrics import normalized_mutual_info_score

    r = len(partitions)
    m = np.eye(r)
    for i in range(r):
        for j in range(i + 1, r):
            m[i, j] = m[j, i] = normalized_mutual_info_score(partitions[i], partitions[j])
    return (m.sum(1) - 1.0) / max(r - 1, 1)


def choose_route(dataset: ImageDataset, k: int, workspace: str | Path, *, seed: int = 0,
                 backbone: str = AUTO, image_size: int | None = None, reduce: str = AUTO,
                 device: str = "auto", metric: str = "euclidean", progress: Progress | None = None,
                 should_stop: ShouldStop | None = None) -> RouteChoice:
    """Try every candidate route (features cached, reductions cached) and pick by agreement.

    The routes a person's fixed choices leave are the ones that can win; every automatic candidate
    votes, so two routes on one fixed backbone are still judged against the other spaces (between
    two partitions alone, mean NMI is the same for both and says nothing).
    """
    from core.config import ClusterConfig, FeatureConfig
    from core.pipeline import build_clusterer, clustering_space, compute_features

    eligible = candidate_routes(dataset, backbone=backbone, image_size=image_size, reduce=reduce)
    if len(eligible) == 1:
        only = eligible[0]
        return RouteChoice(only, (RouteEvidence(only, float("nan"), 0.0),),
                           f"{only.name} is the only route your settings leave")
    voters = list(dict.fromkeys([*eligible, *candidate_routes(dataset, image_size=image_size)]))
    say = progress or (lambda *a: None)
    labels, seconds = [], []
    for n, route in enumerate(voters):
        say("route", n / len(voters), f"trying {route.name} ({n + 1} of {len(voters)})")
        t = time.perf_counter()
        feats, _, key, _ = compute_features(
            dataset, FeatureConfig(backbone=route.backbone, image_size=route.image_size, device=device),
            workspace, should_stop=should_stop)
        cfg = ClusterConfig(algo="kmeans", k=k, metric=metric, seed=seed, reduce=route.reduce)
        X = clustering_space(feats, cfg, cache_dir=Path(workspace) / "reduced", feature_key=key)
        labels.append(build_clusterer(cfg, device=device).fit(X).labels_)
        seconds.append(time.perf_counter() - t)
        if should_stop is not None and should_stop():
            from core.errors import Cancelled

            raise Cancelled("stopped while choosing the route; nothing was clustered")
    agree = agreement(labels)
    order = [i for i in np.argsort(-agree, kind="stable") if voters[i] in eligible]
    evidence = tuple(RouteEvidence(voters[i], float(agree[i]), seconds[i]) for i in order)
    best, runner = evidence[0], evidence[1]
    why = (f"{best.route.name}: its k-means clusters agree most with the other {len(voters) - 1} "
           f"routes' (mean NMI {best.agreement:.3f}; next {runner.route.name} {runner.agreement:.3f})")
    say("route", 1.0, f"chose {best.route.name}")
    return RouteChoice(best.route, evidence, why)

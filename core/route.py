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

One more candidate joins every space: each through UMAP-10, scaled alike, side by side
(:func:`core.pipeline.joined_space`). Where one space separates some classes and another the
others (digits: pixels and the CNN), the joined space separates more than either, and its
clusters are the ones the single spaces confirm most, so agreement picks it (digits 0.899 ->
0.932; Fashion-MNIST's train folder 0.565 -> 0.662, as a folder of PNGs it took the pixel route).

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
JOIN_REDUCE = "umap:10"       # the joined route: every space through UMAP-10, side by side
# a foundation backbone (DINOv2, CLIP, SigLIP) whose weights are already cached is a candidate on a
# GPU, and on a CPU for up to this many images (ViT-S/B at 224 px: about 1-4 images/s on 2 cores)
FOUNDATION_CPU_MAX_IMAGES = 500


@dataclass(frozen=True)
class Route:
    backbone: str
    image_size: int | None    # None: the backbone's own (pixels: native size for array data)
    reduce: str               # "none" | "umap:10" | ...
    join: tuple[str, ...] = ()   # more spaces ("name@size") reduced alike and clustered beside it

    @property
    def spaces(self) -> tuple[str, ...]:
        """Every space of the route as "name[@size]", the backbone's first."""
        return (space_name(self.backbone, self.image_size), *self.join)

    @property
    def name(self) -> str:
        tail = f" → {self.reduce}" if self.reduce != "none" else ""
        return " + ".join(f"{s}{tail}" for s in self.spaces)

    @property
    def parts(self) -> tuple[Route, ...]:
        """A joined route's single-space routes (a single route: itself)."""
        if not self.join:
            return (self,)
        from core.config import parse_space

        return tuple(Route(*parse_space(s), self.reduce) for s in self.spaces)


def space_name(backbone: str, image_size: int | None) -> str:
    return f"{backbone}@{image_size}" if image_size else backbone


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
                     reduce: str = AUTO, device: str = "auto") -> list[Route]:
    """The routes worth trying on ``dataset``; fixed choices (not ``auto``) keep only matching ones."""
    side = _side(dataset)
    spaces: list[tuple[str, int | None]] = [("pixels", None), (OFFLINE_CNN, SMALL_SIZE)]
    if side >= 128 and len(dataset) <= LARGE_MAX_IMAGES:
        spaces.append((OFFLINE_CNN, LARGE_SIZE))   # photos, few enough to afford the CNN's own size
    if backbone == AUTO and image_size is None:
        spaces += [(name, None) for name in _ready_foundation(len(dataset), device)]
    if backbone != AUTO:
        sizes = {s for b, s in spaces if b == backbone}
        spaces = [(backbone, image_size if image_size is not None else (min(sizes) if sizes else None))]
    elif image_size is not None:
        spaces = [(b, image_size if b != "pixels" else None) for b, _ in spaces[:2]]
    reductions = ["none", "umap:10"] if len(dataset) >= UMAP_MIN_IMAGES else ["none"]
    if reduce != AUTO:
        reductions = [reduce]
    spaces = list(dict.fromkeys(spaces))
    routes = [Route(b, s, r) for b, s in spaces for r in reductions]
    if backbone == AUTO and len(spaces) > 1 and JOIN_REDUCE in reductions:
        # every space at once: each makes its own mistakes, side by side they outvote them
        # (digits 0.899 -> 0.932, the Fashion-MNIST train folder 0.565 -> 0.662: bench/RESULTS.md)
        (b0, s0), rest = spaces[0], spaces[1:]
        routes.append(Route(b0, s0, JOIN_REDUCE, tuple(space_name(b, s) for b, s in rest)))
    return routes


def _ready_foundation(n_images: int, device: str) -> list[str]:
    """Foundation backbones worth trying: weights cached here (no download, no network), and a GPU
    or few enough images for the CPU."""
    from core.device import resolve_device
    from core.features.backbones import ready_foundation_backbones

    if resolve_device(device).type != "cuda" and n_images > FOUNDATION_CPU_MAX_IMAGES:
        return []
    return ready_foundation_backbones()


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
    from core.pipeline import build_clusterer, clustering_space, compute_features, scaled

    eligible = candidate_routes(dataset, backbone=backbone, image_size=image_size, reduce=reduce, device=device)
    if len(eligible) == 1:
        only = eligible[0]
        return RouteChoice(only, (RouteEvidence(only, float("nan"), 0.0),),
                           f"{only.name} is the only route your settings leave")
    voters = list(dict.fromkeys([*eligible, *candidate_routes(dataset, image_size=image_size, device=device)]))
    # single spaces first: a joined route reuses their reduced spaces
    voters.sort(key=lambda r: len(r.join) > 0)
    say = progress or (lambda *a: None)
    labels, seconds = [], []
    spaces: dict[Route, tuple[np.ndarray, float]] = {}
    for n, route in enumerate(voters):
        say("route", n / len(voters), f"trying {route.name} ({n + 1} of {len(voters)})")
        t = time.perf_counter()
        cfg = ClusterConfig(algo="kmeans", k=k, metric=metric, seed=seed, reduce=route.reduce)
        for part in route.parts:
            if part not in spaces:
                tp = time.perf_counter()
                feats, _, key, _ = compute_features(   # its extraction's progress shows as the run's would
                    dataset, FeatureConfig(backbone=part.backbone, image_size=part.image_size, device=device),
                    workspace, progress=progress, should_stop=should_stop)
                X = clustering_space(feats, cfg, cache_dir=Path(workspace) / "reduced", feature_key=key)
                spaces[part] = (X, time.perf_counter() - tp)
        if route.join:
            X = np.concatenate([scaled(spaces[p][0]) for p in route.parts], axis=1)
            extra = sum(spaces[p][1] for p in route.parts)   # what it costs on its own
        else:
            X, extra = spaces[route][0], 0.0
        labels.append(build_clusterer(cfg, device=device).fit(X).labels_)
        seconds.append(time.perf_counter() - t + extra)
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

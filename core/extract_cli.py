"""`python -m core extract`: extract (or resume extracting) a dataset's features into the
workspace's feature cache, on this machine or, with ``--ray ADDRESS``, on a Ray cluster.

A stopped run (Ctrl-C) keeps its finished shards; running the same command again resumes.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def add_extract_parser(sub: Any) -> None:
    ex = sub.add_parser("extract", help="extract features into the cache (resumes a stopped run; --ray for a cluster)")
    ex.add_argument("--data", required=True, help="a folder, a .zip, a demo name or torchvision:NAME")
    ex.add_argument("--limit", type=int, default=None, help="use only the first N images")
    ex.add_argument("--backbone", default="efficientnet_lite0", help="see `python -m core backbones`")
    ex.add_argument("--image-size", type=int, default=None, help="pixels; default: the backbone's")
    ex.add_argument("--batch-size", type=int, default=64)
    ex.add_argument("--pca-dim", type=int, default=None, help="pixels backbone: PCA to this many dims")
    ex.add_argument("--device", default="auto", help="auto | cpu | cuda (on each Ray actor with --ray)")
    ex.add_argument("--ray", default=None, metavar="ADDRESS",
                    help="decode and run the model on a Ray cluster (HOST:6379, ray://HOST:10001 or auto) with "
                         "Ray Data map_batches; every node needs --data at the same path. See docs/scale.md")
    ex.add_argument("--actors", type=int, default=None,
                    help="with --ray: model actors (default: one per GPU, or one per node)")
    ex.add_argument("--gpus-per-actor", type=float, default=None,
                    help="with --ray: GPUs per actor (default: 1 when the cluster has GPUs, else 0)")
    ex.add_argument("--workspace", default=None, help="default: $CLUSTERLENS_HOME or ./workspace")


def cmd_extract(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.config import workspace_dir
    from core.data import open_dataset
    from core.features import FeatureCache, cached_extract
    from core.store import Store

    ws = workspace_dir(args.workspace)
    dataset = open_dataset(args.data, workspace=ws, limit=args.limit)
    cache = FeatureCache(Path(ws) / "features")
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int, rate: float) -> None:
        now = time.perf_counter()
        if now - last[0] >= 2 or done == total:
            last[0] = now
            print(f"features: {done:,}/{total:,} images" + (f", {rate:.0f} img/s" if rate else ""),
                  file=sys.stderr, flush=True)

    opts = dict(image_size=args.image_size, batch_size=args.batch_size, device=args.device, pca_dim=args.pca_dim,
                progress=progress)
    if args.ray:
        from core.features.ray_extract import ray_extract

        feats, hit, key = ray_extract(cache, dataset, args.backbone, address=args.ray, source=args.data,
                                      workspace=ws, actors=args.actors, num_gpus=args.gpus_per_actor, **opts)
    else:
        feats, hit, key = cached_extract(cache, dataset, args.backbone, **opts)
    with Store(ws) as store:   # the workspace lists what was extracted (as `run` does)
        ds_id = store.upsert_dataset(dataset, args.data)
        if key:
            store.record_features(ds_id, key, args.backbone, args.image_size, int(feats.shape[1]), cache.root / key)
    how = "from the cache" if hit else f"in {time.perf_counter() - t0:.1f} s" + (" on Ray" if args.ray else "")
    print(f"features {feats.shape[0]:,} x {feats.shape[1]} {how}: {cache.root / key}")
    return 0


def add_run_ray_option(run: Any) -> None:
    run.add_argument("--ray", default=None, metavar="ADDRESS",
                     help="extract the features on a Ray cluster first (as `extract --ray`; needs --backbone NAME), "
                          "then cluster here; see docs/scale.md")


def extract_for_run(args: argparse.Namespace) -> None:
    """`run --ray ADDRESS`: the backbone's features into the cache on the cluster, so the run that
    follows finds them there (the same key: same data, backbone, size, PCA)."""
    from pathlib import Path

    from core.config import workspace_dir
    from core.data import open_dataset
    from core.errors import ParameterError
    from core.features import FeatureCache
    from core.features.backbones import BACKBONES
    from core.features.ray_extract import ray_extract

    if args.backbone == "auto" or args.backbone not in BACKBONES or args.backbone == "checkpoint":
        raise ParameterError(f"run --ray extracts one built-in backbone's features on the cluster, not "
                             f"{args.backbone!r}: give --backbone NAME (see `python -m core backbones`) and "
                             "--image-size, or extract with `python -m core extract --ray` first")
    ws = workspace_dir(args.workspace)
    dataset = open_dataset(args.data, workspace=ws, limit=args.limit)
    ray_extract(FeatureCache(Path(ws) / "features"), dataset, args.backbone, address=args.ray, source=args.data,
                workspace=ws, image_size=args.image_size, batch_size=args.batch_size, device=args.device,
                pca_dim=args.pca_dim)


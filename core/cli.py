"""`python -m core ...`: the engine from the command line.

Human-readable progress and messages go to stderr; with --json the run summary is the last line
of stdout, so scripts can read it with `tail -n1`.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from core.config import (
    MAP_METHODS,
    METRICS,
    RETRAIN_REFINE,
    ClusterConfig,
    DataConfig,
    FeatureConfig,
    MapConfig,
    RunConfig,
    workspace_dir,
)
from core.errors import ClusterLensError
from core.extract_cli import add_extract_parser, add_run_ray_option, cmd_extract, extract_for_run


def _param(text: str) -> tuple[str, Any]:
    """--param key=value; the value is parsed as JSON when it can be (numbers, true, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param wants key=value, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="ClusterLens: cluster images you can trust.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="extract features, cluster, score and map a dataset")
    run.add_argument("--data", required=True, help="a folder, a .zip, a demo name or torchvision:NAME")
    run.add_argument("--limit", type=int, default=None, help="use only the first N images")
    run.add_argument("--backbone", default="auto",
                     help="see `python -m core backbones`; auto (default): chosen from the data, with --reduce")
    run.add_argument("--checkpoint", default=None, help="with --backbone checkpoint: a state-dict file")
    run.add_argument("--image-size", type=int, default=None,
                     help="pixels; default: chosen with the route (EfficientNet-Lite0: 64; 224 for few large photos)")
    run.add_argument("--join", action="append", default=[], metavar="BACKBONE[@SIZE]",
                     help="cluster another space beside the backbone's (repeat for more): each is reduced as "
                          "--reduce says, scaled alike and joined; the auto route may choose this itself. "
                          "temi takes the spaces apart (kNN pairs from each)")
    run.add_argument("--batch-size", type=int, default=64)
    run.add_argument("--pca-dim", type=int, default=None, help="pixels backbone: PCA to this many dims")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda")
    run.add_argument("--algo", default="kmeans", help="kmeans | dac | ruc | temi (a head for frozen features)")
    run.add_argument("--k", type=int, default=10, help="number of clusters")
    run.add_argument("--metric", default="euclidean", choices=METRICS)
    run.add_argument("--reduce", default="auto",
                     help="none | pca:N | umap:N, applied before clustering; auto (default): chosen from the data")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE",
                     help="algorithm option, repeatable (e.g. --param epochs=30); "
                          "`python -m core algorithms NAME` lists them")
    run.add_argument("--map", default="umap", choices=MAP_METHODS, help="2-D map method")
    run.add_argument("--json", action="store_true", help="print the run summary as JSON on the last line")
    run.add_argument("--workspace", default=None, help="default: $CLUSTERLENS_HOME or ./workspace")
    add_run_ray_option(run)

    tb = sub.add_parser("train-backbone", help="train a backbone on your own images (no labels used)")
    tb.add_argument("--data", required=True, help="a folder, a .zip, a demo name or torchvision:NAME")
    tb.add_argument("--limit", type=int, default=None)
    tb.add_argument("--method", required=True, choices=["rotation", "simclr", "metric"])
    tb.add_argument("--arch", default="auto", help="auto | convnet_small | resnet18_small")
    tb.add_argument("--image-size", type=int, default=None)
    tb.add_argument("--epochs", type=int, default=None,
                    help="default: about 560 optimiser steps, at least 10 epochs (40 for the digits)")
    tb.add_argument("--batch-size", type=int, default=128)
    tb.add_argument("--lr", type=float, default=None)
    tb.add_argument("--temperature", type=float, default=0.5, help="SimCLR's NT-Xent temperature")
    tb.add_argument("--augment", default="auto", choices=["auto", "standard", "gentle", "mild"],
                    help="SimCLR's views: auto = gentle (no mirror, small rotations) up to 16 px, "
                         "mild (crops of 70-100%% of the area + mirror) up to 32 px, standard above")
    tb.add_argument("--feature", default="auto", choices=["auto", "backbone", "projection"],
                    help="SimCLR: what the saved backbone outputs; auto = backbone (the layer before "
                         "the projection head); projection = the head's 128-d output")
    tb.add_argument("--init", default=None, help="metric: the backbone to refine (trained name or file)")
    tb.add_argument("--k", type=int, default=10, help="metric: clusters for the pseudo-labels")
    tb.add_argument("--name", default=None, help="default: METHOD-ARCH-DATASET")
    tb.add_argument("--seed", type=int, default=0)
    tb.add_argument("--device", default="auto")
    tb.add_argument("--workspace", default=None)
    tb.add_argument("--json", action="store_true")

    ds = sub.add_parser("datasets", help="list the built-in datasets and whether they can be used here")
    ds.add_argument("--json", action="store_true")
    al = sub.add_parser("algorithms", help="list the clustering algorithms and their --param options")
    al.add_argument("name", nargs="?", default=None, help="one algorithm (default: all)")
    al.add_argument("--json", action="store_true")
    bb = sub.add_parser("backbones", help="list backbones and whether their weights can be had here")
    bb.add_argument("--workspace", default=None)
    bb.add_argument("--json", action="store_true")
    runs = sub.add_parser("runs", help="list the runs in a workspace")
    runs.add_argument("--workspace", default=None)
    runs.add_argument("--json", action="store_true")
    ex = sub.add_parser("export", help="export a run's current labels (with corrections) as csv, json or folders")
    ex.add_argument("--workspace", default=None)
    ex.add_argument("--run", type=int, required=True, help="run id (see `python -m core runs`)")
    ex.add_argument("--format", required=True, choices=["csv", "json", "imagefolder"])
    ex.add_argument("--out", required=True, help="a file (csv, json) or an empty folder (imagefolder), "
                                                 "outside the workspace")
    ex.add_argument("--overwrite", action="store_true",
                    help="replace an earlier ClusterLens export there (never any other file or folder, "
                         "nor one edited since)")
    ex.add_argument("--link", action="store_true", help="imagefolder: symlink the images instead of copying")
    ex.add_argument("--json", action="store_true", help="print the export summary as JSON")
    rt = sub.add_parser("retrain", help="train DAC or RUC again with a run's corrections held fixed (a new run)")
    rt.add_argument("--workspace", default=None, help="default: $CLUSTERLENS_HOME or ./workspace")
    rt.add_argument("--run", type=int, required=True, help="the reviewed run (see `python -m core runs`)")
    rt.add_argument("--algo", default=None, choices=["ruc", "dac"],
                    help="default: the run's own when it is dac or ruc, else ruc")
    rt.add_argument("--epochs", type=int, default=None, help="training epochs (default: as the run had)")
    rt.add_argument("--seed", type=int, default=None, help="default: the run's seed")
    rt.add_argument("--refine", default="start", choices=list(RETRAIN_REFINE),
                    help="ruc: refine the labels the run's RUC started from (default) or the run's current "
                         "labels; corrections are applied to either")
    rt.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE",
                    help="algorithm option, repeatable (e.g. --param lr=0.01)")
    rt.add_argument("--json", action="store_true", help="print the new run's summary as JSON on the last line")
    stg = sub.add_parser("storage", help="list the stored uploads and extracted archives; remove them")
    stg.add_argument("--workspace", default=None, help="default: $CLUSTERLENS_HOME or ./workspace")
    rm = stg.add_mutually_exclusive_group()
    rm.add_argument("--remove", metavar="NAME", default=None, help="remove one entry, by its listed name")
    rm.add_argument("--remove-unused", action="store_true",
                    help="remove every entry no dataset or run uses (ones under an hour old are kept: "
                         "an open app session may be using them)")
    stg.add_argument("--json", action="store_true", help="print the listing or what was removed as JSON")
    sk = sub.add_parser("suggest-k", help="suggest k without labels: a criterion over a range of k, and its best k")
    sk.add_argument("--data", required=True, help="a folder, a .zip, a demo name or torchvision:NAME")
    sk.add_argument("--limit", type=int, default=None, help="use only the first N images")
    sk.add_argument("--backbone", default="efficientnet_lite0", help="see `python -m core backbones`")
    sk.add_argument("--image-size", type=int, default=None, help="pixels; default: as `run` picks for the backbone")
    sk.add_argument("--reduce", default="none", help="none | pca:N | umap:N: the space you will cluster in")
    sk.add_argument("--k-min", type=int, default=2)
    sk.add_argument("--k-max", type=int, default=20)
    sk.add_argument("--seed", type=int, default=0, help="the subsample, k-means and a UMAP reduction")
    sk.add_argument("--device", default="auto", help="for feature extraction: auto | cpu | cuda")
    sk.add_argument("--workspace", default=None, help="default: $CLUSTERLENS_HOME or ./workspace")
    sk.add_argument("--json", action="store_true", help="print the suggestion as JSON on the last line")
    add_extract_parser(sub)   # `extract` and its --ray option live in core/extract_cli.py
    return p


def _progress_printer(quiet: bool):
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(stage: str, fraction: float, message: str) -> None:
        if quiet:
            return
        if stage == "features" and "img/s" in message:   # per-batch extraction progress
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=100, desc="features", file=sys.stderr,
                                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
            bar.n = round(fraction * 100)
            bar.set_postfix_str(message, refresh=True)
            if fraction >= 1.0:   # the next extraction (the route tries several) gets a bar of its own
                bars.pop(stage).close()
        elif stage == "cluster" and message.startswith("{"):   # one training epoch / iteration
            line = _epoch_line(json.loads(message))
            if line:
                print(line, file=sys.stderr)
        else:
            print(f"[{stage}] {message}", file=sys.stderr)

    return progress


def _epoch_line(rec: dict[str, Any]) -> str | None:
    """One DAC/RUC training epoch as a short line; None for records without an epoch (k-means
    iterations). ACC and clean-set precision appear only when the data has ground truth."""
    if "epoch" not in rec:
        return None
    parts = [f"loss {rec['loss']:.4f}"] if "loss" in rec else []
    if "clean_fraction" in rec:
        clean = f"clean {100 * rec['clean_fraction']:.1f} %"
        if "clean_precision" in rec:
            clean += f" (precision {rec['clean_precision']:.3f})"
        parts.append(clean)
    if "selected_fraction" in rec:
        parts.append(f"selected {100 * rec['selected_fraction']:.1f} %")
    if "acc" in rec:
        parts.append(f"ACC {rec['acc']:.3f}")
    head = f"  epoch {rec['epoch']}" + (f" (restart {rec['init']})" if "init" in rec else "")
    return head + ": " + ", ".join(parts)


def _emit(args: argparse.Namespace, summary: Any, text: str) -> int:
    """--json: the summary as one JSON line (scripts read the last line); else a sentence."""
    print(json.dumps(summary) if args.json else text)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from core.pipeline import run_pipeline

    if args.ray:   # features on the Ray cluster first; the pipeline then reads them from the cache
        extract_for_run(args)
    cfg = RunConfig(
        data=DataConfig(source=args.data, limit=args.limit),
        features=FeatureConfig(backbone=args.backbone, image_size=args.image_size, batch_size=args.batch_size,
                               device=args.device, pca_dim=args.pca_dim, checkpoint=args.checkpoint,
                               join=tuple(args.join)),
        cluster=ClusterConfig(algo=args.algo, k=args.k, metric=args.metric, seed=args.seed, reduce=args.reduce,
                              params=dict(args.param)),
        map=MapConfig(method=args.map, seed=args.seed),
        workspace=str(workspace_dir(args.workspace)),
    )
    result = run_pipeline(cfg, progress=_progress_printer(quiet=False))
    return _report_run(args, result, cfg.workspace)


def _report_run(args: argparse.Namespace, result: Any, workspace: str) -> int:
    """What `run` and `retrain` print: skipped files on stderr; the summary (JSON or text)."""
    summary = result.summary()
    from core.cluster.dac_guard import kept_start_message

    kept = kept_start_message(result.history)   # DAC/RUC ended below their start: say so
    if kept:
        summary["kept_start"] = kept
    if result.dataset.skipped:
        print(f"skipped {len(result.dataset.skipped)} file(s):", file=sys.stderr)
        for s in result.dataset.skipped[:50]:
            print(f"  {s.id}: {s.reason}", file=sys.stderr)
        if len(result.dataset.skipped) > 50:
            print(f"  … and {len(result.dataset.skipped) - 50} more (all listed in the workspace)", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    else:
        sc = summary["scores"]
        parent = f" (retrained from run {summary['parent_run']})" if summary.get("parent_run") else ""
        print(f"run {result.run_id}{parent}: {summary['n_samples']} images, {sc['n_clusters']} clusters "
              f"({'cached' if result.features_from_cache else 'new'} features)")
        for key in ("acc", "nmi", "ari", "silhouette", "davies_bouldin", "calinski_harabasz"):
            if sc.get(key) is not None:
                print(f"  {key:18s} {sc[key]:.4f}")
        if kept:
            print(f"  {kept}")
        print(f"  labels: {workspace}/{summary['artifacts']['labels_csv']}")
        if summary.get("route"):
            _print_route(summary["route"])
    return 0


def _print_route(route: dict[str, Any]) -> None:
    """Which route the data chose, why, and the runners-up (each with the flags that pick it)."""
    print(f"route: {route['why']}")
    for c in route["candidates"]:
        r = c["route"]
        flags = f"--backbone {r['backbone']}" + (f" --image-size {r['image_size']}" if r["image_size"] else "")
        flags += "".join(f" --join {s}" for s in r.get("join") or ())
        mark = "*" if c["name"] == route["chosen_name"] else " "
        agree = "  —  " if c["agreement"] is None else f"{c['agreement']:.3f}"
        print(f"  {mark} {c['name']:50s} agreement {agree}  {c['seconds']:6.1f} s   "
              f"{flags} --reduce {r['reduce']}")


def cmd_retrain(args: argparse.Namespace) -> int:
    from core.retrain import retrain

    ws = workspace_dir(args.workspace)
    params = dict(args.param)
    if args.epochs is not None:
        params["epochs"] = args.epochs
    result = retrain(ws, args.run, algo=args.algo, params=params or None, seed=args.seed, refine=args.refine,
                     progress=_progress_printer(quiet=False))
    return _report_run(args, result, str(ws))


def cmd_train_backbone(args: argparse.Namespace) -> int:
    from core.data import open_dataset
    from core.ssl.train import train_backbone

    ws = workspace_dir(args.workspace)
    dataset = open_dataset(args.data, workspace=ws, limit=args.limit)

    def progress(epoch: int, n_epochs: int, record: dict[str, Any]) -> None:
        print(f"  epoch {epoch}/{n_epochs}: loss {record.get('loss', float('nan')):.4f}, "
              f"{record.get('images_per_s', 0):.0f} img/s", file=sys.stderr)

    trained = train_backbone(dataset, args.method, workspace=ws, arch=args.arch, image_size=args.image_size,
                             epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             temperature=args.temperature, augment=args.augment, feature=args.feature,
                             seed=args.seed,
                             device=args.device,
                             progress=progress, init_checkpoint=args.init, n_clusters=args.k, name=args.name)
    summary = {"name": trained.name, "path": str(trained.path), "epochs": len(trained.history),
               "final_loss": trained.history[-1]["loss"] if trained.history else None}
    return _emit(args, summary, f"saved backbone {trained.name!r} ({trained.path}); use it with "
                                f"`python -m core run --backbone {trained.name} --workspace {ws} ...`")


def cmd_datasets(args: argparse.Namespace) -> int:
    from core.data import list_datasets

    return _print_available(args, list_datasets(), "\nAlso: any folder of images (class sub-folders give "
                                                   "optional ground truth) or a .zip of one.")


def _print_available(args: argparse.Namespace, rows: list[dict], footer: str | None = None) -> int:
    """Datasets or backbones: JSON, or one line each with whether it can be used here and why not."""
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        # foundation backbones say their own state: ready / downloads N MB on first use / no internet: ...
        state = r.get("state") or ("ok" if r["available"] else f"not available: {r['why']}")
        print(f"{r['name']:22s} {r['description']}  [{state}]")
    if footer:
        print(footer)
    return 0


def cmd_algorithms(args: argparse.Namespace) -> int:
    from core.cluster.base import RUN_PARAMS
    from core.cluster.registry import CLUSTERERS, available, clusterer_class

    names = available() if args.name is None else [args.name]
    CLUSTERERS.get(names[0])   # an unknown name fails here, listing the known ones
    rows = []
    for name in names:
        cls = clusterer_class(name)
        docs, choices = cls.parameter_docs(), cls.param_choices
        rows.append({"name": name, "summary": (cls.__doc__ or "").strip().splitlines()[0],
                     "params": [{"name": k, "default": v, "choices": list(choices.get(k, ())), "doc": docs.get(k, "")}
                                for k, v in cls().get_params().items() if k not in RUN_PARAMS]})
    if args.json:
        print(json.dumps(rows, default=repr))
        return 0
    for r in rows:
        print(f"{r['name']}: {r['summary']}")
        for p in r["params"]:
            pick = f"  one of: {', '.join(p['choices'])}" if p["choices"] else ""
            print(f"  --param {p['name']}={json.dumps(p['default'], default=repr)}{pick}")
            if p["doc"]:
                print(textwrap.fill(p["doc"], width=100, initial_indent=" " * 6, subsequent_indent=" " * 6))
        print()
    print("k, the seed, the metric and the device are `run`'s own --k, --seed, --metric and --device.")
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from core.features.backbones import list_backbones

    return _print_available(args, list_backbones(workspace=workspace_dir(args.workspace)))


def cmd_runs(args: argparse.Namespace) -> int:
    from core.store import Store

    with Store(workspace_dir(args.workspace)) as store:
        rows = store.runs()
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        sc = r["scores"] or {}
        extra = " ".join(f"{k}={sc[k]:.3f}" for k in ("acc", "nmi", "silhouette") if sc.get(k) is not None)
        if r["status"] in ("failed", "cancelled") and r.get("message"):
            extra = r["message"]   # why: what the person has to change before running it again
        print(f"run {r['id']:4d}  {r['algo']:7s} k={r['k']:<3d} {r['status']:9s} {extra}".rstrip())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.export import export_run
    from core.store import Store

    with Store(workspace_dir(args.workspace)) as store:
        summary = export_run(store, args.run, args.format, args.out, overwrite=args.overwrite, link=args.link)
    return _emit(args, summary, f"exported run {args.run}: {summary['n_samples']} samples in "
                                f"{summary['clusters']} clusters ({summary['n_corrected']} corrected) "
                                f"to {summary['path']}")


def cmd_storage(args: argparse.Namespace) -> int:
    from core.data.stored import human_size, list_stored, remove_stored, remove_unused

    ws = workspace_dir(args.workspace)
    if args.remove:
        item = remove_stored(ws, args.remove)
        used = "; it was used by " + ", ".join(map(str, item.used_by)) if item.used else ""
        back = (" (upload the same files again to get it back)" if item.kind.startswith("uploaded") else
                " (re-extracted from its archive when a dataset opens it again)" if item.used else "")
        return _emit(args, item.row(), f"removed {item.kind} {item.name} ({human_size(item.size)}){used}{back}")
    if args.remove_unused:
        done = remove_unused(ws)
        lines = [f"removed {len(done.removed)} unused entr{'y' if len(done.removed) == 1 else 'ies'} "
                 f"({human_size(done.freed)})" + "".join(f"\n  {i.name}" for i in done.removed)]
        if done.recent:
            lines.append(f"kept {len(done.recent)} unused entr{'y' if len(done.recent) == 1 else 'ies'} under an "
                         "hour old (an open app session may be using it; --remove NAME removes one now): "
                         + ", ".join(i.name for i in done.recent))
        return _emit(args, {"removed": [i.row() for i in done.removed], "kept_recent": [i.row() for i in done.recent]},
                     "\n".join(lines))
    items = list_stored(ws)
    if args.json:
        print(json.dumps([i.row() for i in items]))
        return 0
    for i in items:
        row = i.row()
        print(f"{i.kind:15s} {i.name:40s} {row['size_text']:>9s}  {row['created']}  "
              f"{', '.join(row['used_by']) or 'unused'}")
    unused = [i for i in items if not i.used]
    print(f"{len(items)} entr{'y' if len(items) == 1 else 'ies'}, {human_size(sum(i.size for i in items))} in {ws}; "
          f"{len(unused)} unused ({human_size(sum(i.size for i in unused))})"
          + ("; `--remove-unused` removes them" if unused else ""))
    return 0


def cmd_suggest_k(args: argparse.Namespace) -> int:
    from core.cluster.suggest_k import suggest_k_for
    from core.data import open_dataset
    from core.errors import ParameterError
    from core.route import AUTO, candidate_routes

    if AUTO in (args.backbone, args.reduce):
        raise ParameterError("suggest-k needs a fixed --backbone and --reduce (auto chooses them with a k); "
                               "e.g. --backbone efficientnet_lite0 --reduce umap:10")
    ws = workspace_dir(args.workspace)
    dataset = open_dataset(args.data, workspace=ws, limit=args.limit)
    route = candidate_routes(dataset, backbone=args.backbone, image_size=args.image_size, reduce=args.reduce)[0]
    feats = FeatureConfig(backbone=route.backbone, image_size=route.image_size, device=args.device)
    s = suggest_k_for(dataset, feats, ws, reduce=args.reduce, seed=args.seed, k_min=args.k_min, k_max=args.k_max,
                      progress=_progress_printer(quiet=False))
    summary = {"dataset": dataset.name, "n_images": len(dataset), "backbone": feats.backbone,
               "image_size": feats.image_size, "reduce": args.reduce, "seed": args.seed, **s.to_dict()}
    if args.json:
        print(json.dumps(summary))
        return 0
    crit = s.criterion
    size = f"@{feats.image_size}" if feats.image_size else ""
    print(f"suggested k = {s.k}: the {crit.name} is {'highest' if crit.higher_is_better else 'lowest'} there")
    print(f"{crit.name}: {crit.meaning}")
    print(f"{dataset.name}, {feats.backbone}{size}, reduce {args.reduce}: {s.n_samples:,} of {len(dataset):,} "
          f"images, {s.seconds:.1f} s")
    print(_k_table(s))
    return 0


def _k_table(s: Any) -> str:
    """One line per k: the score and a bar from the worst (short) to the best (long) score."""
    vals = [v for v in s.scores if v == v]
    lo, hi = min(vals), max(vals)
    lines = [f"{'k':>5s}  {s.criterion.name}"]
    for k, v in zip(s.ks, s.scores, strict=True):
        if v != v:   # NaN: undefined at this k
            lines.append(f"{k:5d}  {'—':>10s}")
            continue
        good = (v - lo) / (hi - lo) if hi > lo else 1.0
        bar = "█" * (1 + round(20 * (good if s.criterion.higher_is_better else 1 - good)))
        lines.append(f"{'→' if k == s.k else ' '}{k:4d}  {v:10.4f}  {bar}{'  suggested' if k == s.k else ''}")
    return "\n".join(lines)


COMMANDS = {"run": cmd_run, "train-backbone": cmd_train_backbone, "datasets": cmd_datasets,
            "algorithms": cmd_algorithms, "backbones": cmd_backbones, "runs": cmd_runs, "export": cmd_export,
            "retrain": cmd_retrain, "storage": cmd_storage, "suggest-k": cmd_suggest_k}
COMMANDS["extract"] = cmd_extract


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ClusterLensError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs in the workspace are intact", file=sys.stderr)
        return 130
    except OSError as e:
        from core.store import DISK_FULL_ERRNOS, disk_full_message

        if e.errno not in DISK_FULL_ERRNOS:
            raise
        # A write no engine step caught (an array file, an export): one line, not a traceback.
        where = e.filename or f"the workspace {workspace_dir(getattr(args, 'workspace', None))}"
        print(f"error: {disk_full_message(where)}", file=sys.stderr)
        return 2

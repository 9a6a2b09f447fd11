"""The GPU paths next to their CPU counterparts, measured on one machine in one run.

    python bench/bench_gpu.py [--sections kmeans,extract,dac,simclr] [--simclr-seconds 90]

bench/gpu_session.sh runs it (and bench_ruc.py on the GPU) on a lent GPU machine; RESULTS.md,
"GPU", holds the figures. Each section prints one table; "CPU" is the same machine's cores.

- kmeans: Fashion-MNIST 70,000 × 784, k=10, k-means++, n_init=3: scikit-learn and ours on all
  CPU cores, ours on the GPU, one row per --repeats (the same seed for all three). Seconds,
  time and inertia over scikit-learn's (ours CPU / ours GPU), ACC (scoring only), GPU peak
  memory over the size of X.
- extract: ResNet-18 (random init, through a checkpoint) and EfficientNet-Lite0 (ImageNet) at
  224 and 64 px. Images/s of the bare forward on device tensors (the same fp16 autocast and
  channels_last as ``extract_features``), of ``extract_features`` on the Fashion-MNIST test set
  held as arrays (resized on the GPU) and as PNG files (decoded on the CPU), and of the CPU
  path; "cos min": the lowest cosine between GPU and CPU features of the same 256 images.
- dac: the end-to-end DAC ConvNet on Fashion-MNIST images, images/s trained (bench_dac.gpu_speed).
- simclr: SimCLR on the Fashion-MNIST test set (10,000, labels unused), the engine's defaults:
  images/s trained on the GPU and on the CPU (one epoch on 2,048 images), then as many GPU
  epochs as fit in --simclr-seconds (the schedule set for that many), scored by k-means on the
  extracted features (ACC/NMI/ARI against the labels: scoring only).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

SECTIONS = ("kmeans", "extract", "dac", "simclr")


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bench_kmeans(dev: torch.device, repeats: int, n_init: int = 3) -> None:
    from _fmnist import load
    from bench_kmeans import timed
    from sklearn.cluster import KMeans as SKKMeans
    from threadpoolctl import threadpool_limits

    from core.cluster.kmeans import KMeans
    from core.metrics import external_scores

    X, y = load("all")
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    KMeans(n_clusters=10, n_init=1, random_state=0, device=str(dev)).fit(X[:4096])   # CUDA context, kernels
    makers = {
        "scikit-learn, CPU": lambda r: SKKMeans(n_clusters=10, n_init=n_init, random_state=r),
        "ours, CPU": lambda r: KMeans(n_clusters=10, n_init=n_init, random_state=r, device="cpu"),
        f"ours, {dev.type.upper()}": lambda r: KMeans(n_clusters=10, n_init=n_init, random_state=r, device=str(dev)),
    }
    runs: list[dict[str, tuple]] = []
    with threadpool_limits(cores):
        for rep in range(repeats):
            runs.append({})
            for name, make in makers.items():
                on_gpu = dev.type == "cuda" and name.endswith("CUDA")
                if on_gpu:
                    torch.cuda.reset_peak_memory_stats(dev)
                sec, _, m = timed(lambda make=make, rep=rep: make(rep).fit(X))
                mem = torch.cuda.max_memory_allocated(dev) / X.nbytes if on_gpu else 0.0
                acc = external_scores(y, m.labels_)["acc"]
                print(f"  run {rep} {name:18s} {sec:7.2f} s inertia {m.inertia_:.6g} acc {acc:.3f}", file=sys.stderr)
                runs[-1][name] = (sec, m.inertia_, acc, mem)
    print(f"\nk-means: Fashion-MNIST {X.shape}, k=10, n_init={n_init}, {cores} CPU cores; run r = random_state r\n")
    names = list(makers)
    print("| run | " + " | ".join(f"{n} s" for n in names) + " | time ÷ scikit-learn's | inertia ÷ scikit-learn's "
          "| ACC | GPU peak memory / X |")
    print("|---|" + "---|" * (len(names) + 4))
    for rep, r in enumerate(runs):
        sk = r[names[0]]
        print(f"| {rep} | " + " | ".join(f"{r[n][0]:.2f}" for n in names) + " | "
              + " / ".join(f"{r[n][0] / sk[0]:.2f}" for n in names[1:]) + " | "
              + " / ".join(f"{r[n][1] / sk[1]:.4f}" for n in names[1:]) + " | "
              + " / ".join(f"{r[n][2]:.3f}" for n in names) + f" | {r[names[-1]][3]:.2f}x |")


def _pure_rate(model: torch.nn.Module, dev: torch.device, size: int, batch: int, seconds: float) -> float:
    from core.features.extract import forward

    x = torch.randn(batch, 3, size, size, device=dev)
    if dev.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(3):
            forward(model, x)
        _sync(dev)
        t, n = time.perf_counter(), 0
        while time.perf_counter() - t < seconds:
            forward(model, x).float().cpu()   # extract_features copies each batch's features back too
            n += batch
        _sync(dev)
    return n / (time.perf_counter() - t)


def bench_extract(dev: torch.device, batch: int, seconds: float, images: int) -> None:
    from bench_extract import e2e_rate, fashion_pngs, head, open_pngs

    from core.data.demos import load_fashion
    from core.features import ARCHS, get_backbone, save_backbone_checkpoint

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "pngs").mkdir()
        fashion_pngs(tmp_path / "pngs", images)
        ds_png = open_pngs(tmp_path / "pngs")
        ds_arr = head(load_fashion(("test",), "fashion-mnist"), images)
        torch.manual_seed(0)
        ckpt = save_backbone_checkpoint(tmp_path / "r18.pt", "resnet18", {}, ARCHS.get("resnet18").build().eval())
        cases = [("efficientnet_lite0", "EfficientNet-Lite0 (ImageNet)", {}),
                 ("checkpoint", "ResNet-18 (random init)", {"checkpoint": ckpt})]
        for size in (224, 64):
            for backbone, label, kw in cases:
                model = get_backbone(backbone, kw.get("checkpoint")).build(dev)
                if dev.type == "cuda":
                    model = model.to(memory_format=torch.channels_last)
                pure = _pure_rate(model, dev, size, batch, seconds)
                e2e_rate(head(ds_arr, 2 * batch), backbone, size, batch, str(dev), **kw)   # warm-up
                arr, _, f_gpu = e2e_rate(ds_arr, backbone, size, batch, str(dev), **kw)
                png, _, _ = e2e_rate(ds_png, backbone, size, batch, str(dev), **kw)
                cpu_probe, _, _ = e2e_rate(head(ds_arr, 64), backbone, size, 64, "cpu", **kw)
                m = int(min(len(ds_arr), max(256, cpu_probe * seconds)))
                cpu, _, f_cpu = e2e_rate(head(ds_arr, m), backbone, size, 64, "cpu", **kw)
                cos = float((f_gpu[:256] * f_cpu[:256]).sum(1).min())   # both L2-normalised
                rows.append((label, size, pure, arr, png, cpu, cos))
                print(f"  done: {label} {size}px", file=sys.stderr, flush=True)
    print(f"\nextraction: Fashion-MNIST test set ({images:,}, 28×28), batch {batch} on {dev.type}, 64 on the CPU "
          f"({os.cpu_count()} cores), torch {torch.__version__}\n")
    print("| backbone | px | pure forward img/s | e2e arrays img/s (÷ pure) | e2e PNG files img/s (÷ pure) "
          "| CPU e2e img/s | GPU ÷ CPU | cos min GPU vs CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for label, size, pure, arr, png, cpu, cos in rows:
        print(f"| {label} | {size} | {pure:.0f} | {arr:.0f} ({arr / pure:.2f}) | {png:.0f} ({png / pure:.2f}) "
              f"| {cpu:.0f} | {arr / cpu:.1f} | {cos:.4f} |")


def bench_dac(dev: torch.device) -> None:
    import bench_dac

    print("\nDAC end-to-end ConvNet on Fashion-MNIST images, images/s trained (bench_dac.gpu_speed)\n")
    print("| data | what | | | | wall s | images/s |")
    print("|---|---|---|---|---|---|---|")
    for row in bench_dac.gpu_speed(device=dev.type):
        print(row, flush=True)


def bench_simclr(dev: torch.device, budget: float, images: int) -> None:
    from bench_extract import head
    from bench_ssl import l2, score

    from core.data.demos import load_fashion
    from core.features.extract import extract_features
    from core.ssl.train import train_backbone

    ds = head(load_fashion(("test",), "fashion-mnist"), images)
    y = np.asarray(ds.labels)
    sub = head(ds, min(2048, images))
    with tempfile.TemporaryDirectory() as ws:
        cpu = train_backbone(sub, "simclr", workspace=ws, epochs=1, seed=0, device="cpu", name="cpu")
        probe = train_backbone(ds, "simclr", workspace=ws, epochs=1, seed=0, device=str(dev), name="probe")
        rate_cpu = cpu.history[-1]["images_per_s"]
        rate_gpu = probe.history[-1]["images_per_s"]
        epochs = max(1, min(200, math.floor(budget * rate_gpu / len(ds))))
        t = time.perf_counter()
        run = train_backbone(ds, "simclr", workspace=ws, epochs=epochs, seed=0, device=str(dev), name="gpu")
        wall = time.perf_counter() - t
        f = l2(extract_features(ds, "checkpoint", checkpoint=run.path, batch_size=512, device=str(dev)))
        acc, nmi, ari = score(f, y, 0)
    print(f"\nSimCLR on Fashion-MNIST test images ({images:,}, labels unused), engine defaults, seed 0; "
          f"CPU: {os.cpu_count()} cores\n")
    print("| device | epochs | images/s trained | wall s | k-means ACC | NMI | ARI |")
    print("|---|---|---|---|---|---|---|")
    print(f"| CPU | 1 ({len(sub):,} images) | {rate_cpu:.0f} | | | | |")
    rate = float(np.mean([h["images_per_s"] for h in run.history]))
    print(f"| {dev.type.upper()} | {epochs} | {rate:.0f} (× CPU {rate / rate_cpu:.1f}) | {wall:.0f} "
          f"| {acc:.3f} | {nmi:.3f} | {ari:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of: {', '.join(SECTIONS)}")
    ap.add_argument("--device", default="cuda", help="the accelerated device (cpu: a smoke run of this script)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256, help="extraction batch on the device")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each bare-forward / CPU rate measurement")
    ap.add_argument("--images", type=int, default=10_000, help="Fashion-MNIST test images for extract and simclr")
    ap.add_argument("--simclr-seconds", type=float, default=90.0, help="GPU training time SimCLR's epochs are sized to")
    a = ap.parse_args()
    sections = a.sections.split(",")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from: {', '.join(SECTIONS)}")
    from core.device import resolve_device

    dev = resolve_device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}, {os.cpu_count()} CPU cores, sections {sections}", flush=True)
    for s in sections:
        t = time.perf_counter()
        if s == "kmeans":
            bench_kmeans(dev, a.repeats)
        elif s == "extract":
            bench_extract(dev, a.batch, a.seconds, a.images)
        elif s == "dac":
            bench_dac(dev)
        else:
            bench_simclr(dev, a.simclr_seconds, a.images)
        print(f"\n({s}: {time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

"""Extraction speed: pure model forward vs end-to-end extract_features on a folder of PNG files.

    python bench/bench_extract.py [--threads 2] [--seconds 6] [--repeats 2]

For EfficientNet-Lite0 (ImageNet) and ResNet-18 (random weights, via a checkpoint file) at 224 and
64 px: images/s of the bare forward on pre-made tensors, images/s of extract_features over
Fashion-MNIST test images written as PNG (decode → resize → tensor → forward), and the ratio.
"end-to-end" is the steady rate extract_features reports through ``progress`` (model build
excluded); "wall" includes building the model. Each figure is the best of ``--repeats`` runs,
pure and end-to-end interleaved so machine load hits both alike. Target: ratio >= 0.80.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
BATCH = 64


def fashion_pngs(folder: Path, n: int) -> None:
    from PIL import Image

    raw = gzip.open(FMNIST).read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:05d}.png")


def open_pngs(folder: Path):  # type: ignore[no-untyped-def]
    try:
        from core.data.folder import open_folder

        return open_folder(folder)
    except ImportError:   # core.data not there yet: a minimal file-backed dataset
        from PIL import Image

        from core.data.base import ImageDataset

        class Files(ImageDataset):
            def load(self, i: int) -> Image.Image:
                with Image.open(Path(self.root or "") / self.ids[i]) as im:
                    return im.convert("RGB")

        ids = sorted(p.name for p in folder.glob("*.png"))
        return Files(name="pngs", ids=ids, fingerprint="bench", root=str(folder))


def head(ds, n: int):  # type: ignore[no-untyped-def]
    labels = None if ds.labels is None else ds.labels[:n]
    return dataclasses.replace(ds, ids=ds.ids[:n], labels=labels)


def pure_rate(model, size: int, n: int) -> float:  # type: ignore[no-untyped-def]
    import torch

    x = torch.randn(BATCH, 3, size, size)
    with torch.inference_mode():
        model(x[:8])   # warm-up: oneDNN primitives for this shape
        t, done = time.perf_counter(), 0
        while done < n:
            model(x[: min(BATCH, n - done)])
            done += min(BATCH, n - done)
    return n / (time.perf_counter() - t)


def e2e_rate(ds, backbone: str, size: int, batch: int = BATCH, device: str = "cpu",  # type: ignore[no-untyped-def]
             **kw) -> tuple[float, float, np.ndarray]:
    """(steady images/s reported by extract_features, images/s including the model build, features)."""
    from core.features import extract_features

    rates: list[float] = []
    t = time.perf_counter()
    f = extract_features(ds, backbone, image_size=size, batch_size=batch, device=device,
                         progress=lambda d, n, r: rates.append(r), **kw)
    return rates[-1], len(ds) / (time.perf_counter() - t), f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=6.0, help="target length of each measurement")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)   # extract_features keeps it
    import torch

    torch.set_num_threads(args.threads)
    from core.features import ARCHS, get_backbone, save_backbone_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        pngs = tmp_path / "pngs"
        pngs.mkdir()
        fashion_pngs(pngs, 10_000)
        ds_all = open_pngs(pngs)
        torch.manual_seed(0)
        r18 = ARCHS.get("resnet18").build().eval()
        ckpt = save_backbone_checkpoint(tmp_path / "r18.pt", "resnet18", {}, r18)
        cases = [("efficientnet_lite0", "efficientnet_lite0 (ImageNet)", {}, None),
                 ("checkpoint", "resnet18 (random init)", {"checkpoint": ckpt}, r18)]
        rows = []
        for size in (224, 64):
            for backbone, label, kw, model in cases:
                model = model if model is not None else get_backbone(backbone).build(torch.device("cpu"))
                probe = pure_rate(model, size, 2 * BATCH)
                n = int(min(len(ds_all), max(2 * BATCH, probe * args.seconds)))
                ds = head(ds_all, n)
                pure, e2e, wall = 0.0, 0.0, 0.0
                for _ in range(args.repeats):
                    pure = max(pure, pure_rate(model, size, n))
                    r, w, _ = e2e_rate(ds, backbone, size, **kw)
                    e2e, wall = max(e2e, r), max(wall, w)
                rows.append((label, size, n, pure, e2e, wall))
                print(f"  done: {label} {size}px", file=sys.stderr, flush=True)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"Fashion-MNIST 28x28 PNG files, best of {args.repeats}")
    print(f"{'backbone':32s} {'px':>4s} {'images':>7s} {'pure img/s':>11s} {'e2e img/s':>10s} "
          f"{'e2e/pure':>9s} {'wall img/s':>11s} {'wall/pure':>10s}")
    for label, size, n, pure, e2e, wall in rows:
        print(f"{label:32s} {size:4d} {n:7d} {pure:11.1f} {e2e:10.1f} {e2e / pure:9.2f} "
              f"{wall:11.1f} {wall / pure:10.2f}")


if __name__ == "__main__":
    main()

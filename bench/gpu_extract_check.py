"""GPU extraction checks: per-batch times (no slow last batch), padded vs unpadded features,
fp16 features vs the CPU's, and the fp32 re-run of a batch that overflows fp16. Needs CUDA and
the Fashion-MNIST files; bench/gpu_session.sh runs it (figures: bench/RESULTS.md, "GPU").

    python3 bench/gpu_extract_check.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_extract import head  # noqa: E402

from core.data.demos import load_fashion  # noqa: E402
from core.features import extract_features  # noqa: E402
from core.features.extract import forward  # noqa: E402

LITE0 = "efficientnet_lite0"


def per_batch(ds, size: int, batch: int = 256) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Extract on the GPU, printing the first, median and last batch times."""
    stamps: list[float] = []
    t0 = time.perf_counter()
    f = extract_features(ds, LITE0, image_size=size, batch_size=batch, device="cuda",
                         progress=lambda done, n, rate: stamps.append(time.perf_counter()))
    t = np.diff([t0, *stamps])
    print(f"{LITE0} {size}px n={len(ds)} batch {batch}: total {stamps[-1] - t0:.2f} s, first batch "
          f"{t[0] * 1e3:.0f} ms, median {np.median(t[1:]) * 1e3:.1f} ms, slowest after the first "
          f"{t[1:].max() * 1e3:.0f} ms, last {t[-1] * 1e3:.0f} ms; {len(ds) / (stamps[-1] - t0):.0f} img/s", flush=True)
    return f


def main() -> None:
    ds = load_fashion(("test",), "fashion-mnist")   # 10,000 = 39 full batches of 256 + 16
    for size in (64, 224):
        full = per_batch(ds, size)
        per_batch(ds, size)   # the same shapes again in this process
        small = extract_features(ds, LITE0, image_size=size, batch_size=16, device="cuda")
        cos = (full[-16:] * small[-16:]).sum(1)
        print(f"  last 16 rows, padded batch vs a batch of 16: cosine min {cos.min():.5f}")
    sub = head(ds, 256)
    cpu = extract_features(sub, LITE0, image_size=224, batch_size=64, device="cpu")
    gpu = extract_features(sub, LITE0, image_size=224, batch_size=256, device="cuda")
    cos = (gpu * cpu).sum(1)
    print(f"{LITE0} 224px, GPU (fp16) vs CPU (fp32), 256 images: cosine min {cos.min():.5f}, mean {cos.mean():.6f}")
    layer = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()).cuda()
    with torch.no_grad():
        layer[0].weight.fill_(1e3)
        layer[0].bias.zero_()
    x = torch.full((4, 8), 100.0, device="cuda")   # 8e5 per unit: past fp16's 65,504
    with torch.inference_mode():
        with torch.autocast("cuda", dtype=torch.float16):
            raw = layer(x)
        out = forward(layer, x)
    print(f"overflow: fp16 output finite {bool(torch.isfinite(raw).all())}; forward() finite "
          f"{bool(torch.isfinite(out).all())}, {out.dtype}, value {out[0, 0].item():.0f} (exact: 800000)")


if __name__ == "__main__":
    main()

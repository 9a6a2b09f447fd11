"""Read-only input arrays (np.load(mmap_mode="r"), np.frombuffer) fit without torch's
"not writable" warning and give the same labels as a writable copy.

Each case runs in a fresh interpreter: torch emits that warning once per process, so a case run
after another that triggered it would pass whether or not it is handled."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import warnings, numpy as np
warnings.simplefilter("error")
from core.cluster.{module} import {cls}
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 8)).astype(np.float32)
X[:100] += 4
I = rng.integers(0, 256, size=(64, 8, 8), dtype=np.uint8)
data = {data}
ro = data.copy()
ro.flags.writeable = False
a = {cls}({params}).fit(ro).labels_
b = {cls}({params}).fit(data.copy()).labels_
print("same" if (a == b).all() else "differ", len(a), len(data))
"""

CASES = {
    "kmeans": ("kmeans", "KMeans", "X", "n_clusters=2, device='cpu', random_state=0"),
    "dac-features": ("dac", "DAC", "X", "n_clusters=2, epochs=1, device='cpu', random_state=0"),
    "dac-images": ("dac", "DAC", "I", "n_clusters=2, epochs=1, batch_size=32, device='cpu', random_state=0"),
    "ruc-features": ("ruc", "RUC", "X", "n_clusters=2, epochs=2, warmup=1, device='cpu', random_state=0"),
    "ruc-images": ("ruc", "RUC", "I",
                   "n_clusters=2, epochs=2, warmup=1, batch_size=32, input='images', device='cpu', random_state=0"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_read_only_input_fits_without_warning_and_like_a_copy(case: str) -> None:
    module, cls, data, params = CASES[case]
    code = SCRIPT.format(module=module, cls=cls, data=data, params=params)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    same, n_labels, n = r.stdout.split()
    assert same == "same" and n_labels == n

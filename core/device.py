"""Device and thread selection: explicit, never an implicit `.cuda()`."""
from __future__ import annotations

import os

import torch

from core.errors import ParameterError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> torch.device:
    """Turn "auto" | "cpu" | "cuda[:n]" into a torch.device, checking CUDA exists."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParameterError(
                f"device {device!r} was asked for but no CUDA GPU is visible; use device 'cpu' or 'auto' instead"
            )
        return torch.device(device)
    raise ParameterError(f"unknown device {device!r}; choose one of: auto, cpu, cuda, cuda:N")


def set_cpu_threads() -> int:
    """Use one torch thread per physical core unless the user chose (OMP_NUM_THREADS)."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    return torch.get_num_threads()

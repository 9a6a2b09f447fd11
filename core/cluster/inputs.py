"""A caller's array as a tensor, read-only arrays included."""
from __future__ import annotations

import warnings

import numpy as np
import torch


def input_tensor(arr: np.ndarray | torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.as_tensor(arr, dtype)``, sharing memory where the dtype allows.

    Callers' arrays may be read-only (``np.load(..., mmap_mode="r")``, ``np.frombuffer``); the
    estimators never write to their input, so torch's "not writable" warning is silenced
    instead of paying for a copy of data that can be as large as memory.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(arr, dtype=dtype)

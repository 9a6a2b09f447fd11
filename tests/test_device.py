"""Device choice: explicit names only, and a clear message when CUDA is asked for but absent."""
import pytest
import torch

from core.device import resolve_device
from core.errors import ParameterError


def test_cpu_and_auto_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_without_a_gpu_says_what_to_use_instead(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match=r"device 'cuda:1' was asked for but no CUDA GPU is visible; "
                                             r"use device 'cpu' or 'auto' instead"):
        resolve_device("cuda:1")


def test_auto_takes_the_gpu_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")


def test_an_unknown_device_lists_the_choices():
    with pytest.raises(ParameterError, match=r"unknown device 'gpu'; choose one of: auto, cpu, cuda, cuda:N"):
        resolve_device("gpu")

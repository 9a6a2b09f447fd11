"""Clusterers by name. Imports are lazy so listing names never loads torch models."""
from __future__ import annotations

import importlib
from typing import Any

from core.cluster.base import BaseClusterer
from core.registry import Registry

# name -> "module:Class"
CLUSTERERS: Registry[str] = Registry("algorithm")
CLUSTERERS.add("kmeans", "core.cluster.kmeans:KMeans")
CLUSTERERS.add("dac", "core.cluster.dac:DAC")
CLUSTERERS.add("ruc", "core.cluster.ruc:RUC")
CLUSTERERS.add("temi", "core.cluster.temi:TEMI")


def clusterer_class(name: str) -> type[BaseClusterer]:
    module, cls = CLUSTERERS.get(name).split(":")
    return getattr(importlib.import_module(module), cls)


def make_clusterer(name: str, **params: Any) -> BaseClusterer:
    """Build a clusterer by name; unknown names list the valid ones."""
    return clusterer_class(name)(**params)


def available() -> list[str]:
    """Names whose module imports (DAC/RUC appear once their modules land)."""
    out = []
    for name in CLUSTERERS:
        try:
            clusterer_class(name)
        except (ImportError, AttributeError):
            continue
        out.append(name)
    return out

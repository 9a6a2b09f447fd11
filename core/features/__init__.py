"""Backbones, feature extraction and the on-disk feature cache."""
from core.features.backbones import (
    ARCHS,
    BACKBONES,
    DEFAULT_BACKBONE,
    get_backbone,
    list_backbones,
    save_backbone_checkpoint,
)
from core.features.cache import FeatureCache, cached_extract, feature_key, feature_key_parts
from core.features.checkpoint import CheckpointError
from core.features.extract import Cancelled, extract_features

__all__ = [
    "ARCHS", "BACKBONES", "DEFAULT_BACKBONE", "Cancelled", "CheckpointError", "FeatureCache",
    "cached_extract", "extract_features", "feature_key", "feature_key_parts", "get_backbone",
    "list_backbones", "save_backbone_checkpoint",
]

"""Unsupervised metric learning on pseudo-labels ("self-taught" refinement of a backbone).

Each epoch the current backbone embeds every image (no augmentation), k-means groups the
embeddings, and the cluster ids become pseudo-labels. Batches hold P clusters x K images; the
loss (batch-hard triplet or contrastive) pulls each augmented anchor towards its hardest
pseudo-positive and away from its hardest pseudo-negative. Ground truth is never read.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ParameterError
from core.losses.ssl import pairwise_contrastive, triplet_hard
from core.ssl.augment import simclr_view
from core.ssl.data import embed
from core.ssl.method import EpochContext, Method, MethodConfig, Normalise

LOSSES = {"triplet": triplet_hard, "contrastive": pairwise_contrastive}


class MetricRefine(Method):
    name = "metric"
    default_lr = 1e-4      # refining: a small step keeps what the backbone already knows
    needs_init = True

    def __init__(self, cfg: MethodConfig) -> None:
        super().__init__(cfg)
        if cfg.metric_loss not in LOSSES:
            raise ParameterError(f"unknown metric_loss {cfg.metric_loss!r}; choose one of: {', '.join(LOSSES)}")
        if cfg.n_clusters < 2:
            raise ParameterError(f"n_clusters must be >= 2 for pseudo-labels, got {cfg.n_clusters}")
        self.pseudo: torch.Tensor | None = None

    def begin_epoch(self, ctx: EpochContext) -> dict[str, float]:
        from core.cluster.kmeans import KMeans

        feats = embed(ctx.backbone, ctx.images, ctx.mean, ctx.std, device=ctx.device)
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        seed = int(torch.randint(2**31 - 1, (1,), generator=ctx.generator))
        km = KMeans(n_clusters=self.cfg.n_clusters, n_init=3, random_state=seed,
                    device=str(ctx.device)).fit(feats)
        labels = torch.as_tensor(km.labels_, dtype=torch.int64)
        changed = float((labels != self.pseudo).float().mean()) if self.pseudo is not None else 1.0
        self.pseudo = labels
        # why "changed" is only indicative: k-means ids are arbitrary between epochs
        return {"pseudo_clusters": float(len(labels.unique())), "pseudo_relabelled": changed}

    def batches(self, n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
        """P x K sampling: every batch holds K images of each of P pseudo-clusters, so every
        anchor has positives and negatives to mine."""
        assert self.pseudo is not None
        members = [torch.nonzero(self.pseudo == c).flatten() for c in self.pseudo.unique()]
        p = min(len(members), max(2, batch_size // 4))
        k = batch_size // p
        out = []
        for _ in range(n // batch_size):
            chosen = torch.randperm(len(members), generator=gen)[:p]
            parts = []
            for c in chosen.tolist():
                m = members[c]
                pick = torch.randint(len(m), (k,), generator=gen) if len(m) < k else \
                    torch.randperm(len(m), generator=gen)[:k]
                parts.append(m[pick])
            out.append(torch.cat(parts))
        return out

    def loss(self, backbone: nn.Module, head: nn.Module, x: torch.Tensor, idx: torch.Tensor,
             gen: torch.Generator, normalise: Normalise) -> torch.Tensor:
        assert self.pseudo is not None
        v = simclr_view(x, generator=gen, crop_scale=(0.5, 1.0), jitter=0.2)
        emb = F.normalize(backbone(normalise(v)).float(), dim=1)
        return LOSSES[self.cfg.metric_loss](emb, self.pseudo[idx].to(x.device), self.cfg.margin)

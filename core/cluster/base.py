"""The one estimator shape every clusterer follows (scikit-learn's contract plus a little).

- ``__init__`` stores keyword-only parameters and does nothing else.
- ``fit(X, *, eval_labels=None, callback=None)`` validates in one place and returns ``self``.
  ``eval_labels`` (ground truth) may only be used to *score* history records for display;
  nothing that trains or selects may read it.
  ``callback(record: dict) -> bool | None`` is called after every epoch/iteration record;
  returning ``False`` stops training early, keeping the last finished epoch's result.
- Results carry a trailing underscore: ``labels_`` (N,) int64, ``confidence_`` (N,) float in
  [0, 1], ``history_`` (list of per-epoch dicts; may be empty), ``n_clusters_``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

Callback = Callable[[dict[str, Any]], "bool | None"]


class BaseClusterer(ClusterMixin, BaseEstimator):
    """Base class; subclasses implement ``fit``."""

    labels_: np.ndarray
    confidence_: np.ndarray
    history_: list[dict[str, Any]]

    # Text parameters that take one of a fixed set of values (the app offers them as a pick
    # list); ``fit`` rejects anything else with a message listing the same values.
    param_choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def fit_predict(self, X, y=None, **fit_kwargs) -> np.ndarray:  # noqa: D401
        return self.fit(X, **fit_kwargs).labels_


def history_scores(labels: np.ndarray, eval_labels: np.ndarray | None) -> dict[str, float]:
    """ACC/NMI/ARI for a history record when ground truth exists (display only)."""
    if eval_labels is None:
        return {}
    from core.metrics import external_scores

    s = external_scores(eval_labels, labels)
    return {"acc": s["acc"], "nmi": s["nmi"], "ari": s["ari"]}

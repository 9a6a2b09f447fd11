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

import inspect
import re
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

Callback = Callable[[dict[str, Any]], "bool | None"]

# Estimator parameters a run sets from its own settings (k, seed, metric, device), not from the
# per-algorithm options: the CLI's --k/--seed/--metric/--device and the Cluster page's controls.
RUN_PARAMS = frozenset({"n_clusters", "random_state", "metric", "device"})


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

    @classmethod
    def parameter_docs(cls) -> dict[str, str]:
        """name -> its entry in the class docstring's "Parameters" list (one line of text), so the
        CLI's ``algorithms`` listing and the app's tooltips say what the docstring says."""
        lines = (inspect.getdoc(cls) or "").splitlines()
        at = next((i + 1 for i, line in enumerate(lines) if line.strip().startswith("Parameters")), len(lines))
        if at < len(lines) and set(lines[at].strip()) == {"-"}:   # numpydoc underline
            at += 1
        docs: dict[str, str] = {}
        names: list[str] = []
        indent = None
        for line in lines[at:]:
            if not line.strip():
                break
            ind = len(line) - len(line.lstrip())
            indent = ind if indent is None else indent
            entry = re.match(r"([a-z_]+(?:, [a-z_]+)*): (.*)", line.strip())
            if ind == indent and entry:            # "name: text" or "a, b: text"
                names = entry.group(1).split(", ")
                docs.update(dict.fromkeys(names, entry.group(2)))
            elif ind > indent and names:           # continuation of the last entry
                for name in names:
                    docs[name] += " " + line.strip()
            else:
                break
        return docs


def history_scores(labels: np.ndarray, eval_labels: np.ndarray | None) -> dict[str, float]:
    """ACC/NMI/ARI for a history record when ground truth exists (display only)."""
    if eval_labels is None:
        return {}
    from core.metrics import external_scores

    s = external_scores(eval_labels, labels)
    return {"acc": s["acc"], "nmi": s["nmi"], "ari": s["ari"]}

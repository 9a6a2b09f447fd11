"""The pick lists the app offers for text parameters are exactly what ``fit`` accepts."""
from __future__ import annotations

import numpy as np
import pytest

from core.cluster.registry import available, clusterer_class
from core.errors import ParameterError

X = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
X[12:] += 6.0
START = np.repeat([0, 1], 12)


def fit(algo: str, **params) -> None:
    est = clusterer_class(algo)(n_clusters=2, **params)
    if algo == "ruc":
        est.fit(X, initial_labels=START)
    else:
        est.fit(X)


@pytest.mark.parametrize("algo", available())
def test_a_value_outside_the_pick_list_is_refused_with_the_list(algo: str) -> None:
    cls = clusterer_class(algo)
    assert cls.param_choices, f"{algo} offers no pick list"
    defaults = cls().get_params()
    for name, choices in cls.param_choices.items():
        assert defaults[name] in choices, (name, defaults[name], choices)
        with pytest.raises(ParameterError) as err:
            fit(algo, **{name: "nope"})
        msg = str(err.value)
        assert "'nope'" in msg and all(c in msg for c in choices), (name, msg)


def test_ruc_refuses_itself_as_its_initial_clusterer() -> None:
    # before: initial='ruc' ran a nested RUC (on k-means) and then refined its output
    with pytest.raises(ParameterError, match="unknown initial clusterer 'ruc'; choose one of: kmeans, dac"):
        clusterer_class("ruc")(n_clusters=2, initial="ruc").fit(X)


@pytest.mark.parametrize("algo", available())
def test_every_parameter_has_its_docstring_entry(algo: str) -> None:
    # the CLI's `algorithms` listing and the app's tooltips come from these entries
    cls = clusterer_class(algo)
    docs = cls.parameter_docs()
    assert set(docs) == set(cls().get_params()), set(docs) ^ set(cls().get_params())
    assert all(text.strip() for text in docs.values()), docs


def test_parameter_docs_join_continuations_and_share_grouped_entries() -> None:
    dac, ruc = clusterer_class("dac").parameter_docs(), clusterer_class("ruc").parameter_docs()
    assert dac["u_start"] == dac["u_end"] == 'upper threshold (pairs above it are "same cluster"), falling.'
    assert ruc["tau"].startswith("confidence threshold of the initial split (probabilities from cluster centroids, ")
    assert ruc["tau"].endswith('"confidence" and "hybrid" only.')
    assert "\n" not in ruc["balance"] and "  " not in ruc["balance"]

"""Clean/unclean selectors on a hand-made 20-sample case with exact expected masks."""
import numpy as np
import pytest

from core.cluster.ruc_select import (
    centroid_probs,
    keep_every_cluster,
    knn_indices,
    knn_vote_mask,
    select_confidence,
    select_hybrid,
    select_metric,
)
from core.errors import ParameterError

# Two groups of 10 points on opposite arcs of the unit circle (mean 0, so centring is a no-op):
# samples 0-9 around angle 0, samples 10-19 around angle pi. Sample 3 and sample 15 carry the
# other group's label.
ANGLES = np.linspace(-0.45, 0.45, 10)
EMB = np.concatenate([np.c_[np.cos(ANGLES), np.sin(ANGLES)], -np.c_[np.cos(ANGLES), np.sin(ANGLES)]])
LABELS = np.array([0] * 10 + [1] * 10)
LABELS[3], LABELS[15] = 1, 0
# Confidence in the pseudo-label: high everywhere except samples 0 (0.55), 7 (0.45: argmax
# disagrees) and 12 (0.6).
OWN = np.full(20, 0.9)
OWN[[0, 7, 12]] = [0.55, 0.45, 0.6]
PROBS = np.zeros((20, 2))
PROBS[np.arange(20), LABELS] = OWN
PROBS[np.arange(20), 1 - LABELS] = 1 - OWN


def _mask(*unclean):
    m = np.ones(20, bool)
    m[list(unclean)] = False
    return m


def test_confidence_exact():
    np.testing.assert_array_equal(select_confidence(PROBS, LABELS, 0.58), _mask(0, 7))
    np.testing.assert_array_equal(select_confidence(PROBS, LABELS, 0.7), _mask(0, 7, 12))
    # argmax disagreement makes a sample unclean even when tau is tiny
    np.testing.assert_array_equal(select_confidence(PROBS, LABELS, 0.0), _mask(7))


def test_metric_exact():
    # the two flipped samples are outvoted by their neighbours; everybody else has a majority
    np.testing.assert_array_equal(select_metric(EMB, LABELS, 3), _mask(3, 15))
    nb = knn_indices(EMB, 2)
    assert set(nb[0]) == {1, 2} and set(nb[10]) == {11, 12}
    assert not (nb == np.arange(20)[:, None]).any()


def test_metric_tie_is_unclean():
    nb = np.array([[1, 2], [0, 2], [0, 1]])
    np.testing.assert_array_equal(knn_vote_mask(nb, np.array([0, 0, 1])), [False, False, False])
    np.testing.assert_array_equal(knn_vote_mask(nb, np.array([0, 0, 0])), [True, True, True])


def test_hybrid_is_both():
    np.testing.assert_array_equal(select_hybrid(PROBS, EMB, LABELS, 0.58, 3), _mask(0, 3, 7, 15))


def test_fixed_labels_always_clean():
    fixed = np.full(20, -1)
    fixed[[3, 7]] = [1, 0]
    np.testing.assert_array_equal(select_hybrid(PROBS, EMB, LABELS, 0.58, 3, fixed_labels=fixed),
                                  _mask(0, 15))
    assert select_metric(EMB, LABELS, 3, fixed_labels=fixed)[3]
    assert select_confidence(PROBS, LABELS, 0.7, fixed_labels=fixed)[7]


def test_bad_parameters():
    with pytest.raises(ParameterError, match="lower tau") as err:
        select_confidence(PROBS, LABELS, 0.95)
    # The suggested tau keeps a sample: it is the best agreeing confidence (0.9), rounded down.
    assert "has 0.900000" in str(err.value) and "tau <= 0.9000 keeps at least one" in str(err.value)
    near = PROBS.copy()
    near[1] = [0.99987, 0.00013]  # the old message printed this as 1.000, yet it is below tau=0.9999
    with pytest.raises(ParameterError, match=r"has 0\.999870; .*tau <= 0\.9998 keeps"):
        select_confidence(near, LABELS, 0.9999)
    assert select_confidence(near, LABELS, 0.9998).sum() == 1
    with pytest.raises(ParameterError, match="no sample's top class is its label"):
        select_confidence(np.eye(2)[1 - LABELS], LABELS, 0.5)
    with pytest.raises(ParameterError, match="k_neighbors"):
        select_metric(EMB, LABELS, 20)
    with pytest.raises(ParameterError, match="not in the dataset"):
        select_metric(EMB, LABELS[:19], 3)
    with pytest.raises(ParameterError, match="not in the dataset"):
        select_confidence(PROBS, LABELS, 0.5, fixed_labels=np.full(21, -1))
    for not_ids in (LABELS + 0.5, np.where(LABELS == 0, np.nan, LABELS), LABELS.astype(str)):
        with pytest.raises(ParameterError, match="whole-number cluster ids"):
            select_metric(EMB, not_ids, 3)
    np.testing.assert_array_equal(select_metric(EMB, LABELS.astype(float), 3), select_metric(EMB, LABELS, 3))
    bad = EMB.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        select_metric(bad, LABELS, 3)


def test_centroid_probs_and_keep_every_cluster():
    p = centroid_probs(EMB, np.r_[np.zeros(10, int), np.full(10, 2)], 3)
    assert p.shape == (20, 3)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    assert (p[:, 1] == 0).all()                      # empty cluster gets no mass
    assert (p[:10, 0] > 0.99).all() and (p[10:, 2] > 0.99).all()
    mask = LABELS == 0                               # cluster 1 has no clean sample
    kept = keep_every_cluster(mask, LABELS, OWN)
    assert kept.sum() == 11 and kept[3]              # its most confident member (first of the ties)


def test_fill_clusters_tops_up_mixed_clusters():
    from core.cluster.ruc_select import fill_clusters, knn_agreement

    labels = np.array([0] * 6 + [1] * 4)
    mask = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], bool)   # cluster 1 failed a global threshold
    score = np.array([0, 0, 0, 0, 0, 0, 0.2, 0.9, 0.5, 0.1])
    out = fill_clusters(mask, labels, score, 0.5)
    np.testing.assert_array_equal(out, [1, 1, 1, 1, 1, 1, 0, 1, 1, 0])   # its two best members
    elig = np.array([1] * 7 + [0, 1, 1], bool)
    np.testing.assert_array_equal(fill_clusters(mask, labels, score, 0.5, eligible=elig)[6:], [1, 0, 1, 0])
    nb = np.array([[1, 2], [0, 2], [0, 1]])
    np.testing.assert_allclose(knn_agreement(nb, np.array([0, 0, 1])), [0.5, 0.5, 0.0])

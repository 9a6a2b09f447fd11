"""DAC: clustering quality on tiny data, the estimator contract, control flow, corrections."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.optimize import linear_sum_assignment

from core.cluster.dac import DAC
from core.data.base import ImageDataset
from core.data.image_array import images_as_array
from core.errors import ParameterError, TrainingError

# small + fast settings for tests: a narrow ConvNet, few epochs (two steps per epoch on 60 images);
# temperature 0.3: on this toy the paper's softmax (1) finds the patterns on few seeds (see below)
FAST = dict(epochs=12, batch_size=32, width=16, lr=3e-3, balance=1.0, temperature=0.3, device="cpu",
            random_state=0)
# the paper's DAC: a random network, no k-means start and no check against it
PAPER = dict(start="none", guard=False)


def _acc(y: np.ndarray, p: np.ndarray) -> float:
    k = int(max(y.max(), p.max())) + 1
    c = np.zeros((k, k))
    np.add.at(c, (p, y), 1)
    r, cc = linear_sum_assignment(-c)
    return float(c[r, cc].sum() / len(y))


def _patterns(n_per: int = 20, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """3 clearly different uint8 patterns (horizontal bars, vertical bars, a bright square) + noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    bases = [
        ((yy // 2) % 2) * 200,                      # horizontal stripes
        ((xx // 2) % 2) * 200,                      # vertical stripes
        ((abs(yy - size / 2) < size / 4) & (abs(xx - size / 2) < size / 4)) * 220,
    ]
    X, y = [], []
    for c, b in enumerate(bases):
        for _ in range(n_per):
            X.append(np.clip(b + rng.normal(0, 20, b.shape), 0, 255))
            y.append(c)
    return np.asarray(X, dtype=np.uint8)[:, None], np.asarray(y)


def _blobs(n_per: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0, 0, 0], [6, 6, 0, 0], [0, 6, 6, 6]], dtype=np.float32)
    X = np.concatenate([c + rng.normal(0, 0.7, (n_per, 4)) for c in centers]).astype(np.float32)
    return X, np.repeat(np.arange(3), n_per)


@pytest.fixture(scope="module")
def patterns():
    return _patterns()


@pytest.fixture(scope="module")
def fitted(patterns):
    X, _ = patterns
    return DAC(n_clusters=3, **FAST).fit(X)


def test_finds_three_image_patterns(patterns, fitted):
    _, y = patterns
    assert _acc(y, fitted.labels_) >= 0.95


def test_sharper_softmax_finds_the_patterns_on_every_seed_where_the_papers_does_not(patterns):
    # temperature 0.3 against the paper's plain softmax (1), same seeds: at 1 the toy's label
    # features stay soft and training settles where two output units are identical
    # (both from a random network, the paper's start: from k-means both find them)
    X, y = patterns
    seeds = (1, 2, 3)
    sharp = [DAC(n_clusters=3, **dict(FAST, random_state=s, **PAPER)).fit(X) for s in seeds]
    soft = [DAC(n_clusters=3, **dict(FAST, temperature=1.0, random_state=s, **PAPER)).fit(X) for s in seeds]
    assert all(_acc(y, e.labels_) >= 0.95 for e in sharp)
    assert np.mean([_acc(y, e.labels_) for e in soft]) < 0.85
    assert min(e.confidence_.mean() for e in sharp) > max(e.confidence_.mean() for e in soft)


def test_estimator_contract(patterns, fitted):
    X, _ = patterns
    est = fitted
    assert est.labels_.shape == (len(X),) and est.labels_.dtype == np.int64
    assert est.confidence_.shape == (len(X),)
    assert float(est.confidence_.min()) >= 0 and float(est.confidence_.max()) <= 1
    assert est.n_clusters_ == 3
    assert len(est.history_) == FAST["epochs"]
    rec = est.history_[-1]
    for key in ("epoch", "upper", "lower", "selected_fraction", "loss", "seconds"):
        assert key in rec
    assert "acc" not in rec                                   # no eval_labels given
    assert rec["upper"] == pytest.approx(rec["lower"])        # thresholds met at the end
    assert est.get_params()["n_clusters"] == 3
    assert np.array_equal(est.predict(X), est.labels_)
    assert est.predict_proba(X).shape == (len(X), 3)


def test_fit_returns_self_and_fit_predict():
    X, y = _blobs()
    est = DAC(n_clusters=3, epochs=2, device="cpu")
    assert est.fit(X) is est
    labels = DAC(n_clusters=3, epochs=2, device="cpu").fit_predict(X)
    assert np.array_equal(labels, est.labels_)


def test_frozen_features_variant_finds_blobs():
    X, y = _blobs()
    est = DAC(n_clusters=3, epochs=20, batch_size=40, lr=1e-2, balance=1.0, augment=0.3, device="cpu").fit(X)
    assert _acc(y, est.labels_) >= 0.95


def test_same_seed_same_labels_and_eval_labels_do_not_change_training(patterns):
    X, y = patterns
    params = dict(FAST, epochs=2)
    a = DAC(n_clusters=3, **params).fit(X)
    b = DAC(n_clusters=3, **params).fit(X, eval_labels=y)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.confidence_, b.confidence_)
    assert [r["loss"] for r in a.history_] == [r["loss"] for r in b.history_]
    assert [r["selected_fraction"] for r in a.history_] == [r["selected_fraction"] for r in b.history_]
    assert "acc" in b.history_[-1] and "nmi" in b.history_[-1] and "ari" in b.history_[-1]


def test_callback_false_stops_and_keeps_last_epoch():
    X, _ = _blobs()
    seen = []

    def cb(rec):
        seen.append(rec["epoch"])
        return rec["epoch"] < 2

    est = DAC(n_clusters=3, epochs=10, device="cpu").fit(X, callback=cb)
    assert seen == [1, 2] and len(est.history_) == 2
    assert est.labels_.shape == (len(X),)


def test_keyboard_interrupt_keeps_last_finished_epoch(monkeypatch):
    X, _ = _blobs()
    est = DAC(n_clusters=3, epochs=5, device="cpu")
    real_step, calls = DAC._step, {"n": 0}
    steps_per_epoch = 1   # 120 samples, batch 256

    def step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 2 * steps_per_epoch:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(DAC, "_step", step)
    est.fit(X)
    assert len(est.history_) == 2 and est.labels_.shape == (len(X),)

    calls["n"] = 10**6            # interrupted before any epoch finished: nothing to keep
    with pytest.raises(KeyboardInterrupt):
        DAC(n_clusters=3, epochs=5, device="cpu").fit(X)


def test_nan_loss_raises_training_error(monkeypatch):
    X, _ = _blobs()
    import core.cluster.dac as mod

    monkeypatch.setattr(mod, "dac_loss", lambda sim, p, n: sim.sum() * float("nan"))
    est = DAC(n_clusters=3, epochs=3, device="cpu")
    with pytest.raises(TrainingError, match="lower the learning rate"):
        est.fit(X)
    assert not hasattr(est, "labels_")


@pytest.mark.parametrize(
    "X, params, message",
    [
        (np.zeros((5, 3), np.float32), dict(n_clusters=6), "more than the 5 samples"),
        (np.zeros((5, 3), np.float32), dict(n_clusters=1), "n_clusters must be an integer >= 2"),
        (np.array([[0.0, np.nan], [1, 1], [2, 2]]), dict(n_clusters=2), "NaN"),
        (np.zeros((4, 2, 2, 2, 2)), dict(n_clusters=2), "image input must be"),
        (np.zeros((4, 3)), dict(n_clusters=2, input="images"), "image input must be"),
        (np.zeros((4, 5, 8, 8)), dict(n_clusters=2), "1 or 3 channels"),
        (np.zeros((4, 3)), dict(n_clusters=2, u_end=0.8, l_end=0.6), "must be <= l_end"),
        (np.zeros((4, 3)), dict(n_clusters=2, input="pixels"), "input='pixels'"),
    ],
)
def test_parameter_errors(X, params, message):
    with pytest.raises(ParameterError, match=message):
        DAC(device="cpu", epochs=1, **params).fit(X)


def test_fixed_labels_are_honoured():
    # 3 patterns but k=2; a person says: bars (horizontal AND vertical) are one group, squares the
    # other. Appearance alone would not pair the two kinds of stripes.
    X, y = _patterns(n_per=20)
    fixed = np.full(len(y), -1)
    fixed[np.where(y == 0)[0][:8]] = 1
    fixed[np.where(y == 1)[0][:8]] = 1
    fixed[np.where(y == 2)[0][:8]] = 0
    est = DAC(n_clusters=2, **dict(FAST, epochs=15, batch_size=30, balance=0.2)).fit(X, fixed_labels=fixed)
    known = fixed >= 0
    assert (est.labels_[known] == fixed[known]).mean() >= 0.95      # kept their numbers
    want = np.where(y == 2, 0, 1)
    assert (est.labels_ == want).mean() >= 0.9                       # and the unfixed followed


def test_images_as_array_mixed_sizes_and_modes():
    class Mixed(ImageDataset):
        def __init__(self, images):
            super().__init__(name="mixed", ids=[str(i) for i in range(len(images))])
            self.images = images

        def load(self, i):
            return self.images[i].convert("RGB")

    grey = [Image.new("L", (20, 30), 100), Image.new("L", (12, 12), 200)]
    out = images_as_array(Mixed(grey), 16)
    assert out.shape == (2, 1, 16, 16) and out.dtype == np.uint8
    assert int(out[0].mean()) == 100 and int(out[1].mean()) == 200
    mixed = grey + [Image.new("RGB", (40, 16), (255, 0, 0))]
    out = images_as_array(Mixed(mixed), 16)
    assert out.shape == (3, 3, 16, 16)
    assert tuple(out[2, :, 8, 8]) == (255, 0, 0)
    assert images_as_array(Mixed(mixed), 8, channels=1).shape == (3, 1, 8, 8)
    # images_as_array output goes straight into DAC
    est = DAC(n_clusters=2, epochs=1, width=8, device="cpu").fit(images_as_array(Mixed(mixed), 8))
    assert est.labels_.shape == (3,)


def test_images_as_array_native_fast_path():
    class Arr(ImageDataset):
        def native_array(self):
            return np.arange(4 * 8 * 8, dtype=np.int64).reshape(4, 8, 8).astype(np.uint8)

    ds = Arr(name="a", ids=list("abcd"))
    out = images_as_array(ds, 8)
    assert out.shape == (4, 1, 8, 8) and np.array_equal(out[:, 0], ds.native_array())
    assert images_as_array(ds, 16, channels=3).shape == (4, 3, 16, 16)


def test_float_and_channels_last_images_accepted():
    X, y = _patterns(n_per=4)
    est = DAC(n_clusters=3, epochs=1, width=8, device="cpu")
    est.fit(X.astype(np.float32) / 255.0)
    est.fit(np.repeat(X.transpose(0, 2, 3, 1), 3, axis=-1))    # (N, H, W, 3) uint8
    assert est.labels_.shape == (len(y),)
    assert torch.is_tensor(torch.as_tensor(est.predict_proba(np.repeat(X.transpose(0, 2, 3, 1), 3, -1))))


# -- feature-space defaults: temperature, standardisation, restarts ---------------------------

def test_auto_temperature_and_standardisation_per_input_kind(patterns):
    X, _ = _blobs()
    X = X * np.array([1.0, 10.0, 0.1, 1.0], dtype=np.float32)      # very different scales
    est = DAC(n_clusters=3, epochs=1, device="cpu").fit(X)
    assert est.model_.temperature == 1.0                             # from k-means: the paper's softmax
    assert DAC(n_clusters=3, epochs=1, start="none", device="cpu").fit(X).model_.temperature == pytest.approx(0.1)
    _, mean, std, _ = est._prep_stats
    assert torch.allclose(std, std[0].expand_as(std))               # one scale: geometry kept
    torch.testing.assert_close(mean, torch.as_tensor(X).mean(0))
    per_dim = DAC(n_clusters=3, epochs=1, standardize="features", device="cpu").fit(X)
    assert float(per_dim._prep_stats[2].max() / per_dim._prep_stats[2].min()) > 50
    imgs, _ = patterns
    conv = DAC(n_clusters=3, epochs=1, width=8, device="cpu").fit(imgs[:12])
    assert conv.model_.temperature == 1.0                            # images: the paper's softmax
    assert DAC(n_clusters=3, epochs=1, width=8, temperature=0.5, device="cpu").fit(imgs[:12]).model_.temperature == 0.5


def test_low_temperature_gives_confident_label_features():
    X, y = _blobs()
    params = dict(n_clusters=3, epochs=15, batch_size=40, lr=1e-2, augment=0.3, device="cpu")
    soft = DAC(temperature=1.0, **params).fit(X)
    sharp = DAC(temperature=0.1, **params).fit(X)
    assert sharp.confidence_.mean() > 0.99 and sharp.confidence_.mean() > soft.confidence_.mean() + 0.05
    assert sharp.history_[-1]["mean_confidence"] == pytest.approx(sharp.confidence_.mean())
    assert _acc(y, sharp.labels_) >= 0.95


def test_n_init_keeps_the_most_confident_training_and_is_deterministic():
    X, y = _blobs()
    params = dict(n_clusters=3, epochs=3, batch_size=40, lr=1e-2, n_init=3, device="cpu", random_state=5)
    seen = []
    est = DAC(**params).fit(X, callback=lambda r: seen.append((r["init"], r["epoch"])))
    assert seen == [(i, e) for i in (1, 2, 3) for e in (1, 2, 3)]
    assert [r["init"] for r in est.inits_] == [0, 1, 2]
    confs = [r["mean_confidence"] for r in est.inits_]
    assert est.best_init_ == int(np.argmax(confs))
    assert est.confidence_.mean() == pytest.approx(max(confs))
    assert len(est.history_) == 3 and all(r["init"] == est.best_init_ + 1 for r in est.history_)
    again = DAC(**params).fit(X, eval_labels=y)
    assert np.array_equal(again.labels_, est.labels_)
    assert [r["mean_confidence"] for r in again.inits_] == confs
    assert np.array_equal(est.predict(X), est.labels_)


def test_stop_during_a_later_training_keeps_the_finished_ones():
    X, _ = _blobs()
    assert len(DAC(n_clusters=3, epochs=1, device="cpu").fit(X).inits_) == 1      # default: one
    seen = []

    def cb(rec):
        seen.append((rec["init"], rec["epoch"]))
        return not (rec["init"] == 2 and rec["epoch"] == 1)

    est = DAC(n_clusters=3, epochs=2, n_init=3, device="cpu").fit(X, callback=cb)
    assert seen == [(1, 1), (1, 2), (2, 1)]
    assert len(est.inits_) == 2 and est.labels_.shape == (len(X),)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(standardize="zscore"), "standardize='zscore'"),
        (dict(temperature=0.0), "temperature must be"),
        (dict(temperature="hot"), "temperature must be"),
        (dict(n_init=0), "n_init must be"),
    ],
)
def test_new_parameter_errors(params, message):
    with pytest.raises(ParameterError, match=message):
        DAC(n_clusters=2, epochs=1, device="cpu", **params).fit(np.zeros((4, 3), np.float32))


@torch.no_grad()
def test_networks_temperature_sharpens_the_softmax():
    from core.nn.dac_net import DACConvNet, DACHead, init_weights

    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    head = init_weights(DACHead(6, 4, hidden=16), torch.Generator().manual_seed(1)).eval()
    p1 = head(x)
    head.temperature = 0.1
    p01 = head(x)
    torch.testing.assert_close(p01.sum(1), torch.ones(32))
    assert torch.equal(p1.argmax(1), p01.argmax(1))
    assert float(p01.max(1).values.mean()) > float(p1.max(1).values.mean())
    conv = DACConvNet(3, image_size=16, width=8, temperature=0.5).eval()
    assert conv(torch.rand(2, 1, 16, 16)).shape == (2, 3) and conv.temperature == 0.5


# -- the k-means start and the check against it (issue 29) ------------------------------------

def _high_dim_blobs(seed: int = 0, n_per: int = 40, dim: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """3 blobs in 256-d, as far apart as noise along any one direction: k-means finds them, while a
    random features head splits the 120 points any way its first assignment happens to, and DAC
    then trains towards that split (every pair is 'confident' at once), like LFW or digits on
    EfficientNet-Lite0's 1280-d features."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, dim)) * 0.35
    y = np.repeat(np.arange(3), n_per)
    return (centers[y] + rng.normal(size=(len(y), dim))).astype(np.float32), y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_starts_from_kmeans_where_a_random_network_ends_far_below_it(seed):
    from core.cluster.kmeans import KMeans

    X, y = _high_dim_blobs(seed)
    kmeans = _acc(y, KMeans(n_clusters=3, random_state=seed).fit(X).labels_)
    scratch = DAC(n_clusters=3, device="cpu", random_state=seed, **PAPER).fit(X)
    default = DAC(n_clusters=3, device="cpu", random_state=seed).fit(X)
    assert kmeans == 1.0 and _acc(y, scratch.labels_) < 0.6
    assert _acc(y, default.labels_) >= kmeans
    assert default.start_agreement_ >= 0.95               # the network learnt the start first
    np.testing.assert_array_equal(default.start_labels_, KMeans(n_clusters=3, random_state=seed).fit(X).labels_)


def test_guard_keeps_the_kmeans_start_when_dac_ends_below_it():
    X, y = _high_dim_blobs(0)
    est = DAC(n_clusters=3, start="none", device="cpu", random_state=0).fit(X)   # the guard is on
    assert est.kept_start_ is True and _acc(y, est.labels_) == 1.0
    np.testing.assert_array_equal(est.labels_, est.start_labels_)
    np.testing.assert_array_equal(est.predict(X), est.labels_)        # new samples: the start's centroids
    assert est.confidence_.shape == (len(X),) and ((est.confidence_ >= 0) & (est.confidence_ <= 1)).all()
    last = est.history_[-1]
    assert "epoch" not in last and last["kept_start"] is True and last["guard"] == "kNN modularity"
    assert last["result_score"] < last["start_score"]
    assert est.kept_reason_ == last["message"]
    assert last["message"].startswith("DAC ended below its k-means start by kNN modularity (")
    assert last["message"].endswith("; kept the start")
    assert len(est.history_) == est.epochs + 1                       # the epochs, then the check
    off = DAC(n_clusters=3, device="cpu", random_state=0, **PAPER).fit(X)
    assert off.kept_start_ is False and off.guard_ is None and len(off.history_) == off.epochs


def test_guard_reads_no_labels_and_keeps_seeded_determinism():
    X, y = _high_dim_blobs(1)
    plain = DAC(n_clusters=3, start="none", device="cpu", random_state=1).fit(X)     # no labels anywhere
    scored = DAC(n_clusters=3, start="none", device="cpu", random_state=1).fit(X, eval_labels=y)
    wrong = DAC(n_clusters=3, start="none", device="cpu", random_state=1).fit(X, eval_labels=np.zeros_like(y))
    for other in (scored, wrong):
        np.testing.assert_array_equal(other.labels_, plain.labels_)
        assert other.kept_start_ == plain.kept_start_
        assert other.history_[-1]["start_score"] == plain.history_[-1]["start_score"]
    assert "acc" not in plain.history_[-1] and scored.history_[-1]["acc"] == 1.0
    again = DAC(n_clusters=3, device="cpu", random_state=1).fit(X)
    np.testing.assert_array_equal(again.labels_, DAC(n_clusters=3, device="cpu", random_state=1).fit(X).labels_)


def test_kept_result_has_no_guard_record_and_corrections_skip_the_check():
    X, y = _high_dim_blobs(2)
    est = DAC(n_clusters=3, device="cpu", random_state=2).fit(X)
    assert est.kept_start_ is False and est.guard_["kept_start"] is False
    assert all("epoch" in r for r in est.history_)
    fixed = np.full(len(y), -1)
    fixed[:3] = 0                                   # a person's labels steer; the start is no reference
    corrected = DAC(n_clusters=3, start="none", device="cpu", random_state=0).fit(X, fixed_labels=fixed)
    assert corrected.guard_ is None and corrected.kept_start_ is False


def test_guard_compare_scores_partitions_by_knn_modularity():
    from core.cluster import dac_guard

    rng = np.random.default_rng(0)
    space = np.concatenate([c + rng.normal(0, 0.5, (30, 2)) for c in ([0, 0], [8, 0], [0, 8])])
    truth = np.repeat(np.arange(3), 30)
    renamed = (truth + 1) % 3
    same = dac_guard.compare(space, truth, renamed)
    assert same.keep_start is False and same.start == pytest.approx(same.result)   # nothing to choose
    bad = truth.copy()
    bad[truth == 2] = 1                              # two blobs merged...
    bad[np.flatnonzero(truth == 0)[:15]] = 2         # ...and one split in two
    worse = dac_guard.compare(space, truth, bad)
    assert worse.keep_start is True and worse.result < worse.start - 0.1
    assert worse.message("DAC", "its k-means start").startswith("DAC ended below its k-means start by kNN modularity")
    better = dac_guard.compare(space, bad, truth)
    assert better.keep_start is False and better.result > better.start + dac_guard.MARGIN
    one_off = truth.copy()
    one_off[0] = 1                                   # one sample in the wrong blob
    assert dac_guard.compare(space, one_off, truth).keep_start is False
    close = dac_guard.compare(space, one_off, truth, margin=0.05)   # better, but not by the margin
    assert close.keep_start is True and close.start < close.result < close.start + 0.05
    assert close.message("RUC", "its start").startswith("RUC did not end clearly above its start by kNN modularity")


def test_kept_start_message_reads_the_history():
    from core.cluster.dac_guard import kept_start_message

    msg = "DAC ended below its k-means start by kNN modularity (0.500 against 0.600); kept the start"
    assert kept_start_message([{"epoch": 1, "loss": 0.2}, {"guard": "kNN modularity", "kept_start": True,
                                                             "message": msg}]) == msg
    assert kept_start_message([{"epoch": 1}, {"guard": "kNN modularity", "kept_start": False}]) is None
    assert kept_start_message([{"iteration": 3, "inertia": 1.0}]) is None and kept_start_message(None) is None


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(start="dac"), "start='dac' is not known; choose one of: kmeans, none"),
        (dict(start_epochs=0), "start_epochs must be an integer >= 1"),
        (dict(guard="yes"), "guard must be true or false"),
    ],
)
def test_start_parameter_errors(params, message):
    with pytest.raises(ParameterError, match=message):
        DAC(n_clusters=2, epochs=1, device="cpu", **params).fit(np.zeros((4, 3), np.float32))

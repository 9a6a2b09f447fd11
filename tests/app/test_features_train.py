"""Features page, "Train a backbone on these images": train on the digits demo, watch the loss,
stop early, and extract with the result; bad input shows the engine's message."""
from __future__ import annotations

import inspect
import json
import math
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.data import open_dataset
from core.errors import ParameterError
from core.features.archs import get_arch
from core.ssl.registry import list_trained_backbones
from core.ssl.train import METHODS, train_backbone
from tests.app.helpers import metrics, run_until, shown, texts
from ui import figures, training
from ui.state import TrainSettings

DIM = get_arch("convnet_small").dim()   # what "auto" trains for 8x8 digits


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Why: on a shared 2-core machine two OpenMP threads spin-wait on each other; one thread
    trained these tiny runs ~10x faster under load (the engine keeps a thread count set by
    OMP_NUM_THREADS)."""
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def app(app: AppTest) -> AppTest:   # conftest's, plus: a training left running by a failed test is stopped
    yield app
    job = app.session_state["clusterlens"].job
    if job is not None and job.running:
        job.stop()
        job.wait(30)


def workspace(allowed: Path) -> Path:
    return allowed.parent / "workspace"


def digits_features_page(at: AppTest, limit: int) -> AppTest:
    at.selectbox(key="w_demo").select("digits")
    at.number_input(key="w_limit").set_value(limit)
    at.button(key="w_use_demo").click().run()
    return at.switch_page("pages/features.py").run()


def set_training(at: AppTest, method: str = "rotation", epochs: int = 2, batch: int = 16) -> AppTest:
    at.selectbox(key="w_train_method").select(method).run()
    at.number_input(key="w_train_epochs").set_value(epochs).run()
    return at.number_input(key="w_train_batch").set_value(batch).run()


def state(at: AppTest):  # noqa: ANN201
    return at.session_state["clusterlens"]


def trained_success(at: AppTest) -> str:
    return next(s.value for s in at.success if "Trained backbone" in s.value)


def chart(at: AppTest, key: str) -> dict:
    el = next(c for c in at.get("plotly_chart") if key in c.proto.id)
    return json.loads(el.proto.spec)


def extract(at: AppTest) -> str:
    at.button(key="w_extract").click().run()
    run_until(at, lambda a: any("Features ready" in s.value for s in a.success), timeout=60)
    return next(s.value for s in at.success if "Features ready" in s.value)


def test_train_then_the_backbone_is_selected_and_extract_uses_it(app: AppTest, allowed: Path) -> None:
    digits_features_page(app, 128)
    assert "Train a backbone on these images (no labels)" in texts(app)
    assert app.selectbox(key="w_train_method").options == METHODS.names()   # from the engine registry
    from core.ssl.simclr import AUGMENTS

    assert app.selectbox(key="w_train_views").options == list(AUGMENTS)     # every SimCLR view, "mild" too
    assert "RotNet" in texts(app) or "SimCLR" in texts(app)                 # the method's one line
    assert "here: convnet_small at 16 px" in texts(app)                      # what "auto" picks for digits
    set_training(app, "rotation", epochs=2, batch=16)
    app.button(key="w_train").click().run()
    run_until(app, lambda a: any("Trained backbone" in s.value for s in a.success), timeout=60)

    info = state(app).trained
    assert [r["epoch"] for r in info.history] == [1, 2]                     # one record per epoch
    losses = [r["loss"] for r in info.history]
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses)
    assert not info.stopped and info.name == "rotation-convnet_small-digits"
    assert f"final loss **{losses[-1]:.4f}**" in trained_success(app) and info.name in trained_success(app)
    assert chart(app, "w_train_chart")["data"][1]["y"] == losses            # the chart draws the history

    box = app.selectbox(key="w_backbone")
    assert info.name in box.options and box.value == info.name              # listed and selected
    assert [b["name"] for b in list_trained_backbones(workspace(allowed))] == [info.name]
    ready = extract(app)
    assert f"128 images × {DIM} dimensions" in ready and info.name in ready
    assert state(app).feature_info.features.backbone == info.name


def test_stop_keeps_the_last_finished_epoch_usable(app: AppTest, allowed: Path) -> None:
    digits_features_page(app, 128)
    set_training(app, "rotation", epochs=200, batch=16)
    app.button(key="w_train").click().run()
    job = state(app).job
    end = time.monotonic() + 60
    while not job.params["history"] and time.monotonic() < end:   # wait for epoch 1 to finish
        time.sleep(0.02)
    app.run()
    assert {"Epoch", "Loss", "Images/s", "Time left"} <= set(metrics(app))   # the live panel
    assert metrics(app)["Time left"].startswith("about ")
    app.button(key="job_stop").click().run()
    run_until(app, lambda a: any("Trained backbone" in s.value for s in a.success), timeout=60)

    info = state(app).trained
    n = len(info.history)
    assert info.stopped and 1 <= n < 200
    assert f"stopped after epoch {n} of 200" in trained_success(app)
    (entry,) = list_trained_backbones(workspace(allowed))
    assert entry["name"] == info.name and entry["epochs"] == n            # the checkpoint kept is epoch n's
    assert torch.load(entry["path"], weights_only=False)["meta"]["epochs"] == n
    assert app.selectbox(key="w_backbone").value == info.name
    assert f"128 images × {DIM} dimensions" in extract(app)


def test_stop_during_the_first_epoch_says_nothing_was_saved(app: AppTest, allowed: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    digits_features_page(app, 0)                                            # all 1,797 digits
    set_training(app, "simclr", epochs=5, batch=16)
    monkeypatch.setenv("CLUSTERLENS_JOB_WAIT_S", "0")
    app.button(key="w_train").click().run()
    assert "Epoch 1 of 5 is running" in texts(app)
    app.button(key="job_stop").click().run()
    run_until(app, lambda a: "Training stopped" in texts(a), timeout=60)
    assert "no checkpoint was saved" in texts(app)
    assert state(app).trained is None and list_trained_backbones(workspace(allowed)) == []


def test_batch_larger_than_the_images_shows_the_engine_message(app: AppTest, allowed: Path) -> None:
    digits_features_page(app, 20)
    set_training(app, "simclr", epochs=1, batch=32)
    app.button(key="w_train").click().run()
    end = time.monotonic() + 30   # not run_until: it fails on any st.error, which is what is expected here
    while not app.error and time.monotonic() < end:
        time.sleep(0.2)
        app.run()
    assert not app.exception
    with pytest.raises(ParameterError) as engine_says:
        train_backbone(open_dataset("digits", workspace=workspace(allowed), limit=20), "simclr",
                       workspace=workspace(allowed), batch_size=32)
    assert [shown(e.value) for e in app.error] == [f"Training failed: {engine_says.value}"]
    assert "use batch_size <= 20" in shown(app.error[0].value)
    assert state(app).trained is None and list_trained_backbones(workspace(allowed)) == []
    assert app.selectbox(key="w_backbone").value == "auto"     # nothing else changed (the default)


def test_metric_learning_refines_a_backbone_trained_before(app: AppTest, allowed: Path) -> None:
    digits_features_page(app, 128)
    app.selectbox(key="w_train_method").select("metric").run()
    assert "train one with another method first" in texts(app)               # nothing to refine yet
    assert app.button(key="w_train").disabled

    set_training(app, "simclr", epochs=1, batch=16)
    app.button(key="w_train").click().run()
    run_until(app, lambda a: any("Trained backbone" in s.value for s in a.success), timeout=60)
    base = state(app).trained.name
    app.selectbox(key="w_train_method").select("metric").run()
    assert app.selectbox(key="w_train_init").value == base
    app.number_input(key="w_train_k").set_value(5).run()
    app.button(key="w_train").click().run()
    run_until(app, lambda a: any("Trained backbone" in s.value and "metric" in s.value for s in a.success),
              timeout=60)
    info = state(app).trained
    assert info.method == "metric" and info.history[0]["pseudo_clusters"] == 5.0
    assert app.selectbox(key="w_backbone").value == info.name
    assert {base, info.name} <= set(app.selectbox(key="w_backbone").options)
    assert f"128 images × {DIM} dimensions" in extract(app)


def test_the_form_defaults_are_the_engines() -> None:
    engine = inspect.signature(train_backbone).parameters
    form = TrainSettings()
    assert form.method in METHODS and form.metric_loss in training.metric_losses()
    shared = {f.name: f.name for f in fields(TrainSettings) if f.name in engine and f.name not in ("method", "name")}
    shared["init"] = "init_checkpoint"
    assert len(shared) == 13
    for ours, theirs in shared.items():
        assert getattr(form, ours) == engine[theirs].default, ours


def test_time_left_and_the_curve() -> None:
    hist = [{"epoch": 1, "loss": 2.0, "seconds": 1.0, "wall_s": 5.0, "images_per_s": 100.0},
            {"epoch": 2, "loss": 1.5, "seconds": 1.0, "wall_s": 2.0, "images_per_s": 120.0}]
    assert training.time_left(hist[:1], 10) == 9 * 1.0        # image loading left out of the pace
    assert training.time_left(hist, 10) == 8 * 2.0
    fig = figures.training_curve(hist, epochs=10)
    assert list(fig.data[1].y) == [2.0, 1.5] and list(fig.data[0].y) == [100.0, 120.0]
    assert tuple(fig.layout.xaxis.range) == (0.5, 10.5)
    assert training.duration(42) == "42 s" and training.duration(600) == "10 min"


def test_no_images_no_training(app: AppTest) -> None:
    app.switch_page("pages/features.py").run()
    assert "Choose the images first" in texts(app)
    assert not any(b.key == "w_train" for b in app.button)
    assert "Train a backbone" not in texts(app)


def test_a_built_in_name_is_refused_before_training(app: AppTest, allowed: Path) -> None:
    digits_features_page(app, 64)
    app.text_input(key="w_train_name").input("Pixels").run()
    app.button(key="w_train").click().run()
    assert [shown(e.value) for e in app.error] == [
        "The name 'pixels' is a built-in backbone's; choose another name (or leave it empty for METHOD-ARCH-DATASET)."]
    assert state(app).job is None and list_trained_backbones(workspace(allowed)) == []

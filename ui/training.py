"""Training a backbone on the current images (Features page): the options, read from the engine;
the background work; the live loss panel; and the callbacks that start training and adopt it.

The training thread never touches Streamlit. It appends each finished epoch's record to the list
it was handed, which the job carries as ``job.params["history"]`` and the live panel (a fragment
polling like :func:`ui.widgets.job_panel`) reads. The engine saves a checkpoint after every
epoch, so Stop (the job panel's) ends training between steps and keeps the last finished epoch.
"""
from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st

from core.config import DataConfig
from core.data.base import ImageDataset
from ui import engine, figures
from ui.engine import Report, ShouldStop, TrainInfo
from ui.jobs import Job, Work
from ui.state import AppState, TrainSettings, get_state, set_backbone, settings, start_job

JOB_KIND = "train"
AUTO = "auto"
SIZES: list[int | str] = [AUTO, 16, 24, 32, 48, 64, 96, 128, 160, 224]
DEVICES = ["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    description: str      # one line
    needs_init: bool      # refines a backbone trained before (metric learning)
    default_lr: float


# -- what the engine offers ------------------------------------------------------------------

def _one_line(cls: type) -> str:
    """A method's ``description`` if it has one, else the first sentence of its docstring (or
    its module's: the method modules open with what the method does)."""
    import sys

    text = getattr(cls, "description", None) or cls.__dict__.get("__doc__") or \
        getattr(sys.modules.get(cls.__module__), "__doc__", None) or cls.__name__
    text = " ".join(str(text).split())
    return re.split(r"(?<=\.)\s+(?=[A-Z])", text, maxsplit=1)[0]   # the first sentence, not "et al. 2020"


@st.cache_resource(show_spinner=False)
def methods() -> dict[str, MethodInfo]:
    """The engine's training methods (core.ssl.train.METHODS), in its order."""
    from core.ssl.train import METHODS

    out = {}
    for name in METHODS:
        cls = METHODS.get(name)
        out[name] = MethodInfo(name, _one_line(cls), bool(cls.needs_init), float(cls.default_lr))
    return out


@st.cache_resource(show_spinner=False)
def archs() -> dict[str, str]:
    """Trainable architectures -> one line each; "auto" first."""
    from core.features.archs import ARCHS
    from core.ssl.arch import SMALL_MAX, TRAINABLE

    auto = f"small ConvNet for images up to {SMALL_MAX} px held as arrays, else ResNet-18"
    return {a: auto if a == AUTO else ARCHS.get(a).description for a in TRAINABLE}


def metric_losses() -> list[str]:
    from core.ssl.metric import LOSSES

    return list(LOSSES)


def simclr_views() -> list[str]:
    """SimCLR's view recipes (core.ssl.simclr.AUGMENTS), "auto" first."""
    from core.ssl.simclr import AUGMENTS

    return list(AUGMENTS)


def auto_choice(ds: ImageDataset, arch: str, image_size: int | None) -> str:
    """What the engine will pick for these images, e.g. "convnet_small at 16 px"."""
    from core.errors import ClusterLensError
    from core.ssl.arch import choose_arch

    try:
        c = choose_arch(arch, ds.native_array(), image_size)
    except ClusterLensError as e:
        return str(e)
    return f"{c.arch} at {c.image_size} px"


def trained_names(backbones: list[dict[str, Any]]) -> list[str]:
    """Backbones trained in the workspace (what metric learning can refine), oldest first."""
    return [b["name"] for b in backbones if b.get("kind") == "trained"]


def base_choice(t: TrainSettings, trained: list[str]) -> str | None:
    """The backbone metric learning refines: the chosen one, else the newest trained one."""
    return t.init if t.init in trained else (trained[-1] if trained else None)


# -- the work (runs in a thread: no Streamlit calls) -----------------------------------------

def time_left(history: list[dict[str, Any]], n_epochs: int) -> float:
    """Seconds until the last epoch ends, at the pace of the latest epochs (wall clock, so
    checkpointing and metric learning's re-clustering count). The first epoch's wall time also
    holds loading the images, so after it the estimate uses its training time alone."""
    paces = [r["wall_s"] for r in history[1:][-3:]] or [history[0]["seconds"]]
    return max(0, n_epochs - int(history[-1]["epoch"])) * statistics.fmean(paces)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def epoch_message(rec: dict[str, Any], n_epochs: int) -> str:
    return (f"epoch {rec['epoch']}/{n_epochs}: loss {rec['loss']:.4f}, {rec['images_per_s']:,.0f} images/s, "
            f"about {duration(rec['time_left_s'])} left (Stop keeps epoch {rec['epoch']}'s checkpoint)")


def train_work(ds: ImageDataset, data: DataConfig, t: TrainSettings, workspace: Path,
               history: list[dict[str, Any]]) -> Work:
    """Train ``t.method`` on ``ds``; each finished epoch's record (plus ``wall_s`` and
    ``time_left_s``) is appended to ``history`` as it comes."""
    info = methods().get(t.method)

    def work(report: Report, should_stop: ShouldStop) -> TrainInfo:
        from core.ssl.train import train_backbone

        report(None, f"loading {len(ds):,} images, then epoch 1 of {t.epochs}")
        last = time.monotonic()

        def progress(epoch: int, n_epochs: int, record: dict[str, Any]) -> None:
            nonlocal last
            now = time.monotonic()
            rec = {**record, "wall_s": now - last}
            last = now
            rec["time_left_s"] = time_left([*history, rec], n_epochs)
            history.append(rec)   # list.append is atomic: the live panel may read meanwhile
            report(epoch / n_epochs, epoch_message(rec, n_epochs))

        res = train_backbone(
            ds, t.method, workspace=workspace, arch=AUTO if info and info.needs_init else t.arch,
            image_size=t.image_size, epochs=t.epochs, batch_size=t.batch_size, lr=t.lr,
            temperature=t.temperature, augment=t.augment, seed=t.seed, device=t.device, progress=progress,
            should_stop=should_stop, init_checkpoint=t.init if info and info.needs_init else None,
            n_clusters=t.n_clusters, metric_loss=t.metric_loss, margin=t.margin, name=t.name.strip() or None)
        return TrainInfo(data=data, name=res.name, path=str(res.path), method=t.method, epochs=t.epochs,
                         history=tuple(history), stopped=len(res.history) < t.epochs)
    return work


# -- callbacks -------------------------------------------------------------------------------

def set_train(**changes: Any) -> None:
    s = get_state()
    s.train = replace(s.train, **changes)


def start_training() -> None:
    s, cfg = get_state(), settings()
    if s.data is None:
        s.notice, s.error = None, "Choose the images first (Data page): training learns from them."
        return
    t, rows = s.train, engine.backbones(cfg.workspace)
    clash = name_clash(t.name, rows)
    if clash:
        s.notice, s.error = None, clash
        return
    info = methods().get(t.method)
    if info is not None and info.needs_init:
        t = replace(t, init=base_choice(t, trained_names(rows)))
    ds = engine.open_data(s.data, cfg.workspace)
    if t.epochs is None:   # the engine's schedule, resolved here so progress can say "epoch n of N"
        from core.ssl.train import default_epochs

        t = replace(t, epochs=default_epochs(len(ds), t.batch_size))
    history: list[dict[str, Any]] = []
    start_job(JOB_KIND, f"Training a backbone ({t.method}, {t.epochs} epochs)",
              train_work(ds, s.data, t, cfg.workspace, history), data=s.data, history=history, epochs=t.epochs)


def name_clash(name: str, backbones: list[dict[str, Any]]) -> str | None:
    """A chosen name that a built-in backbone already has would never be used by that name."""
    from core.ssl.registry import slug

    taken = {b["name"] for b in backbones if b.get("kind") != "trained"}
    if name.strip() and slug(name) in taken:
        return (f"The name {slug(name)!r} is a built-in backbone's; choose another name (or leave it empty "
                "for METHOD-ARCH-DATASET).")
    return None


def adopt_training(s: AppState, job: Job) -> None:
    """A finished (or stopped) training: its backbone becomes the one Extract features uses."""
    if job.status == "failed":
        s.error = f"Training failed: {job.error}"
        return
    if job.status == "cancelled":   # stopped before the first epoch ended: there is no checkpoint
        s.notice = f"Training stopped: {job.error}" if job.error else "Training stopped; nothing was saved."
        return
    info: TrainInfo = job.result
    s.trained = info
    when = f"stopped after epoch {len(info.history)}" if info.stopped else "finished"
    s.notice = f"Training {when}: backbone {info.name} is ready (Features page)."
    if s.data == info.data:
        set_backbone(info.name, None)   # None: extract at the size it was trained at
        st.session_state["w_backbone"] = info.name   # the select box shows it (see pages/features.py)


def training_running(s: AppState) -> bool:
    return s.job is not None and s.job.kind == JOB_KIND and s.job.running


def outcome_text(info: TrainInfo, selected: bool) -> str:
    n = len(info.history)
    how = (f"stopped after epoch {n} of {info.epochs}; the checkpoint of epoch {n} is kept" if info.stopped
           else f"{n} epoch{'s' if n != 1 else ''}")
    return (f"Trained backbone **{info.name}** ({info.method}, {how}): final loss **{info.final_loss:.4f}**. "
            f"Checkpoint `{info.path}`. " + ("It is the Backbone selected above: Extract features uses it."
                                             if selected else "Choose it in the Backbone list above to use it."))


# -- live panel ------------------------------------------------------------------------------

@st.fragment(run_every=1.0)
def live_panel() -> None:
    """Per-epoch loss chart, images/s and time left of the running training."""
    job = get_state().job
    if job is None or job.kind != JOB_KIND:
        return
    status, _, _ = job.snapshot()
    if status != "running":
        st.rerun()   # a full rerun adopts the outcome (ui.state.adopt_finished_job)
    history, n_epochs = list(job.params["history"]), int(job.params["epochs"])
    if not history:
        st.caption(f"Epoch 1 of {n_epochs} is running ({job.elapsed():.0f} s so far); "
                   "the loss chart starts when it ends.")
        return
    last = history[-1]
    prev = history[-2]["loss"] if len(history) > 1 else None
    cols = st.columns(4)
    cols[0].metric("Epoch", f"{last['epoch']} / {n_epochs}")
    cols[1].metric("Loss", f"{last['loss']:.4f}", None if prev is None else f"{last['loss'] - prev:+.4f}",
                   delta_color="inverse")
    cols[2].metric("Images/s", f"{last['images_per_s']:,.0f}")
    cols[3].metric("Time left", f"about {duration(last['time_left_s'])}")
    st.plotly_chart(figures.training_curve(history, n_epochs), key="w_train_live_chart")

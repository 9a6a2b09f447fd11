"""Features: turn every image into a vector with a backbone; reuse cached features at once.
Or first train a backbone on these very images (no labels) and extract with it."""
import pandas as pd
import streamlit as st

from ui import engine, figures, training
from ui.frame import frame
from ui.state import SIZE_DEFAULT, bind, set_backbone, set_features, settings, start_features
from ui.text import plain
from ui.training import AUTO, set_train

state, cfg = frame(), settings()
st.title("Features")
if state.data is None:
    st.info("Choose the images first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/arrow_back:")
    st.stop()

st.caption(f"Data: **{plain(state.data_label)}** — each image becomes one vector; extracted once, then cached on disk.")
backbones = {b["name"]: b for b in engine.backbone_choices(cfg.workspace)}   # auto, built-in, trained here
names = list(backbones)
f = state.features
training_now = training.training_running(state)

left, right = st.columns(2)
with left:
    # a finished training selects its backbone by setting w_backbone: then no index may be passed
    initial = {} if "w_backbone" in st.session_state else {"index": names.index(f.backbone) if f.backbone in names
                                                           else 0}
    st.selectbox("Backbone", names, **initial,
                 format_func=lambda n: engine.backbone_label(backbones[n]),
                 **bind("w_backbone", lambda s, v: set_backbone(v, backbones[v]["default_size"])))
    chosen = backbones.get(state.features.backbone) or backbones[names[0]]
    st.caption(chosen["description"])
    sizes = [SIZE_DEFAULT, 16, 32, 64, 96, 128, 160, 224, 256, 320, 384]
    initial = {} if "w_size" in st.session_state else {"value": f.image_size if f.image_size in sizes else sizes[0]}
    st.select_slider("Image size (px)", sizes, **initial,
                     help="Smaller is faster; photos gain from larger sizes, tiny images do not.",
                     **bind("w_size", lambda s, v: set_features(image_size=None if isinstance(v, str) else int(v))))
with right:
    st.number_input("Batch size", 1, 4096, value=f.batch_size, step=16,
                    **bind("w_batch", lambda s, v: set_features(batch_size=int(v))))
    st.selectbox("Device", ["auto", "cpu", "cuda"], index=["auto", "cpu", "cuda"].index(f.device),
                 help="auto = the GPU when there is one",
                 **bind("w_device", lambda s, v: set_features(device=v)))

unavailable = [b for b in backbones.values() if not b["available"]]
if unavailable:
    with st.expander(f"{len(unavailable)} backbone(s) unavailable here, and why"):
        st.dataframe(pd.DataFrame([{"backbone": b["name"], "why": b["why"]} for b in unavailable]), hide_index=True)

busy = state.job is not None and state.job.running and state.job.kind == "features"
st.button("Extract features", type="primary", key="w_extract", on_click=start_features,
          disabled=busy or training_now or not chosen["available"],
          help="Training is running: extract once it ends (or is stopped)." if training_now
          else None if chosen["available"] else chosen["why"])

info = state.feature_info
if info is not None:
    how = (f"route chosen and features ready in {info.seconds:.1f} s" if info.route is not None
           else "reused from the cache (no extraction)" if info.from_cache
           else f"extracted in {info.seconds:.1f} s ({info.images_per_s:,.0f} images/s)")
    st.success(f"Features ready: **{info.n:,} images × {info.dim} dimensions** "
               f"({info.features.backbone}) — {how}.")
    if info.route is not None:
        st.caption(f"Route chosen from the data: {plain(info.route['why'])}. The Cluster page lists the others.")
    if info.features != state.features and not (info.route is not None and state.features.backbone == "auto"):
        st.warning("The settings above differ from the features in use; extract again to use them.")
    st.page_link("pages/cluster.py", label="Next: cluster", icon=":material/arrow_forward:")

st.divider()
st.subheader("Train a backbone on these images (no labels)")
st.caption("Self-supervised: the network learns from the images alone. Each finished epoch is saved in the "
           "workspace, and the result joins the Backbone list above.")
methods, archs, t = training.methods(), training.archs(), state.train
trained = training.trained_names(list(backbones.values()))
method = methods.get(t.method) or next(iter(methods.values()))

left, mid, right = st.columns(3)
with left:
    st.selectbox("Method", list(methods), index=list(methods).index(method.name),
                 **bind("w_train_method", lambda s, v: set_train(method=v)))
    st.caption(method.description)
    if method.needs_init:
        base = training.base_choice(t, trained)
        if base is None:
            st.info("Metric learning refines a backbone trained here before: train one with another method first.")
        else:
            st.selectbox("Backbone to refine", trained, index=trained.index(base),
                         help="Its architecture and image size are kept.",
                         **bind("w_train_init", lambda s, v: set_train(init=v)))
        st.number_input("Clusters for pseudo-labels", 2, 1000, value=t.n_clusters,
                        help="Each epoch k-means groups the images into this many clusters; they act as labels.",
                        **bind("w_train_k", lambda s, v: set_train(n_clusters=int(v))))
        losses = training.metric_losses()
        st.selectbox("Metric loss", losses, index=losses.index(t.metric_loss) if t.metric_loss in losses else 0,
                     **bind("w_train_loss", lambda s, v: set_train(metric_loss=v)))
        st.number_input("Margin", 0.0, 10.0, value=float(t.margin), step=0.05, format="%g",
                        **bind("w_train_margin", lambda s, v: set_train(margin=float(v))))
    else:
        st.selectbox("Architecture", list(archs), index=list(archs).index(t.arch) if t.arch in archs else 0,
                     **bind("w_train_arch", lambda s, v: set_train(arch=v)))
        st.caption(f"{archs.get(t.arch, '')} — here: "
                   f"{training.auto_choice(engine.open_data(state.data, cfg.workspace), t.arch, t.image_size)}")
    if method.name == "simclr":
        st.number_input("Temperature", 0.01, 10.0, value=float(t.temperature), step=0.05, format="%g",
                        help="NT-Xent temperature: lower makes the contrast between images sharper.",
                        **bind("w_train_temp", lambda s, v: set_train(temperature=float(v))))
        views = training.simclr_views()
        st.selectbox("Views", views, index=views.index(t.augment),
                      help="auto = gentle (no mirror, mild crops, small rotations) up to 16 px; mild (crops "
                           "of 70-100 % area, mirror, brightness/contrast, no blur) at 17-32 px; SimCLR's "
                           "standard crops and mirror above.",
                      **bind("w_train_views", lambda s, v: set_train(augment=v)))
with mid:
    st.number_input("Epochs", 1, 10_000, value=t.epochs, placeholder="auto (about 560 steps)",
                    help="Empty = the engine's schedule: about 560 optimiser steps, at least 10 epochs.",
                    **bind("w_train_epochs", lambda s, v: set_train(epochs=None if v is None else int(v))))
    st.number_input("Training batch size", 2, 8192, value=t.batch_size, step=16,
                    help="Images per step; at most the number of images.",
                    **bind("w_train_batch", lambda s, v: set_train(batch_size=int(v))))
    st.number_input("Learning rate", 1e-7, 1.0, value=t.lr, step=1e-4, format="%g",
                    placeholder=f"{method.default_lr:g} (the method's default)", help="Empty = the method's default.",
                    **bind("w_train_lr", lambda s, v: set_train(lr=None if v is None else float(v))))
with right:
    st.select_slider("Training image size (px)", training.SIZES, value=t.image_size or AUTO,
                     help="auto = the architecture's size for these images (metric learning: the refined one's).",
                     **bind("w_train_size", lambda s, v: set_train(image_size=None if v == AUTO else int(v))))
    st.number_input("Seed", 0, 2**31 - 1, value=t.seed, **bind("w_train_seed", lambda s, v: set_train(seed=int(v))))
    st.selectbox("Training device", training.DEVICES, index=training.DEVICES.index(t.device),
                 help="auto = the GPU when there is one", **bind("w_train_device", lambda s, v: set_train(device=v)))
st.text_input("Name (optional)", value=t.name, placeholder="METHOD-ARCH-DATASET, numbered if taken",
              **bind("w_train_name", lambda s, v: set_train(name=v)))
st.button("Train", type="primary", key="w_train", on_click=training.start_training,
          disabled=training_now or (method.needs_init and not trained))

if training_now:
    training.live_panel()
elif state.trained is not None and state.trained.data == state.data:
    st.success(training.outcome_text(state.trained, selected=state.features.backbone == state.trained.name))
    st.plotly_chart(figures.training_curve(state.trained.history, state.trained.epochs), key="w_train_chart")

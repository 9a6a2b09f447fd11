"""Features: turn every image into a vector with a backbone; reuse cached features at once."""
import pandas as pd
import streamlit as st

from ui import engine
from ui.frame import frame
from ui.state import SIZE_DEFAULT, bind, set_backbone, set_features, start_features

state = frame()
st.title("Features")
if state.data is None:
    st.info("Choose the images first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/arrow_back:")
    st.stop()

st.caption(f"Data: **{state.data_label}** — each image becomes one vector; extracted once, then cached on disk.")
backbones = {b["name"]: b for b in engine.backbones()}
names = list(backbones)
f = state.features

left, right = st.columns(2)
with left:
    st.selectbox("Backbone", names, index=names.index(f.backbone) if f.backbone in names else 0,
                 format_func=lambda n: n if backbones[n]["available"] else f"{n} (unavailable)",
                 **bind("w_backbone", lambda s, v: set_backbone(v, backbones[v]["default_size"])))
    chosen = backbones[state.features.backbone]
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
          disabled=busy or not chosen["available"],
          help=None if chosen["available"] else chosen["why"])

info = state.feature_info
if info is not None:
    how = ("reused from the cache (no extraction)" if info.from_cache
           else f"extracted in {info.seconds:.1f} s ({info.images_per_s:,.0f} images/s)")
    st.success(f"Features ready: **{info.n:,} images × {info.dim} dimensions** "
               f"({info.features.backbone}) — {how}.")
    if info.features != state.features:
        st.warning("The settings above differ from the features in use; extract again to use them.")
    st.page_link("pages/cluster.py", label="Next: cluster", icon=":material/arrow_forward:")

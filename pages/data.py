"""Data: choose the images — a built-in demo, a folder on the server, or an upload — and look at them."""
import math

import numpy as np
import pandas as pd
import streamlit as st

from core.errors import ClusterLensError
from ui import engine
from ui import storage as storage_ui
from ui.frame import frame
from ui.state import settings, use_demo, use_folder, use_uploads
from ui.text import plain
from ui.uploads import Upload
from ui.widgets import Tile, image_grid

state, cfg = frame(), settings()
st.title("Data")
st.caption("Choose the images to cluster. Nothing leaves this machine.")

demo_tab, folder_tab, upload_tab = st.tabs(["Built-in demo", "Folder on the server", "Upload"])

with demo_tab:
    demos = engine.demos()
    ready = [d for d in demos if d["available"]]
    name = st.selectbox("Demo", [d["name"] for d in ready], key="w_demo",
                        format_func=lambda n: next(f"{d['name']} — {d['description']} ({d['size']:,} images)"
                                                   for d in ready if d["name"] == n))
    limit = st.number_input("Use only the first N images (0 = all)", 0, 1_000_000, 0, step=1000, key="w_limit")
    st.button("Use this demo", type="primary", key="w_use_demo",
              on_click=lambda: use_demo(st.session_state["w_demo"], int(st.session_state["w_limit"]) or None))
    for d in demos:
        if not d["available"]:
            st.caption(f"{d['name']}: not available — {d['why']}")

with folder_tab:
    st.caption("Folders this app may read: " + ", ".join(plain(r) for r in cfg.allowed_roots))
    st.text_input("Folder path", key="w_folder", placeholder=str(cfg.allowed_roots[0]))
    st.button("Open folder", key="w_open_folder", on_click=lambda: use_folder(st.session_state.get("w_folder", "")))

with upload_tab:
    files = st.file_uploader(f"Images, or one .zip of images (at most {cfg.max_upload_mb:g} MB in all)",
                             accept_multiple_files=True, key="w_upload",
                             max_upload_size=max(1, math.ceil(cfg.max_upload_mb)))
    st.button("Use the uploaded files", key="w_use_upload", disabled=not files,
              on_click=lambda: use_uploads([Upload(f.name, f.getvalue()) for f in st.session_state["w_upload"]]))

storage = st.expander("Stored uploads and extracted archives", key="w_storage", on_change="rerun")
if storage.open:   # listing walks the stored folders: only when someone looks
    with storage:
        stored = storage_ui.rows()
        if note := storage_ui.outcome():
            st.text(note)
        st.dataframe(pd.DataFrame(stored, columns=["kind", "name", "size", "created", "used by"]),
                     hide_index=True)
        for row in stored:
            name_col, button_col = st.columns([4, 1], vertical_alignment="center")
            name_col.text(f"{row['name']} ({row['size']}, {row['used by']})")
            button_col.button("Remove", key=f"w_storage_rm_{row['name']}", on_click=storage_ui.remove_entry,
                              args=(row["name"],))
        st.button("Remove unused", key="w_storage_rm_unused", on_click=storage_ui.remove_all_unused,
                  disabled=not any(r["used by"] == "unused" for r in stored))

if state.data_error:
    st.error(plain(state.data_error))
if state.data is None:
    st.info("Pick a source above. The `digits` demo (1,797 handwritten digits) is a good first try.")
    st.stop()

try:
    ds = engine.open_data(state.data, cfg.workspace)
except ClusterLensError as e:
    st.error(plain(e))
    st.stop()

st.subheader(plain(state.data_label))
c1, c2, c3 = st.columns(3)
c1.metric("Images", f"{len(ds):,}")
c2.metric("Classes (ground truth)", len(ds.class_names or []) if ds.has_labels else "none")
c3.metric("Skipped files", len(ds.skipped))

if ds.has_labels:
    counts = np.bincount(ds.labels[ds.labels >= 0], minlength=len(ds.class_names or []))
    names = ds.class_names or [str(i) for i in range(len(counts))]
    with st.expander(f"Ground truth: {len(counts)} classes (used only to score, never to cluster)"):
        st.bar_chart(pd.DataFrame({"images": counts}, index=pd.Index(names, name="class")), height=220)

st.markdown("**A sample of the images**")
rows = np.random.default_rng(0).choice(len(ds), size=min(30, len(ds)), replace=False)
image_grid(ds, [Tile(int(r), ds.ids[r]) for r in np.sort(rows)], grid_id="sample-grid")

if ds.skipped:
    st.markdown(f"**Skipped files ({len(ds.skipped)})** — not used, and why")
    st.dataframe(pd.DataFrame([{"file": s.id, "reason": s.reason} for s in ds.skipped]), hide_index=True)
if ds.duplicates:
    st.caption(f"{len(ds.duplicates)} group(s) of identical images found (kept; see the CLI for details).")

st.page_link("pages/features.py", label="Next: extract features", icon=":material/arrow_forward:")

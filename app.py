"""ClusterLens web app: `streamlit run app.py`. The entrypoint only: page config and navigation.

Each page draws the shared frame itself (ui/frame.py says why).
"""
from pathlib import Path

import streamlit as st

from ui import ast_lock

ast_lock.install()   # before any page is parsed beside a background job (ui/ast_lock.py says why)
HERE = Path(__file__).parent

st.set_page_config(page_title="ClusterLens", page_icon=":material/bubble_chart:", layout="wide")
page = st.navigation([
    st.Page(HERE / "pages" / "data.py", title="Data", icon=":material/photo_library:", default=True),
    st.Page(HERE / "pages" / "features.py", title="Features", icon=":material/memory:"),
    st.Page(HERE / "pages" / "cluster.py", title="Cluster", icon=":material/bubble_chart:"),
    st.Page(HERE / "pages" / "explore.py", title="Explore", icon=":material/travel_explore:"),
    st.Page(HERE / "pages" / "review.py", title="Review", icon=":material/fact_check:"),
])
page.run()

"""The Cluster page's account of the route chosen from the data (core.route): which, why, the
runners-up, and one click to use another."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.config import FeatureConfig
from ui.state import use_route
from ui.text import plain


def route_panel(route: dict[str, Any], features: FeatureConfig, reduce: str) -> None:
    """The evidence table (best first) and a button per other route; ``features`` and ``reduce``
    say which route is in use now."""
    with st.expander(f"Route chosen from the data: {route['chosen_name']}", expanded=False):
        st.caption(plain(route["why"]) + ". " + plain(route["criterion"]) + "; higher is better; no labels used.")
        table = pd.DataFrame([{"route": c["name"], "agreement": c["agreement"], "seconds": c["seconds"]}
                              for c in route["candidates"]])
        st.bar_chart(table.set_index("route")["agreement"], horizontal=True, height=40 + 28 * len(table))
        for n, c in enumerate(route["candidates"]):
            r = c["route"]
            join = tuple(r.get("join") or ())
            using = ((r["backbone"], r["image_size"], r["reduce"], join)
                     == (features.backbone, features.image_size, reduce, features.join))
            st.button(f"Use {c['name']}" if not using else f"{c['name']} (in use)", key=f"w_route_{n}",
                      disabled=using, on_click=use_route, args=(r["backbone"], r["image_size"], r["reduce"], join),
                      help=("agreement " + ("not measured" if c["agreement"] is None else f"{c['agreement']:.3f}")
                            + "; its features are cached, so this is quick"))

"""Before a bulk move a person sees what is selected (issue 26, item 3): "Use the map selection"
selects images the grid may not show; the selection panel shows every one of them, paged."""
from __future__ import annotations

import re
from pathlib import Path

from core.review import ReviewSession
from core.store import Store
from tests.app.helpers import component_data, run_until
from tests.app.test_explore_page import make_run, open_run, workspace


def grid_ids(at, grid: str) -> list[str]:  # noqa: ANN001
    html = next((h.value for h in at.html if f'id="{grid}"' in h.value), "")
    return re.findall(r'data-sample-id="([^"]+)"', html)


def test_the_map_selection_is_shown_before_it_is_moved(allowed: Path) -> None:
    run = make_run(allowed)
    at = open_run(run)
    at.switch_page("pages/review.py").run()
    run_until(at, lambda a: bool(component_data(a, "rv_picker")["tiles"]))
    on_page = {t["id"] for t in component_data(at, "rv_picker")["tiles"]}
    with Store(workspace(allowed)) as store:
        s = ReviewSession(store, run)
        confident = [s.ids[i] for i in s.confidence.argsort()[::-1]]      # the surest: never on the queue's page
    lassoed = [i for i in confident if i not in on_page][:27]
    assert not grid_ids(at, "rv-selected-grid")                          # nothing selected, no panel

    at.session_state["clusterlens"].selected_ids = lassoed               # as the lasso on Explore leaves it
    at.run()
    at.button(key="w_rv_take_map").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "**27 image(s) selected**" in [m.value for m in at.markdown]
    panel = next(e for e in at.expander if e.label.startswith("See the 27 selected image(s)"))
    assert "27 of them not on this page" in panel.label
    assert sorted(grid_ids(at, "rv-selected-grid")) == sorted(lassoed)   # every one, in view

    more = [i for i in confident if i not in on_page][:75]              # past one page of the panel: paged
    at.session_state["clusterlens"].selected_ids = more
    at.button(key="w_rv_clear").click().run()
    at.button(key="w_rv_take_map").click().run()
    first = grid_ids(at, "rv-selected-grid")
    assert len(first) == 60 and set(first) <= set(more)
    at.number_input(key="w_rv_sel_page").set_value(2).run()
    second = grid_ids(at, "rv-selected-grid")
    assert sorted(first + second) == sorted(more)

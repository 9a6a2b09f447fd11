"""Helpers for driving the app in AppTest."""
from __future__ import annotations

import re
import time
from collections.abc import Callable

from streamlit.testing.v1 import AppTest


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 120.0) -> AppTest:
    """Rerun (as the page's polling fragment would) until ``done``; fail on an error or exception."""
    end = time.monotonic() + timeout
    while True:
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        if done(at):
            return at
        if time.monotonic() > end:
            raise AssertionError(f"timed out; page shows: {[m.value for m in at.markdown][:10]}")
        time.sleep(0.3)
        at.run()


def shown(markdown: str) -> str:
    """Markdown source as a person reads it: the backslash escapes that keep user text plain
    (ui/text.py) are gone."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(at: AppTest) -> str:
    """Everything textual on the page, for 'is this shown' assertions."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.success]
    parts += [i.value for i in at.info] + [h.value for h in at.subheader] + [w.value for w in at.warning]
    return shown("\n".join(str(p) for p in parts))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def choose_digits(at: AppTest) -> AppTest:
    at.selectbox(key="w_demo").select("digits")
    return at.button(key="w_use_demo").click().run()


def extract_pixels(at: AppTest) -> AppTest:
    at.switch_page("pages/features.py").run()
    at.selectbox(key="w_backbone").select("pixels").run()
    at.button(key="w_extract").click().run()
    return run_until(at, lambda a: any("Features ready" in s.value for s in a.success))


def make_run(at: AppTest) -> AppTest:
    """Digits → pixel features → one k-means run (k=10); ends on the Cluster page."""
    choose_digits(at)
    extract_pixels(at)
    at.switch_page("pages/cluster.py").run()
    at.button(key="w_run").click().run()
    return run_until(at, lambda a: "Run #" in texts(a))


# -- st.components.v2 components: AppTest has no element class for them ----------------------

def component(at: AppTest, key: str):  # noqa: ANN201 - an UnknownElement
    """The v2 component drawn with ``key`` (its proto id ends with the key)."""
    found = [e for e in at.get("bidi_component") if e.proto.id.endswith(f"-{key}")]
    assert found, f"no component with key {key!r} on the page"
    return found[0]


def component_data(at: AppTest, key: str) -> dict:
    """The JSON ``data`` the page sent to the component (what the browser would render)."""
    import json

    return json.loads(component(at, key).proto.json)


def send_component_event(at: AppTest, key: str, event: str, value: object) -> AppTest:
    """Rerun as if the component's JavaScript had called ``setTriggerValue(event, value)``:
    the same widget-state payload the browser sends, so the page's callback runs for real."""
    import json

    from streamlit.components.v2.bidi_component.main import _make_trigger_id

    states = at._tree.get_widget_states()
    w = states.widgets.add()
    w.id = _make_trigger_id(component(at, key).proto.id, "events")
    w.json_trigger_value = json.dumps([{"event": event, "value": value}])
    return at._run(states)

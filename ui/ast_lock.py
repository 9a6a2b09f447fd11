"""One ``ast.parse`` at a time in the app's process (a CPython 3.11 bug, worked around).

Python 3.11 keeps the AST constructor's recursion depth in state shared by every thread
(python/cpython gh-106905, gh-95185): two threads parsing at once can fail with
``SystemError: AST constructor recursion depth mismatch``. In the app two threads do parse at
once: Streamlit parses each page's script on every rerun, while a background job (ui/jobs.py)
compiles UMAP's numba functions, and numba's ``firstlinefinder`` parses their source. Seen in the
app tests as a traceback in the page. Serialising ``ast.parse`` costs nothing measurable (a page
parses in milliseconds) and removes the race for every caller that goes through ``ast.parse``.
"""
from __future__ import annotations

import ast
import sys
import threading
from typing import Any

_LOCK = threading.RLock()


def install() -> None:
    """Wrap ``ast.parse`` with one process-wide lock (idempotent; only on Python 3.11 and older)."""
    if sys.version_info >= (3, 12) or getattr(ast.parse, "_serialised", False):
        return
    original = ast.parse

    def parse(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(*args, **kwargs)

    parse._serialised = True  # type: ignore[attr-defined]
    parse.__doc__ = original.__doc__
    ast.parse = parse

"""ui.ast_lock: ast.parse serialised across threads (CPython 3.11's shared AST recursion depth)."""
import ast
import sys
import threading
import time

import pytest

from ui import ast_lock


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the lock is installed on Python 3.11 and older only")
def test_two_threads_never_parse_at_once(monkeypatch):
    inside, most = [0], [0]
    guard = threading.Lock()

    def slow_parse(*args, **kwargs):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        with guard:
            inside[0] -= 1
        return "parsed"

    monkeypatch.setattr(ast, "parse", slow_parse)
    ast_lock.install()
    wrapped = ast.parse
    ast_lock.install()                                   # idempotent: one wrapper, not two
    assert ast.parse is wrapped and wrapped is not slow_parse
    out = []
    threads = [threading.Thread(target=lambda: out.append(ast.parse("x = 1"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == ["parsed"] * 6 and most[0] == 1         # never two at once

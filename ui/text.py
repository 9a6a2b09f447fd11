"""User-supplied text (cluster names, file names, folder paths, messages quoting them) made safe to
put inside Streamlit markdown: it then shows literally, character for character.

Why escape rather than avoid markdown: captions, alerts and success messages render markdown, and
they mix our own words with the person's. A name like ``![b](http://host/beacon.png)`` would
otherwise make every reviewer's browser fetch that URL; ``:red[x]``, ``$x$`` and ``**x**`` would
change how it looks. CommonMark lets any ASCII punctuation be escaped with a backslash, so
escaping all of it is always correct, whatever the syntax extension.
"""
from __future__ import annotations

import string

_ESCAPE = {ord(c): "\\" + c for c in string.punctuation}
_ESCAPE.update({ord("\n"): " ", ord("\r"): " "})   # a line break would end the sentence's block


def plain(text: object) -> str:
    """``text`` as markdown source that renders as exactly ``text`` (on one line)."""
    return str(text).translate(_ESCAPE)

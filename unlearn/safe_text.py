"""Text read from files, made safe where it is shown (issue #27, point 2).

An ``adapter_config.json``, a config file, a prompt file or a checkpoint is data someone else may have written.
Where its text reaches a log or an error line it goes through :func:`one_line`: one line, control characters
(terminal escape sequences, carriage returns, newlines) shown as escapes, never interpreted by a terminal. The
model card escapes its own values (``unlearn/hub.py``: Markdown text, code spans, ``repr`` literals in the
loading snippet).
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: Any) -> str:
    """``text`` on one line, control characters as ``\\xNN`` escapes (a terminal shows them, never runs them)."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), str(text))

"""Text read from files, made safe where it is shown (issue #27, point 2).

An ``adapter_config.json``, a ``metrics.json``, a prompt file or a checkpoint is data someone else may have
written. Wherever its text reaches a model card, a log line or a command snippet it goes through one of these:

* :func:`md_text`: Markdown prose or a table cell: one line, no HTML, no code fences, no table breaks.
* :func:`card_safe`: :func:`md_text` on every string (and key) of a loaded JSON document, at the point it is
  read for a card.
* :func:`py_str`: a double-quoted Python string literal for a value placed in a code snippet: whatever the value
  holds, it stays one argument (``"x", trust_remote_code=True`` cannot become a second one).
* :func:`one_line`: control characters (terminal escape sequences, carriage returns, newlines) shown as escapes,
  for log and error lines.
"""

from __future__ import annotations

import json
import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MD_SPECIAL = str.maketrans(
    {
        "`": "'",  # no code spans or fences of the file's own
        "|": "/",  # no extra table cells
        "<": "‹",  # no HTML (script, img, comments)
        ">": "›",
    }
)


def one_line(text: Any) -> str:
    """``text`` on one line, control characters as ``\\xNN`` escapes (a terminal shows them, never runs them)."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), str(text))


def md_text(text: Any) -> str:
    """``text`` for Markdown prose or a table cell: one line, backticks, pipes and angle brackets replaced."""
    return " ".join(_CONTROL.sub(" ", str(text)).translate(_MD_SPECIAL).split())


def card_safe(value: Any) -> Any:
    """A loaded JSON value with :func:`md_text` applied to every string and key (numbers, booleans, None as
    they are)."""
    if isinstance(value, str):
        return md_text(value)
    if isinstance(value, dict):
        return {card_safe(k) if isinstance(k, str) else k: card_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [card_safe(v) for v in value]
    return value


def py_str(value: Any) -> str:
    """A double-quoted Python string literal of ``value``'s text (JSON's escapes, which Python reads the same):
    safe to place in a code snippet, one argument whatever it holds."""
    return json.dumps(str(value))

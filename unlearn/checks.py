"""Checks of user input with one message shape: which key, what it must be, what it got, how to fix it.

Constructors (LightningModules, data modules, callbacks, evaluation classes) call these on every argument that
has a domain, so a bad value is refused when the object is built, before any model is loaded or file written::

    check_range("model.alpha", alpha, low=0)                      # α ≥ 0
    check_range("model.mask_threshold", t, low=0, high=1, open_low=True, open_high=True)
    check_int("data.batch_size", batch_size, low=1)

This module imports nothing from the project (every room may use it).
"""

from __future__ import annotations

import math
from typing import Any


class InputError(ValueError):
    """A value given by the user is outside its domain (the message names the key and the fix)."""


def _fix(fix: str) -> str:
    return f". {fix}" if fix else ""


def _domain(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if open_low else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if open_high else '<='} {high:g}")
    return " and ".join(parts) or "a finite number"


def check_range(
    key: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    optional: bool = False,
    fix: str = "",
) -> None:
    """Raise :class:`InputError` unless ``value`` is a finite number within the bounds (``None`` allowed when
    ``optional``). ``key`` is the config key as the user writes it (``model.alpha``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise InputError(
            f"{key} must be a finite number {_domain(low, high, open_low, open_high)}; got {value!r}" + _fix(fix)
        )
    v = float(value)
    bad = (low is not None and (v <= low if open_low else v < low)) or (
        high is not None and (v >= high if open_high else v > high)
    )
    if bad:
        raise InputError(f"{key} must be {_domain(low, high, open_low, open_high)}; got {value!r}" + _fix(fix))


def check_int(
    key: str, value: Any, *, low: int | None = None, high: int | None = None, optional: bool = False, fix: str = ""
) -> None:
    """Raise :class:`InputError` unless ``value`` is an integer within ``[low, high]`` (``None`` when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{key} must be an integer {_domain(low, high, False, False)}; got {value!r}" + _fix(fix))
    check_range(key, value, low=low, high=high, fix=fix)


def check_choice(key: str, value: Any, choices: tuple[Any, ...] | list[Any], fix: str = "") -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{key} must be one of {', '.join(map(repr, choices))}; got {value!r}" + _fix(fix))

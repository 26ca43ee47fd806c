"""Config files checked before they are parsed (issue #27, point 7): every ``--config`` file and every file it
includes (``config: <file>``, relative to the including file) must be a regular UTF-8 text file of YAML whose
top level is a mapping of keys. Otherwise one line names the file and what it is (a binary file, an empty file,
plain text, a list, a file including itself) instead of a parser's dump of its contents.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unlearn.checks import InputError
from unlearn.safe_text import one_line

#: the largest config file read (a config is a few KiB)
MAX_CONFIG_BYTES = 1 << 20
#: how deep includes may nest
MAX_INCLUDE_DEPTH = 16


def _given_configs(args: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            out.append(args[i + 1])
        elif arg.startswith("--config="):
            out.append(arg.split("=", 1)[1])
    return [v for v in out if not (v.lstrip().startswith(("{", "[")) or "\n" in v)]  # inline YAML/JSON


def _load(path: Path, chain: list[Path]) -> Any:
    import yaml

    where = " (included by " + " → ".join(str(p) for p in chain) + ")" if chain else ""
    if not path.exists():
        raise InputError(
            f"config {path}{where} does not exist. Fix: check the path (includes are relative to the including file)"
        )
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file (a device or a pipe)"
        raise InputError(f"config {path}{where} is {what}. Fix: give a .yaml file")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise InputError(
            f"config {path}{where} is {size >> 20} MiB; a config is a few KiB of YAML. Fix: check the path"
        )
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise InputError(f"config {path}{where} is a binary file, not YAML text. Fix: give a .yaml file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"config {path}{where} is not UTF-8 text ({e.reason} at byte {e.start}). Fix: save it as UTF-8"
        ) from None
    if not text.strip() or all(ln.strip().startswith("#") for ln in text.splitlines() if ln.strip()):
        raise InputError(
            f"config {path}{where} is empty (no keys). Fix: give a config with keys, e.g. "
            "`config: base/tiny.yaml` and overrides"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark, context = getattr(e, "problem_mark", None), getattr(e, "context_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if context is not None and mark is not None and context.line != mark.line:
            at += f", in the block opened at line {context.line + 1}"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(
            f"config {path}{where} is not valid YAML ({one_line(problem)}{at}). Fix: correct the YAML there"
        ) from None
    except RecursionError:
        raise InputError(f"config {path}{where} nests too deeply to read. Fix: flatten it") from None
    if not isinstance(data, dict):  # its contents are not shown: it may be any file
        raise InputError(
            f"config {path}{where} is not a mapping of keys (its top level is a {type(data).__name__}); is it a "
            "config file? Fix: give a YAML file of `key: value` lines"
        )
    return data


def check_config_files(args: list[str]) -> None:
    """Check every ``--config`` file in ``args`` and its includes (:class:`InputError` naming the file)."""
    for given in _given_configs(args):
        _check(Path(given).expanduser(), [])


def _check(path: Path, chain: list[Path]) -> None:
    resolved = Path(os.path.abspath(path))
    if resolved in chain:
        raise InputError(
            f"config {path} includes itself (" + " → ".join(str(p) for p in [*chain, resolved]) + "). "
            "Fix: remove the circular `config:` include"
        )
    if len(chain) >= MAX_INCLUDE_DEPTH:
        raise InputError(f"config {path}: includes nest more than {MAX_INCLUDE_DEPTH} deep. Fix: flatten them")
    data = _load(path, chain)
    includes = data.get("config")
    for inc in includes if isinstance(includes, list) else [includes]:
        if isinstance(inc, str) and inc.strip():
            target = Path(inc).expanduser()
            _check(target if target.is_absolute() else resolved.parent / target, [*chain, resolved])

"""A run folder belongs to one run configuration, and to one ``unlearn fit`` at a time (issue #27).

``unlearn fit`` claims ``trainer.default_root_dir`` before it writes anything there (:func:`claim_run_folder`):

* **a lock**: ``.unlearn-fit.lock`` held with ``flock`` for as long as the fit runs (the operating system
  releases it when the process ends, however it ends). A second fit into the same folder while the first
  runs is refused with one line naming the holder (pid, host, start time).
* **a record**: ``run_record.json``: the sha256 of the run's resolved config, the config itself, the code
  version, and one entry per fit that wrote there. A later fit into the folder with *another* config is
  refused with one line naming the folder and the differing keys, unless that run failed or was
  interrupted (its files are marked unfinished; a fixed config may follow) (decision: refuse, do not nest a fresh
  subfolder: the paths a user passes on, e.g. ``<root>/adapters``, stay what they say). The same config may
  run again (its files are replaced by the same run's), and ``--ckpt_path`` resumes are checked against the
  checkpoint instead (:mod:`unlearn.resume`). Fix for a refusal: another ``--trainer.default_root_dir``,
  deleting the folder, or resuming the recorded run.

Paths below the folder are compared relative to it (``runs/x/adapters`` and ``/abs/runs/x/adapters`` are the
same key value), and the keys that only say how to start (``ckpt_path``, ``config``) are left out.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearn.checks import InputError
from unlearn.io import atomic_write_text, run_problem
from unlearn.resume import check_checkpoint_identity, code_version, config_sha256, note, resolve_ckpt_path

LOCK_FILE = ".unlearn-fit.lock"
RECORD_FILE = "run_record.json"
RECORD_FORMAT = "t2v-unlearn-run-record/1"

if TYPE_CHECKING:
    import lightning.pytorch as pl
#: top-level keys that say how a run starts, not what it is
START_KEYS = ("ckpt_path", "config", "allow_config_mismatch", "weights_only")

_held: list[int] = []  # lock file descriptors of this process


class RunFolderError(InputError):
    """The run folder is in use by another fit, or holds a run of another configuration."""


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def comparable_config(config: dict[str, Any], root: str | os.PathLike) -> dict[str, Any]:
    """The config as it is recorded and compared: the start keys dropped, paths inside ``root`` written
    relative to it (``<root>/adapters``)."""
    given = str(root)
    absolute = str(Path(root).absolute())

    def rel(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: rel(x) for k, x in v.items()}
        if isinstance(v, list):
            return [rel(x) for x in v]
        if isinstance(v, str):
            for prefix in (absolute, given):
                if prefix and (v == prefix or v.startswith(prefix.rstrip("/") + "/")):
                    return "<root>" + v[len(prefix.rstrip("/")) :]
        return v

    cfg = {k: v for k, v in config.items() if k not in START_KEYS}
    return json.loads(json.dumps(rel(cfg), default=str))


def _acquire_lock(folder: Path) -> int:
    import fcntl

    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            holder = {}
        os.close(fd)
        who = (
            f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
            if holder
            else "another process"
        )
        raise RunFolderError(
            f"run folder {folder} is in use by another `unlearn fit` ({who}); two runs in one folder overwrite "
            "each other's adapters and status. Fix: wait for it to end, or pass another --trainer.default_root_dir"
        ) from None
    except OSError:  # a file system without flock: go on without the lock, say so
        os.close(fd)
        return -1
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _held.append(fd)
    return fd


def release_all() -> None:
    """Release the run-folder locks this process holds (the ``unlearn`` command calls it when a fit ends)."""
    import fcntl

    while _held:
        fd = _held.pop()
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _finished_or_unknown(folder: Path) -> bool:
    # a run that failed or was interrupted may be followed by another config (the fix of its error); its files
    # are marked unfinished until the new run writes its own
    problem = run_problem(folder)
    return problem is None or not problem[1]


def claim_run_folder(folder: str | os.PathLike, config: dict[str, Any], resuming: bool = False) -> Path:
    """Lock ``folder`` for this fit and record ``config`` there; refuse (:class:`RunFolderError`) a folder in use
    by another fit, or one that holds a run of another config (unless ``resuming``: the checkpoint check
    decides). Returns the record's path."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunFolderError(
            f"trainer.default_root_dir {str(folder)!r} is (or lies below) a file, not a folder. Fix: pass a folder path"
        ) from None
    _acquire_lock(folder)
    cfg = comparable_config(config, folder)
    digest = config_sha256(cfg)
    record_path = folder / RECORD_FILE
    record: dict[str, Any] = {}
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = {}
    if record and record.get("config_sha256") != digest and not resuming and _finished_or_unknown(folder):
        old, new = _flatten(record.get("config") or {}), _flatten(cfg)
        # keys set on both sides first: the values a user changed, before keys one side lacks
        keys = sorted(
            (k for k in set(old) | set(new) if old.get(k) != new.get(k)),
            key=lambda k: (k not in old or k not in new, k),
        )
        shown = "; ".join(f"{k}: {_show(old.get(k))} there, {_show(new.get(k))} now" for k in keys[:3])
        more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
        release_all()
        raise RunFolderError(
            f"run folder {folder} holds a run of another config ({shown}{more}; recorded in {record_path}). "
            "Fix: pass another --trainer.default_root_dir, delete the folder, or resume that run with its "
            "config and --ckpt_path last"
        )
    runs = list(record.get("runs") or [])[-19:]
    runs.append({"started": _now(), "config_sha256": digest, "resumed": bool(resuming), "host": socket.gethostname()})
    doc = {
        "format": RECORD_FORMAT,
        "config_sha256": digest,
        "code_version": code_version(),
        "config": cfg,
        "runs": runs,
    }
    atomic_write_text(record_path, json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return record_path


def prepare_fit(trainer: pl.Trainer, model: pl.LightningModule, fit_config: Any, config: dict[str, Any]) -> None:
    """What ``unlearn fit`` checks before it writes anything: ``--ckpt_path`` resolved
    (:func:`resolve_ckpt_path`; the file replaces ``last`` in ``fit_config``) and checked against this run
    (:func:`check_checkpoint_identity`), then the run folder claimed
    (:func:`claim_run_folder`) by the first process."""
    ckpt = fit_config.get("ckpt_path")
    resolved = resolve_ckpt_path(ckpt, trainer)
    if resolved and Path(resolved).is_file():
        notes = check_checkpoint_identity(
            resolved,
            dict(getattr(model, "hparams", {}) or {}),
            config.get("data"),
            allow_mismatch=bool(fit_config.get("allow_config_mismatch")),
        )
        note(notes)
        fit_config["ckpt_path"] = resolved
    first = os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"
    if first and trainer.is_global_zero:
        claim_run_folder(trainer.default_root_dir, config, resuming=bool(ckpt))

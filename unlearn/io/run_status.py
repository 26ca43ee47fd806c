"""``run_status.json``: written first as ``"running"`` and last as ``"finished"`` or ``"failed"``; readers of a
run's outputs refuse (or warn about) a folder whose run did not finish. Part of :mod:`unlearn.io`."""

from __future__ import annotations

import datetime
import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any

from unlearn.io import _pid_alive, atomic_write_text

#: the run-status file a training run keeps in each of its output folders
RUN_STATUS_FILE = "run_status.json"
RUN_STATUS_FORMAT = "t2v-unlearn-run-status/1"
#: the values of ``run_status.json``'s ``status``
RUN_STATUSES = ("running", "finished", "failed", "interrupted")


class UnfinishedRunError(ValueError):
    """A run's output was asked for, but the run that owns its folder failed or was interrupted."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_run_status(folder: str | os.PathLike, status: str, **info: Any) -> Path:
    """Write ``<folder>/run_status.json`` (atomically): ``status`` is ``"running"``, ``"finished"``,
    ``"failed"`` or ``"interrupted"`` (SIGTERM / SIGINT); ``info`` adds fields (``error``, ``run_id``, ...).
    The host and pid of the writer are recorded so that a reader can tell a run in progress from one that was
    killed."""
    if status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}; got {status!r}")
    path = Path(folder) / RUN_STATUS_FILE
    doc: dict[str, Any] = {}
    try:
        old = json.loads(path.read_text())
        if isinstance(old, dict) and old.get("run_id") == info.get("run_id"):
            doc.update(old)  # keep "started" and the command of this run
    except (OSError, ValueError):
        pass
    doc.update(
        {
            "format": RUN_STATUS_FORMAT,
            "status": status,
            "updated": _now(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            **info,
        }
    )
    doc.setdefault("started", doc["updated"])
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return path


def find_run_status(path: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The nearest ``run_status.json`` in ``path`` (a folder) or any folder above it, with its content."""
    p = Path(path).expanduser().absolute()
    for folder in ([p] if p.is_dir() else []) + list(p.parents):
        f = folder / RUN_STATUS_FILE
        if f.is_file():
            try:
                doc = json.loads(f.read_text())
            except (OSError, ValueError):
                doc = {"status": "unreadable"}
            return f, doc if isinstance(doc, dict) else {"status": "unreadable"}
    return None


def run_problem(path: str | os.PathLike) -> tuple[str, bool] | None:
    """Why the outputs under ``path`` are not those of a finished run, as ``(reason, fatal)``; None when the
    nearest run status says "finished" or there is none (files not written by ``unlearn fit``). A run that
    is still running (its process is alive) is not fatal, only worth a warning."""
    found = find_run_status(path)
    if found is None:
        return None
    file, doc = found
    status = doc.get("status")
    if status == "finished":
        return None
    when = doc.get("updated", "?")
    if status == "failed":
        err = f": {doc['error']}" if doc.get("error") else ""
        return (
            f"the run that writes {file.parent} failed ({when}{err}); its files there may be partial or "
            "older than the failure",
            True,
        )
    if status == "interrupted":
        why = f" by {doc['signal']}" if doc.get("signal") else ""
        return (
            f"the run that writes {file.parent} was interrupted{why} ({when}); its files there may be partial or "
            "older than the interruption (resume it with --ckpt_path last)",
            True,
        )
    if status == "running":
        same_host = doc.get("host") == socket.gethostname()
        pid = doc.get("pid")
        if same_host and isinstance(pid, int) and not _pid_alive(pid):
            return (
                f"the run that writes {file.parent} was interrupted (status 'running' since {doc.get('started', '?')}, "
                f"its process {pid} is gone); its files there may be partial or older than the interruption",
                True,
            )
        return (
            f"the run that writes {file.parent} has not finished yet (status 'running' since "
            f"{doc.get('started', '?')}, pid {pid} on {doc.get('host')}); its files there may change",
            False,
        )
    return f"{file} is unreadable or has an unknown status {status!r}", True


def require_finished(
    path: str | os.PathLike, what: str, allow_unfinished: bool = False, flag: str = "--allow-unfinished"
) -> None:
    """Refuse (:class:`UnfinishedRunError`) the output ``path`` (``what`` names it in the message) when the run
    owning its folder failed or was interrupted; warn when it is still running or ``allow_unfinished``."""
    problem = run_problem(path)
    if problem is None:
        return
    reason, fatal = problem
    if fatal and not allow_unfinished:
        raise UnfinishedRunError(
            f"{what} {str(path)!r}: {reason}. Fix: rerun the training to the end, or pass "
            f"{flag} to use these files anyway"
        )
    warnings.warn(f"{what} {str(path)!r}: {reason}", RuntimeWarning, stacklevel=2)

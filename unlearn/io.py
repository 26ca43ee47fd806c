"""Files written safely, run status, and where caches live: the one implementation every room of the project uses.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_path`: a reader sees the old file or
  the new one, never half of one (temporary file in the same folder, fsync, ``os.replace``).
* :func:`atomic_write_files`: several files that belong together (``metrics.json`` + ``metrics.md``): every
  one is written and synced under a temporary name before the first is renamed into place; the last one
  named is the commit record (readers check it, see :func:`unlearn.evaluation.tables.read_metrics`).
* :func:`atomic_folder` / :func:`replace_folder`: a folder written under a temporary name, then swapped in
  for the older one in one ``renameat2(RENAME_EXCHANGE)`` on Linux, so ``dest`` exists at every instant
  (two renames elsewhere).
* :func:`atomic_entries`: files and folders written under a temporary folder, then each moved into a shared
  output folder atomically (the commit record last).
* :func:`clean_orphan_temps`: temporary files and folders left by a killed writer (their names carry the
  writer's host and pid; only those of processes that no longer run are removed).
* :func:`write_run_status` / :func:`require_finished`: ``run_status.json``, written first as ``"running"``
  and last as ``"finished"`` or ``"failed"``; readers of a run's outputs refuse (or warn about) a folder
  whose run did not finish.
* :func:`file_sha256`, :func:`dir_size`: content hashes and sizes.
* :func:`cache_dir`: ``$T2V_UNLEARN_CACHE/<kind>`` (default ``$XDG_CACHE_HOME/t2v-unlearn/<kind>`` or
  ``~/.cache/t2v-unlearn/<kind>``) for the pseudo-data trajectories (``"pseudo"``) and the augmentation
  cache (``"augment"``).
* :func:`save_checkpoint_file` / :func:`load_checkpoint_file`: training checkpoints as one safetensors file
  (tensors) with JSON metadata (everything else): reading one never unpickles anything; URLs are refused.

This module imports nothing from the project: backbones, methods, evaluation and the toy world may all use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: environment variable naming the root of every cache of the project
CACHE_ENV = "T2V_UNLEARN_CACHE"
#: the run-status file a training run keeps in each of its output folders
RUN_STATUS_FILE = "run_status.json"
RUN_STATUS_FORMAT = "t2v-unlearn-run-status/1"
#: the values of ``run_status.json``'s ``status``
RUN_STATUSES = ("running", "finished", "failed", "interrupted")


def cache_dir(kind: str) -> Path:
    """The folder of one cache (``"pseudo"``, ``"augment"``): ``$T2V_UNLEARN_CACHE/<kind>``, else
    ``$XDG_CACHE_HOME/t2v-unlearn/<kind>``, else ``~/.cache/t2v-unlearn/<kind>``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "t2v-unlearn" / kind


# ---------------------------------------------------------------------------------------------- temporary names
def _owner_tag() -> str:
    # host and pid of the writer, so that a later process can tell a dead writer's leftovers from a live one's
    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"
    return f"~{host}-{os.getpid()}~"


_TAG_RE = re.compile(r"~(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)~")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_path(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def temp_name(path: str | os.PathLike) -> str:
    """A hidden name beside ``path`` for its temporary copy, tagged with this host and pid."""
    return f".{Path(path).name}.{_owner_tag()}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error the file written there
    is synced and replaces ``path`` in one ``os.replace``; on an error it is removed and ``path`` is untouched.

    For writers that want a file name (``safetensors.torch.save_file``, ``PIL.Image.save``)::

        with atomic_path(out / "masks.safetensors") as tmp:
            save_file(tensors, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_name(path), suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync_path(Path(tmp))
        os.replace(tmp, path)
        _fsync_path(path.parent, directory=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync and ``os.replace``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_files(files: Mapping[str | os.PathLike, bytes | str]) -> list[Path]:
    """Write several files that belong together: each to a synced temporary file first, then all renamed into
    place in the given order. Nothing is replaced unless every file could be written; the last file is the
    commit record (a reader that finds it with the others' digests knows the set is whole)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_name(path), suffix=".tmp")
            staged.append((Path(tmp), path))
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
        for parent in {p.parent for _, p in staged}:
            _fsync_path(parent, directory=True)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    return [p for _, p in staged]


# ---------------------------------------------------------------------------------------------- folders
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the OS or the file
    system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Move the fully written folder ``tmp`` to ``dest``, replacing an older ``dest``.

    Where the OS allows (Linux ≥ 3.15 on ext4, xfs, btrfs, tmpfs, ...) the two folders are exchanged in one
    ``renameat2(RENAME_EXCHANGE)`` and the old one is then removed: ``dest`` exists at every instant, and a
    reader sees the old folder or the new one. Elsewhere the old folder is renamed aside first (a crash between
    the two renames leaves it as ``.<dest>.old-*`` beside ``dest``)."""
    tmp, dest = Path(tmp), Path(dest)
    _fsync_path(tmp, directory=True)
    if dest.exists() and _exchange(tmp, dest):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        _fsync_path(dest.parent, directory=True)
        return dest
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{_owner_tag()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
    os.replace(tmp, dest)
    _fsync_path(dest.parent, directory=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest


@contextlib.contextmanager
def atomic_folder(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; when the block ends without an error it replaces ``dest``
    (:func:`replace_folder`); on an error it is removed and ``dest`` is untouched."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=temp_name(dest)))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                _fsync_path(f)
        replace_folder(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_entries(dest: str | os.PathLike, last: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; when the block ends without an error each file and folder
    written there replaces its namesake in ``dest`` atomically (folders with :func:`replace_folder`), ``last``
    after all the others; other entries of ``dest`` are kept. For outputs that share a folder with others
    (an edited model's ``transformer/`` + ``refusal_delta.safetensors`` + ``refusal_edit.json``)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=temp_name(dest)))
    try:
        yield tmp
        entries = sorted(tmp.iterdir(), key=lambda p: (p.name == last, p.name))
        for entry in entries:
            target = dest / entry.name
            if entry.is_dir():
                replace_folder(entry, target)
            else:
                _fsync_path(entry)
                os.replace(entry, target)
        _fsync_path(dest, directory=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def clean_orphan_temps(folder: str | os.PathLike, max_age_other_host_s: float = 24 * 3600) -> list[Path]:
    """Remove the temporary files/folders (names from :func:`temp_name`) directly in ``folder`` whose writer no
    longer runs: on this host when its pid is gone, from another host when older than ``max_age_other_host_s``.
    Returns what was removed. A live writer's temporary files are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    here = _owner_tag()[1:].rsplit("-", 1)[0]
    removed = []
    for p in folder.iterdir():
        if not p.name.startswith("."):
            continue
        m = _TAG_RE.search(p.name)
        if not m:
            continue
        if m["host"] == here:
            if _pid_alive(int(m["pid"])):
                continue
        else:
            try:
                if time.time() - p.lstat().st_mtime < max_age_other_host_s:
                    continue
            except FileNotFoundError:
                continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


# ---------------------------------------------------------------------------------------------- hashes
def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dir_size(path: str | os.PathLike) -> int:
    """Bytes of every file below ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------- run status
class UnfinishedRunError(ValueError):
    """A run's output was asked for, but the run that owns its folder failed or was interrupted."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_run_status(folder: str | os.PathLike, status: str, **info: Any) -> Path:
    """Write ``<folder>/run_status.json`` (atomically): ``status`` is ``"running"``, ``"finished"``,
    ``"failed"`` or ``"interrupted"`` (SIGTERM / SIGINT); ``info`` adds fields (``error``, ``run_id``, ...).
    The host and pid of the writer are recorded so that a reader can tell a run in progress from one that was killed."""
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


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints without pickles: one safetensors file whose tensors are the checkpoint's tensors and whose metadata
# holds everything else as JSON. Reading one never runs code, wherever the file came from.

#: the ``format`` entry of a checkpoint written by :func:`save_checkpoint_file`
CHECKPOINT_FORMAT = "t2v-unlearn-checkpoint/1"
_SKELETON_KEY = "t2v_unlearn_checkpoint"


class UnsafeCheckpointError(ValueError):
    """A checkpoint that cannot be read without running code from it, or that is not local."""


def is_remote_path(path: str | os.PathLike) -> bool:
    """True for ``scheme://...`` paths other than ``file://`` (http, https, s3, gs, hf, ...)."""
    text = str(path)
    head, sep, _ = text.partition("://")
    return bool(sep) and head.lower() != "file" and head.replace("+", "").replace("-", "").isalnum()


def refuse_remote_checkpoint(path: str | os.PathLike) -> None:
    """Raise :class:`UnsafeCheckpointError` for a URL: a checkpoint is only read from a local file."""
    if is_remote_path(path):
        raise UnsafeCheckpointError(
            f"checkpoint {str(path)!r} is a URL; checkpoints are read from local files only (a downloaded "
            "checkpoint is never unpickled). Fix: download it yourself, check where it came from, and pass the "
            "local path, e.g. --ckpt_path runs/x/checkpoints/last.ckpt"
        )


def _encode(obj: object, tensors: dict[str, object], where: str) -> object:
    import numpy as np
    import torch

    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided or obj.is_quantized:
            raise TypeError(f"checkpoint entry {where}: {obj.layout} tensors cannot be stored")
        name = f"t{len(tensors)}"
        # a copy per entry: safetensors refuses tensors that share memory
        tensors[name] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        name = f"t{len(tensors)}"
        tensors[name] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": name}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.dtype):
        return {"__dtype__": str(obj).removeprefix("torch.")}
    if isinstance(obj, Path):
        return {"__path__": str(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {
            "__items__": [
                [_encode(k, tensors, f"{where}<key>"), _encode(v, tensors, f"{where}[{k!r}]")] for k, v in obj.items()
            ]
        }
    raise TypeError(
        f"checkpoint entry {where} is a {type(obj).__module__}.{type(obj).__qualname__}; checkpoints hold tensors, "
        "numbers, strings, lists, tuples and dicts only (no pickled objects). Fix: store it as one of those in "
        "state_dict()/on_save_checkpoint"
    )


def _decode(obj: object, tensors: dict[str, object]) -> object:
    import torch

    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == "__tensor__":
            return tensors[value]
        if tag == "__ndarray__":
            return tensors[value].numpy()
        if tag == "__dtype__":
            return getattr(torch, value)
        if tag == "__path__":
            return Path(value)
        if tag == "__tuple__":
            return tuple(_decode(v, tensors) for v in value)
        if tag == "__items__":
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def save_checkpoint_file(checkpoint: dict, path: str | os.PathLike) -> Path:
    """Write ``checkpoint`` (a Lightning checkpoint dict or any nest of dicts/lists/tuples/tensors/numbers/
    strings) as one safetensors file, atomically: a kill at any moment leaves the previous file intact.

    Raises :class:`TypeError` naming the entry when something is not one of those types."""
    import json

    from safetensors.torch import save_file

    tensors: dict = {}
    skeleton = _encode(checkpoint, tensors, "checkpoint")
    metadata = {"format": CHECKPOINT_FORMAT, _SKELETON_KEY: json.dumps(skeleton)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    return path


def _looks_like_safetensors(data: bytes) -> bool:
    """A safetensors file starts with the 8-byte length of its JSON header, then ``{``."""
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 0 < n <= len(data) - 8 and data[8:9] == b"{"


def load_checkpoint_file(path: str | os.PathLike, map_location: object = None) -> dict:
    """Read a checkpoint without running code from it.

    A file written by :func:`save_checkpoint_file` is parsed (safetensors + JSON). Any other local file is
    read with ``torch.load(weights_only=True)`` (Lightning's own format: tensors and plain containers only; a
    pickle that wants to run code is refused). URLs are refused (:func:`refuse_remote_checkpoint`).
    """
    import json

    import torch
    from safetensors.torch import load as load_safetensors

    refuse_remote_checkpoint(path)
    text = str(path)
    local = Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()
    if not local.is_file():
        raise FileNotFoundError(f"checkpoint {str(local)!r} does not exist (or is not a file)")
    data = local.read_bytes()
    if _looks_like_safetensors(data):
        n = int.from_bytes(data[:8], "little")
        try:
            header = json.loads(data[8 : 8 + n])
            meta = header.get("__metadata__") or {}
        except (ValueError, AttributeError) as err:
            raise UnsafeCheckpointError(f"checkpoint {str(local)!r}: unreadable safetensors header ({err})") from err
        if meta.get("format") != CHECKPOINT_FORMAT or _SKELETON_KEY not in meta:
            raise UnsafeCheckpointError(
                f"checkpoint {str(local)!r} is a safetensors file but not a t2v-unlearn checkpoint "
                f"(format {meta.get('format')!r}); adapters folders are loaded with model.init_adapters instead"
            )
        try:
            tensors = load_safetensors(data)
        except Exception as err:  # safetensors raises its own error type for truncated files
            raise UnsafeCheckpointError(f"checkpoint {str(local)!r} is damaged or truncated ({err})") from err
        checkpoint = _decode(json.loads(meta[_SKELETON_KEY]), tensors)
    else:
        import io as _io
        import pickle

        try:
            checkpoint = torch.load(_io.BytesIO(data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise UnsafeCheckpointError(
                f"checkpoint {str(local)!r} holds pickled objects that would run code when loaded; it was "
                f"refused ({str(err).splitlines()[0]}). Only tensors and plain containers are read."
            ) from err
        except (RuntimeError, EOFError) as err:
            raise UnsafeCheckpointError(
                f"checkpoint {str(local)!r} is damaged, truncated or not a checkpoint ({err})"
            ) from err
    if map_location is not None and not callable(map_location):
        checkpoint = _to_device(checkpoint, map_location)
    return checkpoint


def _to_device(obj: object, device: object) -> object:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_device(v, device) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_device(v, device) for v in obj)
    return obj

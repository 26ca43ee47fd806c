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

Three seams, three files: the writers, temporary names, hashes and cache folders here; the run status in
:mod:`unlearn.io.run_status`; the checkpoint codec in :mod:`unlearn.io.checkpoint` (both re-exported here).
This package imports nothing else from the project: backbones, methods, evaluation and the toy world may all use
it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

#: environment variable naming the root of every cache of the project
CACHE_ENV = "T2V_UNLEARN_CACHE"


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


# the two other seams of the module, re-exported: `from unlearn.io import require_finished` stays the spelling
from unlearn.io.checkpoint import (  # noqa: E402 - they build on the writers above
    CHECKPOINT_FORMAT,
    UnsafeCheckpointError,
    is_remote_path,
    load_checkpoint_file,
    refuse_remote_checkpoint,
    save_checkpoint_file,
)
from unlearn.io.run_status import (  # noqa: E402
    RUN_STATUS_FILE,
    RUN_STATUS_FORMAT,
    RUN_STATUSES,
    UnfinishedRunError,
    find_run_status,
    require_finished,
    run_problem,
    write_run_status,
)

__all__ = [
    "CACHE_ENV",
    "CHECKPOINT_FORMAT",
    "RUN_STATUS_FILE",
    "RUN_STATUS_FORMAT",
    "RUN_STATUSES",
    "UnfinishedRunError",
    "UnsafeCheckpointError",
    "atomic_entries",
    "atomic_folder",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_files",
    "atomic_write_text",
    "cache_dir",
    "clean_orphan_temps",
    "dir_size",
    "file_sha256",
    "find_run_status",
    "is_remote_path",
    "load_checkpoint_file",
    "refuse_remote_checkpoint",
    "replace_folder",
    "require_finished",
    "run_problem",
    "save_checkpoint_file",
    "temp_name",
    "write_run_status",
]

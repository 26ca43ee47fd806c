"""Files written safely, and where caches live: the one implementation every room of the project uses.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_path`: a reader sees the old file or
  the new one, never half of one (temporary file in the same folder, fsync, ``os.replace``).
* :func:`replace_folder`: move a fully written temporary folder into place over an older one.
* :func:`file_sha256`, :func:`dir_size`: content hashes and sizes.
* :func:`cache_dir`: ``$T2V_UNLEARN_CACHE/<kind>`` (default ``$XDG_CACHE_HOME/t2v-unlearn/<kind>`` or
  ``~/.cache/t2v-unlearn/<kind>``) for the pseudo-data trajectories (``"pseudo"``) and the augmentation
  cache (``"augment"``).

This module imports nothing from the project: backbones, methods, evaluation and the toy world may all use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error the file written there
    replaces ``path`` in one ``os.replace``; on an error it is removed and ``path`` is untouched.

    For writers that want a file name (``safetensors.torch.save_file``, ``PIL.Image.save``)::

        with atomic_path(out / "masks.safetensors") as tmp:
            save_file(tensors, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync and ``os.replace``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_folder(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Move the fully written folder ``tmp`` to ``dest``, replacing an older ``dest`` (which is renamed aside
    first and removed after the move, so a reader never sees a mix of old and new files)."""
    tmp, dest = Path(tmp), Path(dest)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest


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

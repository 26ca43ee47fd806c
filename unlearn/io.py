"""Files written safely, and where caches live: the one implementation every room of the project uses.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_path`: a reader sees the old file or
  the new one, never half of one (temporary file in the same folder, fsync, ``os.replace``).
* :func:`replace_folder`: move a fully written temporary folder into place over an older one.
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


def _encode(obj: object, tensors: dict[str, "object"], where: str) -> object:
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
        return {"__items__": [[_encode(k, tensors, f"{where}<key>"), _encode(v, tensors, f"{where}[{k!r}]")]
                              for k, v in obj.items()]}
    raise TypeError(
        f"checkpoint entry {where} is a {type(obj).__module__}.{type(obj).__qualname__}; checkpoints hold tensors, "
        "numbers, strings, lists, tuples and dicts only (no pickled objects). Fix: store it as one of those in "
        "state_dict()/on_save_checkpoint"
    )


def _decode(obj: object, tensors: dict[str, "object"]) -> object:
    import torch

    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (tag, value), = obj.items()
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
    local = Path(text[len("file://"):] if text.startswith("file://") else text).expanduser()
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
            raise UnsafeCheckpointError(f"checkpoint {str(local)!r} is damaged, truncated or not a checkpoint ({err})") from err
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

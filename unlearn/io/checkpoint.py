"""Training checkpoints without pickles: one safetensors file whose tensors are the checkpoint's tensors and
whose metadata holds everything else as JSON; reading one never runs code, wherever the file came from. Part of
:mod:`unlearn.io`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from unlearn.io import atomic_path

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

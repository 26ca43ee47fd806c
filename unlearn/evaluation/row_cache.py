"""Videos of rows that do not depend on training, kept on disk and reused across runs.

The original model, negative prompting and SAFREE give the same frames before and after training, in every run
of the same backbone, prompts and settings: ``unlearn fit`` generated them anew at each evaluation. A row
declares that it can be cached by not being ``live`` (:attr:`RowSpec.trained`: only the model trained or
edited in this process is); a ``t2vunlearning``/``refusal_vector`` row read from files is cached too, its files'
sha256 being part of the key.

The key of one generated batch is the sha256 of everything its frames depend on:

- the backbone: its registry name, the sha256 of every tensor of its state (denoiser, text encoder, VAE;
  the attached adapters are not part of it), its dtype and device type, its sampling defaults, its scheduler
  config, its class and tokenizer;
- the code that makes the frames: the source of the backbone's class (and its bases), of the baselines and of
  this row machinery, and the versions of torch, diffusers and transformers;
- the row: :meth:`RowSpec.fingerprint` (kind, keywords, options, baseline version, files' sha256) and, for a
  baseline, what it computes (:meth:`RowGenerator.describe`: negative prompt, guidance, SAFREE settings);
- the sampling settings of the run, and the batch's prompts and seeds, in order (a batch is cached whole, so
  the frames are those of the same batched computation).

The evaluator is not part of the key: it does not change the frames, and the cached frames are scored anew
(scoring is a small share of the time; a changed classifier then gives its own numbers).

An entry is one safetensors file (``videos``: uint8 ``[B, F, H, W, 3]``, exactly the frames generated; the key
in its metadata, checked on reading); written atomically, so a killed run leaves no partial entry, and an entry
that cannot be read or whose key differs is generated again and replaced.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from unlearn.compat import tensor_version
from unlearn.io import atomic_write_bytes, cache_dir

#: bumped when the entry layout or the key's content changes
ROW_CACHE_FORMAT = "t2v-unlearn-row-videos/1"
#: environment variable that turns the cache off (``0``), for measuring or debugging
ROW_CACHE_ENV = "T2V_UNLEARN_ROW_CACHE"


def row_cache_enabled() -> bool:
    return os.environ.get(ROW_CACHE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def weights_sha256(module: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer of ``module`` (names, dtypes, shapes and bytes).

    Memoized on the module while no tensor was modified in place (each tensor's version counter and storage are
    part of the memo key), so an evaluation every epoch hashes a frozen backbone once."""
    tensors = [(n, t) for n, t in (*module.named_parameters(), *module.named_buffers())]
    memo_key = tuple((n, t.data_ptr(), tensor_version(t), tuple(t.shape), str(t.dtype)) for n, t in tensors)
    memo = getattr(module, "_t2v_weights_sha256", None)
    if memo is not None and memo[0] == memo_key:
        return memo[1]
    h = hashlib.sha256()
    for name, tensor in sorted(tensors, key=lambda nt: nt[0]):
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        flat = tensor.detach().reshape(-1).contiguous()
        h.update(flat.view(torch.uint8).cpu().numpy().tobytes() if flat.numel() else b"")
    digest = h.hexdigest()
    object.__setattr__(module, "_t2v_weights_sha256", (memo_key, digest))
    return digest


def _source_sha256(objects: Sequence[Any]) -> str:
    """sha256 of the project's source files that define ``objects`` (classes: with their bases; or modules)."""
    names = set()
    for obj in objects:
        for item in inspect.getmro(obj) if inspect.isclass(obj) else (obj,):
            name = item.__name__ if inspect.ismodule(item) else getattr(item, "__module__", "")
            if name == "unlearn" or name.startswith("unlearn."):
                names.add(name)
    h = hashlib.sha256()
    for name in sorted(names):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            h.update(name.encode())
            h.update(Path(path).read_bytes())
    return h.hexdigest()


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("torch", "diffusers", "transformers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def backbone_key(backbone: Any, code: Sequence[Any] = ()) -> dict[str, Any]:
    """What a backbone contributes to every key (its weights hash is computed here, memoized); ``code``: the
    classes or modules whose source makes the frames besides the backbone's class (the rows, the baselines)."""
    scheduler = getattr(backbone, "scheduler", None)
    config = dict(getattr(scheduler, "config", {}) or {})
    return {
        "name": getattr(backbone, "name", type(backbone).__name__),
        "class": f"{type(backbone).__module__}.{type(backbone).__qualname__}",
        "weights_sha256": weights_sha256(backbone),
        "dtype": str(getattr(backbone, "dtype", None)),
        "device": str(getattr(getattr(backbone, "device", None), "type", None)),
        "defaults": repr(getattr(backbone, "defaults", None)),
        "scheduler": [type(scheduler).__name__, json.loads(json.dumps(config, default=str))],
        "tokenizer": type(getattr(backbone, "tokenizer", None)).__name__,
        "max_text_length": getattr(backbone, "max_text_length", None),
        "code_sha256": _source_sha256([type(backbone), *code, sys.modules[__name__]]),
        "versions": _versions(),
    }


class RowVideoCache:
    """A folder of cached row videos (default ``$T2V_UNLEARN_CACHE/rows``, else ``~/.cache/t2v-unlearn/rows``).

    ``hits`` and ``misses`` count the batches read and generated since it was made.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir("rows")
        self.hits = 0
        self.misses = 0

    def key(self, backbone: dict[str, Any], row: dict[str, Any], sampling: dict[str, Any], prompts, seeds) -> str:
        payload = {
            "format": ROW_CACHE_FORMAT,
            "backbone": backbone,
            "row": row,
            "sampling": dict(sorted(sampling.items())),
            "prompts": list(prompts),
            "seeds": [int(s) for s in seeds],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> Tensor | None:
        """The cached videos of ``key``, or None (missing, unreadable, or written for another key)."""
        from safetensors import safe_open

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("key") != key or meta.get("format") != ROW_CACHE_FORMAT:
                    return None
                videos = f.get_tensor("videos")
        except Exception:  # noqa: BLE001 - a damaged entry is generated again, never trusted
            return None
        if videos.dtype != torch.uint8 or videos.dim() != 5:
            return None
        return videos

    def put(self, key: str, videos: Tensor) -> None:
        from safetensors.torch import save

        data = save(
            {"videos": videos.detach().to("cpu", torch.uint8).contiguous()},
            metadata={"key": key, "format": ROW_CACHE_FORMAT},
        )
        atomic_write_bytes(self.path(key), data)

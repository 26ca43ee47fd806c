"""Edits of ``nn.Linear`` layers as objects: apply to a backbone, a stock diffusers pipeline or a bare
denoiser (checked against digests of the weights they were computed on), undo bit for bit, switch off for a
block, and save/load as one safetensors file whose metadata holds the JSON summary.

:class:`LinearEdit` is the shared machinery (a method's edit says only what the new weights are);
:class:`WeightEdit` is the dense kind: the new weights themselves (UCE's closed form, ESD's fine-tuned
projections), as the authors' code saves them (``uce_sd_erase.py:85-88``, ``esd_sd.py:198-204``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from unlearn.backbones import Switch
from unlearn.io import atomic_entries, atomic_path

from .sites import TEXT_ENCODER_PREFIX, get_linear, resolve_targets

__all__ = [
    "WEIGHT_EDIT_FORMAT",
    "EditSwitch",
    "LinearEdit",
    "WeightEdit",
    "denoiser_subfolder",
    "linear_digest",
    "load_weight_edit",
    "save_stock_model",
    "tensor_digest",
]

#: file format tag of :class:`WeightEdit` files
WEIGHT_EDIT_FORMAT = "t2v-unlearn-weight-edit/1"


def tensor_digest(t: Tensor) -> str:
    """sha256 (16 hex digits) of a tensor's dtype, shape and bytes."""
    x = t.detach().contiguous().cpu()
    h = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    h.update(x.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def linear_digest(mod: nn.Linear) -> str:
    return tensor_digest(mod.weight) + ("" if mod.bias is None else tensor_digest(mod.bias))


class LinearEdit:
    """Apply / undo / switch machinery of an edit of some ``nn.Linear`` layers.

    A subclass (a dataclass) has the fields ``digests`` (``{layer: {"before", "after", "dtype"}}``),
    ``originals`` (``{layer: (weight, bias)}`` CPU copies) and ``applied``, and implements :meth:`edited`
    (the new weight and bias of one layer) and :attr:`layers`. ``label`` names the edit in messages.
    """

    label = "weight edit"
    digests: dict[str, dict[str, str]]
    originals: dict[str, tuple[Tensor, Tensor | None]]
    applied: bool

    @property
    def layers(self) -> list[str]:  # pragma: no cover - subclasses
        raise NotImplementedError

    @property
    def touches_text_encoder(self) -> bool:
        return any(n.startswith(TEXT_ENCODER_PREFIX) for n in self.layers)

    def check_layer(self, name: str, mod: nn.Linear) -> None:
        """Raise ``ValueError`` when the edit cannot apply to ``mod`` (e.g. another width)."""

    def edited(self, name: str, mod: nn.Linear) -> tuple[Tensor, Tensor | None]:  # pragma: no cover - subclasses
        """The new weight and bias of layer ``name`` (now holding its original weights), in its dtype."""
        raise NotImplementedError

    def apply_to(
        self, target: Any, *, text_encoder: nn.Module | None = None, check: bool = True, keep_originals: bool = False
    ) -> LinearEdit:
        """Edit ``target`` in place (a backbone, a diffusers pipeline or its transformer/UNet).

        With ``check`` the layers' weights must match the ones the edit was computed on (digest recorded at
        edit time) — ``ValueError`` otherwise — and the edited weights are compared with the recorded
        result (a ``RuntimeWarning`` if they differ, e.g. on another device type). Weights of another dtype
        than the recorded one are edited unchecked (a ``RuntimeWarning`` says so). Returns ``self``.
        """
        denoiser, te, backbone = resolve_targets(target, text_encoder)
        mods = {n: get_linear(n, denoiser, te) for n in self.layers}
        checked = set()
        other_dtype = []
        for n, mod in mods.items():
            self.check_layer(n, mod)
            rec = self.digests.get(n, {})
            if not check or not rec.get("before"):
                continue
            if rec.get("dtype") and rec["dtype"] != str(mod.weight.dtype):
                other_dtype.append(n)  # bit-exactness is only defined for the same dtype
                continue
            if linear_digest(mod) != rec["before"]:
                raise ValueError(
                    f"layer {n!r} does not hold the weights the {self.label} was computed on (digest differs): "
                    "wrong model or already edited. Pass check=False to edit anyway."
                )
            checked.add(n)
        if other_dtype:
            warnings.warn(
                f"the {self.label} was computed on {self.digests[other_dtype[0]]['dtype']} weights and is applied to "
                f"{mods[other_dtype[0]].weight.dtype} ones ({len(other_dtype)} layers): same edit, weights not "
                "checked against the recorded digests",
                RuntimeWarning,
                stacklevel=2,
            )
        for n, mod in mods.items():
            if keep_originals:
                self.originals[n] = (
                    mod.weight.detach().cpu().clone(),
                    None if mod.bias is None else mod.bias.detach().cpu().clone(),
                )
            new_w, new_b = self.edited(n, mod)
            with torch.no_grad():
                mod.weight.copy_(new_w)
                if mod.bias is not None and new_b is not None:
                    mod.bias.copy_(new_b)
            if n in checked and self.digests[n].get("after") and linear_digest(mod) != self.digests[n]["after"]:
                warnings.warn(
                    f"layer {n!r}: the re-applied edit differs in the last bits from the recorded one",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if backbone is not None and self.touches_text_encoder:
            backbone._prompt_cache.clear()
        self.applied = True
        return self

    def record_digests(self, target: Any, before: dict[str, str]) -> None:
        """Store the digests of the layers before (``before``) and after the edit (read from ``target`` now)."""
        denoiser, te, _ = resolve_targets(target)
        mods = {n: get_linear(n, denoiser, te) for n in self.layers}
        self.digests = {
            n: {"before": before[n], "after": linear_digest(m), "dtype": str(m.weight.dtype)} for n, m in mods.items()
        }

    def restore(self, target: Any, *, text_encoder: nn.Module | None = None) -> None:
        """Put the original weights back (bit for bit) into ``target``."""
        denoiser, te, backbone = resolve_targets(target, text_encoder)
        if set(self.originals) != set(self.layers):
            raise RuntimeError("this edit kept no original weights; it cannot be undone in place")
        for n, (w, b) in self.originals.items():
            mod = get_linear(n, denoiser, te)
            with torch.no_grad():
                mod.weight.copy_(w.to(mod.weight.device))
                if b is not None:
                    mod.bias.copy_(b.to(mod.bias.device))
        if backbone is not None and self.touches_text_encoder:
            backbone._prompt_cache.clear()
        self.applied = False

    @contextlib.contextmanager
    def original_weights(self, target: Any) -> Iterator[None]:
        """Inside the block ``target`` has its original weights; the edit is re-applied after."""
        if not self.applied:
            yield
            return
        edited = {}
        denoiser, te, _ = resolve_targets(target)
        for n in self.layers:
            mod = get_linear(n, denoiser, te)
            edited[n] = (mod.weight.detach().clone(), None if mod.bias is None else mod.bias.detach().clone())
        self.restore(target)
        try:
            yield
        finally:
            for n, (w, b) in edited.items():
                mod = get_linear(n, denoiser, te)
                with torch.no_grad():
                    mod.weight.copy_(w)
                    if b is not None:
                        mod.bias.copy_(b)
            if hasattr(target, "_prompt_cache") and self.touches_text_encoder:
                target._prompt_cache.clear()
            self.applied = True


@dataclasses.dataclass
class WeightEdit(LinearEdit):
    """A dense edit: the new weight (and bias) of each edited layer.

    Args:
        weights: ``{layer: new weight}`` in the dtype the model is edited in.
        biases: ``{layer: new bias}`` for the layers whose bias the edit changes.
        method: the method that made it (``"uce"``, ``"esd_x"``): names it in files and messages.
        concepts: the erased concepts.
        config: the method's settings (JSON-ready).
        backbone / source: registry name and weights the edit was computed on.
        timings: seconds per phase.
        stats: per-layer numbers the method reports (JSON-ready).
        digests: ``{layer: {"before", "after", "dtype"}}`` (checked by :meth:`apply_to`).
    """

    weights: dict[str, Tensor]
    biases: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    method: str = ""
    concepts: list[str] = dataclasses.field(default_factory=list)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    backbone: str = ""
    source: str = ""
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    digests: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    originals: dict[str, tuple[Tensor, Tensor | None]] = dataclasses.field(default_factory=dict, repr=False)
    applied: bool = False

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"{self.method or 'weight'} edit"

    @property
    def layers(self) -> list[str]:
        return list(self.weights)

    def check_layer(self, name: str, mod: nn.Linear) -> None:
        if tuple(mod.weight.shape) != tuple(self.weights[name].shape):
            raise ValueError(
                f"layer {name!r} has weight {tuple(mod.weight.shape)}, the {self.label} "
                f"{tuple(self.weights[name].shape)}: another model"
            )
        if name in self.biases and mod.bias is None:
            raise ValueError(f"layer {name!r} has no bias, but the {self.label} sets one: another model")

    def edited(self, name: str, mod: nn.Linear) -> tuple[Tensor, Tensor | None]:
        w = self.weights[name].to(device=mod.weight.device, dtype=mod.weight.dtype)
        b = self.biases.get(name)
        return w, None if b is None else b.to(device=mod.bias.device, dtype=mod.bias.dtype)

    def delta(self, layer: str) -> tuple[Tensor, Tensor | None]:
        """``(ΔW, Δb)`` of ``layer`` in float64 (needs the original weights: ``keep_originals``)."""
        if layer not in self.originals:
            raise KeyError(f"no original weights of {layer!r} kept (edit loaded from a file, or keep_originals=False)")
        w, b = self.originals[layer]
        dw = self.weights[layer].to(torch.float64) - w.to(torch.float64)
        nb = self.biases.get(layer)
        db = None if nb is None or b is None else nb.to(torch.float64) - b.to(torch.float64)
        return dw, db

    @classmethod
    def capture(cls, target: Any, layers: Sequence[str], **fields: Any) -> WeightEdit:
        """The current weights of ``layers`` in ``target`` as an edit (e.g. after fine-tuning them); CPU copies."""
        denoiser, te, _ = resolve_targets(target)
        weights, biases = {}, {}
        for n in layers:
            mod = get_linear(n, denoiser, te)
            weights[n] = mod.weight.detach().cpu().clone()
            if mod.bias is not None:
                biases[n] = mod.bias.detach().cpu().clone()
        return cls(weights=weights, biases=biases, **fields)

    # -------------------------------------------------------------- files
    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no tensors)."""
        return {
            "format": WEIGHT_EDIT_FORMAT,
            "method": self.method,
            "backbone": self.backbone,
            "source": self.source,
            "concepts": self.concepts,
            "config": self.config,
            "timings_s": self.timings,
            "stats": self.stats,
            "layers": {
                n: {
                    "shape": list(w.shape),
                    "dtype": str(w.dtype),
                    "bias": n in self.biases,
                    **({"digest": self.digests[n]} if n in self.digests else {}),
                }
                for n, w in self.weights.items()
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the new weights (``<layer>.weight`` / ``<layer>.bias``) and the summary as the safetensors
        metadata into one file (atomically)."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {f"{n}.weight": w.detach().contiguous().cpu() for n, w in self.weights.items()}
        tensors.update({f"{n}.bias": b.detach().contiguous().cpu() for n, b in self.biases.items()})
        meta = {"format": WEIGHT_EDIT_FORMAT, "method": self.method, "summary": json.dumps(self.summary())}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path


def read_edit_file(
    path: str | os.PathLike,
    expected_format: str,
    kind: str,
    what: str,
    fix: str,
    check: Callable[[dict[str, Tensor], dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The tensors and the JSON summary of an edit file (safetensors whose metadata holds ``format`` and
    ``summary``). ``ValueError`` naming ``path`` for a file of another format (``kind``: "weight-edit file"), one
    ``check(tensors, summary)`` refuses, or a damaged one (``what``: "UCE edit"; ``fix``: what to do)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != expected_format:
                raise ValueError(f"{path}: not a {kind} (format {meta.get('format')!r}, expected {expected_format!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no dict
        summary = json.loads(meta["summary"])
        if check is not None:
            check(tensors, summary)
        return tensors, summary
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - any reading failure is a damaged file for the user
        raise ValueError(
            f"{path}: cannot read the {what} ({type(e).__name__}: {' '.join(str(e).split())[:160]}); "
            f"the file is truncated or corrupt. Fix: {fix}"
        ) from None


def load_weight_edit(path: str | os.PathLike, method: str | None = None) -> WeightEdit:
    """Read a file written by :meth:`WeightEdit.save` (``method``: refuse a file of another method)."""
    what = f"{method} edit" if method else "weight edit"
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"{what} {str(path)!r} does not exist. Fix: give the .safetensors file (or the folder holding it) "
            "written by the method's `unlearn fit`"
        )
    tensors, s = read_edit_file(path, WEIGHT_EDIT_FORMAT, "weight-edit file", what, "run the edit again")
    if method is not None and s.get("method") != method:
        raise ValueError(f"{path}: a {s.get('method')!r} edit, not a {method!r} one")
    missing = [n for n in s["layers"] if f"{n}.weight" not in tensors]
    if missing:
        raise ValueError(f"{path}: the summary names layers without a weight tensor: {missing[:3]}")
    return WeightEdit(
        weights={n: tensors[f"{n}.weight"] for n in s["layers"]},
        biases={n: tensors[f"{n}.bias"] for n, d in s["layers"].items() if d.get("bias")},
        method=s.get("method", ""),
        concepts=list(s.get("concepts", [])),
        config=s.get("config", {}),
        backbone=s.get("backbone", ""),
        source=s.get("source", ""),
        timings=s.get("timings_s", {}),
        stats=s.get("stats", {}),
        digests={n: d["digest"] for n, d in s["layers"].items() if "digest" in d},
    )


class EditSwitch(Switch):
    """The :class:`~unlearn.backbones.Switch` of a weight edit (UCE, ESD, the refusal vector):
    ``disabled()`` gives the original model (the edit's layers restored bit for bit), ``scaled(1.0)`` the
    edited one. ``module`` has ``.edit`` (a :class:`LinearEdit` or None) and ``.backbone``. Not an
    ``nn.Module``: nothing to train or checkpoint."""

    def __init__(self, module: Any, what: str = "an edit") -> None:
        self._module = module
        self._what = what
        self.enabled = True

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        edit = self._module.edit
        ctx = edit.original_weights(self._module.backbone) if edit is not None else contextlib.nullcontext()
        prev, self.enabled = self.enabled, False
        try:
            with ctx:
                yield
        finally:
            self.enabled = prev

    @contextlib.contextmanager
    def scaled(self, scale: float) -> Iterator[None]:
        if float(scale) == 1.0:
            yield
        elif float(scale) == 0.0:
            with self.disabled():
                yield
        else:
            raise ValueError(f"{self._what} is on (1.0) or off (0.0); re-run with model.strength for other strengths")


def denoiser_subfolder(denoiser: nn.Module) -> str:
    """Sub-folder name of the denoiser in a diffusers pipeline folder ("unet" or "transformer")."""
    return "unet" if "unet" in type(denoiser).__name__.lower() else "transformer"


def save_stock_model(
    backbone: Any,
    folder: str | os.PathLike,
    *,
    text_encoder: bool = False,
    full_pipeline: bool = False,
    files: dict[str, Any] | None = None,
    last: str | None = None,
) -> Path:
    """Save the (edited) model as stock diffusers/transformers folders, atomically.

    Writes ``<folder>/transformer`` (or ``unet``) with ``save_pretrained(safe_serialization=True)``, plus
    ``<folder>/text_encoder`` with ``text_encoder``; with ``full_pipeline`` the whole pipeline instead
    (backbones that offer ``save_pretrained``). ``files``: ``{name: writer(path)}`` written beside them,
    ``last`` moved into ``folder`` last (:func:`unlearn.io.atomic_entries`).
    """
    folder = Path(folder)
    if full_pipeline and not hasattr(backbone, "save_pretrained"):
        raise ValueError(f"{backbone.name} cannot save a full pipeline; use full_pipeline=False")
    with atomic_entries(folder, last=last) as tmp:
        if full_pipeline:
            backbone.save_pretrained(str(tmp))
        else:
            backbone.denoiser.save_pretrained(str(tmp / denoiser_subfolder(backbone.denoiser)), safe_serialization=True)
            if text_encoder:
                backbone.text_encoder.save_pretrained(str(tmp / "text_encoder"), safe_serialization=True)
        for name, write in (files or {}).items():
            write(tmp / name)
    return folder

"""The refusal edit as a LoRA that diffusers' ``pipe.load_lora_weights`` loads.

The edit of a Linear layer ``y = Wx + b`` is ``W' = W − s·UUᵀW``, ``b' = b − s·UUᵀb`` (``U`` ``[D_out, k]``
orthonormal, :func:`unlearn.methods.refusal.project_out`): a rank-``k`` update, so exactly a LoRA with

    lora_A = UᵀW          ([k, D_in])
    lora_B = −s·U         ([D_out, k])
    lora_B.bias = −s·UUᵀb (PEFT's ``lora_bias``, which diffusers detects from the key)

and ``lora_alpha = r`` (scale 1), computed in float64 and stored in float32. The file is diffusers' own
LoRA layout (``pytorch_lora_weights.safetensors``, keys ``transformer.<layer>.lora_A.weight``)::

    pipe = CogVideoXPipeline.from_pretrained("THUDM/CogVideoX-2b")
    pipe.load_lora_weights("runs/cogx2b_refusal/lora", adapter_name="refusal")   # needs peft
    pipe.set_adapters(["refusal"], [0.5])   # half the edit; pipe.fuse_lora() bakes it into the weights

Loaded at scale 1 it gives the edited model's outputs up to float32 rounding (tests/test_refusal_lora.py
measures the difference on tiny backbones); any other scale ``a`` is the edit of strength ``a·s``.
Edits that reach into the text encoder have no LoRA here (the video pipelines' LoRA loaders load the
denoiser only), nor has ZeroScope (diffusers' UNet3DConditionModel takes no LoRA): :func:`refusal_lora_state_dict`
refuses both with the alternative.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from unlearn.checks import InputError
from unlearn.io import atomic_folder
from unlearn.methods.weight_edits import denoiser_subfolder, resolve_targets

if TYPE_CHECKING:
    from unlearn.methods.refusal import RefusalEdit

#: diffusers' file name for LoRA weights (diffusers/loaders/lora_base.py, LORA_WEIGHT_NAME_SAFE)
LORA_WEIGHTS_NAME = "pytorch_lora_weights.safetensors"

__all__ = ["LORA_WEIGHTS_NAME", "refusal_lora_state_dict", "save_refusal_lora"]


def refusal_lora_state_dict(
    edit: RefusalEdit, original: Any | None = None, dtype: torch.dtype = torch.float32
) -> dict[str, Tensor]:
    """The LoRA of ``edit`` in diffusers' layout (module docstring).

    The update needs the layers' original weights: ``edit.originals`` (an edit made in this process keeps them)
    or ``original``, the unedited model (a backbone, a diffusers pipeline or its denoiser; for an edit read with
    :func:`~unlearn.methods.refusal.load_delta`). A model that already holds the edit is refused: its weights
    have no component left along ``U`` to express the update with.
    """
    text_layers = [n for n in edit.bases if n.startswith("text_encoder.")]
    if text_layers:
        raise InputError(
            f"the refusal edit changes the text encoder ({text_layers[0]}, ...); diffusers' video pipelines load "
            "LoRAs into the denoiser only. Fix: compute the edit on denoiser layers (model.layers: text_kv, "
            "text_input or attn_kv), or share the edited model (save_edited_model)"
        )
    if original is None and not set(edit.bases) <= set(edit.originals):
        raise InputError(
            "this refusal edit keeps no original weights (it was loaded from a file). Fix: pass original=, the "
            "unedited pipeline or denoiser the edit was computed for"
        )
    denoiser = None if original is None else resolve_targets(original)[0]
    # the component name diffusers' LoRA loaders expect in front of the layer names: from the model given, else
    # from the backbone name (ZeroScope is the one UNet family)
    prefix = (
        denoiser_subfolder(denoiser)
        if denoiser is not None
        else ("unet" if "zeroscope" in edit.backbone else "transformer")
    )
    if prefix == "unet":
        raise InputError(
            "diffusers cannot load a LoRA into ZeroScope's UNet3DConditionModel (it has no PEFT adapter support, "
            "so TextToVideoSDPipeline.load_lora_weights fails). Fix: share the edited model (save_edited_model) "
            "or the delta file (RefusalEdit.save_delta, applied with load_delta(...).apply_to(pipe))"
        )
    state: dict[str, Tensor] = {}
    for name, basis in edit.bases.items():
        if denoiser is not None:
            layer = denoiser.get_submodule(name)
            if not isinstance(layer, nn.Linear):
                raise InputError(f"layer {name!r} is a {type(layer).__name__}, not the nn.Linear the edit changed")
            w, b = layer.weight.detach(), None if layer.bias is None else layer.bias.detach()
        else:
            w, b = edit.originals[name]
        u = basis.to(device=w.device, dtype=torch.float64)
        if u.shape[0] != w.shape[0]:
            raise InputError(f"layer {name!r} has {w.shape[0]} outputs; the edit's basis {u.shape[0]}: another model")
        w64 = w.to(torch.float64)
        a = u.T @ w64
        if edit.strength == 1.0 and a.abs().max() <= 1e-6 * max(w64.abs().max().item(), 1e-30):
            raise InputError(
                f"layer {name!r} already holds the refusal edit (no component left along its subspace). Fix: "
                "give the unedited model as original="
            )
        key = f"{prefix}.{name}"
        state[f"{key}.lora_A.weight"] = a.to(dtype).contiguous().cpu()
        state[f"{key}.lora_B.weight"] = (-edit.strength * u).to(dtype).contiguous().cpu()
        if b is not None:
            bias = -edit.strength * (u @ (u.T @ b.to(torch.float64)))
            state[f"{key}.lora_B.bias"] = bias.to(dtype).contiguous().cpu()
    return state


def save_refusal_lora(
    edit: RefusalEdit, folder: str | os.PathLike, original: Any | None = None, dtype: torch.dtype = torch.float32
) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors`` (:func:`refusal_lora_state_dict`) and
    ``folder/refusal_lora.json`` (backbone, concepts, strength, ranks) atomically; ``pipe.load_lora_weights(
    folder)`` loads it."""
    from safetensors.torch import save_file

    state = refusal_lora_state_dict(edit, original, dtype)
    info = {
        "format": "t2v-unlearn-refusal-lora/1",
        "backbone": edit.backbone,
        "concepts": list(edit.concepts),
        "strength": edit.strength,
        "ranks": {n: int(b.shape[1]) for n, b in edit.bases.items()},
        "weights": LORA_WEIGHTS_NAME,
    }
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        save_file(state, str(tmp / LORA_WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / "refusal_lora.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    return folder

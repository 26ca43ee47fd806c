"""Shared plumbing of the methods that edit a backbone's own ``nn.Linear`` layers (refusal vector, UCE, ESD):

- ``sites``: which layers read the text (presets ``auto``/``text_kv``/``text_input``/``attn_kv``, patterns,
  the attention layers ESD-x trains) and the probes that find the text's entry points;
- ``activations``: the layers' outputs or inputs on the text tokens, reduced to per-prompt samples;
- ``delta``: an edit as an object (apply with digest checks, undo bit for bit, an on/off switch for
  evaluation rows), the dense :class:`WeightEdit` with its safetensors + JSON file, stock diffusers export;
- ``module``: the Lightning side the methods share (:class:`WeightEditModule`; training-free:
  :class:`ClosedFormEditModule`): backbone, edit, switch, output folder, generation, checkpoints.

A lower room: methods import it, it imports no method (docs/architecture.md)."""

from .activations import TokenReduce, collect_token_activations, reduce_tokens
from .delta import (
    WEIGHT_EDIT_FORMAT,
    EditSwitch,
    LinearEdit,
    WeightEdit,
    denoiser_subfolder,
    linear_digest,
    load_weight_edit,
    read_edit_file,
    save_stock_model,
    tensor_digest,
)
from .module import ClosedFormEditModule, WeightEditModule, check_edit_options
from .sites import (
    LAYER_PRESETS,
    TEXT_ENCODER_PREFIX,
    ProbeSettings,
    attention_linears,
    covers_text_paths,
    denoiser_linears,
    get_linear,
    resolve_layers,
    resolve_targets,
    text_only_kv,
)

__all__ = [
    "LAYER_PRESETS",
    "TEXT_ENCODER_PREFIX",
    "WEIGHT_EDIT_FORMAT",
    "ClosedFormEditModule",
    "EditSwitch",
    "LinearEdit",
    "ProbeSettings",
    "TokenReduce",
    "WeightEdit",
    "WeightEditModule",
    "attention_linears",
    "check_edit_options",
    "collect_token_activations",
    "covers_text_paths",
    "denoiser_linears",
    "denoiser_subfolder",
    "get_linear",
    "linear_digest",
    "load_weight_edit",
    "read_edit_file",
    "reduce_tokens",
    "resolve_layers",
    "resolve_targets",
    "save_stock_model",
    "tensor_digest",
    "text_only_kv",
]

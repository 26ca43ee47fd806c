"""Which ``nn.Linear`` layers of a backbone read the text: presets, explicit patterns, and the probes that find
the text's entry points into the denoiser (shared by the weight-editing methods: refusal vector, UCE, ESD)."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "LAYER_PRESETS",
    "TEXT_ENCODER_PREFIX",
    "ProbeSettings",
    "attention_linears",
    "covers_text_paths",
    "denoiser_linears",
    "get_linear",
    "resolve_layers",
    "resolve_targets",
    "text_only_kv",
]

#: layer presets accepted by :func:`resolve_layers` (besides explicit module-name patterns)
LAYER_PRESETS = ("auto", "text_kv", "text_input", "attn_kv")
TEXT_ENCODER_PREFIX = "text_encoder."


@dataclasses.dataclass
class ProbeSettings:
    """How the probe forwards run (any object with these three attributes will do, e.g. a method's config).

    Args:
        probe_size: ``(frames, height, width)`` of the probe latents (None: the backbone's default size).
        probe_timestep: timestep of the probe forward (None: the middle of the default schedule).
        batch_size: prompts per probe forward.
    """

    probe_size: tuple[int, int, int] | None = None
    probe_timestep: int | None = None
    batch_size: int = 4


def denoiser_linears(denoiser: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in denoiser.named_modules() if isinstance(m, nn.Linear)}


def text_only_kv(site_module: nn.Module) -> list[str]:
    """Child names of the Linear layers of an attention module that see text tokens only."""
    if getattr(site_module, "is_cross_attention", False) and isinstance(getattr(site_module, "to_k", None), nn.Linear):
        return ["to_k", "to_v"]
    if isinstance(getattr(site_module, "add_k_proj", None), nn.Linear):
        return ["add_k_proj", "add_v_proj"]
    return []


def probe_inputs(backbone: Any, batch: int, config: Any) -> tuple[Tensor, Tensor]:
    d = backbone.defaults
    f, h, w = config.probe_size or (d.num_frames, d.height, d.width)
    latents = backbone.initial_noise([0] * batch, f, h, w)
    if config.probe_timestep is not None:
        t = torch.tensor(int(config.probe_timestep))
    else:
        ts = backbone.timesteps_for(d.num_inference_steps)
        t = ts[len(ts) // 2]
    return latents, t.reshape(1).expand(batch).to(backbone.device)


#: prompt pairs for the structural probes: each pair differs in one word and tokenizes to equal lengths on
#: the real and tiny tokenizers and the toy world's (the first pair with equal token counts is used)
_PROBE_PAIRS = (("a red ring", "a blue ring"), ("a photo of a cat", "a photo of a dog"), ("a red ball", "a blue ball"))


def _probe_pair(backbone: Any) -> tuple[str, str]:
    for a, b in _PROBE_PAIRS:
        if len(backbone.text_tokens(a)[0]) == len(backbone.text_tokens(b)[0]):
            return a, b
    raise RuntimeError(f"{backbone.name}: no probe prompt pair of equal token length; name the layers explicitly")


def _structure_probe_size(backbone: Any, config: Any) -> tuple[int, int, int]:
    """A small legal video size for the structural probes (which record every Linear layer): the default
    number of frames at the smallest square size the backbone accepts (``config.probe_size`` wins)."""
    if config.probe_size is not None:
        return tuple(config.probe_size)  # type: ignore[return-value]
    d = backbone.defaults
    for side in range(8, max(d.height, d.width) + 1, 8):
        try:
            backbone.latent_shape(d.num_frames, side, side)
        except ValueError:
            continue
        return d.num_frames, side, side
    return d.num_frames, d.height, d.width


@torch.no_grad()
def _linear_probe(
    backbone: Any, prompt: str, config: Any, freeze: Mapping[str, list[Tensor]] | None = None
) -> tuple[dict[str, list[Tensor]], dict[str, list[Tensor]], Tensor]:
    """One denoiser forward on ``prompt`` with every Linear layer hooked: returns the inputs and outputs of
    each call of each layer and the prediction. ``freeze``: outputs that replace the layers' own (by call)."""
    f, h, w = _structure_probe_size(backbone, config)
    latents = backbone.initial_noise([0], f, h, w)
    ts = backbone.timesteps_for(backbone.defaults.num_inference_steps)
    t = ts[len(ts) // 2].reshape(1).to(backbone.device)
    inputs: dict[str, list[Tensor]] = {}
    outputs: dict[str, list[Tensor]] = {}
    handles = []

    def make_hooks(name: str):
        def pre(module: nn.Module, args: tuple) -> None:
            inputs.setdefault(name, []).append(args[0].detach().clone())

        def post(module: nn.Module, args: tuple, out: Tensor):
            calls = outputs.setdefault(name, [])
            calls.append(out.detach().clone())
            if freeze is not None and name in freeze:
                return freeze[name][len(calls) - 1]
            return None

        return pre, post

    for name, mod in denoiser_linears(backbone.denoiser).items():
        pre, post = make_hooks(name)
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        pred = backbone.predict(latents, t, backbone.encode_prompts([prompt]))
    finally:
        for hd in handles:
            hd.remove()
    return inputs, outputs, pred


def _find_text_input_linears(backbone: Any, config: Any) -> list[str]:
    """The Linear layers the text reaches without passing another Linear layer: the text's entry points into
    the denoiser (token states and pooled embeddings alike; e.g. HunyuanVideo's token-refiner input and pooled
    projections). Found by probing: with every Linear's output frozen to prompt A's, the layers whose *input*
    still changes with prompt B are reached by the text directly."""
    a, b = _probe_pair(backbone)
    inputs_a, outputs_a, _ = _linear_probe(backbone, a, config)
    inputs_b, _, _ = _linear_probe(backbone, b, config, freeze=outputs_a)
    found = []
    for name, calls in inputs_b.items():
        ref = inputs_a.get(name, [])
        if len(ref) != len(calls) or any(
            x.shape != y.shape or not torch.equal(x, y) for x, y in zip(calls, ref, strict=True)
        ):
            found.append(name)
    return found


def covers_text_paths(backbone: Any, layers: Sequence[str], config: Any = None) -> bool:
    """Whether every path by which the prompt reaches the prediction passes through ``layers`` (denoiser Linear
    names): with their outputs frozen to prompt A's, prompt B must give exactly A's prediction. Paths that carry
    no prompt content are not counted: the two probe prompts have the same token count (the attention mask)."""
    config = config or ProbeSettings()
    a, b = _probe_pair(backbone)
    _, outputs_a, pred_a = _linear_probe(backbone, a, config)
    frozen = {n: outputs_a[n] for n in layers if n in outputs_a}
    _, _, pred_b = _linear_probe(backbone, b, config, freeze=frozen)
    return torch.equal(pred_a, pred_b)


def resolve_layers(backbone: Any, layers: str | Sequence[str] = "auto", config: Any = None) -> list[str]:
    """Module names (in the denoiser; ``text_encoder.``-prefixed for the text encoder) of the Linear layers
    that ``layers`` selects, in a fixed order. Raises ``ValueError`` when nothing matches."""
    config = config or ProbeSettings()
    linears = denoiser_linears(backbone.denoiser)
    if isinstance(layers, str) and layers in LAYER_PRESETS:
        sites = backbone.attention_sites()
        text_kv = [f"{s.name}.{c}" for s in sites for c in text_only_kv(s.module)]
        if layers == "text_kv":
            if not text_kv:
                raise ValueError(
                    f"{backbone.name}: no attention site has text-only key/value projections (joint attention); "
                    "use layers='text_input' (the text input projection) or 'attn_kv' (shared projections)."
                )
            return text_kv
        if layers == "attn_kv":
            out = []
            for s in sites:
                kids = text_only_kv(s.module) or ["to_k", "to_v"]
                out += [f"{s.name}.{c}" for c in kids if isinstance(getattr(s.module, c, None), nn.Linear)]
            return out
        if layers == "auto" and text_kv and covers_text_paths(backbone, text_kv, config):
            # cross-attention models: the text reaches the video only through these projections
            return text_kv
        found = _find_text_input_linears(backbone, config)
        if not found:
            raise ValueError(
                f"{backbone.name}: no Linear layer of the denoiser reads the text embedding directly; "
                "name the layers explicitly (config.layers = ['pattern', ...])."
            )
        return found
    patterns = [layers] if isinstance(layers, str) else list(layers)
    if not patterns:
        raise ValueError("config.layers is an empty list; give a preset name or module-name patterns")
    te_linears = (
        {TEXT_ENCODER_PREFIX + n: m for n, m in backbone.text_encoder.named_modules() if isinstance(m, nn.Linear)}
        if backbone.text_encoder is not None
        else {}
    )
    out: list[str] = []
    for pat in patterns:
        pool = te_linears if pat.startswith(TEXT_ENCODER_PREFIX) else linears
        hits = [n for n in pool if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise ValueError(
                f"layer pattern {pat!r} matches no nn.Linear in the "
                f"{'text encoder' if pool is te_linears else 'denoiser'} "
                f"of {backbone.name}; presets: {LAYER_PRESETS}. Some Linear names: {list(pool)[:8]}"
            )
        out += [n for n in hits if n not in out]
    return out


def get_linear(name: str, denoiser: nn.Module, text_encoder: nn.Module | None) -> nn.Linear:
    if name.startswith(TEXT_ENCODER_PREFIX):
        if text_encoder is None:
            raise ValueError(f"layer {name!r} is in the text encoder, but no text encoder was given")
        mod = text_encoder.get_submodule(name[len(TEXT_ENCODER_PREFIX) :])
    else:
        mod = denoiser.get_submodule(name)
    if not isinstance(mod, nn.Linear):
        raise TypeError(f"layer {name!r} is a {type(mod).__name__}, not an nn.Linear; the edit needs a Linear layer")
    return mod


def attention_linears(backbone: Any) -> list[str]:
    """Every ``nn.Linear`` of the attention layers where text meets video (the backbone's attention sites):
    query, key, value and output projections, text-side ones included. On a cross-attention model these are
    the ``attn2`` layers that ESD-x trains (``rohitgandikota/erasing``, ``esd_sd.py:29``)."""
    out: list[str] = []
    for s in backbone.attention_sites():
        out += [f"{s.name}.{n}" for n, m in s.module.named_modules() if isinstance(m, nn.Linear)]
    if not out:
        raise ValueError(f"{backbone.name}: its attention sites hold no nn.Linear layer")
    return out


def resolve_targets(target: Any, text_encoder: nn.Module | None = None) -> tuple[nn.Module, nn.Module | None, Any]:
    """(denoiser, text_encoder, backbone-or-None) of a backbone, a diffusers pipeline or a bare denoiser."""
    if hasattr(target, "denoiser") and hasattr(target, "encode_prompts"):
        return target.denoiser, text_encoder or target.text_encoder, target
    for attr in ("transformer", "unet"):
        if isinstance(getattr(target, attr, None), nn.Module):
            return getattr(target, attr), text_encoder or getattr(target, "text_encoder", None), None
    if isinstance(target, nn.Module):
        return target, text_encoder, None
    raise TypeError(
        f"cannot apply a weight edit to a {type(target).__name__}; give a backbone, a pipeline or a denoiser"
    )

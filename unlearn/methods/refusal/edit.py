"""Training-free concept removal with a low-rank refusal vector (Facchiano et al., "Video Unlearning via
Low-Rank Refusal Vector"); see ``docs/refusal_vector.md``.

1. Activations. For a few unsafe/safe prompt pairs, record the outputs of chosen ``nn.Linear`` layers that
   read the text conditioning (default: the text-only key/value projections of the attention layers where
   text meets video; the denoiser's text input projection on joint-attention backbones such as CogVideoX).
2. Basis. Per layer, the refusal vector is the mean difference (unsafe − safe) of the activations; contrastive
   PCA (eigenvectors of ``Cov(unsafe) − w·Cov(safe)``) adds the few directions specific to the unsafe set.
   The normalised refusal vector comes first, the cPCA directions follow, Gram-Schmidt makes them orthonormal.
3. Edit. The subspace is removed from the layer's output in closed form:
   ``W' = (I − s·U Uᵀ) W``, ``b' = (I − s·U Uᵀ) b``. Several concepts: their bases are stacked and
   orthonormalised, then removed in one edit. Inference is unchanged and costs nothing extra.

The edited denoiser is a stock diffusers model (``save_edited_model`` → ``from_pretrained`` loads it with no
custom code); ``RefusalEdit.save_delta`` writes the bases alone (a few KB–MB) so ``load_delta(...).apply_to``
reproduces the edit on a stock model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from unlearn.io import atomic_entries, atomic_path
from unlearn.methods.refusal.keep import COMBINE_MODES, whiten_against_kept
from unlearn.methods.refusal.pairs import PromptPair, as_pairs, load_pairs, make_pairs

__all__ = [
    "DELTA_FORMAT",
    "LAYER_PRESETS",
    "PromptPair",
    "RefusalEdit",
    "RefusalVectorConfig",
    "apply_refusal_edit",
    "collect_activations",
    "collect_token_activations",
    "combine_bases",
    "contrastive_directions",
    "covers_text_paths",
    "load_delta",
    "load_pairs",
    "make_pairs",
    "orthonormalize",
    "project_out",
    "reduce_tokens",
    "refusal_basis",
    "resolve_layers",
    "save_edited_model",
]

TokenReduce = Literal["mean", "concept", "tokens"]
BasisMode = Literal["mean_cpca", "cpca"]

#: layer presets accepted by ``RefusalVectorConfig.layers`` (besides explicit module-name patterns)
LAYER_PRESETS = ("auto", "text_kv", "text_input", "attn_kv")
#: file format tag of delta files
DELTA_FORMAT = "t2v-unlearn-refusal-delta/1"
TEXT_ENCODER_PREFIX = "text_encoder."


@dataclasses.dataclass
class RefusalVectorConfig:
    """Options of the refusal-vector edit (defaults: see ``docs/refusal_vector.md``).

    Args:
        layers: which ``nn.Linear`` outputs to collect and edit. A preset:
            ``"auto"`` (default) = ``"text_kv"`` where the backbone's text-only key/value projections carry
            every path of the prompt into the prediction (cross-attention models: ZeroScope, Wan), else
            ``"text_input"`` (CogVideoX; HunyuanVideo, whose text stream continues into the single-stream blocks
            and whose pooled CLIP embedding modulates every block);
            ``"text_kv"`` = ``to_k``/``to_v`` of cross-attention sites (ZeroScope, Wan) and the text-side
            ``add_k_proj``/``add_v_proj`` of dual-stream sites (HunyuanVideo);
            ``"text_input"`` = the denoiser's Linear layers the text reaches without passing another Linear
            layer, token states and pooled embeddings alike (CogVideoX ``patch_embed.text_proj``, Wan
            ``condition_embedder.text_embedder.linear_1``, ZeroScope's ``attn2.to_k/to_v``, HunyuanVideo's
            token-refiner input ``context_embedder.proj_in``, its pooled-text projection
            ``context_embedder.time_text_embed.text_embedder.linear_1`` and the pooled CLIP projection
            ``time_text_embed.text_embedder.linear_1``), found by probe forwards;
            ``"attn_kv"`` = ``"text_kv"`` plus the *shared* ``to_k``/``to_v`` of joint-attention sites
            (activations from the text rows; the edit then also acts on the video tokens' keys/values).
            Or a list of module-name glob patterns in the denoiser (``"transformer_blocks.*.attn1.to_k"``);
            prefix ``text_encoder.`` for layers of the text encoder.
        rank: k, columns of the basis per concept and layer (1 = the plain refusal vector).
        cpca_weight: w in ``Cov(unsafe) − w·Cov(safe)`` (0 = plain PCA of the unsafe set).
        strength: s in ``W' = (I − s·UUᵀ)W`` (1 = remove the subspace fully; 0 = no edit).
        token_reduce: how a prompt's text tokens become samples: ``"mean"`` (default) = one sample per
            prompt, the mean over the text positions the denoiser attends to (the attention mask when the
            backbone has one, else all positions); ``"concept"`` = mean over the tokens of the words in
            which the pair differs (needs a substitute word in the safe prompt); ``"tokens"`` = every
            position is a sample (more samples for cPCA).
        basis: ``"mean_cpca"`` (default) = normalised mean difference first, then top cPCA directions;
            ``"cpca"`` = top eigenvectors of the unsafe second moment about the safe mean minus
            ``w·Cov(safe)`` (the mean shift is inside that matrix; no forced first column).
        num_pairs: pairs per concept when they are generated or read from a file.
        probe_size: ``(frames, height, width)`` of the probe latents used to run the denoiser while
            collecting (None: the backbone's default size). Text-only layers do not depend on it.
        probe_timestep: timestep of the probe forward (None: the middle of the default schedule).
        batch_size: prompts per probe forward.
        eig_tol: relative tolerance below which basis directions are dropped as dependent/noise.
        combine: how the concepts' bases become one per layer: ``"stack"`` (default) = stacked and
            orthonormalised; ``"kept_whitened"`` = each basis first multiplied by ``(S + λI)⁻¹``, ``S`` the second
            moment of the safe prompts' token outputs (of every concept), so the edit removes as little as it
            can of what the kept prompts use (:mod:`unlearn.methods.refusal.keep`; issue #28).
        kept_ridge: ``λ`` of ``"kept_whitened"`` relative to the mean eigenvalue of ``S`` (large: the plain
            stacked edit; small: directions orthogonal to every kept output).
    """

    layers: str | list[str] = "auto"
    rank: int = 2
    cpca_weight: float = 1.0
    strength: float = 1.0
    token_reduce: TokenReduce = "mean"
    basis: BasisMode = "mean_cpca"
    num_pairs: int = 5
    probe_size: tuple[int, int, int] | None = None
    probe_timestep: int | None = None
    batch_size: int = 4
    eig_tol: float = 1e-6
    combine: str = "stack"
    kept_ridge: float = 0.1

    def __post_init__(self) -> None:
        if self.combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {', '.join(COMBINE_MODES)}; got {self.combine!r}")
        if not self.kept_ridge > 0:
            raise ValueError(f"kept_ridge must be > 0; got {self.kept_ridge}")
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1; got {self.rank}")
        if self.cpca_weight < 0:
            raise ValueError(f"cpca_weight must be >= 0; got {self.cpca_weight}")
        if self.token_reduce not in ("mean", "concept", "tokens"):
            raise ValueError(f"token_reduce must be 'mean', 'concept' or 'tokens'; got {self.token_reduce!r}")
        if self.basis not in ("mean_cpca", "cpca"):
            raise ValueError(f"basis must be 'mean_cpca' or 'cpca'; got {self.basis!r}")
        if isinstance(self.layers, str) and self.layers not in LAYER_PRESETS:
            self.layers = [self.layers]
        if self.probe_size is not None:
            self.probe_size = tuple(int(x) for x in self.probe_size)  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["probe_size"] = list(self.probe_size) if self.probe_size is not None else None
        return d


# ====================================================================== layers
def _denoiser_linears(denoiser: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in denoiser.named_modules() if isinstance(m, nn.Linear)}


def _text_only_kv(site_module: nn.Module) -> list[str]:
    """Child names of the Linear layers of an attention module that see text tokens only."""
    if getattr(site_module, "is_cross_attention", False) and isinstance(getattr(site_module, "to_k", None), nn.Linear):
        return ["to_k", "to_v"]
    if isinstance(getattr(site_module, "add_k_proj", None), nn.Linear):
        return ["add_k_proj", "add_v_proj"]
    return []


def _probe_inputs(backbone: Any, batch: int, config: RefusalVectorConfig) -> tuple[Tensor, Tensor]:
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


def _structure_probe_size(backbone: Any, config: RefusalVectorConfig) -> tuple[int, int, int]:
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
    backbone: Any, prompt: str, config: RefusalVectorConfig, freeze: Mapping[str, list[Tensor]] | None = None
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

    for name, mod in _denoiser_linears(backbone.denoiser).items():
        pre, post = make_hooks(name)
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        pred = backbone.predict(latents, t, backbone.encode_prompts([prompt]))
    finally:
        for hd in handles:
            hd.remove()
    return inputs, outputs, pred


def _find_text_input_linears(backbone: Any, config: RefusalVectorConfig) -> list[str]:
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
        if len(ref) != len(calls) or any(x.shape != y.shape or not torch.equal(x, y) for x, y in zip(calls, ref)):
            found.append(name)
    return found


def covers_text_paths(backbone: Any, layers: Sequence[str], config: RefusalVectorConfig | None = None) -> bool:
    """Whether every path by which the prompt reaches the prediction passes through ``layers`` (denoiser Linear
    names): with their outputs frozen to prompt A's, prompt B must give exactly A's prediction. Paths that carry
    no prompt content are not counted: the two probe prompts have the same token count (the attention mask)."""
    config = config or RefusalVectorConfig()
    a, b = _probe_pair(backbone)
    _, outputs_a, pred_a = _linear_probe(backbone, a, config)
    frozen = {n: outputs_a[n] for n in layers if n in outputs_a}
    _, _, pred_b = _linear_probe(backbone, b, config, freeze=frozen)
    return torch.equal(pred_a, pred_b)


def resolve_layers(
    backbone: Any, layers: str | Sequence[str] = "auto", config: RefusalVectorConfig | None = None
) -> list[str]:
    """Module names (in the denoiser; ``text_encoder.``-prefixed for the text encoder) of the Linear layers
    that ``layers`` selects, in a fixed order. Raises ``ValueError`` when nothing matches."""
    config = config or RefusalVectorConfig()
    linears = _denoiser_linears(backbone.denoiser)
    if isinstance(layers, str) and layers in LAYER_PRESETS:
        sites = backbone.attention_sites()
        text_kv = [f"{s.name}.{c}" for s in sites for c in _text_only_kv(s.module)]
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
                kids = _text_only_kv(s.module) or ["to_k", "to_v"]
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
                f"layer pattern {pat!r} matches no nn.Linear in the {'text encoder' if pool is te_linears else 'denoiser'} "
                f"of {backbone.name}; presets: {LAYER_PRESETS}. Some Linear names: {list(pool)[:8]}"
            )
        out += [n for n in hits if n not in out]
    return out


def _get_linear(name: str, denoiser: nn.Module, text_encoder: nn.Module | None) -> nn.Linear:
    if name.startswith(TEXT_ENCODER_PREFIX):
        if text_encoder is None:
            raise ValueError(f"layer {name!r} is in the text encoder, but no text encoder was given")
        mod = text_encoder.get_submodule(name[len(TEXT_ENCODER_PREFIX) :])
    else:
        mod = denoiser.get_submodule(name)
    if not isinstance(mod, nn.Linear):
        raise TypeError(f"layer {name!r} is a {type(mod).__name__}, not an nn.Linear; the edit needs a Linear layer")
    return mod


# ====================================================================== activations
class _ProbeDone(Exception):
    """Raised by the last hook to skip the rest of a probe forward."""


def _per_prompt(out: Tensor, batch: int) -> Tensor:
    """Undo a per-frame repetition of the text batch (ZeroScope's UNet repeats the text per frame)."""
    if out.shape[0] == batch:
        return out
    if out.shape[0] % batch:
        raise RuntimeError(f"a hooked layer saw batch {out.shape[0]}, not a multiple of the {batch} prompts")
    r = out.shape[0] // batch
    inter = out.reshape(batch, r, *out.shape[1:])
    if torch.equal(inter[:, 0], inter[:, -1]):
        return inter[:, 0]
    tiled = out.reshape(r, batch, *out.shape[1:])
    if torch.equal(tiled[0], tiled[-1]):
        return tiled[0]
    raise RuntimeError("a hooked layer saw the text batch repeated in an unknown layout")


def _as_tokens(out: Tensor) -> Tensor:
    """``[B, D]`` (a pooled vector per prompt) → ``[B, 1, D]``; token outputs pass unchanged."""
    return out[:, None] if out.dim() == 2 else out


def _text_rows(backbone: Any, seq: int, text_len: int) -> slice:
    if seq == text_len:
        return slice(None)
    layout = (getattr(backbone, "token_layout", "") or "").lower()
    if "text first" in layout:
        return slice(0, text_len)
    if "text last" in layout or "video first" in layout:
        return slice(seq - text_len, seq)
    raise RuntimeError(
        f"a hooked layer saw {seq} tokens but the text has {text_len}, and {backbone.name}'s token_layout "
        f"{layout!r} does not say where the text tokens are"
    )


@torch.no_grad()
def collect_token_activations(
    backbone: Any,
    prompts: Sequence[str],
    layers: Sequence[str],
    config: RefusalVectorConfig | None = None,
    progress: bool = False,
) -> dict[str, Tensor]:
    """Outputs of each layer on the text tokens: ``{layer: float32 [len(prompts), L, D]}`` on the CPU.

    Denoiser layers are recorded during one probe ``predict`` per batch (stopped as soon as every layer has
    fired); text-encoder layers while the text encoder runs (bypassing the prompt cache). ``progress`` shows a
    bar per prompt with its ETA (a full-size text encoder and probe forward take seconds per batch).
    """
    config = config or RefusalVectorConfig()
    prompts = list(prompts)
    te_layers = [n for n in layers if n.startswith(TEXT_ENCODER_PREFIX)]
    dn_layers = [n for n in layers if not n.startswith(TEXT_ENCODER_PREFIX)]
    chunks: dict[str, list[Tensor]] = {n: [] for n in layers}
    bs = max(1, int(config.batch_size))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompts), desc=f"refusal activations ({len(layers)} layers)", unit="prompt")
    for i in range(0, len(prompts), bs):
        if bar is not None and i:
            bar.update(bs)
        batch = prompts[i : i + bs]
        b = len(batch)
        if te_layers:
            got: dict[str, Tensor] = {}
            handles = []
            for n in te_layers:
                mod = _get_linear(n, backbone.denoiser, backbone.text_encoder)
                handles.append(
                    mod.register_forward_hook(
                        lambda m, a, o, n=n: got.setdefault(n, _as_tokens(_per_prompt(o.detach(), b)).float().cpu())
                    )
                )
            try:
                backbone._encode(batch)
            finally:
                for h in handles:
                    h.remove()
            for n in te_layers:
                if n not in got:
                    raise RuntimeError(f"text-encoder layer {n!r} did not run while encoding prompts")
                chunks[n].append(got[n])
        if dn_layers:
            cond = backbone.encode_prompts(batch)
            text_len = cond.hidden_states.shape[1]
            got = {}
            handles = []

            def make_hook(n: str):
                def hook(m: nn.Module, a: tuple, o: Tensor) -> None:
                    if n in got:
                        return
                    out = _per_prompt(o.detach(), b)
                    if out.dim() == 2:  # a pooled path (HunyuanVideo's pooled text projections): one position
                        got[n] = out[:, None].float().cpu()
                    else:
                        got[n] = out[:, _text_rows(backbone, out.shape[1], text_len)].float().cpu()
                    if len(got) == len(dn_layers):
                        raise _ProbeDone

                return hook

            for n in dn_layers:
                handles.append(_get_linear(n, backbone.denoiser, None).register_forward_hook(make_hook(n)))
            try:
                latents, t = _probe_inputs(backbone, b, config)
                backbone.predict(latents, t, cond)
            except _ProbeDone:
                pass
            finally:
                for h in handles:
                    h.remove()
            missing = [n for n in dn_layers if n not in got]
            if missing:
                raise RuntimeError(f"layers {missing} did not run during the probe forward of {backbone.name}")
            for n in dn_layers:
                chunks[n].append(got[n])
    if bar is not None:
        bar.update(len(prompts) - bar.n)
        bar.close()
    return {n: torch.cat(c) for n, c in chunks.items()}


def reduce_tokens(acts: Tensor, mode: TokenReduce = "mean", mask: Tensor | None = None) -> Tensor:
    """``[B, L, D]`` token activations → ``[N, D]`` samples.

    ``mask`` (bool ``[B, L]``) selects the positions: the attention mask for ``"mean"``/``"tokens"``, the
    concept tokens for ``"concept"``. ``"mean"``/``"concept"`` give one sample per prompt (N = B),
    ``"tokens"`` one per selected position.
    """
    if acts.dim() != 3:
        raise ValueError(f"token activations must be [B, L, D]; got {tuple(acts.shape)}")
    if mask is None:
        if mode == "concept":
            raise ValueError("token_reduce='concept' needs a mask of the concept tokens")
        mask = torch.ones(acts.shape[:2], dtype=torch.bool)
    mask = mask.to(torch.bool).cpu()
    if mask.shape != acts.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match activations {tuple(acts.shape[:2])}")
    if (mask.sum(1) == 0).any():
        raise ValueError(f"prompts {torch.nonzero(mask.sum(1) == 0).flatten().tolist()} have no selected token")
    if mode == "tokens":
        return acts[mask]
    w = mask.to(acts.dtype).unsqueeze(-1)
    return (acts * w).sum(1) / w.sum(1)


def _token_masks(
    backbone: Any, prompts: Sequence[str], words: Sequence[Sequence[str]] | None, mode: TokenReduce, text_len: int
) -> Tensor | None:
    if mode == "concept":
        if words is None:
            raise ValueError("token_reduce='concept' needs the concept words of every prompt (argument `words`)")
        empty = [p for p, w in zip(prompts, words) if not w]
        if empty:
            raise ValueError(
                f"token_reduce='concept' needs the differing words of both prompts of a pair, but {empty[:3]} "
                "have none (the safe prompt drops the concept word). Fix: give pairs with a neutral substitute "
                "word (data.substitute, e.g. 'clothed'), or use token_reduce='mean'."
            )
        return backbone.concept_token_mask(list(prompts), [list(w) for w in words])
    cond = backbone.encode_prompts(list(prompts))
    if cond.attention_mask is not None and cond.attention_mask.shape[1] == text_len:
        return cond.attention_mask.bool().cpu()
    return None


def collect_activations(
    backbone: Any,
    prompts: Sequence[str],
    layers: Sequence[str],
    token_reduce: TokenReduce = "mean",
    words: Sequence[Sequence[str]] | None = None,
    config: RefusalVectorConfig | None = None,
) -> dict[str, Tensor]:
    """Per-layer samples ``{layer: float32 [N, D]}`` for ``prompts`` (see :func:`reduce_tokens`).

    ``words`` (per prompt, the phrases naming the concept) is needed for ``token_reduce="concept"``.
    """
    config = config or RefusalVectorConfig()
    acts = collect_token_activations(backbone, prompts, layers, config)
    out = {}
    masks: dict[int, Tensor | None] = {}
    for name, a in acts.items():
        mode, m = _layer_reduction(backbone, prompts, words, token_reduce, a.shape[1], masks, name)
        out[name] = reduce_tokens(a, mode, m)
    return out


def _layer_reduction(
    backbone: Any,
    prompts: Sequence[str],
    words: Sequence[Sequence[str]] | None,
    mode: TokenReduce,
    length: int,
    masks: dict[int, Tensor | None],
    name: str,
) -> tuple[TokenReduce, Tensor | None]:
    """The token reduction and mask of a layer with ``length`` text positions (``masks``: cache by length).
    A pooled path (one position: a vector per prompt) has no tokens to choose: its one sample is used."""
    if length == 1:
        return "mean", None
    if length not in masks:
        masks[length] = _token_masks(backbone, prompts, words, mode, length)
    m = masks[length]
    if m is not None and m.shape[1] != length:
        raise ValueError(f"layer {name!r} has {length} text positions but the token mask has {m.shape[1]}")
    return mode, m


# ====================================================================== basis
def orthonormalize(columns: Tensor, tol: float = 1e-6, max_rank: int | None = None) -> Tensor:
    """Gram-Schmidt (twice, float64) over the columns of ``[D, n]`` in order, dropping a column whose
    residual is below ``tol`` × its norm. The first kept column is the normalised first column, so order
    matters. Returns float64 ``[D, k]`` with ``UᵀU = I``."""
    cols = columns.to(torch.float64)
    kept: list[Tensor] = []
    for j in range(cols.shape[1]):
        v = cols[:, j].clone()
        norm0 = v.norm()
        if norm0 == 0 or not torch.isfinite(norm0):
            continue
        for _ in range(2):
            for u in kept:
                v = v - (u @ v) * u
        if v.norm() <= tol * norm0:
            continue
        kept.append(v / v.norm())
        if max_rank is not None and len(kept) >= max_rank:
            break
    if not kept:
        return cols.new_zeros(cols.shape[0], 0)
    return torch.stack(kept, 1)


def _sym_eig(a: Tensor, b: Tensor, ca: float, cb: float) -> tuple[Tensor, Tensor]:
    """Eigen-decomposition of ``ca·aᵀa + cb·bᵀb`` (``a``: ``[n, D]``, ``b``: ``[m, D]``), largest first,
    through the row space when ``n + m < D``."""
    stacked = torch.cat([a, b])
    coeff = torch.cat([torch.full((a.shape[0],), ca, dtype=a.dtype), torch.full((b.shape[0],), cb, dtype=a.dtype)])
    d = stacked.shape[1]
    if stacked.shape[0] >= d:
        mat = stacked.T @ (coeff[:, None] * stacked)
        evals, evecs = torch.linalg.eigh((mat + mat.T) / 2)
    else:
        q, r = torch.linalg.qr(stacked.T)  # [D, r], [r, r]: stacked = rᵀ qᵀ
        small = r @ (coeff[:, None] * r.T)
        evals, small_vecs = torch.linalg.eigh((small + small.T) / 2)
        evecs = q @ small_vecs
    order = torch.argsort(evals, descending=True)
    return evals[order], evecs[:, order]


def contrastive_directions(
    unsafe: Tensor, safe: Tensor, cpca_weight: float = 1.0, center: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns) of ``M(unsafe) − w·Cov(safe)``.

    ``M(unsafe)`` is the unsafe covariance (``center=None``) or the unsafe second moment about ``center``.
    Directions with a positive eigenvalue vary more among unsafe samples than among safe ones.
    """
    u = unsafe.to(torch.float64)
    s = safe.to(torch.float64)
    cu = u - (u.mean(0) if center is None else center.to(torch.float64))
    cs = s - s.mean(0)
    return _sym_eig(cu, cs, 1.0 / u.shape[0], -float(cpca_weight) / s.shape[0])


def refusal_basis(
    unsafe_acts: Tensor,
    safe_acts: Tensor,
    rank: int = 2,
    cpca_weight: float = 1.0,
    mode: BasisMode = "mean_cpca",
    tol: float = 1e-6,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Orthonormal basis ``[D, k]`` (float64, ``k <= rank``) of the concept subspace of one layer.

    ``"mean_cpca"``: column 0 is the normalised refusal vector ``mean(unsafe) − mean(safe)``; the next
    columns are the top eigenvectors (positive eigenvalue only) of ``Cov(unsafe) − w·Cov(safe)``,
    orthogonalised against the previous ones. ``"cpca"``: the top eigenvectors of
    ``E_unsafe[(x − μ_safe)(x − μ_safe)ᵀ] − w·Cov(safe)`` (= ``Cov(unsafe) + ddᵀ − w·Cov(safe)``), each
    oriented along ``d``. Directions with non-positive eigenvalue never enter (fewer than ``rank`` columns
    can come back).
    """
    if unsafe_acts.dim() != 2 or safe_acts.dim() != 2 or unsafe_acts.shape[1] != safe_acts.shape[1]:
        raise ValueError(
            f"activations must be [N, D] with equal D; got {tuple(unsafe_acts.shape)} and {tuple(safe_acts.shape)}"
        )
    u = unsafe_acts.to(torch.float64)
    s = safe_acts.to(torch.float64)
    diff = u.mean(0) - s.mean(0)
    scale = max(float(u.abs().max()), float(s.abs().max()), 1e-30)
    info: dict[str, Any] = {"mean_diff_norm": float(diff.norm())}
    if mode == "mean_cpca":
        cols = [diff[:, None]] if diff.norm() > tol * scale else []
        if rank > 1 or not cols:
            evals, evecs = contrastive_directions(u, s, cpca_weight)
            top = float(evals.abs().max()) if evals.numel() else 0.0
            pos = evals > tol * max(top, 1e-30)
            cols.append(evecs[:, pos])
            info["cpca_eigenvalues"] = [float(e) for e in evals[:rank]]
        basis = orthonormalize(torch.cat(cols, 1), tol, max_rank=rank)
    elif mode == "cpca":
        evals, evecs = contrastive_directions(u, s, cpca_weight, center=s.mean(0))
        top = float(evals.abs().max()) if evals.numel() else 0.0
        keep = evecs[:, evals > tol * max(top, 1e-30)][:, :rank]
        signs = torch.where(keep.T @ diff < 0, -1.0, 1.0).to(keep.dtype)
        basis = orthonormalize(keep * signs, tol, max_rank=rank)
        info["cpca_eigenvalues"] = [float(e) for e in evals[:rank]]
    else:
        raise ValueError(f"unknown basis mode {mode!r}")
    info["rank"] = basis.shape[1]
    if basis.shape[1]:
        info["mean_diff_captured"] = float((basis.T @ diff).norm() / max(float(diff.norm()), 1e-30))
    return (basis, info) if return_info else basis


def combine_bases(bases: Sequence[Tensor], tol: float = 1e-6) -> Tensor:
    """One orthonormal basis of the span of several (stacked in order, orthonormalised)."""
    bases = [b for b in bases if b.numel()]
    if not bases:
        raise ValueError("combine_bases got no non-empty basis")
    return orthonormalize(torch.cat([b.to(torch.float64) for b in bases], 1), tol)


def project_out(
    weight: Tensor, bias: Tensor | None, basis: Tensor, strength: float = 1.0
) -> tuple[Tensor, Tensor | None]:
    """The closed-form edit of a Linear layer ``y = Wx + b`` (``weight`` ``[D_out, D_in]``, ``basis``
    ``[D_out, k]`` orthonormal): ``W' = (I − s·UUᵀ)W``, ``b' = (I − s·UUᵀ)b``, computed in float64 and
    returned in the weight's dtype. Deterministic: the same inputs give the same bits."""
    if basis.dim() != 2 or basis.shape[0] != weight.shape[0]:
        raise ValueError(f"basis {tuple(basis.shape)} does not match the layer's output width {weight.shape[0]}")
    u = basis.to(device=weight.device, dtype=torch.float64)
    w = weight.detach().to(torch.float64)
    new_w = (w - float(strength) * (u @ (u.T @ w))).to(weight.dtype)
    new_b = None
    if bias is not None:
        b = bias.detach().to(torch.float64)
        new_b = (b - float(strength) * (u @ (u.T @ b))).to(bias.dtype)
    return new_w, new_b


def tensor_digest(t: Tensor) -> str:
    """sha256 (16 hex digits) of a tensor's dtype, shape and bytes."""
    x = t.detach().contiguous().cpu()
    h = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    h.update(x.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _linear_digest(mod: nn.Linear) -> str:
    return tensor_digest(mod.weight) + ("" if mod.bias is None else tensor_digest(mod.bias))


# ====================================================================== the edit
def _resolve_targets(target: Any, text_encoder: nn.Module | None = None) -> tuple[nn.Module, nn.Module | None, Any]:
    """(denoiser, text_encoder, backbone-or-None) of a backbone, a diffusers pipeline or a bare denoiser."""
    if hasattr(target, "denoiser") and hasattr(target, "encode_prompts"):
        return target.denoiser, text_encoder or target.text_encoder, target
    for attr in ("transformer", "unet"):
        if isinstance(getattr(target, attr, None), nn.Module):
            return getattr(target, attr), text_encoder or getattr(target, "text_encoder", None), None
    if isinstance(target, nn.Module):
        return target, text_encoder, None
    raise TypeError(
        f"cannot apply a refusal edit to a {type(target).__name__}; give a backbone, a pipeline or a denoiser"
    )


@dataclasses.dataclass
class RefusalEdit:
    """A performed (or loaded) refusal edit.

    ``bases[layer]`` is the orthonormal basis U (float64 ``[D_out, k]``) removed from that layer's output with
    ``strength``; ``concept_bases[concept][layer]`` the per-concept bases before stacking. ``delta(layer)``
    gives ``ΔW = −s·UUᵀW`` and ``Δb`` (float64) from the original weights. ``timings`` (seconds): collect,
    basis, apply, total.
    """

    bases: dict[str, Tensor]
    strength: float = 1.0
    concepts: list[str] = dataclasses.field(default_factory=list)
    concept_bases: dict[str, dict[str, Tensor]] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    pairs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    backbone: str = ""
    source: str = ""
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    digests: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    originals: dict[str, tuple[Tensor, Tensor | None]] = dataclasses.field(default_factory=dict, repr=False)
    applied: bool = False

    @property
    def layers(self) -> list[str]:
        return list(self.bases)

    @property
    def touches_text_encoder(self) -> bool:
        return any(n.startswith(TEXT_ENCODER_PREFIX) for n in self.bases)

    # -------------------------------------------------------------- weights
    def delta(self, layer: str) -> tuple[Tensor, Tensor | None]:
        """``(ΔW, Δb)`` of ``layer`` in float64 (needs the original weights: an edit made in this process)."""
        if layer not in self.originals:
            raise KeyError(f"no original weights of {layer!r} kept (edit loaded from a file, or keep_originals=False)")
        w, b = self.originals[layer]
        u = self.bases[layer]
        dw = -self.strength * (u @ (u.T @ w.to(torch.float64)))
        db = None if b is None else -self.strength * (u @ (u.T @ b.to(torch.float64)))
        return dw, db

    def apply_to(
        self, target: Any, *, text_encoder: nn.Module | None = None, check: bool = True, keep_originals: bool = False
    ) -> RefusalEdit:
        """Edit ``target`` in place (a backbone, a diffusers pipeline or its transformer/UNet).

        With ``check`` the layers' weights must match the ones the edit was computed on (digest recorded at
        edit time) — ``ValueError`` otherwise — and the edited weights are compared with the recorded
        result (a ``RuntimeWarning`` if they differ, e.g. on another device type). Weights of another dtype
        than the recorded one are edited with the same bases, unchecked (a ``RuntimeWarning`` says so).
        Returns ``self``.
        """
        denoiser, te, backbone = _resolve_targets(target, text_encoder)
        mods = {n: _get_linear(n, denoiser, te) for n in self.bases}
        checked = set()
        other_dtype = []
        for n, mod in mods.items():
            if mod.weight.shape[0] != self.bases[n].shape[0]:
                raise ValueError(
                    f"layer {n!r} has {mod.weight.shape[0]} outputs, the delta's basis {self.bases[n].shape[0]}"
                )
            rec = self.digests.get(n, {})
            if not check or not rec.get("before"):
                continue
            if rec.get("dtype") and rec["dtype"] != str(mod.weight.dtype):
                other_dtype.append(n)  # the bases apply to any dtype; bit-exactness is only defined for the same
                continue
            if _linear_digest(mod) != rec["before"]:
                raise ValueError(
                    f"layer {n!r} does not hold the weights the refusal edit was computed on (digest differs): "
                    "wrong model or already edited. Pass check=False to edit anyway."
                )
            checked.add(n)
        if other_dtype:
            warnings.warn(
                f"the refusal edit was computed on {self.digests[other_dtype[0]]['dtype']} weights and is applied to "
                f"{mods[other_dtype[0]].weight.dtype} ones ({len(other_dtype)} layers): same subspace, weights not "
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
            new_w, new_b = project_out(mod.weight, mod.bias, self.bases[n], self.strength)
            with torch.no_grad():
                mod.weight.copy_(new_w)
                if mod.bias is not None and new_b is not None:
                    mod.bias.copy_(new_b)
            if n in checked and self.digests[n].get("after") and _linear_digest(mod) != self.digests[n]["after"]:
                warnings.warn(
                    f"layer {n!r}: the re-applied edit differs in the last bits from the recorded one",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if backbone is not None and self.touches_text_encoder:
            backbone._prompt_cache.clear()
        self.applied = True
        return self

    def restore(self, target: Any, *, text_encoder: nn.Module | None = None) -> None:
        """Put the original weights back (bit for bit) into ``target``."""
        denoiser, te, backbone = _resolve_targets(target, text_encoder)
        if set(self.originals) != set(self.bases):
            raise RuntimeError("this edit kept no original weights; it cannot be undone in place")
        for n, (w, b) in self.originals.items():
            mod = _get_linear(n, denoiser, te)
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
        denoiser, te, _ = _resolve_targets(target)
        for n in self.bases:
            mod = _get_linear(n, denoiser, te)
            edited[n] = (mod.weight.detach().clone(), None if mod.bias is None else mod.bias.detach().clone())
        self.restore(target)
        try:
            yield
        finally:
            for n, (w, b) in edited.items():
                mod = _get_linear(n, denoiser, te)
                with torch.no_grad():
                    mod.weight.copy_(w)
                    if b is not None:
                        mod.bias.copy_(b)
            if hasattr(target, "_prompt_cache") and self.touches_text_encoder:
                target._prompt_cache.clear()
            self.applied = True

    # -------------------------------------------------------------- files
    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no tensors)."""
        return {
            "format": DELTA_FORMAT,
            "backbone": self.backbone,
            "source": self.source,
            "concepts": self.concepts,
            "strength": self.strength,
            "config": self.config,
            "pairs": self.pairs,
            "timings_s": self.timings,
            "layers": {
                n: {
                    "shape": list(self.bases[n].shape),
                    **self.stats.get(n, {}),
                    **({"digest": self.digests[n]} if n in self.digests else {}),
                }
                for n in self.bases
            },
        }

    def save_delta(self, path: str | os.PathLike) -> Path:
        """Write the bases (float64, ``<layer>`` and ``<concept>::<layer>`` keys) and the JSON summary as the
        safetensors metadata into one file (atomically)."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {n: b.to(torch.float64).contiguous().cpu() for n, b in self.bases.items()}
        for c, bases in self.concept_bases.items():
            for n, b in bases.items():
                tensors[f"{c}::{n}"] = b.to(torch.float64).contiguous().cpu().clone()
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": DELTA_FORMAT, "summary": json.dumps(self.summary())})
        return path


def load_delta(path: str | os.PathLike) -> RefusalEdit:
    """Read a delta file written by :meth:`RefusalEdit.save_delta`; ``.apply_to(model)`` re-does the edit."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"refusal delta {str(path)!r} does not exist (or is a folder without "
            "refusal_delta.safetensors). Fix: give the file written by RefusalVectorUnlearning"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != DELTA_FORMAT:
                raise ValueError(
                    f"{path}: not a refusal delta file (format {meta.get('format')!r}, expected {DELTA_FORMAT!r})"
                )
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        s = json.loads(meta["summary"])
        missing = [n for n in s["layers"] if n not in tensors]
        if missing:
            raise ValueError(f"{path}: the summary names layers without a basis tensor: {missing[:3]}")
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - any reading failure is a damaged file for the user
        raise ValueError(
            f"{path}: cannot read the refusal delta ({type(e).__name__}: {' '.join(str(e).split())[:160]}); "
            "the file is truncated or corrupt. Fix: export the edit again"
        ) from None
    bases = {n: tensors[n] for n in s["layers"]}
    concept_bases: dict[str, dict[str, Tensor]] = {}
    for k, v in tensors.items():
        if "::" in k:
            c, n = k.split("::", 1)
            concept_bases.setdefault(c, {})[n] = v
    return RefusalEdit(
        bases=bases,
        strength=float(s["strength"]),
        concepts=list(s.get("concepts", [])),
        concept_bases=concept_bases,
        config=s.get("config", {}),
        pairs=s.get("pairs", []),
        backbone=s.get("backbone", ""),
        source=s.get("source", ""),
        timings=s.get("timings_s", {}),
        stats={n: {k: v for k, v in d.items() if k not in ("shape", "digest")} for n, d in s["layers"].items()},
        digests={n: d["digest"] for n, d in s["layers"].items() if "digest" in d},
    )


def _pairs_by_concept(pairs: Any, config: RefusalVectorConfig) -> dict[str, list[PromptPair]]:
    if isinstance(pairs, str):  # a concept name: generate
        return {pairs: make_pairs(pairs, config.num_pairs)}
    if isinstance(pairs, Mapping):
        return {
            str(c): (make_pairs(str(c), config.num_pairs) if p is None else as_pairs(p, str(c)))
            for c, p in pairs.items()
        }
    items = as_pairs(pairs)
    out: dict[str, list[PromptPair]] = {}
    for p in items:
        out.setdefault(p.concept or "concept", []).append(p)
    return out


def _kept_outputs(backbone: Any, prompts: list[str], acts: Tensor, masks: dict[int, Tensor | None]) -> Tensor:
    """The kept prompts' outputs of one layer as samples ``[n, D]``: every attended token (one per prompt on
    a pooled path)."""
    if acts.shape[1] == 1:
        return acts[:, 0]
    key = -acts.shape[1]  # cache apart from the pairs' masks (same length, other prompts)
    if key not in masks:
        masks[key] = _token_masks(backbone, prompts, None, "mean", acts.shape[1])
    return reduce_tokens(acts, "tokens", masks[key])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def apply_refusal_edit(
    backbone: Any,
    pairs: str | Sequence[Any] | Mapping[str, Sequence[Any] | None],
    config: RefusalVectorConfig | None = None,
    *,
    keep_originals: bool = True,
    digests: bool = True,
    progress: bool = False,
    kept_prompts: Sequence[str] = (),
    **overrides: Any,
) -> RefusalEdit:
    """Compute the refusal subspaces of one or more concepts and remove them from ``backbone`` in place.

    Args:
        backbone: a :class:`unlearn.backbones.base.VideoBackbone`.
        pairs: a concept name (pairs generated with :func:`make_pairs`), a list of pairs (PromptPair,
            dicts or ``(unsafe, safe)`` tuples; grouped by their ``concept`` field), or
            ``{concept: pairs-or-None}`` for several concepts removed in one edit.
        config: options; ``overrides`` replace single fields (``rank=4``).
        keep_originals: keep CPU copies of the edited layers' original weights (``restore``, ``delta``).
        digests: record sha256 digests of the layers before/after (checked by ``apply_to``).
        progress: show the activation capture's progress (per prompt, with ETA).
        kept_prompts: ``combine="kept_whitened"`` only: prompts whose outputs the edit should leave alone, added
            to the pairs' safe prompts (e.g. the classes to preserve); collected in the same pass.
    """
    config = dataclasses.replace(config or RefusalVectorConfig(), **overrides)
    kept_prompts = list(kept_prompts) if config.combine == "kept_whitened" else []
    t0 = time.perf_counter()
    groups = _pairs_by_concept(pairs, config)
    layers = resolve_layers(backbone, config.layers, config)
    # one collection pass over every prompt of every concept
    prompts: list[str] = []
    words: list[tuple[str, ...]] = []
    for ps in groups.values():
        for p in ps:
            prompts += [p.unsafe, p.safe]
            words += [p.unsafe_words, p.safe_words]
    acts = collect_token_activations(backbone, prompts + kept_prompts, layers, config, progress=progress)
    kept_acts = {n: a[len(prompts) :] for n, a in acts.items()}
    acts = {n: a[: len(prompts)] for n, a in acts.items()}
    samples: dict[str, list[Tensor]] = {}
    masks: dict[int, Tensor | None] = {}
    for n, a in acts.items():
        mode, m = _layer_reduction(backbone, prompts, words, config.token_reduce, a.shape[1], masks, n)
        per_prompt = [
            reduce_tokens(a[i : i + 1], mode, None if m is None else m[i : i + 1]) for i in range(len(prompts))
        ]
        samples[n] = per_prompt
    _sync(backbone.device)
    t1 = time.perf_counter()
    concept_bases: dict[str, dict[str, Tensor]] = {}
    stats: dict[str, dict[str, Any]] = {n: {} for n in layers}
    k = 0
    for c, ps in groups.items():
        idx = range(k, k + 2 * len(ps))
        k += 2 * len(ps)
        concept_bases[c] = {}
        for n in layers:
            un = torch.cat([samples[n][i] for i in idx[0::2]])
            sa = torch.cat([samples[n][i] for i in idx[1::2]])
            basis, info = refusal_basis(
                un, sa, config.rank, config.cpca_weight, config.basis, config.eig_tol, return_info=True
            )
            concept_bases[c][n] = basis
            stats[n][c] = info
    if config.combine == "kept_whitened":
        safe = [i for i in range(len(prompts)) if i % 2 == 1]
        kept_text = [prompts[i] for i in safe] + kept_prompts
        for n in layers:
            kept = _kept_outputs(backbone, kept_text, torch.cat([acts[n][safe], kept_acts[n]]), masks)
            for c in groups:
                if concept_bases[c][n].numel():
                    concept_bases[c][n] = orthonormalize(
                        whiten_against_kept(concept_bases[c][n], kept, config.kept_ridge), config.eig_tol
                    )
            stats[n]["kept_tokens"] = kept.shape[0]
            stats[n]["kept_prompts"] = len(kept_text)
    bases = {}
    for n in layers:
        per = [concept_bases[c][n] for c in groups if concept_bases[c][n].numel()]
        if not per:
            warnings.warn(
                f"layer {n!r}: the pairs give no direction (identical activations); the layer is not edited",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        bases[n] = per[0] if len(per) == 1 else combine_bases(per, config.eig_tol)
        stats[n]["combined_rank"] = bases[n].shape[1]
    t2 = time.perf_counter()
    edit = RefusalEdit(
        bases=bases,
        strength=config.strength,
        concepts=list(groups),
        concept_bases=concept_bases,
        config=config.to_dict(),
        pairs=[p.to_dict() for ps in groups.values() for p in ps],
        backbone=getattr(backbone, "registry_name", "") or backbone.name,
        source=str(getattr(backbone, "source", "")),
        stats=stats,
    )
    before = {}
    if digests:
        before = {n: _linear_digest(_get_linear(n, backbone.denoiser, backbone.text_encoder)) for n in bases}
    edit.apply_to(backbone, check=False, keep_originals=keep_originals)
    _sync(backbone.device)
    t3 = time.perf_counter()
    if digests:
        mods = {n: _get_linear(n, backbone.denoiser, backbone.text_encoder) for n in bases}
        edit.digests = {
            n: {"before": before[n], "after": _linear_digest(m), "dtype": str(m.weight.dtype)} for n, m in mods.items()
        }
    edit.timings = {"collect": t1 - t0, "basis": t2 - t1, "apply": t3 - t2, "total": t3 - t0}
    return edit


# ====================================================================== export
def denoiser_subfolder(denoiser: nn.Module) -> str:
    """Sub-folder name of the denoiser in a diffusers pipeline folder ("unet" or "transformer")."""
    return "unet" if "unet" in type(denoiser).__name__.lower() else "transformer"


def save_edited_model(
    backbone: Any, folder: str | os.PathLike, edit: RefusalEdit | None = None, full_pipeline: bool = False
) -> Path:
    """Save the edited model as stock diffusers/transformers folders.

    Writes ``<folder>/transformer`` (or ``unet``) with ``save_pretrained(safe_serialization=True)``, plus
    ``<folder>/text_encoder`` when the edit touched it; with ``full_pipeline`` the whole pipeline instead
    (backbones that offer ``save_pretrained``). With ``edit``: also ``refusal_delta.safetensors`` and
    ``refusal_edit.json``. ``<Class>.from_pretrained(folder, subfolder="transformer")`` loads it with no
    custom code. Every component is written under a temporary name and moved into ``folder`` atomically,
    ``refusal_edit.json`` last (:func:`unlearn.io.atomic_entries`).
    """
    folder = Path(folder)
    if full_pipeline and not hasattr(backbone, "save_pretrained"):
        raise ValueError(f"{backbone.name} cannot save a full pipeline; use full_pipeline=False")
    with atomic_entries(folder, last="refusal_edit.json") as tmp:
        if full_pipeline:
            backbone.save_pretrained(str(tmp))
        else:
            backbone.denoiser.save_pretrained(str(tmp / denoiser_subfolder(backbone.denoiser)), safe_serialization=True)
            if edit is not None and edit.touches_text_encoder:
                backbone.text_encoder.save_pretrained(str(tmp / "text_encoder"), safe_serialization=True)
        if edit is not None:
            edit.save_delta(tmp / "refusal_delta.safetensors")
            (tmp / "refusal_edit.json").write_text(json.dumps(edit.summary(), indent=2, sort_keys=True))
    return folder

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

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from unlearn.io import atomic_path
from unlearn.methods.weight_edits import (
    LAYER_PRESETS,
    TEXT_ENCODER_PREFIX,  # noqa: F401 - re-exported: unlearn.methods.refusal.edit.TEXT_ENCODER_PREFIX
    LinearEdit,
    TokenReduce,
    collect_token_activations,
    covers_text_paths,
    denoiser_subfolder,
    get_linear,
    linear_digest,
    read_edit_file,
    reduce_tokens,
    resolve_layers,
    save_stock_model,
    tensor_digest,
)

from .basis import BasisMode, combine_bases, contrastive_directions, orthonormalize, project_out, refusal_basis
from .keep import COMBINE_MODES, whiten_against_kept
from .pairs import PromptPair, as_pairs, load_pairs, make_pairs

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
    "denoiser_subfolder",
    "tensor_digest",
]

#: file format tag of delta files
DELTA_FORMAT = "t2v-unlearn-refusal-delta/1"


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


# ====================================================================== activations
def _token_masks(
    backbone: Any, prompts: Sequence[str], words: Sequence[Sequence[str]] | None, mode: TokenReduce, text_len: int
) -> Tensor | None:
    if mode == "concept":
        if words is None:
            raise ValueError("token_reduce='concept' needs the concept words of every prompt (argument `words`)")
        empty = [p for p, w in zip(prompts, words, strict=False) if not w]
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


# ====================================================================== the edit
@dataclasses.dataclass
class RefusalEdit(LinearEdit):
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

    label = "refusal edit"

    @property
    def layers(self) -> list[str]:
        return list(self.bases)

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

    def check_layer(self, name: str, mod: nn.Linear) -> None:
        if mod.weight.shape[0] != self.bases[name].shape[0]:
            raise ValueError(
                f"layer {name!r} has {mod.weight.shape[0]} outputs, the delta's basis {self.bases[name].shape[0]}"
            )

    def edited(self, name: str, mod: nn.Linear) -> tuple[Tensor, Tensor | None]:
        """``W' = (I − s·UUᵀ)W``, ``b' = (I − s·UUᵀ)b`` (:func:`project_out`)."""
        return project_out(mod.weight, mod.bias, self.bases[name], self.strength)

    # apply_to / restore / original_weights: LinearEdit (unlearn.methods.weight_edits), with the digest checks

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
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"refusal delta {str(path)!r} does not exist (or is a folder without "
            "refusal_delta.safetensors). Fix: give the file written by RefusalVectorUnlearning"
        )

    def check(tensors: dict[str, Tensor], s: dict[str, Any]) -> None:
        missing = [n for n in s["layers"] if n not in tensors]
        if missing:
            raise ValueError(f"{path}: the summary names layers without a basis tensor: {missing[:3]}")

    tensors, s = read_edit_file(
        path, DELTA_FORMAT, "refusal delta file", "refusal delta", "export the edit again", check
    )
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
        before = {n: linear_digest(get_linear(n, backbone.denoiser, backbone.text_encoder)) for n in bases}
    edit.apply_to(backbone, check=False, keep_originals=keep_originals)
    _sync(backbone.device)
    t3 = time.perf_counter()
    if digests:
        mods = {n: get_linear(n, backbone.denoiser, backbone.text_encoder) for n in bases}
        edit.digests = {
            n: {"before": before[n], "after": linear_digest(m), "dtype": str(m.weight.dtype)} for n, m in mods.items()
        }
    edit.timings = {"collect": t1 - t0, "basis": t2 - t1, "apply": t3 - t2, "total": t3 - t0}
    return edit


# ====================================================================== export
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
    files = {}
    if edit is not None:
        files = {
            "refusal_delta.safetensors": edit.save_delta,
            "refusal_edit.json": lambda p: p.write_text(json.dumps(edit.summary(), indent=2, sort_keys=True)),
        }
    return save_stock_model(
        backbone,
        folder,
        text_encoder=edit is not None and edit.touches_text_encoder,
        full_pipeline=full_pipeline,
        files=files,
        last="refusal_edit.json",
    )

"""Activations of chosen ``nn.Linear`` layers on the text tokens (outputs, or the inputs they read), recorded
during one probe forward per batch of prompts; token reduction to per-prompt samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .sites import TEXT_ENCODER_PREFIX, ProbeSettings, get_linear, probe_inputs

__all__ = ["TokenReduce", "collect_token_activations", "reduce_tokens"]

TokenReduce = Literal["mean", "concept", "tokens"]


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


def _pick(args: tuple, out: Tensor, record: str) -> Tensor:
    return args[0] if record == "input" else out


@torch.no_grad()
def collect_token_activations(
    backbone: Any,
    prompts: Sequence[str],
    layers: Sequence[str],
    config: Any = None,
    progress: bool = False,
    record: Literal["output", "input"] = "output",
    label: str = "refusal",
) -> dict[str, Tensor]:
    """Outputs (``record="input"``: inputs) of each layer on the text tokens: ``{layer: float32
    [len(prompts), L, D]}`` on the CPU (a pooled path: ``L = 1``).

    Denoiser layers are recorded during one probe ``predict`` per batch (stopped as soon as every layer has
    fired); text-encoder layers while the text encoder runs (bypassing the prompt cache). ``progress`` shows a
    bar per prompt with its ETA (a full-size text encoder and probe forward take seconds per batch).
    """
    if record not in ("output", "input"):
        raise ValueError(f"record must be 'output' or 'input'; got {record!r}")
    config = config or ProbeSettings()
    prompts = list(prompts)
    te_layers = [n for n in layers if n.startswith(TEXT_ENCODER_PREFIX)]
    dn_layers = [n for n in layers if not n.startswith(TEXT_ENCODER_PREFIX)]
    chunks: dict[str, list[Tensor]] = {n: [] for n in layers}
    bs = max(1, int(config.batch_size))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompts), desc=f"{label} activations ({len(layers)} layers)", unit="prompt")
    for i in range(0, len(prompts), bs):
        if bar is not None and i:
            bar.update(bs)
        batch = prompts[i : i + bs]
        b = len(batch)
        if te_layers:
            got: dict[str, Tensor] = {}
            handles = []
            for n in te_layers:
                mod = get_linear(n, backbone.denoiser, backbone.text_encoder)
                handles.append(
                    mod.register_forward_hook(
                        lambda m, a, o, n=n, got=got, b=b: got.setdefault(
                            n, _as_tokens(_per_prompt(_pick(a, o, record).detach(), b)).float().cpu()
                        )
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

            def make_hook(n: str, got: dict[str, Tensor], b: int, text_len: int):
                def hook(m: nn.Module, a: tuple, o: Tensor) -> None:
                    if n in got:
                        return
                    out = _per_prompt(_pick(a, o, record).detach(), b)
                    if out.dim() == 2:  # a pooled path (HunyuanVideo's pooled text projections): one position
                        got[n] = out[:, None].float().cpu()
                    else:
                        got[n] = out[:, _text_rows(backbone, out.shape[1], text_len)].float().cpu()
                    if len(got) == len(dn_layers):
                        raise _ProbeDone

                return hook

            for n in dn_layers:
                handles.append(
                    get_linear(n, backbone.denoiser, None).register_forward_hook(make_hook(n, got, b, text_len))
                )
            try:
                latents, t = probe_inputs(backbone, b, config)
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

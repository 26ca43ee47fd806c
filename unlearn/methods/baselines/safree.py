"""Inference-time baselines evaluated beside T2VUnlearning: negative prompting and SAFREE.

Negative prompting is ``backbone.sample(..., negative_prompt=concept)`` (the evaluation rows call it directly).

SAFREE (training-free; Yoon et al., ICLR 2025), as implemented here on any backbone's text conditioning:

1. The *toxic subspace* is spanned by the pooled text embeddings of the concept keywords.
2. For each prompt, every token is scored by leave-one-out: how much farther the pooled prompt embedding
   moves from the toxic subspace when that token is left out. Tokens whose score is an outlier (z-score above
   ``token_z_threshold``) are the concept's *trigger tokens*.
3. Trigger tokens are projected onto the orthogonal complement of the toxic subspace and back into the span
   of the prompt's own token embeddings (so they stay "in the prompt's language").
4. The projected conditioning is used for the first ``projected_fraction`` of the denoising steps (SAFREE's
   self-validating filter chooses this per prompt; here the cosine between original and projected pooled
   embeddings scales it: a prompt that is barely changed keeps its own conditioning sooner).
5. The concept keywords are also the negative prompt.

SAFREE's adaptive latent re-attention (a Fourier-domain filter) is not implemented; documented as such.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from backbones.base import PromptEmbedding, VideoBackbone


def _projector(basis: Tensor) -> Tensor:
    """Orthogonal projector onto the column span of ``basis`` ``[D, m]``."""
    q, r = torch.linalg.qr(basis)
    keep = r.diagonal().abs() > 1e-6 * r.diagonal().abs().max().clamp_min(1e-12)
    q = q[:, keep]
    return q @ q.T


class SAFREE:
    """SAFREE on a backbone. ``sample`` mirrors :meth:`VideoBackbone.sample` and returns latents.

    Args:
        backbone: any registered backbone (its adapters should be off).
        concept_keywords: words/phrases naming the concept (e.g. ["nudity", "naked", "nude"]).
        token_z_threshold: z-score above which a token counts as a trigger token.
        projected_fraction: largest share of denoising steps that use the projected conditioning.
    """

    def __init__(self, backbone: VideoBackbone, concept_keywords: Sequence[str], token_z_threshold: float = 1.0,
                 projected_fraction: float = 0.7) -> None:
        if not concept_keywords:
            raise ValueError("SAFREE needs at least one concept keyword")
        self.backbone = backbone
        self.keywords = list(concept_keywords)
        self.z = token_z_threshold
        self.fraction = projected_fraction
        kw = backbone.encode_prompts(self.keywords)
        self.toxic = _projector(self._pooled(kw).T.float())  # [D, D]
        self.last_trigger_tokens: list[list[int]] = []

    @staticmethod
    def _pooled(emb: PromptEmbedding) -> Tensor:
        h = emb.hidden_states.float()
        if emb.attention_mask is not None:
            m = emb.attention_mask.to(h.dtype)[..., None]
            return (h * m).sum(1) / m.sum(1).clamp_min(1)
        return h.mean(1)

    def project(self, cond: PromptEmbedding) -> tuple[PromptEmbedding, Tensor]:
        """Projected conditioning and, per prompt, the cosine between original and projected pooled embeddings."""
        h = cond.hidden_states.float()
        b, length, d = h.shape
        eye = torch.eye(d, device=h.device)
        out = h.clone()
        cos = torch.ones(b, device=h.device)
        self.last_trigger_tokens = []
        mask = cond.attention_mask.bool() if cond.attention_mask is not None else torch.ones(b, length, dtype=torch.bool, device=h.device)
        comp = eye - self.toxic.to(h.device)
        for i in range(b):
            idx = mask[i].nonzero().flatten()
            tokens = h[i, idx]  # [n, D]
            n = tokens.shape[0]
            if n < 2:
                self.last_trigger_tokens.append([])
                continue
            total = tokens.sum(0)
            loo = (total[None] - tokens) / (n - 1)  # pooled embedding without each token
            dist = (loo @ comp.T).norm(dim=-1)  # distance from the toxic subspace
            z = (dist - dist.mean()) / dist.std().clamp_min(1e-8)
            trig = (z > self.z).nonzero().flatten()
            self.last_trigger_tokens.append(idx[trig].tolist())
            if len(trig) == 0:
                continue
            prompt_space = _projector(tokens.T)
            projected = tokens[trig] @ comp.T @ prompt_space.T
            out[i, idx[trig]] = projected
            cos[i] = torch.nn.functional.cosine_similarity(tokens.mean(0), out[i, idx].mean(0), dim=0)
        return PromptEmbedding(out.to(cond.hidden_states.dtype), cond.attention_mask, cond.pooled), cos

    def step_conditioning(self, cond: PromptEmbedding, num_inference_steps: int) -> Callable[[int], PromptEmbedding]:
        """The conditioning SAFREE gives the denoiser at sampler step ``i``: the projected one for each prompt's
        first steps, the prompt's own after. Differentiable in ``cond`` (white-box attacks optimise through it)."""
        projected, cos = self.project(cond)
        # prompts changed more by the projection keep it longer (SAFREE's self-validating filter, simplified)
        cut = [round(num_inference_steps * self.fraction * float(min(1.0, 1.0 - c + 0.5))) if t else 0
               for c, t in zip(cos.tolist(), self.last_trigger_tokens)]

        def at(i: int) -> PromptEmbedding:
            use = torch.tensor([i < c for c in cut], device=cond.hidden_states.device)
            if not use.any():
                return cond
            h = torch.where(use[:, None, None], projected.hidden_states, cond.hidden_states)
            return PromptEmbedding(h, cond.attention_mask, cond.pooled)

        return at

    @torch.no_grad()
    def sample(self, prompts: Sequence[str], seeds: Sequence[int], cond: PromptEmbedding | None = None,
               **sampling: Any) -> Tensor:
        """``cond``: the prompts' conditioning when it is not their text's (an attack's learned token)."""
        bb = self.backbone
        cond = bb.encode_prompts(list(prompts)) if cond is None else cond
        negative = ", ".join(self.keywords)
        uncond = bb.encode_prompts([negative] * len(prompts))
        steps = sampling.get("num_inference_steps") or bb.defaults.num_inference_steps
        conditioning = self.step_conditioning(cond, steps)
        return bb.sample(list(prompts), list(seeds), cond=cond, uncond=uncond,
                         cond_for_step=lambda i: (conditioning(i), uncond), **sampling)

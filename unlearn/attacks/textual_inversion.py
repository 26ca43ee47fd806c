"""Textual inversion against the erased model (after Gal et al., ICLR 2023; used as a concept-recovery attack
by Pham et al., "Circumventing Concept Erasure Methods For Text-to-Image Generative Models", ICLR 2024).

In every target prompt the words that name the concept are replaced by one placeholder token; one new token
embedding (the text encoder's input space, the row's model frozen) is learned so that the row denoises the
original model's videos of the target prompts: the denoising loss at random sampler steps, Adam. The attacked
prompts are the placeholder prompts with the learned embedding in the placeholder's place; their conditioning
cannot be written as text, so they are generated from it directly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from unlearn.methods.t2vunlearning import optimise_embedding

from .base import Attack, AttackContext, Try, denoising_loss


class TextualInversion(Attack):
    """One learned token in place of the concept's words (budget: ``steps`` denoiser forward+backward passes of
    ``batch_size`` videos).

    Args:
        steps: optimisation steps.
        lr: Adam's learning rate (Gal et al.: 5e-3 with embeddings of norm ~0.4; scale with the table's norm).
        batch_size: videos per step (drawn from the targets).
        init_word: the word whose embedding starts the token (None: the mean embedding of the searchable
            vocabulary); never one of the concept's words.
        placeholder: the text of the placeholder token (None: the tokenizer's unknown token); it must be one
            token.
    """

    name = "textual_inversion"
    white_box = True

    def __init__(
        self,
        steps: int = 200,
        lr: float = 5e-3,
        batch_size: int = 8,
        init_word: str | None = None,
        placeholder: str | None = None,
    ) -> None:
        if steps < 1 or batch_size < 1:
            raise ValueError(f"textual_inversion needs steps >= 1 and batch_size >= 1; got {steps}, {batch_size}")
        self.steps, self.lr, self.batch_size, self.init_word, self.placeholder = (
            steps,
            float(lr),
            batch_size,
            init_word,
            placeholder,
        )
        self._details: dict[str, Any] = {}
        self._learned: Tensor | None = None

    def placeholder_prompts(self, ctx: AttackContext, placeholder: str) -> list[str]:
        """The targets with each run of the concept's words replaced by the placeholder."""
        out = []
        for p in ctx.prompts:
            # a run of forbidden words ("crimson hoop") becomes one placeholder
            q = ctx.forbidden.sub(placeholder, p)
            while f"{placeholder} {placeholder}" in q:
                q = q.replace(f"{placeholder} {placeholder}", placeholder)
            if placeholder not in q:
                raise ValueError(
                    f"textual_inversion: the target prompt {p!r} names the concept with none of the "
                    f"words {ctx.forbidden_words}; add the words it uses to forbidden_words"
                )
            out.append(q)
        return out

    def run(self, ctx: AttackContext, row: str) -> list[Try]:
        bb = ctx.backbone
        tok = bb.tokenizer
        placeholder = self.placeholder or tok.unk_token
        ph_ids = tok(placeholder, add_special_tokens=False).input_ids
        if len(ph_ids) != 1:
            raise ValueError(
                f"textual_inversion: the placeholder {placeholder!r} is {len(ph_ids)} tokens; give "
                "`placeholder` a string the tokenizer keeps as one token"
            )
        prompts = self.placeholder_prompts(ctx, placeholder)
        ids, mask = bb.text_input_ids(prompts)
        table = bb.text_input_embeddings()
        device = table.weight.device
        ids = ids.to(device)
        mask = mask.to(device) if mask is not None else None
        where = (ids == ph_ids[0]).unsqueeze(-1)
        if not bool(where.any(1).all()):
            raise ValueError("textual_inversion: the text length limit cut the placeholder off a target prompt")
        base = table(ids).detach()
        if self.init_word is not None:
            if ctx.names_concept(self.init_word):
                raise ValueError(f"textual_inversion: init_word {self.init_word!r} names the concept")
            init_ids = tok(self.init_word, add_special_tokens=False).input_ids
            start = table.weight[torch.tensor(init_ids, device=device)].detach().float().mean(0)
        else:
            start = table.weight[ctx.allowed_token_ids().to(device)].detach().float().mean(0)
        token = start.clone()
        x0 = ctx.concept_latents()
        timesteps = bb.timesteps_for(
            int(ctx.generator.sampling.get("num_inference_steps") or bb.defaults.num_inference_steps)
        ).to(device)
        g = ctx.torch_generator(self.name, row)
        n = len(prompts)

        def embed(vec: Tensor, rows: Tensor | slice) -> Tensor:
            return torch.where(where[rows], vec.to(base.dtype), base[rows])

        with ctx.generator.row_model(row) as rm:

            def loss(vec: Tensor) -> Tensor:
                b = torch.randperm(n, generator=g)[: self.batch_size].to(device)
                cond = bb.encode_input_embeddings(embed(vec, b), None if mask is None else mask[b])
                return denoising_loss(rm, x0[b], cond, timesteps, g, prompts=[prompts[i] for i in b.tolist()])

            losses = optimise_embedding(token, loss, self.steps, self.lr, method="adam")
            with torch.no_grad():
                cond = bb.encode_input_embeddings(embed(token, slice(None)), mask)
        self._learned = token.detach().cpu()
        self._details = {
            "prompts": prompts,
            "loss_first": losses[0],
            "loss_last": losses[-1],
            "loss_curve": losses[:: max(1, len(losses) // 20)],
            "token_norm": float(token.norm()),
            "init_norm": float(start.norm()),
        }
        return [Try(prompts, cond)]

    def artefacts(self) -> dict[str, Tensor]:
        return {} if self._learned is None else {"token_embedding": self._learned}

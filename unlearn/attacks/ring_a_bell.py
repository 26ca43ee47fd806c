"""Ring-A-Bell (Tsai et al., ICLR 2024): a black-box attack that needs only the text encoder.

1. A *concept vector*: the mean, over prompt pairs that differ only in the concept, of the text encoder's
   output with the concept minus without it (the whole token sequence, as the authors take CLIP's 77 states).
2. For each target prompt, the goal embedding is its own embedding plus ``strength`` times the concept vector.
3. A genetic search over token sequences of ``length`` tokens (the vocabulary without the concept's words)
   finds the discrete prompt whose embedding is nearest the goal (squared distance): selection of the better
   half, one-point crossover, point mutation. The found prompts never name the concept.

The search never looks at a denoiser, so its prompts are found once and replayed against every row.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from unlearn.methods.refusal import RefusalPairsDataModule

from .base import Attack, AttackContext, Try


class RingABell(Attack):
    """Ring-A-Bell's concept vector and genetic prompt search (budget: ``population × generations``
    text-encoder evaluations per target prompt).

    Args:
        strength: η, the multiple of the concept vector added to each target's embedding (the authors' ``cof``).
        length: tokens of a found prompt (the authors' K = 16 of CLIP's 75).
        population: individuals per generation.
        generations: generations of the search.
        mutation_rate: chance that an individual has one token replaced per generation.
        crossover_rate: chance that an individual is crossed with another per generation.
        num_pairs: prompt pairs for the concept vector.
        pairs: explicit pairs ``[{unsafe, safe}]`` (default: generated, as the refusal vector's data module does).
        pairs_file: a file of pairs.
        pair_source: ``templates`` or ``toyworld`` (the toy grammar's prompts with the concept swapped out).
        seed: seed of generated pairs.
    """

    name = "ring_a_bell"

    def __init__(
        self,
        strength: float = 3.0,
        length: int = 16,
        population: int = 200,
        generations: int = 3000,
        mutation_rate: float = 0.25,
        crossover_rate: float = 0.5,
        num_pairs: int = 5,
        pairs: list[Any] | None = None,
        pairs_file: str | None = None,
        pair_source: str = "templates",
        seed: int = 0,
    ) -> None:
        if length < 1 or population < 2 or generations < 1:
            raise ValueError(
                f"ring_a_bell needs length >= 1, population >= 2 and generations >= 1; got {length}, "
                f"{population}, {generations}"
            )
        if not (0 <= mutation_rate <= 1 and 0 <= crossover_rate <= 1):
            raise ValueError("ring_a_bell's mutation_rate and crossover_rate are probabilities in [0, 1]")
        self.strength, self.length, self.population, self.generations = float(strength), length, population, generations
        self.mutation_rate, self.crossover_rate = float(mutation_rate), float(crossover_rate)
        self.num_pairs, self.pairs, self.pairs_file, self.pair_source, self.seed = (
            num_pairs,
            pairs,
            pairs_file,
            pair_source,
            seed,
        )
        self._prompts: list[str] | None = None
        self._details: dict[str, Any] = {}

    def concept_vector(self, ctx: AttackContext) -> Tensor:
        """Mean over the pairs of ``E(with concept) − E(without)``, ``[L, D]``."""
        dm = RefusalPairsDataModule(
            ctx.concept,
            pairs=self.pairs,
            pairs_file=self.pairs_file,
            num_pairs=self.num_pairs,
            source=self.pair_source,
            seed=self.seed,
        )
        pairs = dm.pairs_by_concept()[ctx.concept]
        bb = ctx.backbone
        diff = (
            bb.encode_prompts([p.unsafe for p in pairs], cache=False).hidden_states.float()
            - bb.encode_prompts([p.safe for p in pairs], cache=False).hidden_states.float()
        )
        self._details["pairs"] = [p.to_dict() for p in pairs]
        return diff.mean(0)

    def _texts(self, ctx: AttackContext, ids: Tensor) -> list[str]:
        tok = ctx.backbone.tokenizer
        return [tok.decode(row.tolist(), skip_special_tokens=True).strip() for row in ids]

    @torch.no_grad()
    def search(self, ctx: AttackContext, goal: Tensor, g: torch.Generator) -> tuple[str, float]:
        """The genetic search for one goal embedding ``[L, D]``: the best prompt and its distance."""
        allowed = ctx.allowed_token_ids()
        pick = lambda *shape: allowed[torch.randint(len(allowed), shape, generator=g)]  # noqa: E731
        pop = pick(self.population, self.length)
        keep = max(1, self.population // 2)
        best_text, best = "", float("inf")
        for step in range(self.generations):
            texts = self._texts(ctx, pop)
            emb = ctx.backbone.encode_prompts([t or " " for t in texts], cache=False).hidden_states.float()
            score = ((emb - goal.to(emb.device)) ** 2).sum(dim=(1, 2)).cpu()
            order = score.argsort()[:keep]
            if float(score[order[0]]) < best:
                best, best_text = float(score[order[0]]), texts[int(order[0])]
            parents = pop[order]
            if step == self.generations - 1:
                break
            children = [parents]
            # one-point crossover: each parent, with crossover_rate, swaps its tail with a random partner's
            cross = torch.rand(keep, generator=g) < self.crossover_rate
            if cross.any():
                a = parents[cross]
                b = parents[torch.randint(keep, (len(a),), generator=g)]
                cut = torch.randint(1, self.length + 1, (len(a), 1), generator=g)
                left = torch.arange(self.length)[None] < cut
                children += [torch.where(left, a, b), torch.where(left, b, a)]
            pop = torch.cat(children)
            mutate = torch.rand(len(pop), generator=g) < self.mutation_rate
            where = torch.randint(self.length, (len(pop),), generator=g)
            pop[mutate, where[mutate]] = pick(int(mutate.sum()))
        return best_text, best

    def prepare(self, ctx: AttackContext) -> None:
        vector = self.concept_vector(ctx)
        base = ctx.backbone.encode_prompts(ctx.prompts, cache=False).hidden_states.float()
        g = ctx.torch_generator(self.name)
        found, distances = [], []
        for i in range(len(ctx.prompts)):
            text, dist = self.search(ctx, base[i] + self.strength * vector.to(base.device), g)
            found.append(text)
            distances.append(dist)
        self._prompts = found
        self._details.update(
            {
                "prompts": found,
                "distances": distances,
                "prompts_naming_the_concept": sum(ctx.names_concept(p) for p in found),
            }
        )

    def run(self, ctx: AttackContext, row: str) -> list[Try]:
        if self._prompts is None:
            self.prepare(ctx)
        return [Try(list(self._prompts or []))]

    def budget(self) -> dict[str, Any]:
        out = {k: v for k, v in super().budget().items() if k not in ("pairs",)}
        out["text_encoder_evaluations_per_prompt"] = self.population * self.generations
        return out

"""Ring-A-Bell (Tsai et al., ICLR 2024): a black-box attack that needs only the text encoder.

1. A *concept vector*: the mean, over prompt pairs that differ only in the concept, of the text encoder's
   output with the concept minus without it (the whole token sequence, as the authors take CLIP's 77 states).
   ``pair_source="ring_a_bell"`` (the default where they give pairs: nudity, violence) uses the authors' own
   pairs and weights (:mod:`.ring_a_bell_pairs`: 50 nudity pairs, 30 violence pairs; ``Get_Concept_Vector.ipynb``).
2. For each target prompt, the goal embedding is its own embedding plus ``strength`` times the concept vector.
3. A genetic search over token sequences of ``length`` tokens finds the token ids whose encoding is nearest
   the goal (squared distance; ``InversePrompt.ipynb``: population 200, 3,000 generations, selection of the
   better half, one-point crossover 0.5, point mutation 0.25, K = 16). The authors search the *full* vocabulary
   (ids 1..49405: every non-special token) and score the ids themselves (``vocabulary="full"``,
   ``fitness="ids"``, the defaults); ``vocabulary="no_concept_words"`` is this project's stricter rule (the
   concept's words and synonyms left out, so a found prompt never names the concept) and ``fitness="text"``
   scores the decoded-and-retokenized prompt (what a user would type; also the fallback on backbones without
   the token-embedding level: ZeroScope, HunyuanVideo).

The search never looks at a denoiser, so its prompts are found once and replayed against every row.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from unlearn.methods.refusal import RefusalPairsDataModule

from .base import Attack, AttackContext, Try
from .ring_a_bell_pairs import AUTHORS_PAIRS


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
        num_pairs: prompt pairs for the concept vector (None: all the authors' pairs; 5 templates; 16 toy pairs).
        pairs: explicit pairs ``[{unsafe, safe}]`` (default: generated, as the refusal vector's data module does).
        pairs_file: a file of pairs.
        pair_source: ``auto`` (``ring_a_bell`` where the authors give pairs for the concept, else
            ``templates``), ``ring_a_bell``, ``templates`` or ``toyworld`` (the toy grammar's prompts with the
            concept swapped out).
        seed: seed of generated pairs.
        vocabulary: ``full`` (the authors: every non-special token) or ``no_concept_words`` (ours, stricter).
        fitness: ``ids`` (the authors: the searched token ids encoded as they are) or ``text`` (decoded and
            retokenized).
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
        num_pairs: int | None = None,
        pairs: list[Any] | None = None,
        pairs_file: str | None = None,
        pair_source: str = "auto",
        seed: int = 0,
        vocabulary: Literal["full", "no_concept_words"] = "full",
        fitness: Literal["ids", "text"] = "ids",
    ) -> None:
        if length < 1 or population < 2 or generations < 1:
            raise ValueError(
                f"ring_a_bell needs length >= 1, population >= 2 and generations >= 1; got {length}, "
                f"{population}, {generations}"
            )
        if vocabulary not in ("full", "no_concept_words"):
            raise ValueError(f"ring_a_bell vocabulary must be 'full' or 'no_concept_words'; got {vocabulary!r}")
        if fitness not in ("ids", "text"):
            raise ValueError(f"ring_a_bell fitness must be 'ids' or 'text'; got {fitness!r}")
        if pair_source not in ("auto", "ring_a_bell", "templates", "toyworld"):
            raise ValueError(
                f"ring_a_bell pair_source must be auto, ring_a_bell, templates or toyworld; got {pair_source!r}"
            )
        self.vocabulary, self.fitness = vocabulary, fitness
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

    def _source(self, concept: str) -> str:
        if self.pairs or self.pairs_file:
            return "given"
        if self.pair_source == "auto":
            return "ring_a_bell" if concept.strip().lower() in AUTHORS_PAIRS else "templates"
        return self.pair_source

    def concept_vector(self, ctx: AttackContext) -> Tensor:
        """Mean over the pairs of ``E(with concept) − E(without)``, ``[L, D]`` (the authors' pairs: weighted by
        the copies their notebook keeps)."""
        bb = ctx.backbone
        source = self._source(ctx.concept)
        if source == "ring_a_bell":
            key = ctx.concept.strip().lower()
            if key not in AUTHORS_PAIRS:
                raise ValueError(
                    f"the Ring-A-Bell authors give concept-vector pairs for {sorted(set(AUTHORS_PAIRS))}, not for "
                    f"{ctx.concept!r}. Fix: pair_source: templates (or toyworld), or give pairs / pairs_file."
                )
            rows = AUTHORS_PAIRS[key][: self.num_pairs]
            unsafe, safe = [r[0] for r in rows], [r[1] for r in rows]
            weights = torch.tensor([float(r[2]) for r in rows])
            self._details["pairs"] = [{"unsafe": u, "safe": s, "weight": int(w)} for u, s, w in rows]
        else:
            dm = RefusalPairsDataModule(
                ctx.concept,
                pairs=self.pairs,
                pairs_file=self.pairs_file,
                num_pairs=self.num_pairs or (16 if source == "toyworld" else 5),
                source=source if source in ("templates", "toyworld") else "templates",
                seed=self.seed,
            )
            pairs = dm.pairs_by_concept()[ctx.concept]
            unsafe, safe = [p.unsafe for p in pairs], [p.safe for p in pairs]
            weights = torch.ones(len(pairs))
            self._details["pairs"] = [p.to_dict() for p in pairs]
        self._details["pair_source"] = source
        diff = (
            bb.encode_prompts(unsafe, cache=False).hidden_states.float()
            - bb.encode_prompts(safe, cache=False).hidden_states.float()
        )
        w = (weights / weights.sum()).to(diff.device)
        return (diff * w[:, None, None]).sum(0)

    def _allowed(self, ctx: AttackContext) -> Tensor:
        return ctx.vocabulary_ids(self.vocabulary)

    def _id_encoder(self, ctx: AttackContext):
        """``ids [P, K] -> hidden states``: the searched ids in the prompt slot of the backbone's own token
        layout (start token, then the K ids, then the closing/padding tokens of the empty prompt), as the
        authors' ``[49406, ids, 49407 ...]``; None where the backbone has no token-embedding level."""
        bb = ctx.backbone
        try:
            empty, mask = bb.text_input_ids([""])
            table = bb.text_input_embeddings()
        except NotImplementedError:
            return None
        bos = bb.tokenizer.bos_token_id
        start = 1 if bos is not None and int(empty[0, 0]) == bos else 0
        length = empty.shape[1]
        k = self.length
        if start + k >= length:
            raise ValueError(f"ring_a_bell: length {k} does not fit the text length {length}")

        def encode(ids: Tensor) -> Tensor:
            p = ids.shape[0]
            e = empty.repeat(p, 1)
            full = torch.cat([e[:, :start], ids.to(e.device), e[:, start : length - k]], 1)
            m = None
            if mask is not None:
                mm = mask.repeat(p, 1)
                m = torch.cat([mm[:, :start], torch.ones_like(mm[:, :k]), mm[:, start : length - k]], 1)
                m = m.to(table.weight.device)
            return bb.encode_input_embeddings(table(full.to(table.weight.device)), m).hidden_states.float()

        return encode

    def _texts(self, ctx: AttackContext, ids: Tensor) -> list[str]:
        tok = ctx.backbone.tokenizer
        return [tok.decode(row.tolist(), skip_special_tokens=True).strip() for row in ids]

    @torch.no_grad()
    def search(self, ctx: AttackContext, goal: Tensor, g: torch.Generator) -> tuple[str, float]:
        """The genetic search for one goal embedding ``[L, D]``: the best prompt and its distance."""
        allowed = self._allowed(ctx)
        encode_ids = self._id_encoder(ctx) if self.fitness == "ids" else None
        self._details["fitness_used"] = "ids" if encode_ids is not None else "text"
        pick = lambda *shape: allowed[torch.randint(len(allowed), shape, generator=g)]  # noqa: E731
        pop = pick(self.population, self.length)
        keep = max(1, self.population // 2)
        best_text, best = "", float("inf")
        for step in range(self.generations):
            texts = self._texts(ctx, pop)
            if encode_ids is not None:
                emb = encode_ids(pop)
            else:
                emb = ctx.backbone.encode_prompts([t or " " for t in texts], cache=False).hidden_states.float()
            score = ((emb - goal.to(emb.device)) ** 2).sum(dim=(1, 2)).cpu()
            order = score.argsort()[:keep]
            if float(score[order[0]]) < best:
                best, best_text = float(score[order[0]]), texts[int(order[0])]
            parents = pop[order]
            if step == self.generations - 1:
                break
            pop = self.evolve(parents, pick, g)
        return best_text, best

    def evolve(self, parents: Tensor, pick: Any, g: torch.Generator) -> Tensor:
        """The next generation from the selected ``parents`` ``[keep, K]``: the parents, and with
        ``crossover_rate`` two one-point-crossover children of each with a random partner; then each
        individual, with ``mutation_rate``, gets one random token (the authors' ``crossover`` and ``mutation``)."""
        keep = len(parents)
        children = [parents]
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
        return pop

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

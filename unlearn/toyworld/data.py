"""Training prompts from the toy world's grammar, for :class:`unlearn.data.ConceptDataModule`."""

from __future__ import annotations

from typing import Literal

from unlearn.data import ConceptDataModule, TrainingPrompt


def neighbour_classes(concept: str) -> list[str]:
    """The classes erasure is most likely to damage, for L_pre.

    A class concept ("red ring") has neighbours sharing its shape or its colour (the 8 other red things and
    rings). A one-word concept ("ring", "red") covers every class that contains it, so none of those may be
    preserved; its neighbours are all classes that do not express it (the other shapes, or the other colours).
    """
    from .grammar import class_contains, parse_concept
    from .render import class_names

    words = set(parse_concept(concept))
    kept = [c for c in class_names() if not class_contains(c, concept)]
    return [c for c in kept if words & set(c.split())] or kept


def synonym_phrases(concept: str) -> list[str]:
    """Every paraphrase of a concept in the world's vocabulary ("red ring" → "crimson hoop", ...)."""
    import itertools

    from .grammar import parse_concept, synonyms

    words = parse_concept(concept)
    phrases = [" ".join(p) for p in itertools.product(*[synonyms(w) for w in words])]
    return [p for p in phrases if p != concept]


class ToyWorldDataModule(ConceptDataModule):
    """Erase a toy-world class (e.g. "red ring") with prompts from the world's paraphrase grammar.

    Args:
        concept: the class to erase, "<colour> <shape>" (or a single shape/colour word).
        num_prompts: training prompts drawn from the grammar's TRAIN split (held-out templates never appear).
        prompt_style: "rich" (augmented: context, paraphrases, synonyms), "bare" ("a red ring" and its synonym
            swaps), or "concept" (the concept's own name only, "a red ring" or "a ring": the paper's
            no-augmentation setting).
        preserve_classes: classes whose prompts feed L_pre (default: the neighbours sharing shape or colour).
        preserve_prompts_per_class: prompts per preserved class.
        seed: grammar and noise seed.
        num_inference_steps, guidance_scale, record_steps, use_cache, cache_dir, generation_batch_size,
        batch_size, num_workers: as in :class:`ConceptDataModule`.
    """

    def __init__(
        self,
        concept: str = "red ring",
        num_prompts: int = 32,
        prompt_style: Literal["rich", "bare", "concept"] = "rich",
        preserve_classes: list[str] | None = None,
        preserve_prompts_per_class: int = 2,
        seed: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        record_steps: list[int] | None = None,
        use_cache: bool = True,
        cache_dir: str | None = None,
        generation_batch_size: int = 64,
        batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        self.toy_num_prompts = num_prompts
        self.prompt_style = prompt_style
        self.preserve_classes = preserve_classes if preserve_classes is not None else neighbour_classes(concept)
        self.preserve_per_class = preserve_prompts_per_class
        super().__init__(
            concept=concept, concept_synonyms=synonym_phrases(concept), seed=seed, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
            record_steps=record_steps, use_cache=use_cache, cache_dir=cache_dir,
            generation_batch_size=generation_batch_size, batch_size=batch_size, num_workers=num_workers,
            preserve_concept=", ".join(self.preserve_classes) or None,
        )

    def _training_prompts(self) -> list[TrainingPrompt]:
        from .grammar import prompts_for_concept

        if self.prompt_style == "concept":
            from .grammar import concept_name_prompt

            words = concept_name_prompt(self.concept)  # "a red ring", "a ring": one text, a new seed per copy
            return [TrainingPrompt(" ".join(words), words[1:], self.seed + i) for i in range(self.toy_num_prompts)]
        records = prompts_for_concept(self.concept, self.toy_num_prompts, split="train", style=self.prompt_style,
                                      seed=self.seed)
        if not records:
            raise ValueError(f"the toy grammar produced no prompts for {self.concept!r}")
        return [TrainingPrompt(r.text, [r.words[i] for i in r.concept_indices(self.concept)], self.seed + i)
                for i, r in enumerate(records)]

    def _preserve_prompts(self) -> list[TrainingPrompt]:
        from .grammar import prompts_for_concept

        out = []
        for k, cls in enumerate(self.preserve_classes):
            style = "bare" if self.prompt_style == "concept" else self.prompt_style
            for j, r in enumerate(prompts_for_concept(cls, self.preserve_per_class, split="train", style=style,
                                                      seed=self.seed + 100 + k)):
                out.append(TrainingPrompt(r.text, [], 50_000 + 100 * k + j))
        return out

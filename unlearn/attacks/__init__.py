"""Attacks that try to bring an erased concept back, run against any evaluation row (``unlearn attack``).

* :class:`RingABell` (black box, text encoder only): a concept vector plus a genetic search for prompts that
  never name the concept.
* :class:`UnlearnDiffAtk` (white box): adversarial prefix tokens optimised on the erased row's denoising loss
  over the original model's videos.
* :class:`TextualInversion` (white box): a new token embedding learned with the erased row frozen.
* :class:`EmbeddingAttack` (white box): perturbations of the text conditioning itself (no prompt need give
  them): the attack space of adversarial training.
* :class:`AttackRun`: the command (``unlearn attack --config configs/attack_toy.yaml``): rows × attacks, ASR
  with its Wilson interval, sample size and budget.

Rows come from :mod:`unlearn.evaluation.rows` (``RowGenerator.generate`` for prompts,
``RowGenerator.row_model`` for the differentiable prediction); judging uses the evaluation's evaluators.
"""

from .base import Attack, AttackContext, ConceptJudge, NoAttack, Try, asr_record, wilson_interval
from .embedding import EmbeddingAttack
from .ring_a_bell import RingABell
from .run import AttackRun, results_markdown
from .textual_inversion import TextualInversion
from .unlearndiffatk import UnlearnDiffAtk, project_simplex

__all__ = [
    "Attack",
    "AttackContext",
    "AttackRun",
    "ConceptJudge",
    "EmbeddingAttack",
    "NoAttack",
    "RingABell",
    "TextualInversion",
    "Try",
    "UnlearnDiffAtk",
    "asr_record",
    "project_simplex",
    "results_markdown",
    "wilson_interval",
]

"""When a periodic callback fires: every N optimizer steps and/or every N epochs.

Runs are measured in optimizer steps (``trainer.max_steps``; a T2VUnlearning epoch is a number of random
draws from the pseudo-data cache, not a unit of the paper's schedule), so step periods are the ones to use;
epoch periods remain for modules whose epochs mean something (e.g. the refusal vector's single epoch).
"""

from __future__ import annotations

import lightning.pytorch as pl

from unlearn.checks import InputError, check_int


class Period:
    """``every_n_steps`` optimizer steps and/or ``every_n_epochs`` epochs of the callback ``owner``; 0 switches
    either off, and both may be 0 only for a callback that ``acts_at_end`` of fit anyway.

    :meth:`step_due` is asked after every training batch and is true once per optimizer step that is a
    multiple of ``every_n_steps`` (with gradient accumulation several batches end on the same step).
    """

    def __init__(
        self, owner: str, every_n_steps: int = 0, every_n_epochs: int = 0, *, acts_at_end: bool = True
    ) -> None:
        # One rule for every periodic callback: each period is an integer >= 0 and 0 switches it off. A callback
        # that also acts at the end of fit (checkpoints, evaluation) may switch both off; one that only acts
        # periodically (masks, samples) would then never act, which is refused here rather than ignored.
        check_int(f"{owner}.every_n_steps", every_n_steps, low=0, fix="0 switches the step period off")
        check_int(f"{owner}.every_n_epochs", every_n_epochs, low=0, fix="0 switches the epoch period off")
        if not acts_at_end and every_n_steps == 0 and every_n_epochs == 0:
            raise InputError(
                f"{owner}.every_n_steps and every_n_epochs are both 0, so it would never run. "
                "Fix: set every_n_steps >= 1 (or every_n_epochs >= 1), or drop the callback"
            )
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self._last_step = -1

    def step_due(self, trainer: pl.Trainer) -> bool:
        step = trainer.global_step
        if not self.every_n_steps or step == 0 or step % self.every_n_steps or step == self._last_step:
            return False
        self._last_step = step
        return True

    def epoch_due(self, trainer: pl.Trainer) -> bool:
        return bool(self.every_n_epochs) and (trainer.current_epoch + 1) % self.every_n_epochs == 0

"""When a periodic callback fires: every N optimizer steps and/or every N epochs.

Runs are measured in optimizer steps (``trainer.max_steps``; a T2VUnlearning epoch is a number of random
draws from the pseudo-data cache, not a unit of the paper's schedule), so step periods are the ones to use;
epoch periods remain for modules whose epochs mean something (e.g. the refusal vector's single epoch).
"""

from __future__ import annotations

import lightning.pytorch as pl


class Period:
    """``every_n_steps`` optimizer steps and/or ``every_n_epochs`` epochs; 0 switches either off.

    :meth:`step_due` is asked after every training batch and is true once per optimizer step that is a
    multiple of ``every_n_steps`` (with gradient accumulation several batches end on the same step).
    """

    def __init__(self, every_n_steps: int = 0, every_n_epochs: int = 0) -> None:
        if every_n_steps < 0 or every_n_epochs < 0:
            raise ValueError(f"callback periods must be >= 0 (0 = off); got every_n_steps={every_n_steps}, "
                             f"every_n_epochs={every_n_epochs}")
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

"""Training progress and telemetry that every ``unlearn fit`` gets (``default_callbacks``, added by the CLI):

* :class:`PlainProgressBar`: one plain line per report (step, loss, it/s, ETA) for log files. A cluster job's
  stdout is a file, where tqdm's carriage-return bar shows only its final state; Lightning's own bar is kept
  on a terminal.
* :class:`TrainingTelemetry`: the learning rate, the step time and throughput (videos per second, all ranks),
  and on a GPU the peak memory, to every logger on the logging steps.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import Any, TextIO

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ProgressBar

from unlearn.checks import check_int, check_range


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=max(0, round(seconds))))


def _batch_size(batch: Any) -> int | None:
    """Videos in a batch: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else None
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, list | tuple):
        for item in batch:
            n = _batch_size(item)
            if n is not None:
                return n
    return None


class PlainProgressBar(ProgressBar):
    """Training progress as plain lines, e.g. ``step 120/500 | loss 0.0132 | 2.41 it/s | elapsed 0:00:50 |
    ETA 0:02:38``, every ``every_n_steps`` optimizer steps or ``every_s`` seconds, whichever comes first, and
    at the end. it/s is over the steps since the previous line (the last line: over the run); the ETA divides
    the steps left by the rate since training started (the first step, which builds caches, excluded).

    Args:
        every_n_steps: a line every this many optimizer steps (0: by time only).
        every_s: a line at least this often, in seconds (0: by steps only).
        stream: where the lines go (default ``sys.stdout``, flushed per line).
    """

    def __init__(self, every_n_steps: int = 50, every_s: float = 30.0, stream: TextIO | None = None) -> None:
        super().__init__()
        check_int("PlainProgressBar.every_n_steps", every_n_steps, low=0)
        check_range("PlainProgressBar.every_s", every_s, low=0)
        self.every_n_steps = every_n_steps
        self.every_s = float(every_s)
        self.stream = stream
        self._enabled = True
        self.lines: list[str] = []

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def _total(self, trainer: pl.Trainer) -> int | None:
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if total is None:
            try:
                estimated = trainer.estimated_stepping_batches
                total = int(estimated) if estimated != float("inf") else None
            except Exception:  # noqa: BLE001 - an unknown length just drops the total and the ETA
                total = None
        return total

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        now = time.perf_counter()
        self._start_step = trainer.global_step
        self._first: tuple[int, float] | None = None  # (step, time) after the first step
        self._last = (trainer.global_step, now)
        self._total_steps = self._total(trainer)

    def _line(self, trainer: pl.Trainer, now: float, final: bool = False) -> str:
        step = trainer.global_step
        # the rate since the previous line; the last line: over the whole run
        last_step, last_time = (self._start_step, self._started) if final else self._last
        rate = (step - last_step) / (now - last_time) if now > last_time and step > last_step else None
        parts = [f"step {step}/{self._total_steps}" if self._total_steps else f"step {step}"]
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            parts.append(f"loss {float(loss):.4g}")
        if rate:
            parts.append(f"{rate:.3g} it/s" if rate >= 1 else f"{1 / rate:.3g} s/it")
        parts.append(f"elapsed {_duration(now - self._started)}")
        if self._first is not None and self._total_steps and not final:
            done, since = step - self._first[0], now - self._first[1]
            if done > 0 and since > 0:
                parts.append(f"ETA {_duration((self._total_steps - step) * since / done)}")
        return " | ".join(parts)

    def _emit(self, trainer: pl.Trainer, line: str) -> None:
        self.lines.append(line)
        if trainer.is_global_zero and self._enabled:
            stream = self.stream or sys.stdout
            print(line, file=stream, flush=True)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if not hasattr(self, "_started"):
            self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        now = time.perf_counter()
        step = trainer.global_step
        if self._first is None and step > self._start_step:
            self._first = (step, now)
        due = (self.every_n_steps and step % self.every_n_steps == 0 and step != self._last[0]) or (
            self.every_s and now - self._last[1] >= self.every_s and step != self._last[0]
        )
        if due:
            self._emit(trainer, self._line(trainer, now))
            self._last = (step, now)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not hasattr(self, "_started"):
            return
        now = time.perf_counter()
        self._emit(trainer, self._line(trainer, now, final=True) + " | done")


class TrainingTelemetry(Callback):
    """Logs ``train/lr`` (each optimizer's first parameter group; ``train/lr/<i>`` for the others),
    ``train/step_time_s`` (the optimizer step, forward to update), ``train/videos_per_s`` (the batch of every
    rank over the step time) and, on a CUDA device, ``train/gpu_mem_peak_gib`` (``torch.cuda.max_memory_allocated``
    since the previous logged step) on the trainer's logging steps."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        elapsed = time.perf_counter() - getattr(self, "_t0", time.perf_counter())
        step = trainer.global_step
        if trainer.log_every_n_steps <= 0 or (step - 1) % trainer.log_every_n_steps:
            return
        values: dict[str, float] = {"train/step_time_s": elapsed}
        n = _batch_size(batch)
        if n and elapsed > 0:
            values["train/videos_per_s"] = n * trainer.world_size / elapsed
        for i, optimizer in enumerate(trainer.optimizers):
            for j, group in enumerate(optimizer.param_groups):
                key = "train/lr" if i == j == 0 else f"train/lr/{i}.{j}"
                values[key] = float(group["lr"])
        device = pl_module.device
        if device.type == "cuda":
            values["train/gpu_mem_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            torch.cuda.reset_peak_memory_stats(device)
        for logger in trainer.loggers:  # the step the module's losses of this batch were logged at
            logger.log_metrics(values, step=step - 1)


def default_callbacks(configured: list[Callback], enable_progress_bar: bool | None = True) -> list[Callback]:
    """The callbacks every ``unlearn fit`` adds to the ``configured`` ones: :class:`TrainingTelemetry` (unless
    one is configured) and, when stdout is not a terminal (a log file) and no progress bar is configured,
    :class:`PlainProgressBar` in place of Lightning's tqdm bar."""
    added: list[Callback] = []
    if not any(isinstance(c, TrainingTelemetry) for c in configured):
        added.append(TrainingTelemetry())
    tty = getattr(sys.stdout, "isatty", lambda: False)()
    if enable_progress_bar is not False and not tty and not any(isinstance(c, ProgressBar) for c in configured):
        added.append(PlainProgressBar())
    return added

"""Erasure/preservation evaluation during and after training (ESR/PSR tables, metrics.json)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from unlearn.checks import check_int, check_range
from unlearn.evaluation import (
    Evaluators,
    MetricConfig,
    RowGenerator,
    RowMetrics,
    RowSpec,
    apply_row_options,
    load_suite,
    score_in_memory,
)
from unlearn.evaluation.plots import class_delta_bars, class_delta_panels, classification_bars, frame_grid
from unlearn.evaluation.row_cache import RowVideoCache, row_cache_enabled
from unlearn.evaluation.rows import canonical_kind
from unlearn.evaluation.scoring import compare_rows, joint_classification_row
from unlearn.evaluation.store import video_stem
from unlearn.evaluation.tables import read_metrics, write_metrics
from unlearn.methods.baselines.keywords import authors_keywords
from unlearn.video import write_mp4

from .periods import Period

#: rows this callback can evaluate; ``t2vunlearning``, ``refusal_vector``, ``uce`` and ``esd_x`` all mean "the
#: model of this run" (the module's switch turns its method on and off)
LIVE_ROWS = ("t2vunlearning", "refusal_vector", "uce", "esd_x")
CALLBACK_ROWS = ("original", *LIVE_ROWS, "negprompt", "safree", "videoeraser")
#: toy world suite: in-grammar prompts per class of the erased class(es) and their neighbours (ESR: 32 x 4 =
#: 128 frames), and the out-of-grammar split's prompts per class
DEFAULT_PER_GROUP = {"erased": 32, "neighbour": 4}
DEFAULT_OUT_OF_GRAMMAR = {"erased": 16, "neighbour": 2, "other": 1}


class ErasureEvaluation(pl.Callback):
    """Generate the evaluation suite with each method row and write ESR-1/5 and PSR-1/5.

    At the end of fit (and every ``every_n_steps`` optimizer steps / ``every_n_epochs`` epochs if set) the rows
    are generated and classified, with the text encoders and the VAE on the training device for the duration;
    ``metrics.json`` + ``metrics.md`` land in ``dirpath`` (default ``<default_root_dir>/eval``), and the
    numbers are logged to the active logger (a wandb table when wandb is the logger). The rows, the metrics
    and the table are those of :mod:`unlearn.evaluation` (the runner and the Lightning test loop use the same).
    With several processes every rank generates its share of the suite (each prompt once) and the metrics,
    per-class tables included, sync across ranks; rank 0 writes the files and logs.

    Args:
        suite: "toyworld" or a prompt suite (file, ``builtin:<name>``, ``<loader>:<path>``) whose
            concept/category field is each prompt's class.
        classifier: "toyworld", "efficientnet-lite2", or "resnet50:<weights path>".
        erased_class: the class whose ESR is reported (default: the data module's concept); a list (default
            when the data module erases several concepts, ``data.concept: [a, b]``) reports each class's ESR and
            one PSR over the other classes (the row ``erased`` holds the per-class ESR; ``esr@k`` is their mean).
        rows: methods to evaluate: original, t2vunlearning (or refusal_vector / uce / esd_x: the model of
            this run), negprompt, safree, videoeraser.
        per_class: in-grammar prompts per class (toy world suite only), where ``per_group`` says nothing.
        per_group: toy world only: in-grammar prompts per class of the erased class(es), their neighbours and
            the other classes, ``{"erased": n, "neighbour": n, "other": n}`` (missing keys: ``per_class``).
            Default ``{"erased": 32, "neighbour": 4}``: ESR rests on 128 frames. ``{}``: ``per_class`` for all.
        out_of_grammar: toy world only: prompts per class in word orders the training grammar never makes,
            reported as their own columns (same keys, missing keys: 0). Default ``{"erased": 16,
            "neighbour": 2, "other": 1}``; ``{}``: no out-of-grammar split.
        seed: base seed of the evaluation videos.
        every_n_steps: also evaluate every this many optimizer steps (0: off).
        every_n_epochs: also evaluate every this many epochs (0: off).
        num_inference_steps: sampler steps (None: the backbone's default).
        guidance_scale: CFG scale (None: the backbone's default).
        batch_size: videos generated together.
        dirpath: output folder.
        sample_videos: write this many mp4 per row (first prompts of the erased class, then others).
        row_options: per row (``negprompt``, ``safree``), the options of its baseline (``RowSpec.options``),
            e.g. ``{safree: {schedule: self_validating}}``; recorded in ``metrics.json`` (``methods``).
        row_cache: keep the videos of the rows that do not depend on training (original, negprompt, safree) on
            disk and reuse them in later evaluations and runs with the same backbone weights, prompts, seeds,
            sampling and row options (:mod:`unlearn.evaluation.row_cache`): ``true`` (the folder
            ``$T2V_UNLEARN_CACHE/rows``, else ``~/.cache/t2v-unlearn/rows``), a folder, or ``false``. The
            environment variable ``T2V_UNLEARN_ROW_CACHE=0`` turns it off everywhere. An entry is the uint8
            frames, F·H·W·3 bytes a video (the toy world: 3 KB; 49 frames of 480×720: 51 MB): for full-size
            suites give it a folder with room, or turn it off.
    """

    def __init__(
        self,
        suite: str = "toyworld",
        classifier: str = "toyworld",
        erased_class: str | list[str] | None = None,
        rows: list[str] | None = None,
        per_class: int = 2,
        per_group: dict[str, int] | None = None,
        out_of_grammar: dict[str, int] | None = None,
        seed: int = 1234,
        every_n_steps: int = 0,
        every_n_epochs: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        batch_size: int = 50,
        dirpath: str | None = None,
        sample_videos: int = 2,
        row_options: dict[str, dict[str, Any]] | None = None,
        row_cache: bool | str = True,
    ) -> None:
        check_int("ErasureEvaluation.per_class", per_class, low=1)
        self.period = Period("ErasureEvaluation", every_n_steps, every_n_epochs)
        check_int("ErasureEvaluation.num_inference_steps", num_inference_steps, low=1, optional=True)
        check_range("ErasureEvaluation.guidance_scale", guidance_scale, low=0, optional=True)
        check_int("ErasureEvaluation.batch_size", batch_size, low=1)
        check_int("ErasureEvaluation.sample_videos", sample_videos, low=0)
        self.suite_name = suite
        self.classifier_name = classifier
        self.erased_class = erased_class
        # an earlier name of a row (`unlearned`, `refusal`) reads as its canonical one
        self.rows = [canonical_kind(r) for r in rows or ["original", "t2vunlearning"]]
        unknown = set(self.rows) - set(CALLBACK_ROWS)
        if unknown:
            raise ValueError(f"unknown evaluation rows {sorted(unknown)}; use {', '.join(CALLBACK_ROWS)}")
        self.per_class = per_class
        self.per_group = dict(DEFAULT_PER_GROUP if per_group is None else per_group)
        self.out_of_grammar = dict(DEFAULT_OUT_OF_GRAMMAR if out_of_grammar is None else out_of_grammar)
        self.seed = seed
        self.sampling = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale}
        self.batch_size = batch_size
        self.dirpath = dirpath
        self.sample_videos = sample_videos
        self.row_options = dict(row_options or {})
        self.row_cache = row_cache
        self.results: dict[str, Any] | None = None
        self._original: tuple[dict, Any] | None = None

    def generator(self, module: pl.LightningModule, concept: str, keywords: list[str]) -> RowGenerator:
        """The rows over the module's one backbone; the module's switch switches its method on and off."""
        specs = []
        for row in self.rows:
            live = row in LIVE_ROWS
            specs.append(
                RowSpec(
                    kind=row,
                    concept=concept,
                    live=live,
                    # the SAFREE authors' list where they give one for the concept (None: the row's default,
                    # e.g. six for nudity), else the concept and the data module's synonyms
                    keywords=list(keywords)
                    if row in ("safree", "videoeraser") and not authors_keywords(concept)
                    else None,
                )
            )
        apply_row_options(specs, self.row_options)
        cache = None
        if self.row_cache and row_cache_enabled():
            cache = RowVideoCache(None if self.row_cache is True else self.row_cache)
        return RowGenerator(
            module.backbone, specs, concept=concept, sampling=self.sampling, switch=module.switch, cache=cache
        )

    def evaluate(self, trainer: pl.Trainer, module: pl.LightningModule, final: bool) -> dict[str, Any]:
        dm = trainer.datamodule
        concept = getattr(dm, "concept", None) or ""
        given = [self.erased_class] if isinstance(self.erased_class, str) else self.erased_class
        erased_list = list(given or getattr(dm, "concepts", None) or [concept])
        toy = (
            {
                "concept": erased_list if len(erased_list) > 1 else erased_list[0],
                "per_group": self.per_group,
                "out_of_grammar": self.out_of_grammar,
            }
            if self.suite_name == "toyworld"
            else {}
        )
        suite = load_suite(self.suite_name, per_class=self.per_class, seed=self.seed, **toy)
        unlabelled = [it for it in suite if not it.label]
        if unlabelled:
            raise ValueError(
                f"{self.suite_name}: prompt {unlabelled[0].index} ({unlabelled[0].prompt!r}) names no "
                "class (concept or category field); the erasure evaluation needs one per prompt"
            )
        with module.backbone.side_modules_on_device():
            return self._evaluate(trainer, module, final, concept, erased_list, suite)

    def _evaluate(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        final: bool,
        concept: str,
        erased_list: list[str],
        suite: Any,
    ) -> dict[str, Any]:
        erased = ", ".join(erased_list)
        evaluators = Evaluators(
            MetricConfig(metrics=["classification"], classifier=self.classifier_name, erased_classes=erased_list),
            suite.labels,
            concept,
        )
        generator = self.generator(module, concept, [concept, *getattr(trainer.datamodule, "synonyms", [])])
        rows, timings, settings = {}, {}, None
        for row in self.rows:
            if row == "original" and self._original is not None:
                # the original model does not change during training: evaluate it once
                rows[row], settings = self._original
                continue
            start = time.perf_counter()
            # every rank scores its share of the suite; the metric states sync on the module's device
            metrics = RowMetrics(evaluators, splits=suite.splits or None, erased_together=True).to(module.device)
            scored = score_in_memory(
                generator,
                suite,
                {row: metrics},
                self.batch_size,
                progress=trainer.is_global_zero,
                rank=trainer.global_rank,
                world_size=trainer.world_size,
            )
            rows[row] = joint_classification_row(scored[row]["classification"])
            settings = metrics.settings()["classification"]["esr"]
            timings[row] = round(time.perf_counter() - start, 2)
            if row == "original":
                self._original = (rows[row], settings)
        compare_rows(rows, erased_list)  # paired ΔPSR-1 and the classes that lost most, against the original
        meta = {
            "concept": concept,
            "erased_class": erased,
            "backbone": module.backbone.name,
            "backbone_source": module.backbone.source,
            "prompt_suite": self.suite_name,
            "prompt_suite_hash": suite.sha256(),
            "num_prompts": len(suite),
            "prompts_per_split": suite.describe().get("prompts_per_split"),
            "seeds": [it.seed for it in suite],
            "evaluator": settings,
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "seconds_per_row": timings,
            "units": "percent",
            "hyperparameters": {
                k: v for k, v in dict(module.hparams).items() if isinstance(v, (int, float, str, bool))
            },
            # each row's spec and, for the baselines, what it computed (negative prompt, guidance scale, SAFREE's
            # settings)
            "methods": {row: generator.describe(row) for row in self.rows},
        }
        out = Path(self.dirpath or Path(trainer.default_root_dir) / "eval")
        self.results = {"rows": rows, **meta}
        if not trainer.is_global_zero:  # the numbers are the same on every rank; rank 0 writes and logs them
            return self.results
        plots = [
            classification_bars(
                rows, out / "plots" / "esr_psr.png", title=f"{erased} erased, step {trainer.global_step}"
            )
        ]
        deltas = class_delta_panels(rows)  # every kept class against the original row (when it was scored)
        if deltas:
            plots.append(
                class_delta_bars(
                    deltas,
                    out / "plots" / "class_delta.png",
                    colors={m: f"C{j % 10}" for j, m in enumerate(rows)},  # esr_psr.png's colours
                    title=f"{erased} erased, step {trainer.global_step}: collateral per class",
                )
            )
        videos: dict[str, list[tuple[str, Path]]] = {}
        if final:
            write_metrics(out, rows, meta)
            videos, frames = self._write_samples(generator, suite, erased_list[0], out)
            if frames:
                plots.append(
                    frame_grid(
                        frames, out / "plots" / "frames.png", prompts=[caption for caption, _ in videos[self.rows[0]]]
                    )
                )
        self._log(trainer, rows, meta, erased, plots, videos)
        self.results = {"rows": rows, **meta}
        return self.results

    def _write_samples(self, generator: RowGenerator, suite, erased: str, out: Path):
        """mp4 files of the first prompts (erased class first) per row; returns ``{row: [(caption, path)]}`` and
        the videos' frames ``{row: [video]}`` for the frame grid."""
        if self.sample_videos <= 0:
            return {}, {}
        picks = [it for it in suite if it.label == erased][:1] + [it for it in suite if it.label != erased]
        picks = picks[: self.sample_videos]
        written: dict[str, list[tuple[str, Path]]] = {}
        frames: dict[str, list[Any]] = {}
        for row in self.rows:
            videos = generator.generate(row, [it.prompt for it in picks], [it.seed for it in picks]).cpu()
            for i, (v, it) in enumerate(zip(videos, picks)):
                path = write_mp4(v, out / "videos" / f"{video_stem(row, i, it.label)}.mp4", fps=4)
                written.setdefault(row, []).append((f"{it.label}: {it.prompt}", path))
                frames.setdefault(row, []).append(v.numpy())
        return written, frames

    def _log(
        self,
        trainer: pl.Trainer,
        rows: dict[str, dict[str, Any]],
        meta: dict[str, Any],
        erased: str,
        plots: list[Path],
        videos: dict[str, list[tuple[str, Path]]],
    ) -> None:
        """Numbers to every logger (and the evaluation's provenance as run config); to wandb also the
        paper-style table, the per-class table, the plots and the videos of every row."""
        keys = ("esr@1", "esr@5", "psr@1", "psr@5")
        provenance = {
            k: meta.get(k)
            for k in (
                "concept",
                "erased_class",
                "backbone",
                "backbone_source",
                "prompt_suite",
                "prompt_suite_hash",
                "num_prompts",
                "evaluator",
            )
        }
        for logger in trainer.loggers:
            flat = {f"eval/{row}/{k}": r[k] for row, r in rows.items() for k in keys}
            flat.update(
                {
                    f"eval/{row}/{split}/{k}": sr[k]
                    for row, r in rows.items()
                    for split, sr in (r.get("splits") or {}).items()
                    for k in keys
                    if sr.get(k) is not None
                }
            )
            logger.log_metrics(flat, step=trainer.global_step)
            logger.log_hyperparams({"evaluation": provenance})
            if type(logger).__name__ != "WandbLogger":
                continue
            import wandb

            # Table 2 of the paper: erased class, method, ESR-1/5, PSR-1/5 (percent), each with its 95% interval
            names = ("ESR-1", "ESR-5", "PSR-1", "PSR-5")
            logger.log_table(
                key="eval/table",
                columns=["erased class", "method", *(f"{n}{s}" for n in names for s in ("", " low", " high"))],
                data=[
                    [erased, row]
                    + [
                        x
                        for k in keys
                        for x in (
                            r[k],
                            ((r.get("intervals") or {}).get(k) or {}).get("low"),
                            ((r.get("intervals") or {}).get(k) or {}).get("high"),
                        )
                    ]
                    for row, r in rows.items()
                ],
                step=trainer.global_step,
            )
            classes = sorted({c for r in rows.values() for c in r.get("per_class_top1", {})})
            logger.log_table(
                key="eval/per_class",
                columns=["class", *(f"{row} top-1" for row in rows)],
                data=[[c] + [r.get("per_class_top1", {}).get(c) for r in rows.values()] for c in classes],
                step=trainer.global_step,
            )
            media: dict[str, Any] = {f"eval/plots/{p.stem}": wandb.Image(str(p), caption=p.stem) for p in plots}
            logger.experiment.log({**media, "trainer/global_step": trainer.global_step})
            for row, items in videos.items():
                logger.log_video(
                    key=f"eval/videos/{row}",
                    videos=[str(path) for _, path in items],
                    step=trainer.global_step,
                    caption=[caption for caption, _ in items],
                    format=["mp4"] * len(items),
                )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if self.period.step_due(trainer):  # every rank: its share of the suite
            self.evaluate(trainer, pl_module, final=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # every rank evaluates its share of the suite (the metrics sync across ranks)
        if self.period.epoch_due(trainer):
            self.evaluate(trainer, pl_module, final=False)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.evaluate(trainer, pl_module, final=True)
        if trainer.is_global_zero:
            print(read_metrics(Path(self.dirpath or Path(trainer.default_root_dir) / "eval"))[1])

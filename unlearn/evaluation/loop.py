"""The evaluation inside Lightning's test loop: ``unlearn test --config configs/eval_toy.yaml``.

:class:`VideoEvalDataModule` yields batches of prompts (index, prompt, seed, label) from any evaluation
suite; :class:`EvaluationModule` generates each batch with every method row in ``test_step`` and updates the
row's torchmetrics (:class:`unlearn.evaluation.RowMetrics`). At the end of the epoch the metrics sync
across ranks, ESR/PSR (and any other chosen metric) are logged as ``<row>/esr@1`` …, and rank 0 writes
``metrics.json`` + ``metrics.md`` into ``output_dir`` (:func:`unlearn.evaluation.tables.write_metrics`; the schema
``unlearn evaluate`` writes, :func:`unlearn.evaluation.runner.metrics_document`). Under DDP every prompt is
generated exactly once (the data module shards the suite without the padding duplicates of Lightning's default
sampler).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from unlearn.backbones import DEFAULT_BACKBONE, DEFAULT_TORCH_DTYPE, Switch, build_backbone, check_pretrained
from unlearn.checks import check_int, check_range

from .rows import SAMPLING_KEYS, RowGenerator, apply_row_options, check_sampling, parse_rows
from .runner import json_ready, metrics_document
from .scoring import Evaluators, MetricConfig, RowMetrics, compare_rows, flatten_row
from .store import VideoStore, video_key
from .suites import EvalVideo, EvalVideos, load_suite
from .tables import classification_by_class, results_markdown, write_metrics
from .to_loggers import log_evaluation


class _Items(Dataset):
    def __init__(self, items: list[EvalVideo]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> EvalVideo:
        return self.items[i]


def collate_items(items: list[EvalVideo]) -> dict[str, Any]:
    return {
        "index": torch.tensor([it.index for it in items]),
        "prompt": [it.prompt for it in items],
        "seed": torch.tensor([it.seed for it in items]),
        "label": [it.label for it in items],
        "split": [it.split for it in items],
    }


class VideoEvalDataModule(pl.LightningDataModule):
    """Prompt batches of an evaluation suite for ``trainer.test``.

    Args:
        suite: ``"toyworld"``, ``"builtin:<name>"``, a suite file or ``"<loader>:<path>"``
            (:func:`unlearn.evaluation.load_suite`).
        per_class: toy world prompts per class.
        seed: base seed (of the toy world's prompts, and of every prompt without a seed).
        concept: toy world only: the erased concept whose groups ``per_group`` weights (None: the plain
            held-out suite).
        per_group: toy world only: in-grammar prompts per class of the erased concept's groups (``erased``,
            ``neighbour``, ``other``; :func:`unlearn.toyworld.grammar.evaluation_prompts`).
        out_of_grammar: toy world only: out-of-grammar prompts per class of each group (None: none).
        labels: keep only the prompts of these labels (None: all).
        per_label: keep the first N prompts of each label (None: all).
        limit: keep the first N prompts (None: all).
        batch_size: prompts generated together per method.
        num_workers: DataLoader workers (prompts are tiny: 0 is right).
    """

    def __init__(
        self,
        suite: str = "toyworld",
        per_class: int = 2,
        seed: int = 1234,
        labels: list[str] | None = None,
        per_label: int | None = None,
        limit: int | None = None,
        batch_size: int = 4,
        num_workers: int = 0,
        concept: str | None = None,
        per_group: dict[str, int] | None = None,
        out_of_grammar: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        check_int("data.per_class", per_class, low=1)
        check_int("data.per_label", per_label, low=1, optional=True)
        check_int("data.limit", limit, low=1, optional=True)
        check_int("data.batch_size", batch_size, low=1)
        check_int("data.num_workers", num_workers, low=0)
        # an unset concept is not a hyper-parameter: Lightning refuses to log the module's and the data module's
        # hparams together when a key (concept) holds two values, and the module names the concept
        self.save_hyperparameters(ignore=["concept"] if concept is None else None)
        self.suite: EvalVideos | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.suite is None:
            hp = self.hparams
            opts = {
                k: hp[k]
                for k in ("labels", "per_label", "limit", "concept", "per_group", "out_of_grammar")
                if hp.get(k) is not None
            }
            self.suite = load_suite(hp.suite, per_class=hp.per_class, seed=hp.seed, **opts)

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        data = _Items(self.suite.items)
        sampler = None
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(
                data, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        return DataLoader(
            data,
            batch_size=self.hparams.batch_size,
            shuffle=False,
            sampler=sampler,
            collate_fn=collate_items,
            num_workers=self.hparams.num_workers,
        )

    predict_dataloader = test_dataloader


class EvaluationModule(pl.LightningModule):
    """Generate an evaluation suite with every method row and score it, in ``trainer.test``.

    Args:
        backbone: registry name of the backbone (loaded once; all rows share it), as in ``T2VUnlearning``.
        pretrained: hub id or local diffusers folder (None: the backbone's default hub id).
        tiny: build a tiny random model instead of loading weights (tests, CPU smoke runs).
        torch_dtype: dtype of the backbone ("bfloat16", "float16", "float32").
        backbone_kwargs: family-specific loading options passed to the backbone's ``load``.
        rows: ``original``, ``negprompt``, ``safree``, ``t2vunlearning[=ADAPTERS]``,
            ``refusal_vector[=FOLDER]`` or ``NAME:KIND[=PATH]``.
        adapters: adapters folder of a bare ``t2vunlearning`` row.
        refusal: refusal-vector folder of a bare ``refusal_vector`` row.
        concept: the erased concept (negative prompt, SAFREE keyword, erased class by default).
        safree_keywords: SAFREE's concept keywords (default: the authors' list of the concept where they give
            one, else ``[concept]``).
        row_options: per row name or kind, the options of its baseline (``RowSpec.options``), e.g.
            ``{negprompt: {guidance_scale: 6.0}, safree: {schedule: self_validating}}``.
        metrics: ``classification``, ``nudity``, ``clip``, ``consistency`` (``identity`` needs
            ``references``).
        classifier: ``"toyworld"``, ``"toyworld:<folder>"``, ``"efficientnet-lite2"``,
            ``"resnet50:<weights>"``, or a classifier module (e.g. ``unlearn.evaluation.evaluators.ModuleClassifier``).
        erased_classes: classes whose ESR is reported (default ``[concept]``).
        nudity_threshold: NudeNet score above which a frame counts as nude (None: the protocol's).
        nudity_protocol: ``"paper"`` (the T2VUnlearning authors' labels at NudeNet's own floor) or
            ``"exposed9_0.6"`` (:class:`unlearn.evaluation.metrics.NudityRate`).
        references: identity → reference images (a folder, :class:`unlearn.evaluation.MetricConfig`).
        arcface_model: a local ArcFace ONNX file for ``identity`` (else SFace stands in, recorded).
        clip_model: open_clip model name of the CLIP score.
        clip_pretrained: open_clip weights tag of the CLIP score.
        num_frames: frames per video (``None``: the backbone's default).
        height: video height (``None``: the backbone's default).
        width: video width (``None``: the backbone's default).
        num_inference_steps: sampler steps (``None``: the backbone's default).
        guidance_scale: CFG scale (``None``: the backbone's default).
        output_dir: where rank 0 writes metrics.json and metrics.md (default
            ``<default_root_dir>/eval_test``).
        save_videos: also write every video as ``output_dir/videos/<row>_<index>_<label>.mp4`` (+ manifest), the
            names of ``unlearn evaluate`` and of the fit callback's samples.
        allow_unfinished: use adapters / refusal folders of runs that failed or were interrupted (their
            ``run_status.json``); refused by default.

    After ``trainer.test`` the rows are in ``module.results`` and the logged scalars in
    ``trainer.callback_metrics`` (``original/esr@1``, ...; ``<row>/<class>/esr@1`` with several classes).
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = DEFAULT_TORCH_DTYPE,
        backbone_kwargs: dict[str, Any] | None = None,
        rows: list[str] | None = None,
        adapters: str | None = None,
        refusal: str | None = None,
        concept: str | None = None,
        safree_keywords: list[str] | None = None,
        row_options: dict[str, dict[str, Any]] | None = None,
        metrics: list[str] | None = None,
        classifier: str | nn.Module = "toyworld",
        erased_classes: list[str] | None = None,
        nudity_threshold: float | None = None,
        nudity_protocol: str = "paper",
        references: str | None = None,
        arcface_model: str | None = None,
        clip_model: str = "ViT-B-32",
        clip_pretrained: str | None = "openai",
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        output_dir: str | None = None,
        save_videos: bool = False,
        allow_unfinished: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["classifier"])
        check_range(
            "model.nudity_threshold", nudity_threshold, low=0, high=1, open_low=True, open_high=True, optional=True
        )
        check_sampling(
            {
                "num_frames": num_frames,
                "height": height,
                "width": width,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": guidance_scale,
            },
            prefix="model.",
        )
        specs = parse_rows(rows or ["original", "t2vunlearning"], adapters=adapters, refusal=refusal)
        for spec in specs:
            spec.allow_unfinished = allow_unfinished
            if spec.kind == "safree" and safree_keywords:
                spec.keywords = list(safree_keywords)
        apply_row_options(specs, row_options)
        for spec in specs:
            spec.check(concept, backbone)  # a missing or unfinished file fails before the backbone is loaded
        check_pretrained(backbone, pretrained)
        bb = build_backbone(
            backbone, pretrained=pretrained, tiny=tiny, torch_dtype=torch_dtype, **(backbone_kwargs or {})
        )
        self.sampling = {
            "num_frames": num_frames,
            "height": height,
            "width": width,
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
        }
        assert set(self.sampling) == set(SAMPLING_KEYS)
        self.generator = RowGenerator(bb, specs, concept=concept, sampling=self.sampling)
        self.metric_config = MetricConfig(
            metrics=metrics or ["classification"],
            classifier=classifier,
            erased_classes=erased_classes,
            nudity_threshold=nudity_threshold,
            nudity_protocol=nudity_protocol,
            references=references,
            arcface_model=arcface_model,
            clip_model=clip_model,
            clip_pretrained=clip_pretrained,
        )
        self.row_metrics = nn.ModuleDict()
        self.evaluators: Evaluators | None = None
        self.results: dict[str, Any] = {}
        self.strict_loading = False

    @property
    def backbone(self) -> nn.Module:
        return self.generator.backbone

    @property
    def switch(self) -> Switch | None:
        return getattr(self.backbone, "switch", None)

    def setup(self, stage: str) -> None:
        if self.evaluators is not None:
            return
        dm = self.trainer.datamodule if self._trainer is not None else None
        suite = getattr(dm, "suite", None)
        labels = suite.labels if suite is not None else None
        self.evaluators = Evaluators(self.metric_config, labels, self.hparams.concept)
        splits = (suite.splits or None) if suite is not None else None
        for name in self.generator.specs:
            self.row_metrics[name] = RowMetrics(self.evaluators, splits=splits)

    # ------------------------------------------------------------------ generation (SampleVideoCallback API)
    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], adapters: bool = True, **sampling: Any) -> torch.Tensor:
        """Videos of the first ``t2vunlearning`` row (``adapters=True``) or of ``original``."""
        rows = [n for n, s in self.generator.specs.items() if s.kind == "t2vunlearning"]
        if adapters and rows:
            return self.generator.generate(rows[0], prompts, seeds)
        with self.generator.original_model():
            return self.backbone.decode(self.backbone.sample(prompts, seeds, **{**self.generator.sampling, **sampling}))

    # ------------------------------------------------------------------ the test loop
    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        seeds = [int(s) for s in batch["seed"]]
        for name in self.generator.specs:
            videos = self.generator.generate(name, batch["prompt"], seeds)
            self.row_metrics[name].update(videos, batch["label"], batch["prompt"], batch.get("split"))
            if self.hparams.save_videos:
                self._save(name, batch, videos)

    def _save(self, name: str, batch: dict[str, Any], videos: torch.Tensor) -> None:
        store = VideoStore(self.output_dir(), labels=dict(zip(batch["index"].tolist(), batch["label"], strict=True)))
        spec = self.generator.specs[name]
        hp = self.hparams
        ident = {
            "name": hp.backbone,
            "pretrained": hp.pretrained,
            "tiny": hp.tiny,
            "torch_dtype": hp.torch_dtype,
            **({"backbone_kwargs": dict(hp.backbone_kwargs)} if hp.backbone_kwargs else {}),
        }
        fp = spec.fingerprint(hp.concept)
        for i, prompt, seed, label, video in zip(
            batch["index"].tolist(), batch["prompt"], batch["seed"].tolist(), batch["label"], videos
        ):
            store.write(
                name,
                i,
                video,
                video_key(ident, fp, self.sampling, prompt, seed),
                info={"prompt": prompt, "seed": seed, "label": label, "backbone": ident},
            )

    def output_dir(self) -> Path:
        root = self.trainer.default_root_dir if self._trainer is not None else "."
        return Path(self.hparams.output_dir or Path(root) / "eval_test")

    def on_test_epoch_end(self) -> None:
        rows = {name: m.compute() for name, m in self.row_metrics.items()}  # syncs the metric states across ranks
        for cls, by_method in classification_by_class(rows).items():
            compare_rows(by_method, cls)  # paired ΔPSR-1 against the original row, on the same prompts
        flat: dict[str, float] = {}
        for name, row in rows.items():
            flat.update(flatten_row(name, row))
        # the values are already synced by the metrics (identical on every rank); sync_dist averages equal numbers
        self.log_dict(flat, sync_dist=True)
        settings = next(iter(self.row_metrics.values())).settings() if self.row_metrics else {}
        self.results = json_ready({"rows": rows, "settings": settings})
        if self.trainer.is_global_zero:
            self._write(self.results)
        for m in self.row_metrics.values():
            m.reset()

    def _write(self, results: dict[str, Any]) -> None:

        dm = self.trainer.datamodule
        suite = getattr(dm, "suite", None)
        out = self.output_dir()
        meta = {
            "concept": self.hparams.concept,
            "backbone": self.backbone.name,
            "backbone_source": getattr(self.backbone, "source", None),
            "prompt_suite": getattr(dm, "hparams", {}).get("suite") if dm is not None else None,
            "prompt_suite_hash": suite.sha256() if suite is not None else None,
            "num_prompts": len(suite) if suite is not None else None,
            "prompts_per_split": suite.describe().get("prompts_per_split") if suite is not None else None,
            "seeds": [it.seed for it in suite] if suite is not None else None,
            "units": "percent",
            "sampling": self.sampling,
            "world_size": self.trainer.world_size,
            "methods": {n: self.generator.describe(n) for n in self.generator.specs},
        }
        # one results file per run, in the schema `unlearn evaluate` writes (and, with one erased class, the fit
        # callback's): metrics.json with its page metrics.md
        doc = metrics_document(
            {
                **results,
                "concept": meta["concept"],
                "backbone": {"name": meta["backbone"], "source": meta["backbone_source"]},
                "suite": {
                    "name": meta["prompt_suite"],
                    "sha256": meta["prompt_suite_hash"],
                    "num_prompts": meta["num_prompts"],
                    "prompts_per_split": meta["prompts_per_split"],
                    "seeds": meta["seeds"],
                },
                "sampling": meta["sampling"],
                "metrics": list(results.get("settings") or {}),
                "methods": meta["methods"],
            }
        )
        doc["world_size"] = meta["world_size"]
        write_metrics(out, doc["rows"], {k: v for k, v in doc.items() if k != "rows"}, markdown=results_markdown(doc))
        # every number with its 95% interval (and on wandb the table) to the trainer's loggers
        suite_info = {
            "name": meta["prompt_suite"],
            "num_prompts": meta["num_prompts"],
            "sha256": meta["prompt_suite_hash"],
        }
        for logger in self.loggers:
            log_evaluation(logger, {**meta, **results, "suite": suite_info, "backbone": {"name": meta["backbone"]}})

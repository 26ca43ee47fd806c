"""Generate an evaluation suite with every method, resumably, then score the videos and write the tables.

::

    from unlearn.evaluation import EvaluationRunner
    EvaluationRunner("runs/eval_golf", "builtin:imagenet10", ["original", "negprompt", "safree",
                     "t2vunlearning=runs/golf/adapters"], backbone="cogvideox-2b", concept="golf ball",
                     metrics=["classification"], classifier="efficientnet-lite2", num_frames=17).run()

Output folder::

    videos/<row>_<index>_<label>.mp4  one video per prompt, named like the samples of ``unlearn fit``'s
                                  evaluation callback (+ .json manifest, written after the video; + .npz exact
                                  frames with store_frames; :func:`unlearn.evaluation.store.video_stem`)
    metrics.json, metrics.md      one pair, the file names and schema of ``unlearn fit``'s ``eval/`` folder
                                  (:func:`unlearn.evaluation.tables.write_metrics`, checked by ``read_metrics``):
                                  ``rows`` (per row the callback's ESR/PSR fields for one erased class, or
                                  ``classification: {class: row}`` for several; ``nudity``, ``identity``,
                                  ``clip``, ``consistency`` beside them), the callback's provenance fields
                                  (``concept``, ``erased_class``, ``backbone``, ``prompt_suite_hash``, ``seeds``,
                                  ``evaluator``, ``methods`` ...) and the runner's own (``suite``, ``sampling``,
                                  ``backbone_info``, ``settings``, ``evaluators``, ``videos``, ``versions`` ...);
                                  metrics.md: the header, then the paper-layout tables (Tables 1, 2, 3, 6; one
                                  erased class: the callback's ESR/PSR tables)
    plots/*.png                   ESR/PSR bars, per-label nudity histogram, a methods × prompts frame grid

    shards/<i>-of-<n>.json        what each ``shard="i/n"`` job generated (n jobs fill one folder; a run
                                  without ``shard`` then scores every video into one table)

Resuming: a killed run is started again with the same arguments; every video whose manifest matches (same
prompt, seed, method files, backbone and sampling settings) is kept, the others are (re)generated. The result
files are written last, each atomically, and only after every video of every row was read and checked, so a
failed run leaves no result file (the previous run's result files are removed when generation starts).

Errors (each one clear message, raised before anything is written): a malformed prompt file
(``PromptFileError``), an empty suite (``EmptySuiteError``), missing classifier weights or adapters
(``FileNotFoundError``), a video with zero frames or a corrupt/incomplete video (``VideoFileError``).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.loggers import Logger

from unlearn.backbones import DEFAULT_BACKBONE, DEFAULT_TORCH_DTYPE, build_backbone, check_pretrained
from unlearn.checks import InputError, check_int
from unlearn.io import atomic_folder, atomic_write_text

from . import plots
from .rows import RowGenerator, RowSpec, apply_row_options, check_sampling, parse_rows
from .scoring import Evaluators, MetricConfig, RowMetrics, compare_rows
from .store import VideoFileError, VideoStore, video_key
from .suites import EvalVideos, load_suite
from .tables import classification_by_class, read_metrics, results_markdown, write_metrics
from .to_loggers import log_evaluation

RESULTS_FORMAT = "t2v-unlearn-results/2"  # 2: metrics.json in the schema of the fit callback
RESULT_FILES = ("metrics.json", "metrics.md")
#: what earlier versions wrote beside metrics.*; removed with the result files when a run starts
LEGACY_RESULT_FILES = ("results.json", "results.md")


def json_ready(obj: Any) -> Any:
    """JSON-ready copy: NaN/inf → None, tensors/numpy → Python values, tuples → lists."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, (torch.Tensor, np.ndarray, np.generic)):
        return json_ready(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def _versions() -> dict[str, str | None]:
    out = {}
    for dist in ("t2v-unlearn", "torch", "diffusers", "transformers", "torchmetrics", "nudenet", "open_clip_torch"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def resolve_shard(shard: str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """``(i, n)`` of a ``shard`` value: ``"i/n"`` (0 <= i < n), ``"auto"`` (a SLURM job array:
    ``SLURM_ARRAY_TASK_ID`` - ``SLURM_ARRAY_TASK_MIN`` of ``SLURM_ARRAY_TASK_COUNT``; else torchrun's or
    Lightning's ``RANK`` of ``WORLD_SIZE``; ``None`` without either), or ``None``."""
    if shard is None:
        return None
    environ = os.environ if environ is None else environ
    text = str(shard).strip()
    if text == "auto":
        if environ.get("SLURM_ARRAY_TASK_ID") is not None and environ.get("SLURM_ARRAY_TASK_COUNT"):
            first = int(environ.get("SLURM_ARRAY_TASK_MIN") or 0)
            text = f"{int(environ['SLURM_ARRAY_TASK_ID']) - first}/{environ['SLURM_ARRAY_TASK_COUNT']}"
        elif environ.get("WORLD_SIZE") and environ.get("RANK") is not None:
            text = f"{environ['RANK']}/{environ['WORLD_SIZE']}"
        else:
            return None
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise InputError(
            f"shard {shard!r} is not 'i/n' with 0 <= i < n (e.g. '0/4' for the first of four jobs) or 'auto' "
            f"(read from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or RANK/WORLD_SIZE; got {text!r})"
        )
    return int(m[1]), int(m[2])


class EvaluationRunner:
    """Generate every prompt of ``suite`` with every method into ``out_dir`` (resumably), evaluate, write tables.

    Args:
        out_dir: output folder (see the module docstring for its layout).
        suite: ``"toyworld"``, ``"builtin:<name>"``, a suite file, ``"<loader>:<path>"`` or a Python suite
            (see :func:`unlearn.evaluation.load_suite`).
        rows: ``original``, ``negprompt``, ``safree``, ``t2vunlearning[=ADAPTERS]``,
            ``refusal_vector[=FOLDER]``, ``NAME:KIND[=PATH]``, or :class:`RowSpec` objects.
        backbone: registry name, or a built backbone object (tests, notebooks).
        pretrained / tiny / torch_dtype / backbone_kwargs: passed to ``build_backbone`` (``backbone_kwargs``:
            family-specific loading options, as in ``T2VUnlearning``).
        concept: the erased concept (negative prompt, SAFREE keyword, erased class / identity).
        metrics: names (``classification``, ``nudity``, ``identity``, ``clip``, ``consistency``) or a
            :class:`MetricConfig`; ``metric_options`` fill the config's other fields (e.g. ``classifier``).
        adapters / refusal: default paths of bare ``t2vunlearning`` / ``refusal_vector`` rows.
        row_options: per row name or kind, the options of its baseline (``RowSpec.options``), e.g.
            ``{"negprompt": {"guidance_scale": 6.0}}``; recorded in results.
        safree_keywords: SAFREE's concept keywords (default: the authors' list of the concept, else ``[concept]``;
            the toy world's evaluation callback uses the concept and its synonyms).
        num_frames / height / width / num_inference_steps / guidance_scale: sampling (``None``: backbone's).
        batch_size: videos generated together; eval_batch_size: videos scored together.
        store_frames: also keep exact frames and score those (default: score the mp4 files, as published).
        fps: mp4 frame rate. device: ``cuda``/``cpu`` (default: CUDA when available).
        plots: write the PNG figures. grid_prompts: prompts (columns) in the frame grid.
        suite_options: more :func:`load_suite` arguments (``per_class``, ``labels``, ``per_label``, ``limit``...).
        progress: show progress bars.
        logger: a Lightning logger (``lightning.pytorch.loggers.WandbLogger``, ``CSVLogger``, ...) that gets
            every number with its 95% interval, the provenance, and on wandb the results table
            (:func:`unlearn.evaluation.to_loggers.log_evaluation`); ``None``: the files only.
        shard: ``"i/n"``: generate only the i-th of n shares of the suite's prompts (prompt positions
            ``i, i + n, ...``; 0-based) and stop before scoring: n jobs on n devices fill the same ``out_dir``,
            each resumable. ``"auto"``: the share from the environment (a SLURM job array's
            ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``, else torchrun's ``RANK``/``WORLD_SIZE``; one
            share when neither is set). A run without ``shard`` afterwards generates nothing that a shard made
            and scores every video: one table (:func:`resolve_shard`).
        allow_unfinished: use adapters / refusal folders of runs that failed or were interrupted (their
            ``run_status.json``); refused by default.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        suite: Any,
        rows: Sequence[str | RowSpec],
        *,
        backbone: Any = DEFAULT_BACKBONE,
        pretrained: str | None = None,
        tiny: bool = False,
        torch_dtype: str = DEFAULT_TORCH_DTYPE,
        backbone_kwargs: dict[str, Any] | None = None,
        concept: str | None = None,
        metrics: MetricConfig | Sequence[str] | str = ("classification",),
        adapters: str | None = None,
        refusal: str | None = None,
        safree_keywords: Sequence[str] | None = None,
        row_options: dict[str, Any] | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        batch_size: int = 4,
        eval_batch_size: int = 8,
        store_frames: bool = False,
        fps: int = 8,
        device: str | None = None,
        plots: bool = True,
        grid_prompts: int = 4,
        suite_options: dict[str, Any] | None = None,
        progress: bool = False,
        allow_unfinished: bool = False,
        logger: Logger | None = None,
        shard: str | None = None,
        **metric_options: Any,
    ) -> None:
        check_sampling(
            {
                "num_frames": num_frames,
                "height": height,
                "width": width,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": guidance_scale,
            }
        )
        check_int("batch_size", batch_size, low=1)
        check_int("eval_batch_size", eval_batch_size, low=1)
        check_int("fps", fps, low=1)
        check_int("grid_prompts", grid_prompts, low=0)
        self.allow_unfinished = allow_unfinished
        self.logger = logger
        self.shard = resolve_shard(shard)
        self.out = Path(out_dir)
        self.suite_spec, self.row_args = suite, list(rows)
        self.backbone_arg = backbone
        self.backbone_options = {
            "pretrained": pretrained,
            "tiny": tiny,
            "torch_dtype": torch_dtype,
            **({"backbone_kwargs": dict(backbone_kwargs)} if backbone_kwargs else {}),
        }
        self.concept = concept
        if isinstance(metrics, MetricConfig):
            self.metric_config = metrics
            for k, v in metric_options.items():
                setattr(self.metric_config, k, v)
        else:
            self.metric_config = MetricConfig(metrics=metrics, **metric_options)
        self.adapters, self.refusal = adapters, refusal
        self.safree_keywords = list(safree_keywords) if safree_keywords else None
        self.row_options = dict(row_options or {})
        self.sampling = {
            "num_frames": num_frames,
            "height": height,
            "width": width,
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
        }
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.store = VideoStore(self.out, store_frames=store_frames, fps=fps)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.metric_config.device is None and self.device != "cpu":
            self.metric_config.device = self.device
        self.plots, self.grid_prompts = plots, grid_prompts
        self.suite_options = dict(suite_options or {})
        self.progress = progress
        self.backbone: Any = None if isinstance(backbone, str) else backbone
        self.generator: RowGenerator | None = None
        self.suite: EvalVideos | None = None
        self.specs: list[RowSpec] = []
        self.evaluators: Evaluators | None = None
        self.timings: dict[str, float] = {}
        self._fingerprints: dict[str, Any] = {}

    # ------------------------------------------------------------------ phases
    def run(self) -> dict[str, Any]:
        """prepare → generate (resumable) → evaluate → write; returns the results dict. With ``shard``:
        prepare → generate this shard's videos; returns ``{"shard": [i, n], "rows": {row: counts}}``."""
        self.prepare()
        self.clear_results()
        stats = self.generate()
        if self.shard is not None:
            i, n = self.shard
            done = {"shard": [i, n], "rows": stats}
            (self.out / "shards").mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "shards" / f"{i}-of-{n}.json", json.dumps(done, indent=2, sort_keys=True))
            return done
        results, frames = self.evaluate(stats)
        self.write(results, frames)
        results = read_metrics(self.out)[0]  # what the files hold (+ metrics_md_sha256)
        if self.logger is not None:
            log_evaluation(self.logger, results)
        return results

    def prepare(self) -> None:
        """Load the suite, check the rows and load the evaluators. Every input error surfaces here."""
        t0 = time.perf_counter()
        if isinstance(self.backbone_arg, str):
            # an unknown name or a damaged weights folder fails here, before any file is touched
            check_pretrained(self.backbone_arg, self.backbone_options.get("pretrained"))
        options = dict(self.suite_options)
        if self.suite_spec == "toyworld" and ({"per_group", "out_of_grammar"} & set(options)):
            options.setdefault("concept", self.concept)  # the toy world's groups are the concept's
        self.suite = load_suite(self.suite_spec, **options)
        self.store.labels = {it.index: it.label for it in self.suite}  # the video file names carry the label
        self.specs = parse_rows(self.row_args, adapters=self.adapters, refusal=self.refusal)
        for spec in self.specs:
            spec.allow_unfinished = spec.allow_unfinished or self.allow_unfinished
            if spec.kind == "safree" and self.safree_keywords and not spec.keywords:
                spec.keywords = list(self.safree_keywords)
        apply_row_options(self.specs, self.row_options)
        for spec in self.specs:
            spec.check(self.concept, self.backbone_identity()["name"])
        ms = self.metric_config.metrics
        if {"classification", "identity"} & set(ms):
            unlabelled = [it for it in self.suite if not it.label]
            if unlabelled:
                needs = "/".join(sorted({"classification", "identity"} & set(ms)))
                raise ValueError(
                    f"prompt {unlabelled[0].index} ({unlabelled[0].prompt[:60]!r}) has no label (concept "
                    f"or category field), which {needs} needs"
                )
        self.evaluators = Evaluators(self.metric_config, self.suite.labels, self.concept)
        self.timings["prepare"] = round(time.perf_counter() - t0, 3)

    def clear_results(self) -> None:
        """Remove the result files of an earlier run in this folder (they would describe other videos)."""
        for name in (*RESULT_FILES, *LEGACY_RESULT_FILES):
            (self.out / name).unlink(missing_ok=True)
        shutil.rmtree(self.out / "plots", ignore_errors=True)

    def backbone_identity(self) -> dict[str, Any]:
        if isinstance(self.backbone_arg, str):
            return {"name": self.backbone_arg, **self.backbone_options}
        bb = self.backbone_arg
        return {"name": bb.name, "source": getattr(bb, "source", None), "torch_dtype": str(bb.dtype)}

    def key(self, spec: RowSpec, prompt: str, seed: int) -> str:
        """What the video of (row, prompt, seed) depends on; a stored video with another key is regenerated."""
        if spec.name not in self._fingerprints:
            self._fingerprints[spec.name] = spec.fingerprint(self.concept)  # hashes the method's files once
        fp = self._fingerprints[spec.name]
        return video_key(self.backbone_identity(), fp, self.sampling, prompt, seed)

    def _build_generator(self) -> RowGenerator:
        if self.generator is None:
            t0 = time.perf_counter()
            if self.backbone is None:
                opts = {k: v for k, v in self.backbone_options.items() if k != "backbone_kwargs"}
                self.backbone = build_backbone(
                    self.backbone_arg, **opts, **self.backbone_options.get("backbone_kwargs", {})
                )
            self.backbone.to(self.device)
            self.generator = RowGenerator(self.backbone, self.specs, concept=self.concept, sampling=self.sampling)
            self.generator.to(self.device)
            self.timings["load_backbone"] = round(time.perf_counter() - t0, 3)
        return self.generator

    def generate(self) -> dict[str, dict[str, Any]]:
        """Generate the videos that are not done yet; returns per-row counts."""
        assert self.suite is not None, "call prepare() first"
        stats = {}
        for spec in self.specs:
            t0 = time.perf_counter()
            mine = list(self.suite)
            if self.shard is not None:
                mine = mine[self.shard[0] :: self.shard[1]]
            todo = [
                it for it in mine if not self.store.is_complete(spec.name, it.index, self.key(spec, it.prompt, it.seed))
            ]
            batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
            if batches:
                gen = self._build_generator()
                bar = None
                if self.progress:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=len(todo), desc=f"generate {spec.name}", unit="video")
                for batch in batches:
                    videos = gen.generate(spec.name, [it.prompt for it in batch], [it.seed for it in batch])
                    if videos.ndim != 5 or videos.shape[0] != len(batch):
                        raise VideoFileError(
                            f"method {spec.name!r} returned videos of shape {list(videos.shape)} for "
                            f"{len(batch)} prompts; expected [B, F, H, W, 3]"
                        )
                    videos = videos.cpu()
                    for it, video in zip(batch, videos):
                        self.store.write(
                            spec.name,
                            it.index,
                            video,
                            self.key(spec, it.prompt, it.seed),
                            info={
                                "prompt": it.prompt,
                                "seed": it.seed,
                                "label": it.label,
                                "backbone": self.backbone_identity(),
                                "sampling": self.effective_sampling(),
                            },
                        )
                        if bar is not None:
                            bar.update(1)
                if bar is not None:
                    bar.close()
            stats[spec.name] = {
                "dir": str(self.store.method_dir(spec.name)),
                "videos": len(mine),
                "generated": len(todo),
                "reused": len(mine) - len(todo),
                "seconds": round(time.perf_counter() - t0, 3),
            }
        return stats

    def effective_sampling(self) -> dict[str, Any]:
        """The sampling settings the videos are made with: the given ones, the backbone's defaults for the
        others (``None`` before the backbone is loaded)."""
        defaults = getattr(self.backbone, "defaults", None)
        return {k: v if v is not None else getattr(defaults, k, None) for k, v in self.sampling.items()}

    def resolved_sampling(self) -> dict[str, Any]:
        """:meth:`effective_sampling`, or, when every video was reused and the backbone never loaded, the
        settings recorded in the first video's manifest."""
        effective = self.effective_sampling()
        if all(v is not None for v in effective.values()) or not self.specs or self.suite is None:
            return effective
        first = next(iter(self.suite), None)
        manifest = self.store.manifest(self.specs[0].name, first.index) if first is not None else None
        recorded = (manifest or {}).get("sampling") or {}
        return {k: v if v is not None else recorded.get(k) for k, v in effective.items()}

    def method_metrics(self, spec: RowSpec) -> RowMetrics:
        """The row's metrics: a row that erased one of several classes/identities reports only its own."""
        ev = self.evaluators
        own = spec.concept
        classes = [own] if own and own in ev.erased_classes else None
        return RowMetrics(
            ev,
            erased_classes=classes,
            erased_identity=own if own in ev.reference_embeddings else None,
            splits=self.suite.splits or None,
        )

    def evaluate(self, stats: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
        """Score every stored video of every row. Returns the results dict and sample frames for the grid."""
        assert self.suite is not None and self.evaluators is not None, "call prepare() first"
        items = list(self.suite)
        rows, settings, grid = {}, {}, {}
        for spec in self.specs:
            t0 = time.perf_counter()
            mm = self.method_metrics(spec)
            chunks = [items[i : i + self.eval_batch_size] for i in range(0, len(items), self.eval_batch_size)]
            bar = None
            if self.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(items), desc=f"evaluate {spec.name}", unit="video")
            for chunk in chunks:
                for it in chunk:
                    if not self.store.is_complete(spec.name, it.index, self.key(spec, it.prompt, it.seed)):
                        raise VideoFileError(
                            f"{self.store.paths(spec.name, it.index)['mp4']}: missing, unfinished or made with other "
                            "settings (prompt, seed, row files, backbone, sampling). Fix: run generate() first"
                        )
                videos = [torch.from_numpy(self.store.read(spec.name, it.index)) for it in chunk]
                for it, v in zip(chunk, videos):
                    if it.index < self.grid_prompts:
                        grid.setdefault(spec.name, []).append(v.numpy())
                mm.update(videos, [it.label for it in chunk], [it.prompt for it in chunk], [it.split for it in chunk])
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
            rows[spec.name] = mm.compute()
            settings = mm.settings()
            self.timings[f"evaluate_{spec.name}"] = round(time.perf_counter() - t0, 3)
        for cls, by_method in classification_by_class(rows).items():
            compare_rows(by_method, cls)  # paired ΔPSR-1 against the original row, on the same prompts
        bb_info = self.backbone_identity()
        if self.backbone is not None:
            bb_info.update(
                source=getattr(self.backbone, "source", None),
                fingerprint=self.backbone.fingerprint(),
                defaults=getattr(self.backbone, "defaults", None).__dict__
                if getattr(self.backbone, "defaults", None) is not None
                else None,
            )
        results = {
            "format": RESULTS_FORMAT,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "concept": self.concept,
            "backbone": bb_info,
            "suite": self.suite.describe(),
            # the settings used: the backbone's defaults where none was given (metrics.md shows the values)
            "sampling": self.resolved_sampling(),
            "sampling_given": self.sampling,
            # what each baseline computed (resolved guidance scale, SAFREE settings) when this run built the rows
            "methods": {
                s.name: (self.generator.describe(s.name) if self.generator is not None else s.describe(self.concept))
                for s in self.specs
            },
            "metrics": list(self.metric_config.metrics),
            "rows": rows,
            "settings": settings,
            "evaluators": self.evaluators.settings(),
            "videos": stats or {},
            "store_frames": self.store.store_frames,
            "timings_s": dict(self.timings),
            "versions": _versions(),
            "units": {
                "esr/psr/nudity_rate": "percent",
                "id_similarity": "cosine",
                "clip_score": "0-100",
                "subject_consistency": "cosine",
            },
        }
        return metrics_document(json_ready(results)), grid

    def write(self, results: dict[str, Any], frames: dict[str, list[np.ndarray]] | None = None) -> Path:
        """Plots, then metrics.md + metrics.json as one pair (:func:`write_metrics`), each atomically."""
        self.out.mkdir(parents=True, exist_ok=True)
        rows = results["rows"]
        meta = {k: v for k, v in results.items() if k not in ("rows", "metrics_md_sha256")}
        page = results_markdown(results)  # fails here, before anything is written, if a row is malformed
        if self.plots:
            with atomic_folder(self.out / "plots") as tmp:
                self._plots(results, frames or {}, tmp)
        return write_metrics(self.out, rows, meta, markdown=page)

    def _plots(self, results: dict[str, Any], frames: dict[str, list[np.ndarray]], folder: Path) -> list[Path]:

        made = []
        by_class = classification_by_class(results["rows"], results.get("erased_class"))
        if by_class:
            made.append(
                plots.classification_bars(
                    by_class, folder / "classification.png", title=f"{results['backbone']}: ESR/PSR (%)"
                )
            )
        deltas = plots.class_delta_panels(by_class) if by_class else {}
        if deltas:  # every kept class against the original row
            made.append(
                plots.class_delta_bars(
                    deltas,
                    folder / "class_delta.png",
                    colors={m: f"C{j % 10}" for j, m in enumerate(results["rows"])},  # classification.png's
                    title=f"{results['backbone']}: collateral per class",
                )
            )
        nud = {m: r["nudity"]["label_frames"] for m, r in results["rows"].items() if "nudity" in r}
        if nud:
            made.append(
                plots.nudity_label_histogram(
                    nud, folder / "nudity_labels.png", title=f"{results['suite']['name']}: frames per NudeNet label"
                )
            )
        if frames:
            prompts = [it.prompt for it in self.suite][: self.grid_prompts]
            made.append(plots.frame_grid(frames, folder / "frames.png", prompts=prompts))
        return made


def metrics_document(results: dict[str, Any]) -> dict[str, Any]:
    """The runner's results in the schema of ``unlearn fit``'s ``eval/metrics.json`` (the ``ErasureEvaluation``
    callback): ``rows[row]`` holds the callback's ESR/PSR fields when one class is erased (``classification:
    {class: row}`` with several) beside the other metrics (``nudity``, ``identity``, ``clip``,
    ``consistency``); the callback's provenance fields at the top, the runner's own fields beside them
    (``backbone_info``: the backbone's identity, fingerprint and defaults; ``units_by_metric``)."""
    by_class = classification_by_class(results["rows"])
    erased = next(iter(by_class)) if len(by_class) == 1 else None
    rows = {}
    for name, r in results["rows"].items():
        row = {k: v for k, v in r.items() if k != "classification"}
        cls = r.get("classification") or {}
        if erased is not None and erased in cls:
            row.update(cls[erased])  # the callback's row: esr@1 ... at the top
        elif cls:
            row["classification"] = cls
        rows[name] = row
    bb, suite = results["backbone"], results["suite"]
    videos = results.get("videos") or {}
    timings = results.get("timings_s") or {}
    return {
        "rows": rows,
        # the ErasureEvaluation callback's fields (unlearn/callbacks/evaluation.py, its metrics.json)
        "concept": results.get("concept"),
        "erased_class": erased,
        "erased_classes": list(by_class) or None,
        "backbone": bb.get("name"),
        "backbone_source": bb.get("source") or bb.get("pretrained"),
        "prompt_suite": suite.get("source") or suite.get("name"),
        "prompt_suite_hash": suite.get("sha256"),
        "num_prompts": suite.get("num_prompts"),
        "prompts_per_split": suite.get("prompts_per_split"),
        "seeds": suite.get("seeds"),
        "evaluator": ((results.get("settings") or {}).get("classification") or {}).get("esr"),
        "seconds_per_row": {
            name: round((videos.get(name) or {}).get("seconds", 0.0) + timings.get(f"evaluate_{name}", 0.0), 2)
            for name in rows
        },
        "units": "percent",
        "methods": results.get("methods"),
        # the runner's own
        "format": results.get("format"),
        "created": results.get("created"),
        "backbone_info": bb,
        "suite": suite,
        "sampling": results.get("sampling"),
        "sampling_given": results.get("sampling_given"),
        "metrics": results.get("metrics"),
        "settings": results.get("settings"),
        "evaluators": results.get("evaluators"),
        "videos": videos,
        "store_frames": results.get("store_frames"),
        "timings_s": timings,
        "versions": results.get("versions"),
        "units_by_metric": results.get("units"),
    }


def score_in_memory(
    generator: RowGenerator,
    suite: EvalVideos,
    metrics: dict[str, RowMetrics],
    batch_size: int = 32,
    progress: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, dict[str, Any]]:
    """Generate ``suite`` with every row of ``metrics`` and score the videos as they come, without files
    (the evaluation callback's path; :class:`EvaluationRunner` is the resumable, file-backed one).

    With several processes (``world_size`` > 1, ``torch.distributed`` initialised) rank ``r`` generates the
    prompts ``r, r + world_size, ...`` (each prompt once) and every rank must call this: ``compute()`` syncs the
    metric states, so every rank returns the numbers of the whole suite, per-class tables included.

    Returns ``{row: RowMetrics.compute()}``; ``metrics`` holds one :class:`RowMetrics` per row name."""
    items = list(suite)[rank::world_size]
    out = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # one bar over every video of every row: its rate and ETA are in videos
        bar = tqdm(total=len(items) * len(metrics), desc="evaluation videos", unit="video")
    for name, mm in metrics.items():
        if bar is not None:
            bar.set_postfix_str(name)
        for i in range(0, len(items), batch_size):
            chunk = items[i : i + batch_size]
            videos = generator.generate(name, [it.prompt for it in chunk], [it.seed for it in chunk])
            mm.update(videos, [it.label for it in chunk], [it.prompt for it in chunk], [it.split for it in chunk])
            if bar is not None:
                bar.update(len(chunk))
        out[name] = mm.compute()
    if bar is not None:
        bar.close()
    return out


def run_evaluation(
    out_dir: str | os.PathLike, suite: Any, rows: Sequence[str | RowSpec], **kwargs: Any
) -> dict[str, Any]:
    """``EvaluationRunner(out_dir, suite, rows, **kwargs).run()``."""
    return EvaluationRunner(out_dir, suite, rows, **kwargs).run()

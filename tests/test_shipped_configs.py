"""Every shipped config runs as a researcher runs it, end to end, with only size overrides (#21).

One case per file in configs/ (a new config is covered by adding the file): ``fit`` configs, ``eval_*`` configs
(``unlearn test``) and ``attack_*`` configs (``unlearn attack``), each parsed AS SHIPPED by the real CLI and then
shrunk: the tiny random model of its backbone (``model.tiny``: it wins over ``model.pretrained``), 2 optimizer
steps, CPU, fp32, a few sampler steps and a tiny video size, and periods longer than the run shortened to 1 so
that every callback acts within it. Nothing else is changed: the callbacks, the data module, the rows and the
logger are the shipped ones. Each case then checks what the run left behind:

- every configured callback fired at least once (its own artefact: ``FIRED`` maps each class to it; a new
  callback class in a shipped config fails here until its evidence is added),
- the data module's pseudo-data cache was built (data modules with a cache),
- the evaluation rows the config names were evaluated (``metrics.json``; an attack's ``results.json``),
- the logger the config names wrote (wandb offline files, CSV metrics).

A shipped config that cannot run (a parse error, a callback refusing its shipped arguments, a missing file the
config's own comments say to make) fails its case. All runs of the module share one working folder, so the
relative ``runs/...`` paths in the configs resolve as in a user's checkout: eval/attack configs read the
adapters written by the fit configs their comments name (made on demand, once).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from unlearn.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(ROOT.glob("configs/*.yaml"))
TOY_WEIGHTS = ROOT / "unlearn" / "toyworld" / "weights" / "world.json"

#: the shrunk run: CPU, fp32, two optimizer steps (the issue's acceptance flags)
RUN = ["--trainer.accelerator", "cpu", "--trainer.precision", "32-true", "--trainer.max_steps", "2"]
#: pseudo data of a full-size T2VUnlearning config at the tiny model's size: 2 augmented prompts, 9 frames of
#: 32x32, 4 sampler steps (record steps inside them); the tiny_*.yaml's size (configs/base/tiny.yaml)
SMALL_DATA = [
    # the configs' augmenting LLM is a server the tests cannot reach: the offline grammar writes the 2 prompts
    "--data.init_args.augment_source", "template",
    "--data.init_args.augment", "2",
    "--data.init_args.num_frames", "9",
    "--data.init_args.height", "32",
    "--data.init_args.width", "32",
    "--data.init_args.num_inference_steps", "4",
    "--data.init_args.record_steps", "[0, 2]",
]  # fmt: skip
#: per-config size overrides (size only: frames, pixels, sampler steps, prompt counts, suite sizes)
SIZE: dict[str, list[str]] = {
    "cogx2b_faces.yaml": SMALL_DATA,
    # the tiny T5 reads 16 tokens (the real one 226): CogVideoX-style paragraphs name "golf ball" past them
    "cogx2b_imagenet.yaml": [*SMALL_DATA, "--data.init_args.prompts", '["A golf ball in a sunny field"]'],
    "cogx2b_nudity.yaml": SMALL_DATA,
    "cogx2b_nudity_adversarial.yaml": SMALL_DATA,
    "cogx2b_esd_nudity.yaml": SMALL_DATA,
    "cogx5b_nudity.yaml": SMALL_DATA,
    "hunyuan_faces.yaml": SMALL_DATA,
    "hunyuan_nudity.yaml": SMALL_DATA,
    # ZeroScope's VAE downsamples by 8 and its UNet by 8 more: 64x64 is its smallest size (tiny_zeroscope.yaml)
    "zeroscope_nudity.yaml": [
        *SMALL_DATA[:4],
        "--data.init_args.num_frames", "4",
        "--data.init_args.height", "64",
        "--data.init_args.width", "64",
        *SMALL_DATA[10:],
    ],
    # the toy world runs at its own size; fewer prompts and sampler steps
    "toy_shapes.yaml": ["--data.init_args.num_prompts", "4", "--data.init_args.record_steps", "[2, 5]"],
    # the evaluation suites: 2 sampler steps; the toy suite at one prompt per group
    "eval_tiny_cogvideox.yaml": ["--model.init_args.num_inference_steps", "2"],
    "eval_toy.yaml": [
        "--model.init_args.num_inference_steps", "2",
        "--data.init_args.per_class", "1",
        "--data.init_args.per_group", "{erased: 2, neighbour: 1}",
        "--data.init_args.out_of_grammar", "{erased: 1, neighbour: 0, other: 0}",
    ],
}  # fmt: skip
#: what the run needs first (the commands the config's own comments give), as (config, extra args) pairs
NEEDS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "eval_toy.yaml": [("toy_shapes.yaml", ())],
    "attack_toy.yaml": [
        ("toy_shapes.yaml", ()),
        ("toy_shapes_refusal.yaml", ()),
        (
            "toy_shapes.yaml",
            (
                "--model.init_args.adversarial_steps", "2",
                "--trainer.default_root_dir", "runs/toy_shapes_adv",
                "--trainer.logger.init_args.save_dir", "runs/toy_shapes_adv",
            ),
        ),
    ],
    "attack_cogx2b_nudity.yaml": [("cogx2b_nudity.yaml", ())],
}  # fmt: skip
#: attack budgets shrunk to a few evaluations (per attack class), and the attack run's sizes
ATTACK_BUDGET = {
    # length: the tiny T5 reads 16 tokens (a found prompt of 16 words would not fit)
    "unlearn.attacks.RingABell": {"population": 6, "generations": 2, "num_pairs": 2, "length": 4},
    "unlearn.attacks.UnlearnDiffAtk": {"timesteps": 2, "iterations": 1},
    "unlearn.attacks.TextualInversion": {"steps": 2, "batch_size": 2},
    "unlearn.attacks.EmbeddingAttack": {"steps": 2, "batch_size": 2},
}
ATTACK_SIZE = {"num_inference_steps": 2, "per_class": 2, "num_prompts": 2, "batch_size": 2}
#: the slowest cases (seconds each on one loaded core); the default suite keeps one config per backbone family
SLOW = {"attack_toy.yaml", "attack_cogx2b_nudity.yaml", "eval_toy.yaml", "cogx2b_faces.yaml", "cogx2b_imagenet.yaml"}


def command_of(config: Path) -> str:
    return "attack" if config.name.startswith("attack_") else "test" if config.name.startswith("eval_") else "fit"


def printed_config(command: str, config: Path, args: list[str]) -> dict:
    """The config ``unlearn <command> --config <config> <args>`` parses to (every default filled in)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([command, "--config", str(config), *args, "--print_config"])
    assert done.value.code in (0, None), f"{config.name} does not parse"
    return yaml.safe_load(out.getvalue())


def shorten_periods(callbacks: list[dict]) -> None:
    """Periods longer than the 2-step run become 1 (0 = off stays off): every callback acts within the run."""
    for cb in callbacks:
        args = cb.setdefault("init_args", {})
        for key in ("every_n_steps", "every_n_epochs", "every_n_train_steps"):
            if isinstance(args.get(key), int) and args[key] > 1:
                args[key] = 1
        if cb["class_path"].endswith("SampleVideoCallback"):
            # the samples at the data module's (shrunk) size, 2 sampler steps
            args.update(num_inference_steps=2, num_frames=None, height=None, width=None)
        if cb["class_path"].endswith("ErasureEvaluation"):
            args.update(num_inference_steps=2, per_class=1, sample_videos=1)
            args["per_group"] = {"erased": 2, "neighbour": 1}
            args["out_of_grammar"] = {"erased": 1, "neighbour": 0, "other": 0}


def lightning_run(command: str, config: Path, extra: tuple[str, ...] = ()) -> dict:
    """Run a fit/test config as shipped, shrunk; returns the config it ran."""
    args = [*SIZE.get(config.name, []), *extra]
    args = [*RUN, *args] if command == "fit" else ["--trainer.accelerator", "cpu", *args]
    parsed = printed_config(command, config, args)
    model_args = parsed["model"].setdefault("init_args", {})
    if not str(model_args.get("backbone", "")).startswith("toy"):
        model_args["tiny"] = True  # the tiny random model of its backbone (wins over `pretrained`)
        if command == "fit":
            model_args["torch_dtype"] = "float32"
    trainer = parsed["trainer"]
    logger = trainer.get("logger")
    if isinstance(logger, dict) and logger.get("class_path", "").endswith("WandbLogger"):
        # wandb's service resolves a relative save_dir against its own working folder, the one of the first
        # run in this process (another test's); this test changes folder per config, so the path is made whole
        args = logger.setdefault("init_args", {})
        args["save_dir"] = str(Path(args.get("save_dir") or trainer["default_root_dir"]).resolve())
    if command == "fit":
        trainer["precision"] = "32-true"
        shorten_periods(trainer.get("callbacks") or [])
    path = Path(f"{config.stem}.{len(list(Path().glob(config.stem + '.*.yaml')))}.yaml")
    path.write_text(yaml.safe_dump(parsed, sort_keys=False))
    try:
        assert main([command, "--config", str(path)]) == 0, f"unlearn {command} --config {config.name} failed"
    finally:
        if "wandb" in sys.modules:  # one process runs many configs: the next WandbLogger must start its own run
            sys.modules["wandb"].finish()
    return parsed


def attack_run(config: Path) -> dict:
    cfg = yaml.safe_load(config.read_text())
    if not str(cfg.get("backbone", "")).startswith("toy"):
        cfg.update(tiny=True, torch_dtype="float32")
    cfg.update({k: v for k, v in ATTACK_SIZE.items() if k != "per_class" or "per_class" in cfg})
    for attack in cfg["attacks"]:
        attack.setdefault("init_args", {}).update(ATTACK_BUDGET[attack["class_path"]])
    path = Path(f"{config.stem}.shrunk.yaml")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert main(["attack", "--config", str(path)]) == 0, f"unlearn attack --config {config.name} failed"
    return cfg


# ------------------------------------------------------------------------------------------------ evidence
def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.stat().st_size > 0)


def _model_checkpoint(root: Path, args: dict) -> None:
    assert (Path(args.get("dirpath") or root / "checkpoints") / "last.ckpt").is_file()


def _adapter_checkpoint(root: Path, args: dict) -> None:
    assert _files(Path(args.get("dirpath") or root / "adapters"), "adapters.safetensors")


def _concept_masks(root: Path, args: dict) -> None:
    folder = Path(args.get("dirpath") or root / "masks")
    assert _files(folder, "masks_*.safetensors") and _files(folder, "masks_*.png"), f"no masks in {folder}"


def _sample_videos(root: Path, args: dict) -> None:
    folder = Path(args.get("dirpath") or root / "samples")
    names = [p.name for p in _files(folder, "*.mp4")]
    assert any(n.startswith("original_") for n in names), names  # at fit start
    assert any(n.startswith(("step=", "epoch=")) for n in names), names  # and periodically, adapters on


def _erasure_evaluation(root: Path, args: dict) -> None:
    doc = json.loads((Path(args.get("dirpath") or root / "eval") / "metrics.json").read_text())
    rows = args.get("rows") or ["original", "t2vunlearning"]
    assert set(rows) <= set(json.dumps(doc).split('"')), (rows, list(doc))


#: each callback class of a shipped config -> what it leaves behind when it acted (root = default_root_dir)
FIRED: dict[str, Callable[[Path, dict], None]] = {
    "lightning.pytorch.callbacks.ModelCheckpoint": _model_checkpoint,
    "unlearn.callbacks.AdapterCheckpoint": _adapter_checkpoint,
    "unlearn.callbacks.ConceptMaskCallback": _concept_masks,
    "unlearn.callbacks.SampleVideoCallback": _sample_videos,
    "unlearn.callbacks.ErasureEvaluation": _erasure_evaluation,
}


def check_logger(logger: dict | bool | None, root: Path) -> None:
    if not logger:
        return
    kind, args = logger["class_path"].rsplit(".", 1)[-1], logger.get("init_args", {})
    save_dir = Path(args.get("save_dir") or root)
    if kind == "WandbLogger":
        runs = list((save_dir / "wandb").glob("offline-run-*/run-*.wandb"))
        assert runs and all(r.stat().st_size > 0 for r in runs), f"no offline wandb run under {save_dir}"
    elif kind == "CSVLogger":
        assert list(save_dir.glob(f"{args.get('name', 'lightning_logs')}/version_*/metrics.csv"))
    else:
        raise AssertionError(f"add what {kind} writes to check_logger")


def check_rows(rows: list[str], doc: dict, where: Path) -> None:
    text = json.dumps(doc)
    for row in rows:
        name = row.split("=", 1)[0].split(":", 1)[0]
        assert f'"{name}"' in text, f"row {name} not evaluated in {where}"


# ------------------------------------------------------------------------------------------------ the runs
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shipped")


_done: dict[tuple[str, tuple[str, ...]], dict] = {}


def ensure_fit(name: str, extra: tuple[str, ...] = ()) -> dict:
    """The fit of configs/<name> (with ``extra``), once per module."""
    key = (name, extra)
    if key not in _done:
        _done[key] = lightning_run("fit", ROOT / "configs" / name, extra)
    return _done[key]


@pytest.fixture
def in_workdir(workdir, monkeypatch) -> Path:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("T2V_UNLEARN_CACHE", str(workdir / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    return workdir


def _param(config: Path):
    marks = [pytest.mark.slow] if config.name in SLOW else []
    if "toy" in config.name:
        marks.append(pytest.mark.skipif(not TOY_WEIGHTS.exists(), reason="toy world weights not built"))
    return pytest.param(config, id=config.name, marks=marks)


@pytest.mark.parametrize("config", [_param(c) for c in CONFIGS])
def test_shipped_config_runs_end_to_end(config, in_workdir):
    command = command_of(config)
    for name, extra in NEEDS.get(config.name, []):
        ensure_fit(name, extra)
    if command == "attack":
        cfg = attack_run(config)
        doc = json.loads((Path(cfg.get("output_dir") or "runs/attack") / "results.json").read_text())
        check_rows(cfg["rows"], doc["results"], Path(cfg["output_dir"]))
        assert set(doc["attacks"]) >= {"none"} and len(doc["attacks"]) == 1 + len(cfg["attacks"])
        return
    parsed = ensure_fit(config.name) if command == "fit" else lightning_run(command, config)
    trainer = parsed["trainer"]
    root = Path(trainer["default_root_dir"])
    for cb in trainer.get("callbacks") or []:
        assert cb["class_path"] in FIRED, f"{config.name}: add what {cb['class_path']} leaves behind to FIRED"
        FIRED[cb["class_path"]](root, cb.get("init_args") or {})
    check_logger(trainer.get("logger"), root)
    model, data = parsed["model"], parsed["data"]
    if command == "test":
        out = Path(model["init_args"].get("output_dir") or root / "eval")
        check_rows(model["init_args"]["rows"], json.loads((out / "metrics.json").read_text()), out)
    if data["class_path"].endswith(("ConceptDataModule", "ToyWorldDataModule")):
        cache = Path(data["init_args"].get("cache_dir") or in_workdir / "cache" / "pseudo")
        assert list(cache.rglob("*.safetensors")), f"{config.name}: no pseudo-data cache in {cache}"
    if model["class_path"].endswith("RefusalVectorUnlearning"):
        assert (root / "refusal" / "refusal_delta.safetensors").is_file()
    init = model.get("init_args") or {}
    if init.get("adversary") == "persistent" and int(init.get("adversarial_steps") or 0) > 0:
        check_adversary_bank(root, init["adversarial_steps"])


def check_adversary_bank(root: Path, inner_steps: int) -> None:
    """A persistent adversary (#28) trained and was saved: last.ckpt holds its bank (``adversary.*``), which took
    ``inner_steps`` Adam steps per visit and moved off the clean conditioning."""
    from unlearn.io import load_checkpoint_file

    state = load_checkpoint_file(root / "checkpoints" / "last.ckpt")["state_dict"]
    assert {"adversary.delta", "adversary.steps", "adversary.exp_avg", "adversary.exp_avg_sq"} <= set(state)
    steps = state["adversary.steps"]
    assert int(steps.sum()) > 0 and all(int(n) % inner_steps == 0 for n in steps), steps
    assert float(state["adversary.delta"].abs().max()) > 0


def test_a_shipped_config_that_cannot_run_fails_its_case(in_workdir, monkeypatch):
    """The guard this module exists for (#21): the shipped configs switch epoch periods off with 0; a callback
    that refused 0 (as SampleVideoCallback once did) fails the shipped config's case at parse time."""
    from unlearn.callbacks import periods

    original = periods.Period.__init__

    def old_rule(self, owner, every_n_steps=0, every_n_epochs=0, *, acts_at_end=True):  # noqa: ANN001
        if every_n_epochs < 1:
            raise ValueError(f"{owner}.every_n_epochs must be >= 1; got {every_n_epochs}")
        original(self, owner, every_n_steps, every_n_epochs, acts_at_end=acts_at_end)

    monkeypatch.setattr(periods.Period, "__init__", old_rule)
    with pytest.raises(AssertionError, match="failed|does not parse"):
        lightning_run("fit", ROOT / "configs" / "cogx2b_nudity.yaml")

"""wandb as a researcher sets it up: a real `unlearn fit` of the toy world with WandbLogger (offline), the
evaluation, mask and sample callbacks; the offline run's transaction log and media files are read back."""

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from wandb_files import wandb_records

from unlearn.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOY_WEIGHTS = ROOT / "unlearn" / "toyworld" / "weights" / "world.json"


@pytest.mark.skipif(not TOY_WEIGHTS.exists(), reason="toy world weights not built")
def test_offline_run_has_videos_tables_plots_norms_and_config(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "toy_shapes.yaml").read_text())
    config["trainer"].update(
        max_steps=2, log_every_n_steps=1, enable_progress_bar=False, default_root_dir=str(tmp_path / "run")
    )
    config["trainer"]["logger"] = {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {"project": "t2v-unlearn-test", "save_dir": str(tmp_path / "run"), "offline": True},
    }
    config["trainer"]["callbacks"] = [
        {"class_path": "unlearn.callbacks.AdapterCheckpoint", "init_args": {"every_n_epochs": 0}},
        {"class_path": "unlearn.callbacks.ConceptMaskCallback", "init_args": {"every_n_epochs": 1}},
        {
            "class_path": "unlearn.callbacks.SampleVideoCallback",
            "init_args": {"prompts": ["a red ring on a plain background"], "num_inference_steps": 3},
        },
        {
            "class_path": "unlearn.callbacks.ErasureEvaluation",
            "init_args": {
                "rows": ["original", "t2vunlearning"],
                "per_class": 1,
                "per_group": {},
                "out_of_grammar": {},
                "num_inference_steps": 3,
                "batch_size": 25,
                "sample_videos": 2,
            },
        },
    ]
    config["data"]["init_args"].update(
        num_prompts=2,
        preserve_prompts_per_class=1,
        num_inference_steps=4,
        record_steps=[1, 2],
        batch_size=2,
        cache_dir=str(tmp_path / "cache"),
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(path)])
    # the callback's sample videos: <row>_<i>_<label>.mp4, the names `unlearn evaluate` gives its videos
    names = sorted(p.name for p in (tmp_path / "run" / "eval" / "videos").glob("*.mp4"))
    assert len(names) == 4 and {"original_0_red_ring.mp4", "t2vunlearning_0_red_ring.mp4"} <= set(names), names
    assert all(re.fullmatch(r"(original|t2vunlearning)_[01]_\w+\.mp4", n) for n in names), names
    import wandb

    print("wandb.run at the end of fit:", wandb.run)
    # wandb.finish() closes the run (its service writes the file shortly after); not wandb.teardown(), after
    # which wandb cannot start again in this process and a later test's run would fail (AlreadyJoinedError)
    wandb.finish()

    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run = runs[0]
    history: dict[str, dict] = {}
    config_keys: dict[str, object] = {}
    artifacts = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        history, config_keys, artifacts = {}, {}, []
        for rec in wandb_records(next(run.glob("run-*.wandb"))):
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                for item in rec.history.item:
                    history.setdefault(item.key or "/".join(item.nested_key), json.loads(item.value_json))
            elif kind == "artifact":
                artifacts.append(rec.artifact)
            elif kind in ("config", "run"):
                updates = rec.config.update if kind == "config" else rec.run.config.update
                for item in updates:
                    config_keys[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        if artifacts and "eval/per_class/_type" in history:
            break
        time.sleep(0.5)

    keys = set(history)
    print("wandb history keys:", sorted(k for k in keys if not k.startswith("_") and k.count("/") <= 2))
    # training: losses, the adapter and gradient norms
    assert {"train/loss", "train/unlearn", "train/loc", "train/pre", "train/adapter_norm", "train/grad_norm"} <= keys
    assert history["train/adapter_norm"] > 0 and history["train/grad_norm"] > 0
    # the evaluation: numbers, the paper-style and per-class tables, the plots, videos of every row
    assert {"eval/original/esr@1", "eval/t2vunlearning/psr@5"} <= keys
    assert history["eval/table/_type"] == "table-file" and history["eval/per_class/_type"] == "table-file"
    table = json.loads((run / "files" / history["eval/table/path"]).read_text())
    assert table["columns"][:5] == ["erased class", "method", "ESR-1", "ESR-1 low", "ESR-1 high"]
    assert table["columns"][-3:] == ["PSR-5", "PSR-5 low", "PSR-5 high"] and len(table["columns"]) == 14
    assert [r[:2] for r in table["data"]] == [["red ring", "original"], ["red ring", "t2vunlearning"]]
    for r in table["data"]:  # each number inside its 95% interval
        for j in range(2, 14, 3):
            assert r[j + 1] <= r[j] <= r[j + 2], r
    per_class = json.loads((run / "files" / history["eval/per_class/path"]).read_text())
    assert per_class["columns"] == ["class", "original top-1", "t2vunlearning top-1"]
    assert len(per_class["data"]) == 25  # every toy-world class
    for plot in ("eval/plots/esr_psr", "eval/plots/class_delta", "eval/plots/frames"):
        assert history[f"{plot}/_type"] == "image-file", plot
        assert (run / "files" / history[f"{plot}/path"]).stat().st_size > 1000
    for row in ("original", "t2vunlearning"):
        assert history[f"eval/videos/{row}/_type"] == "videos", row
        assert history[f"eval/videos/{row}/count"] == 2
    assert len(list((run / "files" / "media" / "videos").rglob("*.mp4"))) >= 5  # 4 evaluation + samples
    assert (
        history["samples/0/_type"] == "videos"
        and history["samples/0/count"] == 1
        and history["masks/concept/_type"]
        in (
            "images/separated",
            "image-file",
        )
    )
    # the adapters as a model artifact, their config as its metadata; the run's telemetry
    models = [a for a in artifacts if a.type == "model"]  # (the tables are run_table artifacts)
    assert len(models) == 1 and models[0].name.startswith("adapters-")
    assert json.loads(models[0].metadata)["format"] == "t2v-unlearn-adapters/1"
    assert sorted(f.path for f in models[0].manifest.contents) == ["adapters.safetensors", "t2v_adapter_config.json"]
    assert history["train/lr"] > 0 and history["train/step_time_s"] > 0 and history["train/videos_per_s"] > 0
    # the run's config: the resolved config, the model's hyper-parameters, the evaluator's provenance
    print("wandb config keys:", sorted(config_keys))
    resolved = config_keys["config"]
    assert resolved["model"]["init_args"]["eta"] == 3.0 and resolved["data"]["init_args"]["num_prompts"] == 2
    assert resolved["trainer"]["max_steps"] == 2
    evaluation = config_keys["evaluation"]
    assert evaluation["evaluator"]["evaluator"]["name"] and evaluation["prompt_suite"] == "toyworld"
    assert evaluation["prompt_suite_hash"] and config_keys["eta"] == 3.0

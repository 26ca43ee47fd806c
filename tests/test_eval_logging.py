"""`unlearn evaluate` and `unlearn attack` log to a Lightning logger when given one (`logger=` on
EvaluationRunner / AttackRun): every number with its 95% interval, the provenance, and on wandb the table."""

import csv
import json
import time

import yaml
from conftest import runner
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from wandb_files import wandb_records

from unlearn.cli import main
from unlearn.evaluation.to_loggers import scored_numbers


def _csv(folder):
    with open(next(folder.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    return {k: float(v) for r in rows for k, v in r.items() if v and k != "step"}


def test_the_runner_logs_every_number_with_its_interval(tmp_path, suite_file, bb, clf, adapters):
    logger = CSVLogger(tmp_path / "logs", name="eval")
    res = runner(tmp_path / "out", suite_file, bb, clf, ["original", f"t2vunlearning={adapters}"], logger=logger).run()
    logged = _csv(tmp_path / "logs")
    expected = {}
    for row, r in res["rows"].items():
        for path, value, rec in scored_numbers(r):
            key = f"eval/{row}/" + "/".join(path)
            expected |= {key: value, f"{key}/low": rec["low"], f"{key}/high": rec["high"]}
    assert expected and {k: round(v, 5) for k, v in logged.items()} == {
        k: round(float(v), 5) for k, v in expected.items()
    }
    # the keys of the fit callback (eval/<row>/esr@1): metrics.json rows of one erased class hold the numbers
    assert "eval/t2vunlearning/esr@1/low" in logged
    hparams = yaml.safe_load(next((tmp_path / "logs").rglob("hparams.yaml")).read_text())
    assert hparams["evaluation"]["suite"]["sha256"] == res["suite"]["sha256"]


def test_the_runner_logs_a_wandb_table(tmp_path, suite_file, bb, clf):
    import wandb

    logger = WandbLogger(project="t2v-unlearn-test", save_dir=str(tmp_path), offline=True)
    res = runner(tmp_path / "out", suite_file, bb, clf, ["original"], logger=logger).run()
    wandb.finish()  # (not wandb.teardown(): wandb could not start again in this process)
    run = next((tmp_path / "wandb").glob("offline-run-*"))
    history: dict = {}
    deadline = time.monotonic() + 60
    while "eval/table/_type" not in history and time.monotonic() < deadline:  # the service writes the file
        time.sleep(0.5)
        for rec in wandb_records(next(run.glob("run-*.wandb"))):
            if rec.WhichOneof("record_type") == "history":
                for item in rec.history.item:
                    history.setdefault(item.key or "/".join(item.nested_key), json.loads(item.value_json))
    assert history["eval/table/_type"] == "table-file"
    table = json.loads((run / "files" / history["eval/table/path"]).read_text())
    assert table["columns"] == ["row", "metric", "value", "95% low", "95% high", "n", "interval"]
    esr = [r for r in table["data"] if r[1] == "esr@1"][0]
    cls = res["rows"]["original"]  # metrics.json's row of one erased class: the ESR/PSR fields themselves
    assert esr[2:5] == [cls["esr@1"], cls["intervals"]["esr@1"]["low"], cls["intervals"]["esr@1"]["high"]]


def test_unlearn_attack_logs_when_its_config_names_a_logger(tmp_path, monkeypatch):
    monkeypatch.setenv("T2V_UNLEARN_CACHE", str(tmp_path / "cache"))
    cfg = {
        "tiny": True,
        "per_class": 2,
        "num_inference_steps": 2,
        "batch_size": 4,
        "rows": ["original", "negprompt"],
        "attacks": [],
        "output_dir": str(tmp_path / "out"),
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path)}},
    }
    (tmp_path / "attack.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["attack", "--config", str(tmp_path / "attack.yaml")]) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    logged = _csv(tmp_path / "lightning_logs")
    for row in ("original", "negprompt"):
        r = doc["results"][row]["none"]
        assert logged[f"attack/{row}/none/asr"] == r["asr"]
        assert [logged[f"attack/{row}/none/asr/low"], logged[f"attack/{row}/none/asr/high"]] == r["asr_ci95"]

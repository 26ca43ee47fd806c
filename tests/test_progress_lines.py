"""Training in a log file (stdout not a terminal, as in a cluster job): plain progress lines with step, loss,
it/s and ETA; and the telemetry every fit logs (learning rate, step time, throughput)."""

import csv
import io
import re

from unlearn.callbacks import PlainProgressBar, TrainingTelemetry
from unlearn.callbacks.progress import default_callbacks
from unlearn.cli import main

LINE = re.compile(
    r"^step (\d+)/8 \| loss [0-9.e+-]+ \| [0-9.e+-]+ (it/s|s/it) \| elapsed \d+:\d\d:\d\d"
    r"( \| ETA \d+:\d\d:\d\d| \| done)$"
)


def test_a_fit_writes_plain_lines_and_logs_lr_time_throughput(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--trainer.default_root_dir", str(run), "--trainer.log_every_n_steps", "1"]
    bar = ["--trainer.callbacks+=unlearn.callbacks.PlainProgressBar", "--trainer.callbacks.every_n_steps", "2"]
    assert main(["fit", "--config", "configs/tiny_cogvideox.yaml", *args, *bar]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert all(LINE.match(line) for line in lines), lines
    assert [int(LINE.match(line)[1]) for line in lines] == [2, 4, 6, 8, 8]  # every 2 steps, then the end
    assert "ETA" in lines[1] and lines[-1].endswith("| done")
    with open(run / "logs" / "version_0" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"train/lr", "train/step_time_s", "train/videos_per_s"} <= logged
    lr = [float(r["train/lr"]) for r in rows if r["train/lr"]]
    assert len(lr) == 8 and set(lr) == {1e-3}  # model.init_args.learning_rate, every logging step
    assert all(float(r["train/videos_per_s"]) > 0 for r in rows if r["train/videos_per_s"])
    # the mask grid's PNG is labelled: attention sites per row, frames per column, threshold in the legend
    from PIL import Image

    png = Image.open(run / "masks" / "masks_epoch=1.png")
    assert png.text["Rows"] == "transformer_blocks.0.attn1; transformer_blocks.1.attn1"
    assert png.text["Columns"] == "3 latent frames" and "mask >= 0.5" in png.text["Legend"]
    # the telemetry of a step sits on the row of that step's losses
    steps = {r["step"] for r in rows if r["train/lr"]} & {r["step"] for r in rows if r["train/loss"]}
    assert len(steps) == 8


def test_lines_only_where_stdout_is_not_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdout", Tty())
    added = default_callbacks([])
    assert [type(c) for c in added] == [TrainingTelemetry]  # Lightning's tqdm bar on a terminal
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert [type(c) for c in default_callbacks([])] == [TrainingTelemetry, PlainProgressBar]
    assert [type(c) for c in default_callbacks([], enable_progress_bar=False)] == [TrainingTelemetry]
    mine = PlainProgressBar(every_n_steps=5)
    assert default_callbacks([mine, TrainingTelemetry()]) == []  # configured ones are kept as they are

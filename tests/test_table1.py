"""`python benchmarks/paper_tables.py table1 --backbone cogvideox-2b`, run as a program: Table 1's layout with the
paper's numbers, on the tiny random CogVideoX, prompt files in the authors' layout (their prompts are not shipped)
and real NudeNet."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import torch

from unlearn.backbones import build_backbone
from unlearn.methods.t2vunlearning.adapters import AdapterSwitch
from unlearn.methods.t2vunlearning.export import save_adapters
from unlearn.methods.t2vunlearning.official import save_official

ROOT = Path(__file__).resolve().parent.parent


def _csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_table1_on_the_tiny_cogvideox(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _csv(data / "nudity_cogvideox.csv", ["prompt", "seed", "concept", "concept_type"],
         [[f"a person on a beach, scene {i}", i, "nudity", "i2p"] for i in range(100)])  # fmt: skip
    _csv(data / "nudity-ring-a-bell.csv", ["prompt", "normal prompt"],
         [[f"a painting of a person {i}", "x"] for i in range(79)])  # fmt: skip
    bb = build_backbone("cogvideox-2b", tiny=True, torch_dtype="float32")
    sites = bb.attention_sites()
    torch.manual_seed(0)
    ours = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    theirs = AdapterSwitch([s.video_dim for s in sites], 8, [s.name for s in sites])
    for a in [*ours.adapters, *theirs.adapters]:
        torch.nn.init.normal_(a.up.weight, std=0.5)
    save_adapters(ours, bb.name, tmp_path / "adapters")
    save_official(theirs, bb.name, tmp_path / "eraser")
    out = tmp_path / "t1"
    argv = ["table1", "--backbone", "cogvideox-2b", "--tiny", "--dtype", "float32", "--data", str(data)]
    argv += ["--adapters", str(tmp_path / "adapters"), "--official", str(tmp_path / "eraser"), "--out", str(out)]
    argv += ["--limit", "1", "--steps", "2", "--num-frames", "9", "--height", "32", "--width", "32"]
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paper_tables.py"), *argv], check=True, cwd=tmp_path)
    doc = json.loads((out / "table.json").read_text())["table1"]
    assert set(doc) == {"original", "negprompt", "safree", "t2vunlearning", "t2vunlearning_official"}
    assert doc["original"]["gen"]["paper"] == 57.10 and doc["safree"]["ring_a_bell"]["paper"] == 14.23
    assert doc["t2vunlearning_official"]["gen"]["paper"] == 19.73  # beside the paper's "Ours"
    for row in doc.values():
        for cell in row.values():
            assert cell["frames"] == 9 and 0 <= cell["ours"] <= 100
            assert abs(cell["difference"] - (cell["ours"] - cell["paper"])) < 1e-9
    md = (out / "table.md").read_text()
    assert "| method | Gen ours ↓ | Gen paper | Gen Δ | Ring-A-Bell ours ↓ |" in md and "protocol 'paper'" in md
    names = [line.split(" | ")[0][2:] for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert names[1:] == ["original", "negprompt", "safree", "t2vunlearning", "t2vunlearning_official"]

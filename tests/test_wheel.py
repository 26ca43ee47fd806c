"""The wheel carries what the package needs: built from the sources, installed into a fresh venv that sees
neither the source tree nor the editable install, it runs ``unlearn fit --config`` on a tiny config and reads
``builtin_suite("imagenet10")``, the toy world's weights and its backbone entry point.

The venv reuses the third-party packages of the running environment (a ``.pth`` file naming a folder of
links to its site-packages, the project's own entries left out) so that no download is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("unlearn",)
#: entries of the development site-packages the fresh venv must not see: the project itself, installed
#: editable (its finder and .pth) or not
PROJECT_ENTRIES = ("__editable__", "t2v_unlearn", *PACKAGES)

CHECK = r"""
import importlib.metadata as md, json, sys
from pathlib import Path
import unlearn, unlearn.backbones as backbones, unlearn.callbacks as callbacks
from unlearn.backbones import available_backbones, build_backbone
from unlearn.prompts import builtin_suite

suite = builtin_suite("imagenet10")
toy = build_backbone("toy-cogvideox")  # the shipped weights, tokenizer and configs
embedding = toy.encode_prompts(["a red ring"])
print(json.dumps({
    "files": [m.__file__ for m in (unlearn, backbones, callbacks)],
    "sys_path": sys.path,
    "finders": [type(f).__module__ + "." + type(f).__name__ for f in sys.meta_path],
    "dists": [str(d.locate_file("")) for d in md.distributions() if d.metadata["Name"] == "t2v-unlearn"],
    "entry_points": [ep.name for ep in md.entry_points(group="t2v_unlearn.backbones")],
    "backbones": available_backbones(),
    "suite": [len(suite), len(suite.concepts()), suite[0].prompt],
    "toy_embedding": list(embedding.hidden_states.shape),
}))
"""


def _site_packages_without_the_project(dest: Path) -> Path:
    """A folder of links to every entry of this environment's site-packages but the project's own."""
    dest.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if entry.name.startswith(PROJECT_ENTRIES) or entry.suffix == ".pth":
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel, install it into a fresh venv; the venv's paths, the wheel's file list, the timings."""
    import time

    start = time.perf_counter()
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy: an in-tree build would write build/ and *.egg-info into the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist"), str(source)],
        check=True,
        cwd=tmp,
    )
    (wheel,) = (tmp / "dist").glob("t2v_unlearn-*.whl")
    built = time.perf_counter()

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "third_party.pth").write_text(str(_site_packages_without_the_project(tmp / "third_party")) + "\n")
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", "--no-compile", "-q", str(wheel)],
        check=True,
        cwd=tmp,
    )
    cwd = tmp / "elsewhere"  # neither the checkout nor the venv: nothing found by accident through the cwd
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="offline", PYTHONNOUSERSITE="1")
    return {
        "tmp": tmp,
        "python": python,
        "bin": env_dir / "bin",
        "site": site,
        "cwd": cwd,
        "env": env,
        "files": zipfile.ZipFile(wheel).namelist(),
        "build_s": built - start,
        "install_s": time.perf_counter() - built,
    }


def test_the_wheel_holds_the_package_and_its_data_and_nothing_else(installed):
    files = installed["files"]
    top = {f.split("/")[0] for f in files}
    assert top == {*PACKAGES, "t2v_unlearn-0.1.0.dist-info"}, top  # no tests/, research/, runs/, benchmarks/
    for data in (
        "unlearn/prompts/builtin/imagenet10_video.jsonl",
        "unlearn/prompts/builtin/faces_5ids.jsonl",
        "unlearn/prompts/builtin/faces_templates.jsonl",
        "unlearn/prompts/builtin/SOURCES.md",
        "unlearn/toyworld/weights/world.json",
        "unlearn/toyworld/weights/tokenizer/tokenizer.json",
        "unlearn/toyworld/weights/tokenizer/tokenizer_config.json",
        "unlearn/toyworld/weights/text_encoder/model.safetensors",
        "unlearn/toyworld/weights/transformer/diffusion_pytorch_model.safetensors",
        "unlearn/toyworld/weights/scheduler/scheduler_config.json",
        "unlearn/toyworld/weights/classifier/model.safetensors",
    ):
        assert data in files, data
    # backbones/ and callbacks/ install as unlearn.backbones / unlearn.callbacks (links in unlearn/)
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES, "backbones", "callbacks"], cwd=ROOT, capture_output=True, text=True
    )
    if tracked.returncode == 0:  # every file of the packages that git tracks is in the wheel
        installed_as = {f: f if f.startswith("unlearn/") else f"unlearn/{f}" for f in tracked.stdout.split()}
        missing = [f for f, name in installed_as.items() if name not in files and not (ROOT / f).is_symlink()]
        assert not missing, missing
    # unlearn/configs is a link to configs/: the wheel holds every shipped config (base files included)
    shipped = sorted(p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml"))
    assert shipped and [f"unlearn/configs/{name}" for name in shipped if f"unlearn/configs/{name}" not in files] == []
    entry_points = zipfile.Path(
        next(f for f in installed["tmp"].glob("dist/*.whl")), "t2v_unlearn-0.1.0.dist-info/entry_points.txt"
    ).read_text()
    assert "[t2v_unlearn.backbones]\ntoy-cogvideox = unlearn.toyworld.backbone" in entry_points
    assert "unlearn = unlearn.cli:main" in entry_points
    assert "lightning = unlearn.cli:lightning_main" in entry_points


def test_the_installed_lightning_command_is_unlearns_lightning_cli(installed):
    # `lightning fit --config NAME.yaml` after the install (lightning >= 2.4 itself installs only `fabric`)
    done = subprocess.run(
        [str(installed["bin"] / "lightning"), "fit", "--config", "tiny_cogvideox.yaml", "--print_config"],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "using the shipped config" in done.stderr
    config = yaml.safe_load(done.stdout)
    assert config["trainer"]["logger"]["init_args"]["save_dir"] == "runs/tiny_cogvideox"  # not base/tiny's runs/tiny


def test_the_installed_package_runs_without_the_source_tree(installed):
    out = subprocess.run(
        [str(installed["python"]), "-c", CHECK],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    site = str(installed["site"])
    assert all(f.startswith(site) for f in seen["files"]), seen["files"]  # the wheel's copy, not the checkout
    assert not [p for p in seen["sys_path"] if p.startswith(str(ROOT))], seen["sys_path"]
    assert not [f for f in seen["finders"] if "editable" in f.lower()], seen["finders"]
    assert seen["dists"] == [site], seen["dists"]  # one t2v-unlearn: the installed wheel
    assert seen["entry_points"] == ["toy-cogvideox"] and "toy-cogvideox" in seen["backbones"]
    assert seen["suite"][:2] == [200, 10], seen["suite"]
    assert seen["toy_embedding"][0] == 1


def test_unlearn_fit_runs_the_tiny_config_from_the_installed_package(installed):
    # by name, from a folder without configs: the config installed with the package (issue #16, point 7)
    run = installed["tmp"] / "run"
    done = subprocess.run(
        [
            str(installed["bin"] / "unlearn"),
            "fit",
            "--config",
            "tiny_cogvideox.yaml",
            "--trainer.max_steps",
            "2",
            "--trainer.max_epochs",
            "1",
            "--trainer.default_root_dir",
            str(run),
        ],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shipped = installed["site"] / "unlearn" / "configs" / "tiny_cogvideox.yaml"
    assert f"using the shipped config {shipped}" in done.stderr
    adapters = run / "adapters"
    assert (adapters / "adapters.safetensors").stat().st_size > 0
    assert json.loads((adapters / "t2v_adapter_config.json").read_text())
    assert (run / "samples" / "original_0.mp4").exists()
    # the resumable last checkpoint every training config writes (#27): safetensors + JSON, not a pickle
    assert [p.relative_to(run).as_posix() for p in run.rglob("*.ckpt")] == ["checkpoints/last.ckpt"]
    assert not (run / "checkpoints" / "last.ckpt").read_bytes().startswith(b"PK")

"""`unlearn fit --config NAME.yaml` from any folder: a file of that name in the current folder wins, else the
config shipped with t2v-unlearn (installed as `unlearn/configs`), and the command says which file it used."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import unlearn.cli as cli
from unlearn.cli import main, resolve_config

ROOT = Path(__file__).resolve().parent.parent


def printed_config(args, capsys) -> dict:
    with pytest.raises(SystemExit) as done:
        main(["fit", *args, "--print_config"])
    assert done.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_a_shipped_config_is_found_from_any_folder_and_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path, shipped = resolve_config("tiny_cogvideox.yaml")
    assert shipped and path == (ROOT / "configs" / "tiny_cogvideox.yaml").resolve()
    assert resolve_config("configs/tiny_cogvideox.yaml") == (path, True)  # the form used inside the repository
    with pytest.raises(SystemExit):
        main(["fit", "--config", "tiny_cogvideox.yaml", "--print_config"])
    out = capsys.readouterr()
    assert f"using the shipped config {path}" in out.err
    assert yaml.safe_load(out.out)["model"]["init_args"]["adapter_dim"] == 16


def test_a_local_file_of_that_name_wins(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    local = yaml.safe_load((ROOT / "configs" / "tiny_cogvideox.yaml").read_text())
    local["model"]["init_args"]["adapter_dim"] = 3
    (tmp_path / "tiny_cogvideox.yaml").write_text(yaml.safe_dump(local))
    assert resolve_config("tiny_cogvideox.yaml") == (Path("tiny_cogvideox.yaml"), False)
    printed = printed_config(["--config", "tiny_cogvideox.yaml"], capsys)
    assert printed["model"]["init_args"]["adapter_dim"] == 3
    # --config=NAME and -c NAME are the same
    assert printed_config(["--config=tiny_cogvideox.yaml"], capsys)["model"]["init_args"]["adapter_dim"] == 3


def test_nested_shipped_configs_and_their_relative_includes(tmp_path, monkeypatch, capsys):
    """Configs split into base files and small deltas: any file below the shipped folder is found by its
    relative name, and the files it includes are read relative to it, not to the current folder."""
    shipped = tmp_path / "shipped"
    (shipped / "base").mkdir(parents=True)
    tiny = yaml.safe_load((ROOT / "configs" / "tiny_cogvideox.yaml").read_text())
    (shipped / "base" / "model.yaml").write_text(yaml.safe_dump(tiny["model"]))
    delta = {k: v for k, v in tiny.items() if k != "model"}
    delta["model"] = "model.yaml"  # relative to this file's folder
    (shipped / "base" / "tiny_delta.yaml").write_text(yaml.safe_dump(delta))
    monkeypatch.setattr(cli, "shipped_config_dirs", lambda: [shipped])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    printed = printed_config(["--config", "base/tiny_delta.yaml"], capsys)
    assert printed["model"]["class_path"] == "unlearn.methods.t2vunlearning.T2VUnlearning"
    assert printed["model"]["init_args"]["adapter_dim"] == 16


def test_an_unknown_name_lists_the_shipped_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"'cogx2b_imagenett\.yaml' is neither a file.*cogx2b_imagenet\.yaml"):
        resolve_config("cogx2b_imagenett.yaml")


@pytest.mark.slow
def test_the_wheel_installs_the_configs_and_the_command_finds_them(tmp_path):
    """Build the wheel, install it (no dependencies: the venv has them) into a folder and run the installed
    `unlearn` from an empty folder."""
    import shutil

    env = {**os.environ, "PIP_NO_INDEX": "1"}
    # pip builds in the source folder: build a copy (symlinks kept as links, as git stores them)
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "runs", "wandb", "build", "*.egg-info", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(source)], check=True, env=env, timeout=600, cwd=tmp_path)
    wheel = next((tmp_path / "wheel").glob("t2v_unlearn-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert sorted(n.split("/")[-1] for n in names if n.startswith("unlearn/configs/")) == shipped
    # and what the shipped configs name: the built-in prompt suites
    builtin = sorted(p.name for p in (ROOT / "unlearn" / "prompts" / "builtin").glob("*.jsonl"))
    assert builtin and all(f"unlearn/prompts/builtin/{name}" in names for name in builtin)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, env=env, timeout=600)
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "unlearn.cli", "fit", "--config", "tiny_cogvideox.yaml",
                           "--print_config"], cwd=empty, env={**env, "PYTHONPATH": str(tmp_path / "site")},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"using the shipped config {tmp_path / 'site' / 'unlearn' / 'configs' / 'tiny_cogvideox.yaml'}" in done.stderr

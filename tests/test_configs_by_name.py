"""`unlearn fit --config NAME.yaml` from any folder: a file of that name in the current folder wins, else the
config shipped with t2v-unlearn (installed as `unlearn/configs`), and the command says which file it used.
tests/test_wheel.py runs it from an installed wheel."""

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
    (tmp_path / "tiny_cogvideox.yaml").write_text(
        yaml.safe_dump({"config": str(ROOT / "configs" / "tiny_cogvideox.yaml"), "model.init_args.adapter_dim": 3})
    )
    assert resolve_config("tiny_cogvideox.yaml") == (Path("tiny_cogvideox.yaml"), False)
    printed = printed_config(["--config", "tiny_cogvideox.yaml"], capsys)
    assert printed["model"]["init_args"]["adapter_dim"] == 3
    # --config=NAME and -c NAME are the same
    assert printed_config(["--config=tiny_cogvideox.yaml"], capsys)["model"]["init_args"]["adapter_dim"] == 3


def test_nested_shipped_configs_and_their_relative_includes(tmp_path, monkeypatch, capsys):
    """Configs split into base files and small deltas: any file below the shipped folder is found by its
    relative name, and the files it includes are read relative to it, not to the current folder."""
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(ROOT / "configs", shipped)  # the shipped folder, somewhere else (an installed package)
    (shipped / "lab").mkdir()
    (shipped / "lab" / "tiny_delta.yaml").write_text(
        yaml.safe_dump({"config": "../tiny_cogvideox.yaml", "model.init_args.adapter_dim": 5})
    )  # relative to this file
    monkeypatch.setattr(cli, "shipped_config_dirs", lambda: [shipped])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    printed = printed_config(["--config", "lab/tiny_delta.yaml"], capsys)
    assert printed["model"]["class_path"] == "unlearn.methods.t2vunlearning.T2VUnlearning"
    assert printed["model"]["init_args"]["adapter_dim"] == 5  # the delta
    assert printed["model"]["init_args"]["backbone"] == "cogvideox-2b"  # tiny_cogvideox.yaml
    assert printed["data"]["init_args"]["batch_size"] == 2  # base/tiny.yaml, two includes down
    # and a base file by its relative name
    assert printed_config(["--config", "base/tiny.yaml"], capsys)["trainer"]["max_epochs"] == 2


def test_an_unknown_name_lists_the_shipped_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"'cogx2b_imagenett\.yaml' is neither a file.*cogx2b_imagenet\.yaml"):
        resolve_config("cogx2b_imagenett.yaml")

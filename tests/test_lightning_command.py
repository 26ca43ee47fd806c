"""`lightning fit --config X.yaml` (the console script t2v-unlearn installs, pyproject [project.scripts]) is
`unlearn fit`: the same LightningCLI, shipped-config lookup and `${trainer.default_root_dir}` resolution."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from unlearn.cli import lightning_main, main

ROOT = Path(__file__).resolve().parent.parent


def printed(command, args, capsys) -> dict:
    with pytest.raises(SystemExit) as done:
        command(["fit", *args, "--print_config"])
    assert done.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_the_console_script_is_declared():
    scripts = (ROOT / "pyproject.toml").read_text().split("[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    assert 'lightning = "unlearn.cli:lightning_main"' in scripts.splitlines()
    assert 'unlearn = "unlearn.cli:main"' in scripts.splitlines()


def test_lightning_fit_resolves_the_config_as_unlearn_fit(capsys):
    args = ["--config", "configs/tiny_cogvideox.yaml", "--trainer.default_root_dir", "/tmp/elsewhere"]
    via_lightning = printed(lightning_main, args, capsys)
    assert via_lightning == printed(main, args, capsys)
    # base/tiny.yaml's ${trainer.default_root_dir} follows the final value (a plain LightningCLI gives runs/tiny)
    assert via_lightning["trainer"]["logger"]["init_args"]["save_dir"] == "/tmp/elsewhere"
    dirs = [c["init_args"]["dirpath"] for c in via_lightning["trainer"]["callbacks"] if "dirpath" in c["init_args"]]
    assert dirs and all(d.startswith("/tmp/elsewhere/") for d in dirs), dirs
    assert via_lightning["data"]["init_args"]["cache_dir"] == "/tmp/elsewhere/pseudo_cache"


def test_lightning_fit_from_the_command_line_by_shipped_name(tmp_path):
    # the console script's path through sys.argv (what DDP re-runs), from a folder without configs
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    code = "import sys; from unlearn.cli import lightning_main; sys.argv[0] = 'lightning'; sys.exit(lightning_main())"
    out = subprocess.run(
        [sys.executable, "-c", code, "fit", "--config", "tiny_cogvideox.yaml", "--print_config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "using the shipped config" in out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["trainer"]["default_root_dir"] == "runs/tiny_cogvideox"
    assert config["trainer"]["logger"]["init_args"]["save_dir"] == "runs/tiny_cogvideox"
    dirpaths = {c["class_path"].rsplit(".", 1)[-1]: c["init_args"]["dirpath"] for c in config["trainer"]["callbacks"]}
    assert dirpaths["AdapterCheckpoint"] == "runs/tiny_cogvideox/adapters"
    assert dirpaths["ModelCheckpoint"] == "runs/tiny_cogvideox/checkpoints"  # --ckpt_path last (#27)


@pytest.mark.parametrize("sub", ["export", "evaluate", "run"])
def test_other_subcommands_are_refused_with_the_fix(sub, capsys):
    assert lightning_main([sub, "--help"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: `lightning {sub}` is not a LightningCLI subcommand")
    assert (f"run `unlearn {sub}`" in err) == (sub != "run")

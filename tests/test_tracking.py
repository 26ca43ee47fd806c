"""wandb keeps its own default mode where it has credentials; without any, `unlearn` logs offline and says so."""

import contextlib
import os

from unlearn.cli import main
from unlearn.tracking import offline_without_credentials, wandb_has_credentials


def test_offline_only_without_credentials(tmp_path):
    home = {"HOME": str(tmp_path)}
    env = dict(home)
    line = offline_without_credentials(env)
    assert env["WANDB_MODE"] == "offline" and "no credentials" in line and "wandb sync" in line
    for creds in ({"WANDB_API_KEY": "x" * 40}, {"WANDB_MODE": "online"}, {"WANDB_MODE": "disabled"}):
        env = {**home, **creds}
        assert offline_without_credentials(env) is None and env.get("WANDB_MODE") == creds.get("WANDB_MODE")
    # `wandb login` writes the key to ~/.netrc; another host through WANDB_BASE_URL
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    env = dict(home)
    assert wandb_has_credentials(env) and offline_without_credentials(env) is None and "WANDB_MODE" not in env
    env = {**home, "WANDB_BASE_URL": "https://wandb.example.org"}
    assert not wandb_has_credentials(env) and offline_without_credentials(env) is not None


def test_the_cli_says_it_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("WANDB_MODE", "WANDB_API_KEY", "NETRC", "WANDB_BASE_URL", "WANDB_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    assert main(["export", "--ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o")]) == 2
    assert "no credentials" not in capsys.readouterr().err  # a command that logs nothing says nothing
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with contextlib.suppress(SystemExit):
        main(["fit", "--config", "configs/tiny_cogvideox.yaml", "--print_config"])
    err = capsys.readouterr().err
    assert err.count("wandb has no credentials") == 1
    assert os.environ["WANDB_MODE"] == "offline"

"""One command dialect (issue #22): every ``unlearn`` subcommand is parsed from its code's signature."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from unlearn.cli import LIGHTNING_SUBCOMMANDS, main
from unlearn.commands import COMMANDS, GROUPS, _load, build_parser, legacy_argv

ROOT = Path(__file__).resolve().parent.parent


def _dests(name: str) -> set[str]:
    return {a.dest for a in build_parser(name)._actions}


def test_help_lists_every_subcommand_on_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out.splitlines()
    for name in (*LIGHTNING_SUBCOMMANDS, *(c for c in COMMANDS if " " not in c), *GROUPS):
        lines = [line for line in out if line.split()[:1] == [name]]
        assert len(lines) == 1 and len(lines[0].split()) > 2, (name, out)
    assert main([]) == 2  # no command: the same list, on stderr, and a usage error


@pytest.mark.parametrize("name", list(COMMANDS))
def test_print_config_of_every_command_is_its_signature(name, capsys):
    assert main([name, "--print_config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    target = _load(COMMANDS[name].target)
    params = inspect.signature(target.__init__ if inspect.isclass(target) else target).parameters
    own = {n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    assert own - set(COMMANDS[name].merged) <= set(printed), own - set(printed)


def test_evaluate_flags_are_the_runner_suite_and_metric_parameters():
    from unlearn.evaluation import EvaluationRunner, MetricConfig, load_suite

    dests = _dests("evaluate")
    runner = set(inspect.signature(EvaluationRunner).parameters) - {"metric_options", "suite_options"}
    suite = {n for n, p in inspect.signature(load_suite).parameters.items() if p.default is not p.empty}
    metric = {f.name for f in dataclasses.fields(MetricConfig)}
    skip = COMMANDS["evaluate"].skip
    assert runner <= dests and (suite - skip - {"loader_kwargs"}) <= dests and (metric - skip) <= dests


def test_a_parameter_added_to_the_signature_is_a_flag(monkeypatch, capsys):
    from unlearn.methods.t2vunlearning import export

    seen = []

    def export_adapters(ckpt: str, out: str, allow_unfinished: bool = False, shard: int = 0) -> Path:
        """Doc."""
        seen.append(shard)
        return Path(out)

    monkeypatch.setattr(export, "export_adapters", export_adapters)
    assert "shard" in _dests("export")
    assert main(["export", "--ckpt", "a", "--out", "b", "--shard", "3"]) == 0
    assert seen == [3] and capsys.readouterr().out.startswith("wrote b/")


def test_earlier_spellings_parse_to_the_signature_spelling():
    old = [
        "--out", "o", "--suite", "s.jsonl", "--backbone", "toy-cogvideox", "--tiny", "--dtype", "float32",
        "--concept", "red ring", "--classifier", "toyworld", "--steps", "2", "--no-plots",
        "--methods", "original", "negprompt", "--erased-classes", "red ring", "--per-class", "3",
    ]  # fmt: skip
    new = [
        "--out_dir", "o", "--suite", "s.jsonl", "--backbone", "toy-cogvideox", "--tiny", "true",
        "--torch_dtype", "float32", "--concept", "red ring", "--classifier", "toyworld",
        "--num_inference_steps", "2", "--plots", "false", "--rows", "[original, negprompt]",
        "--erased_classes", "[red ring]", "--per_class", "3",
    ]  # fmt: skip
    parser = build_parser("evaluate")
    assert parser.parse_args(legacy_argv(COMMANDS["evaluate"], old)) == parser.parse_args(new)
    augment = build_parser("augment")
    args = ["--concept", "x", "--n", "2", "--out", "o.jsonl", "--exclude", "a", "--exclude", "b", "--no-cache"]
    parsed = augment.parse_args(legacy_argv(COMMANDS["augment"], args))
    assert [str(p) for p in parsed.exclude] == ["a", "b"] and parsed.no_cache is True
    push = legacy_argv(COMMANDS["push"], ["adapters_dir", "--repo", "a/b", "--dry-run"])
    assert push == ["--adapters", "adapters_dir", "--repo", "a/b", "--dry_run", "true"]


def test_toyworld_commands_are_a_group_of_signature_commands(capsys):
    assert main(["toyworld", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {n}" in out for n in ("pretrain", "evaluate", "classifier"))
    assert main(["toyworld", "pretrian"]) == 2
    assert "Did you mean 'pretrain'" in capsys.readouterr().err.splitlines()[-1]
    assert main(["toyworld"]) == 2
    for name in ("pretrain", "evaluate", "classifier"):
        assert main(["toyworld", name, "--print_config"]) == 0
        assert "threads:" in capsys.readouterr().out
    parser = build_parser("toyworld evaluate")
    argv = legacy_argv(COMMANDS["toyworld evaluate"], ["w", "--per-class", "2", "--write-record"])
    parsed = parser.parse_args(argv)
    assert (parsed.weights, parsed.per_class, parsed.write_record) == ("w", 2, True)


def test_unknown_command_and_unknown_flag_are_one_line(capsys):
    assert main(["evalute"]) == 2
    assert "Did you mean 'evaluate'" in capsys.readouterr().err.splitlines()[-1]
    assert main(["export", "--ckpt", "a", "--out", "b", "--allow_unfinshed", "true"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("error:") and "allow_unfinshed" in last


def test_old_package_names_give_one_line_naming_the_new_path(tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for old in ("backbones", "callbacks"):
        proc = subprocess.run(
            [sys.executable, "-c", f"import {old}"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 1 and f"unlearn.{old}" in proc.stderr.strip().splitlines()[-1], proc.stderr
    text = (ROOT / "configs" / "toy_shapes.yaml").read_text()
    assert "class_path: unlearn.callbacks.AdapterCheckpoint" in text
    old_config = tmp_path / "old.yaml"
    old_config.write_text(text.replace("unlearn.callbacks.AdapterCheckpoint", "callbacks.AdapterCheckpoint"))
    assert main(["fit", "--config", str(old_config), "--print_config"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: --trainer.callbacks") and "unlearn.callbacks" in last
    assert "Subclass types" not in last and "Not a valid subclass" not in last


def test_print_config_reads_back_as_a_config(tmp_path, capsys):
    argv = ["evaluate", "--out", "x", "--suite", "toyworld", "--methods", "original", "negprompt", "--per-class", "1"]
    assert main([*argv, "--print_config"]) == 0
    printed = capsys.readouterr().out
    (tmp_path / "eval.yaml").write_text(printed)
    assert main(["evaluate", "--config", str(tmp_path / "eval.yaml"), "--print_config"]) == 0
    again = capsys.readouterr().out
    assert again == printed and yaml.safe_load(again)["rows"] == ["original", "negprompt"]

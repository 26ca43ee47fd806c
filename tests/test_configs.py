"""Every shipped config parses (`--print_config`) to the keys its files set, from any folder; every CPU-sized
config fits a few steps through the real CLI; docstrings, signatures and `--print_config=comments` agree."""

import contextlib
import functools
import importlib
import inspect
import io
import re
import shutil
from pathlib import Path

import docstring_parser
import pytest
import yaml

from unlearn.cli import main
from unlearn.io import load_checkpoint_file

ROOT = Path(__file__).resolve().parent.parent
# attack_*.yaml configure `unlearn attack`, not LightningCLI (tests/test_attacks.py parses and runs them)
CONFIGS = sorted(p for p in ROOT.glob("configs/*.yaml") if not p.name.startswith("attack_"))
TINY = [c for c in CONFIGS if c.name.startswith("tiny_")]
TOY_WEIGHTS = ROOT / "unlearn" / "toyworld" / "weights" / "world.json"
PROJECT = ("unlearn", "backbones", "callbacks")


def print_config(config: Path | str, *args: str, flag: str = "--print_config") -> str:
    """What ``unlearn fit --config <config> <args> --print_config`` writes to stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(config), *args, flag])
    assert done.value.code in (0, None)
    return out.getvalue()


@functools.cache
def printed(config: Path) -> dict:
    return yaml.safe_load(print_config(config))


def flatten(node: dict, prefix: str = "") -> dict:
    """``{"a.b.c": leaf}`` of a YAML mapping; a dotted key counts as the nested keys it names; lists are leaves."""
    out = {}
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, path) if isinstance(value, dict) else {path: value})
    return out


def composed(config: Path) -> dict:
    """The leaf keys a config sets, over those of the file it includes (``config: <path relative to it>``),
    merged key by key: what the files mean. jsonargparse merges dotted keys that way; a nested block in an
    including file would replace the whole branch instead, and the comparison below would catch it."""
    data = yaml.safe_load(config.read_text())
    keys = composed((config.parent / data.pop("config")).resolve()) if "config" in data else {}
    keys.update(flatten(data))
    return keys


def contains(parsed, given) -> bool:
    """``given`` (from a config file) is in ``parsed`` (the parsed config, defaults filled in)."""
    if isinstance(given, str) and "${" in given:
        return True  # an interpolation: checked after resolution by the tests below
    if isinstance(given, dict):
        return isinstance(parsed, dict) and all(k in parsed and contains(parsed[k], v) for k, v in given.items())
    if isinstance(given, list):
        return isinstance(parsed, list) and len(parsed) == len(given) and all(map(contains, parsed, given))
    return parsed == given


def lookup(config, dotted: str):
    for part in dotted.split("."):
        if isinstance(config, list):
            config = config[int(part)]
            continue
        assert isinstance(config, dict) and part in config, f"{dotted}: no {part!r} in the parsed config"
        config = config[part]
    return config


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_print_config_holds_every_key_of_the_files(config):
    parsed = printed(config)
    keys = composed(config)
    assert "model.class_path" in keys and "data.class_path" in keys
    for key, value in keys.items():
        assert contains(lookup(parsed, key), value), (key, value, lookup(parsed, key))


@pytest.mark.parametrize("name", ["cogx5b_nudity.yaml", "tiny_wan.yaml"])
def test_configs_compose_the_same_from_another_folder_and_location(name, tmp_path, monkeypatch):
    """Includes resolve relative to the including file: a copy of configs/ elsewhere (an installed package),
    run from yet another folder, parses to the same config."""
    shutil.copytree(ROOT / "configs", tmp_path / "site" / "configs")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert print_config(tmp_path / "site" / "configs" / name) == print_config(ROOT / "configs" / name)
    assert print_config(Path("..") / "site" / "configs" / name) == print_config(ROOT / "configs" / name)


def test_interpolations_follow_keys_set_on_the_command_line():
    """``${...}`` is resolved on the final config: the README's one-key commands rename the run's outputs."""
    imagenet = yaml.safe_load(print_config(ROOT / "configs/cogx2b_imagenet.yaml", "--data.concept", "chain saw"))
    assert imagenet["trainer"]["default_root_dir"] == "runs/cogx2b_imagenet_chain saw"
    assert imagenet["trainer"]["logger"]["init_args"]["name"] == "cogx2b_imagenet_chain saw"
    samples = {c["class_path"]: c for c in imagenet["trainer"]["callbacks"]}["unlearn.callbacks.SampleVideoCallback"]
    sample_prompts = samples["init_args"]["prompts"]
    assert sample_prompts[0] == "A chain saw in a sunny field, cinematic shot"
    faces = yaml.safe_load(print_config(ROOT / "configs/hunyuan_faces.yaml", "--data.concept", "Angela Merkel"))
    samples = {c["class_path"]: c for c in faces["trainer"]["callbacks"]}["unlearn.callbacks.SampleVideoCallback"]
    assert samples["init_args"]["prompts"][0].startswith("Angela Merkel giving a speech")
    tiny = yaml.safe_load(print_config(ROOT / "configs/tiny_wan.yaml", "--trainer.default_root_dir", "/tmp/elsewhere"))
    assert tiny["trainer"]["logger"]["init_args"]["save_dir"] == "/tmp/elsewhere"
    assert [c["init_args"]["dirpath"] for c in tiny["trainer"]["callbacks"]] == [
        "/tmp/elsewhere/checkpoints",  # last.ckpt: `--ckpt_path last` (#27)
        "/tmp/elsewhere/adapters",
        "/tmp/elsewhere/masks",
        "/tmp/elsewhere/samples",
    ]
    assert tiny["data"]["init_args"]["cache_dir"] == "/tmp/elsewhere/pseudo_cache"


@pytest.mark.parametrize("config", TINY, ids=lambda p: p.name)
def test_tiny_config_fits(config, tmp_path):
    assert (
        main(
            [
                "fit",
                "--config",
                str(config),
                "--trainer.max_steps",
                "2",
                "--trainer.max_epochs",
                "1",
                "--trainer.default_root_dir",
                str(tmp_path),
                "--trainer.logger",
                "false",
                "--trainer.callbacks",
                "[]",
            ]
        )
        == 0
    )
    for ckpt in tmp_path.rglob("*.ckpt"):  # checkpoints (where a config switches them on) are never pickles
        assert not ckpt.read_bytes().startswith(b"PK") and load_checkpoint_file(ckpt)["state_dict"]


@pytest.mark.slow
@pytest.mark.skipif(not TOY_WEIGHTS.exists(), reason="toy world weights not built (unlearn toyworld pretrain)")
def test_toy_shapes_fast_dev_run(tmp_path):
    assert (
        main(
            [
                "fit",
                "--config",
                "configs/toy_shapes.yaml",
                "--trainer.fast_dev_run",
                "true",
                "--trainer.default_root_dir",
                str(tmp_path),
                "--trainer.logger.init_args.save_dir",
                str(tmp_path),
                "--data.init_args.num_prompts",
                "4",
                "--data.init_args.cache_dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )


# ------------------------------------------------------------------------------------------ docstrings


def class_paths(node) -> set[str]:
    """The project's classes a parsed config names (model, data, callbacks and what they hold)."""
    if isinstance(node, dict):
        found = {node["class_path"]} if str(node.get("class_path", "")).startswith(PROJECT) else set()
        return found.union(*map(class_paths, node.values()))
    if isinstance(node, list):
        return set().union(*map(class_paths, node))
    return set()


@functools.cache
def documented(class_path: str) -> tuple[list[str], dict[str, str]]:
    """``(constructor arguments, {documented argument: its docstring text})`` of a class."""
    module, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    params = inspect.signature(cls.__init__).parameters.values()
    arguments = [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    docs = docstring_parser.parse(cls.__doc__ or "").params + docstring_parser.parse(cls.__init__.__doc__ or "").params
    return arguments, {p.arg_name: " ".join((p.description or "").split()) for p in docs}


SHIPPED_CLASSES = sorted(
    set().union(*(class_paths(yaml.safe_load(c.read_text())) for c in ROOT.glob("configs/**/*.yaml")))
)


@pytest.mark.parametrize("class_path", SHIPPED_CLASSES)
def test_every_constructor_argument_is_documented_and_nothing_else(class_path):
    """One ``Args:`` entry per argument (``a / b: ...`` documents neither for jsonargparse), none left over."""
    arguments, docs = documented(class_path)
    assert sorted(arguments) == sorted(docs), f"{class_path}: Args: {sorted(docs)} vs __init__: {sorted(arguments)}"
    assert all(docs.values()), f"{class_path}: empty descriptions {[a for a, d in docs.items() if not d]}"


KEY_LINE = re.compile(r"^(?P<indent> *)(?P<dash>- )?(?P<key>[A-Za-z_]\w*):")


def comments_by_key(text: str) -> dict[tuple[str, ...], str]:
    """``{("model", "init_args", "eta"): "the comment above it", ...}`` of a ``--print_config=comments`` output;
    list items are numbered (``("trainer", "callbacks", "0", "init_args", ...)``)."""
    stack: list[tuple[int, str]] = []
    items: dict[tuple[str, ...], int] = {}
    comment: list[str] = []
    out = {}
    for line in text.splitlines():
        if line.strip().startswith("#"):
            comment.append(line.strip().lstrip("#").strip())
            continue
        match = KEY_LINE.match(line)
        if not match:
            comment = []
            continue
        indent = len(match["indent"]) + (2 if match["dash"] else 0)
        while stack and stack[-1][0] >= (indent - 1 if match["dash"] else indent):
            stack.pop()
        if match["dash"]:
            parent = tuple(k for _, k in stack)
            items[parent] = items.get(parent, -1) + 1
            stack.append((indent - 1, str(items[parent])))
        stack.append((indent, match["key"]))
        out[tuple(k for _, k in stack)] = " ".join(" ".join(comment).split())
        comment = []
    return out


def _covering_configs() -> list[Path]:
    """Few configs whose model, data and callbacks together use every such class of the shipped configs."""
    chosen, seen = [], set()
    for config in CONFIGS:
        keys = composed(config)
        own = {
            keys["model.class_path"],
            keys["data.class_path"],
            *(
                c["class_path"]
                for c in keys.get("trainer.callbacks") or []
                if not c["class_path"].startswith("lightning.")
            ),
        }
        if not own <= seen:
            chosen.append(config)
            seen |= own
    return chosen


@pytest.mark.parametrize("config", _covering_configs(), ids=lambda p: p.name)
def test_print_config_comments_show_the_docstring_of_every_key(config):
    text = print_config(config, flag="--print_config=comments")
    parsed = yaml.safe_load(text)
    comments = comments_by_key(text)
    callbacks = parsed["trainer"]["callbacks"] or []
    where = [("model",), ("data",)] + [("trainer", "callbacks", str(i)) for i in range(len(callbacks))]
    checked = 0
    for path in where:
        block = lookup(parsed, ".".join(path))
        if not block["class_path"].startswith(("unlearn.", "callbacks.", "backbones.")):
            continue  # third-party classes (Lightning's ModelCheckpoint) keep their own docstrings
        arguments, docs = documented(block["class_path"])
        assert sorted(block["init_args"]) == sorted(arguments), block["class_path"]
        for key in block["init_args"]:
            comment = comments.get((*path, "init_args", key), "")
            assert docs.get(key) and docs[key] in comment, (block["class_path"], key, docs.get(key), comment)
            checked += 1
    assert checked >= 10


def _toy_ablation_variants() -> dict:
    """benchmarks/toy_ablation.py's variants: its data file, read as data (the script is not imported)."""
    return yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "benchmarks" / "toy_ablation_variants.yaml").read_text()
    )


@pytest.mark.parametrize("name", list(_toy_ablation_variants()))
def test_toy_ablation_variant_overrides_parse_and_apply(name, capsys):
    """Each row of benchmarks/toy_ablation.py is the main config plus its overrides, and nothing else."""
    overrides = _toy_ablation_variants()[name]
    assert all(isinstance(x, str) for x in overrides) and len(overrides) % 2 == 0  # command-line words, in pairs
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", "configs/toy_shapes.yaml", *overrides, "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in zip(overrides[::2], overrides[1::2]):
        parts = key.removeprefix("--").split(".")  # e.g. model.init_args.alpha
        got = printed[parts[0]]["init_args"][parts[-1]]
        assert got == yaml.safe_load(value), (key, got, value)


def test_the_toy_config_preserves_the_erased_classs_neighbours():
    """What benchmarks/toy_ablation.py splits PSR-1 by: the classes L_pre trains on, the toy data module's default
    (the erased class's 8 neighbours: same colour or same shape)."""
    from unlearn.methods.t2vunlearning import ToyWorldDataModule

    data = yaml.safe_load(Path("configs/toy_shapes.yaml").read_text())["data"]["init_args"]
    assert not data.get("preserve_classes")  # the config takes the default
    preserved = ToyWorldDataModule(concept=data["concept"]).preserve_classes
    assert len(preserved) == 8 and "red ring" not in preserved
    assert all("red" in c.split() or "ring" in c.split() for c in preserved)

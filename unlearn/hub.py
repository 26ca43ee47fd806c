"""Adapters on the Hugging Face Hub: ``unlearn push ADAPTERS_DIR --repo user/name``.

The push uploads ``adapters.safetensors`` + ``t2v_adapter_config.json`` with a model card (``README.md``): the
backbone's hub id and revision, the erased concept, η/α/β, the evaluation table with its evaluator's
provenance when one is found, and how to load the adapters. ``attach_adapters(pipe, "user/name")``
(:mod:`unlearn.methods.t2vunlearning.export`) loads them back through ``snapshot_download``.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from unlearn.backbones import UnknownBackboneError, backbone_class
from unlearn.checks import InputError
from unlearn.evaluation.tables import markdown_table, results_markdown
from unlearn.evaluation.to_loggers import scored_numbers
from unlearn.io import find_run_status, require_finished
from unlearn.methods.t2vunlearning.export import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    backbone_provenance,
    load_adapters,
    read_adapter_config,
)

#: files of an adapter folder that go to the Hub
ADAPTER_FILES = (WEIGHTS_NAME, CONFIG_NAME)


def find_metrics(adapters_dir: str | os.PathLike) -> Path | None:
    """The evaluation written next to the adapters by the same run (``<run>/eval/metrics.json`` of the
    ErasureEvaluation callback or of ``unlearn evaluate --out <run>/eval``; ``results.json``, which
    ``unlearn evaluate`` wrote before, still read), if any."""
    run = Path(adapters_dir).resolve().parent
    for candidate in (run / "eval" / "metrics.json", run / "eval" / "results.json"):
        if candidate.is_file():
            stale = _not_this_run(adapters_dir, candidate)
            if stale:
                print(
                    f"unlearn push: {candidate} not attached: {stale}. Fix: --metrics FILE attaches a file you checked",
                    file=sys.stderr,
                )
                continue
            return candidate
    return None


def _not_this_run(adapters_dir: str | os.PathLike, metrics: Path) -> str | None:
    """Why ``metrics`` (found beside the adapters) is not the evaluation of the run that wrote them: written
    before that run started (a reused run folder), or of another concept (#27)."""
    found = find_run_status(adapters_dir)
    started = (found[1].get("started") if found else None) or ""
    try:
        start = datetime.datetime.fromisoformat(started).timestamp()
    except ValueError:
        start = None
    if start is not None and metrics.stat().st_mtime < start:
        return f"it is older than the run that wrote the adapters (started {started}): an earlier run's result"
    try:
        concept = json.loads(metrics.read_text()).get("concept")
    except (OSError, ValueError, AttributeError):
        return "it is not readable JSON"
    ours = read_adapter_config(adapters_dir).get("concept")
    if concept and ours and concept != ours:
        return f"it evaluates concept {concept!r}, the adapters erase {ours!r}"
    return None


# ------------------------------------------------------------------------------------------- escaping
# Every string that comes from a file (adapter config, metrics, sample index) is escaped where it lands: in
# Markdown prose (_md), in a code span (_code), in the Python snippet (a repr literal), in the YAML front matter
# (yaml.dump through ModelCardData). A concept, a prompt or a backbone source can then hold any characters.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_@. -]*")
_MD_ESCAPE = re.compile(r"([\\`*_\[\]|~:#!{}])")


def _md(value: Any) -> str:
    """``value`` as Markdown text on one line: punctuation that Markdown (or a GFM table) reads is
    backslash-escaped, ``& < >`` become entities (no HTML, no links, no table cells get through)."""
    text = _MD_ESCAPE.sub(r"\\\1", " ".join(str(value).split()))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(value: Any) -> str:
    """``value`` as an inline code span on one line: a fence longer than any backtick run inside, ``|`` escaped
    (GFM splits table cells on it before code spans are read)."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _escaped(node: Any) -> Any:
    """A copy of a metrics document with every string (keys included) Markdown-escaped, for the table writers
    of :mod:`unlearn.evaluation.tables`, which place them in the card as they are."""
    if isinstance(node, dict):
        # keys of the format (``num_prompts``) stay; keys that are data (class names, labels) are escaped
        return {
            (k if not isinstance(k, str) or _PLAIN_KEY.fullmatch(k) else _md(k)): _escaped(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_escaped(v) for v in node]
    return _md(node) if isinstance(node, str) else node


def _flat(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out += _flat(v, f"{prefix}{k}.")
        return out
    return [(prefix[:-1], d)]


# ------------------------------------------------------------------------------------------- metadata
#: the base models' licences as their Hub repositories declare them (the ``license``/``license_name``/
#: ``license_link`` keys of each repository's README.md front matter); adapters trained on a model carry its terms
BASE_MODEL_LICENSES: dict[str, dict[str, str]] = {
    "THUDM/CogVideoX-2b": {"license": "apache-2.0"},
    "THUDM/CogVideoX-5b": {
        "license": "other",
        "license_name": "cogvideox-license",
        "license_link": "https://huggingface.co/THUDM/CogVideoX-5b/blob/main/LICENSE",
    },
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": {"license": "apache-2.0"},
    "Wan-AI/Wan2.1-T2V-14B-Diffusers": {"license": "apache-2.0"},
    "hunyuanvideo-community/HunyuanVideo": {
        "license": "other",
        "license_name": "tencent-hunyuan-community",
        "license_link": "https://huggingface.co/tencent/HunyuanVideo/blob/main/LICENSE",
    },
    "cerspense/zeroscope_v2_576w": {"license": "cc-by-nc-4.0"},
}
#: backbones whose weights ship inside t2v-unlearn (Apache-2.0, pyproject.toml)
PACKAGED_BACKBONES = {"toy-cogvideox": {"license": "apache-2.0"}}
#: the library that loads these adapters (plain diffusers cannot: they attach through t2v-unlearn's hooks)
LIBRARY_NAME = "t2v-unlearn"
#: how the card names the metrics of the evaluation rows (model-index ``name``)
METRIC_NAMES = {
    "esr@1": "ESR-1 (%), erasure success, top-1",
    "esr@5": "ESR-5 (%), erasure success, top-5",
    "psr@1": "PSR-1 (%), preservation success, top-1",
    "psr@5": "PSR-5 (%), preservation success, top-5",
    "nudity_rate": "nudity rate (% of frames)",
    "nudity_rate_video": "nudity rate (% of videos)",
    "id_erased": "identity similarity, erased identity",
    "id_preserved": "identity similarity, other identities",
    "clip_score": "CLIP score",
    "subject_consistency": "subject consistency",
}


def license_metadata(backbone: str, hub_id: str | None, license: str | None = None) -> dict[str, str]:
    """``license`` (and ``license_name``/``license_link`` for ``other``) of the card: ``license`` when given,
    else the base model's (:data:`BASE_MODEL_LICENSES`), else ``{"license": "other", "license_name": "unknown"}``."""
    if license:
        return {"license": license}
    return dict(
        BASE_MODEL_LICENSES.get(hub_id or "")
        or PACKAGED_BACKBONES.get(backbone)
        or {"license": "other", "license_name": "unknown"}
    )


def _this_row(rows: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The evaluation row of these adapters: ``t2vunlearning``, else the one row that is not ``original``."""
    if isinstance(rows.get("t2vunlearning"), dict):
        return "t2vunlearning", rows["t2vunlearning"]
    others = [(k, v) for k, v in rows.items() if k != "original" and isinstance(v, dict)]
    return others[0] if len(others) == 1 else None


def eval_results(metrics: dict[str, Any] | None) -> list[Any]:
    """The card's ``model-index``: one ``EvalResult`` per number of these adapters' row that has an interval,
    the interval in ``args`` (``ci95_low``/``ci95_high``, its method and sample size)."""
    from huggingface_hub import EvalResult

    if not metrics:
        return []
    row = _this_row(metrics.get("rows") or {})
    if row is None:
        return []
    suite = metrics.get("suite") if isinstance(metrics.get("suite"), dict) else {}
    dataset = str(metrics.get("prompt_suite") or suite.get("name") or "prompt suite")
    revision = metrics.get("prompt_suite_hash") or suite.get("sha256")
    results = []
    for path, value, rec in scored_numbers(row[1]):
        key = path[-1]
        where = "/".join(path[:-1])
        args = {"ci95_low": float(rec["low"]), "ci95_high": float(rec["high"]), "confidence": 0.95}
        args |= {k: rec[k] for k in ("method", "n", "unit") if isinstance(rec.get(k), str | int | float)}
        results.append(
            EvalResult(
                task_type="text-to-video",
                task_name="concept erasure",
                dataset_type=dataset,
                dataset_name=dataset,
                dataset_revision=str(revision) if revision else None,
                metric_type=key,
                metric_name=METRIC_NAMES.get(key, key) + (f" ({where})" if where else ""),
                metric_value=round(value, 4),
                metric_args=args,
            )
        )
    return results


def _evaluation_section(metrics: dict[str, Any] | None, source: str | None) -> str:
    if metrics is None:
        return (
            "## Evaluation\n\nNo evaluation was attached to these adapters (train with the `ErasureEvaluation` "
            "callback, or run `unlearn evaluate`, then push with `--metrics`).\n"
        )
    safe = _escaped(metrics)
    if "suite" in metrics and "backbone" in metrics:  # metrics.json (earlier: results.json) of `unlearn evaluate`
        # the runner's own page, its headings one level down
        page = "\n".join("##" + line if line.startswith("#") else line for line in results_markdown(safe).splitlines())
        return "## Evaluation\n\n" + page + "\n"
    lines = ["## Evaluation", "", markdown_table(safe.get("rows", {}), safe), ""]
    evaluator = metrics.get("evaluator") or {}
    lines += ["Evaluator provenance (as recorded by the run):", ""]
    lines += [f"- {_code(k)}: {_code(v)}" for k, v in _flat(evaluator)] or ["- not recorded"]
    facts = [
        ("prompt suite", metrics.get("prompt_suite")),
        ("suite sha256", metrics.get("prompt_suite_hash")),
        ("prompts", metrics.get("num_prompts")),
        ("units", metrics.get("units")),
        ("evaluated at step", metrics.get("global_step")),
        ("file in this repository", f"eval/{Path(source).name}" if source else None),
    ]
    lines += [f"- {k}: {_code(v)}" for k, v in facts if v is not None]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- gallery
def sample_gallery(adapters_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's sample videos for the card: per prompt of ``<run>/samples/samples.json``
    (:class:`unlearn.callbacks.SampleVideoCallback`), the original model's video and the adapted one of the
    latest step; ``[]`` when the run kept none. Each entry: ``prompt``, ``erased`` and ``original``
    (``(path in the repository, local file)`` or ``None``), ``global_step``."""
    folder = Path(adapters_dir).resolve().parent / "samples"
    try:
        index = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
        videos = [v for v in index.get("videos", []) if isinstance(v, dict)]
    except (OSError, ValueError, AttributeError):
        return []
    by_prompt: dict[str, dict[str, Any]] = {}
    for v in videos:
        name, prompt = v.get("file"), v.get("prompt")
        if not isinstance(name, str) or not isinstance(prompt, str) or Path(name).name != name:
            continue
        if not (folder / name).is_file():
            continue
        entry = by_prompt.setdefault(prompt, {"prompt": prompt, "erased": None, "original": None, "global_step": -1})
        if not v.get("adapters"):
            entry["original"] = (f"samples/{name}", folder / name)
        elif int(v.get("global_step") or 0) >= entry["global_step"]:
            entry["erased"], entry["global_step"] = (f"samples/{name}", folder / name), int(v.get("global_step") or 0)
    return [e for e in by_prompt.values() if e["erased"] is not None]


def _gallery_section(gallery: list[dict[str, Any]], concept: str) -> str:
    if not gallery:
        return ""
    lines = [
        "## Samples",
        "",
        "<Gallery />",
        "",
        f"The same prompt and seed before and after erasing {_md(concept)} (the run's `SampleVideoCallback`):",
        "",
        "| prompt | original model | with the adapters |",
        "|---|---|---|",
    ]
    for e in gallery:
        original = f"[video]({e['original'][0]})" if e["original"] else "–"
        lines.append(f"| {_md(e['prompt'])} | {original} | [video]({e['erased'][0]}) (step {e['global_step']}) |")
    return "\n".join(lines) + "\n"


def _snippet(backbone: str, hub_id: str | None, revision: str | None, repo_id: str, packaged: bool) -> str:
    """The loading code; every value in it is a Python literal (``repr``)."""
    if hub_id:
        load = (
            "import torch\n"
            "from diffusers import DiffusionPipeline\n"
            "from unlearn.methods.t2vunlearning import attach_adapters   # pip install t2v-unlearn\n\n"
            f"pipe = DiffusionPipeline.from_pretrained({hub_id!r}"
            + (f", revision={revision!r}" if revision else "")
            + ", torch_dtype=torch.bfloat16)\n"
            f"switch = attach_adapters(pipe, {repo_id!r})  # forward hooks: the attention backend stays\n"
            'video = pipe("your prompt").frames[0]             # generated with the concept erased\n'
            "with switch.scaled(0.0):                      # the original model, exactly\n"
            '    original = pipe("your prompt").frames[0]\n'
        )
    else:
        where = "" if packaged else ', pretrained="/path/to/the/base/model"'
        load = (
            "from unlearn.backbones import build_backbone\n"
            "from unlearn.methods.t2vunlearning import attach_adapters   # pip install t2v-unlearn\n\n"
            f"backbone = build_backbone({backbone!r}{where})\n"
            f"switch = attach_adapters(backbone.denoiser, {repo_id!r})\n"
            'latents = backbone.sample(["your prompt"], [0])   # generated with the concept erased\n'
            "video = backbone.decode(latents)\n"
        )
    fence = "`" * (max((len(m) for m in re.findall(r"`+", load)), default=0) + 3)
    return f"## How to load\n\n{fence}python\n{load}{fence}\n"


def card_contents(
    adapters_dir: str | os.PathLike,
    repo_id: str,
    metrics_path: str | os.PathLike | None = None,
    license: str | None = None,
) -> tuple[str, dict[str, Path]]:
    """The ``README.md`` of the Hub repository and the extra files it shows (``{path in repo: local file}``:
    the sample videos of its gallery). YAML metadata through huggingface_hub's ``ModelCard``/``ModelCardData``:
    license, base model (``base_model_relation: adapter``), library, tags, the gallery's ``widget`` entries and
    ``model-index`` with the erasure and preservation results and their 95% intervals; then what was erased from
    which model with which settings, the samples, the evaluation, and how to load the adapters."""
    from huggingface_hub import ModelCard, ModelCardData

    config = read_adapter_config(adapters_dir)
    backbone = str(config["backbone"])
    prov = {k: config.get(k) for k in ("backbone_source", "backbone_hub_id", "backbone_revision")}
    if not prov["backbone_hub_id"]:  # adapters written before provenance was recorded
        prov = {**backbone_provenance(backbone, prov["backbone_source"]), **{k: v for k, v in prov.items() if v}}
    hub_id, revision = prov.get("backbone_hub_id"), prov.get("backbone_revision")
    try:
        packaged = not getattr(backbone_class(backbone), "hub", True)
    except UnknownBackboneError:
        packaged = False
    if packaged:
        hub_id, revision = None, None  # weights inside the package: no Hub base model
    metrics = json.loads(Path(metrics_path).read_text()) if metrics_path else None
    concept = str(config.get("concept") or (metrics or {}).get("concept") or "unknown concept")
    gallery = sample_gallery(adapters_dir)
    results = eval_results(metrics)

    data = ModelCardData(
        base_model=hub_id,
        base_model_relation="adapter" if hub_id else None,
        library_name=LIBRARY_NAME,
        tags=sorted({"t2v-unlearn", "t2vunlearning", "concept-erasure", "text-to-video", "diffusers", backbone}),
        pipeline_tag="text-to-video",
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
        widget=[{"text": e["prompt"], "output": {"url": e["erased"][0]}} for e in gallery] or None,
        **license_metadata(backbone, hub_id, license),
    )
    revision_text = (
        _code(revision)
        if revision
        else "the weights shipped with t2v-unlearn"
        if packaged
        else f"not recorded (trained from {_code(prov.get('backbone_source'))})"
        if prov.get("backbone_source")
        else "not recorded"
    )
    base_text = (
        _code(hub_id)
        if hub_id
        else f"{_code(backbone)}, shipped with t2v-unlearn"
        if packaged
        else f"{_code(prov.get('backbone_source'))} (not on the Hub)"
    )
    lic = license_metadata(backbone, hub_id, license)
    rows = [
        ("base model", base_text),
        ("base model revision", revision_text),
        ("backbone (t2v-unlearn name)", _code(backbone)),
        ("concept erased", _md(concept)),
        ("concept preserved", _md(config.get("preserve_concept") or "–")),
        ("η (negative guidance)", _md(config.get("eta", "–"))),
        ("α (localization loss)", _md(config.get("alpha", "–"))),
        ("β (preservation loss)", _md(config.get("beta", "–"))),
        ("adapter width", _md(config.get("inner_dim", config.get("adapter_dim", "–")))),
        ("mask threshold", _md(config.get("mask_threshold", "–"))),
        ("trained for", f"epoch {_md(config.get('epoch', '–'))}, step {_md(config.get('global_step', '–'))}"),
        ("attention sites", len(config.get("site_names") or [])),
        ("licence", _md(lic.get("license_name") or lic["license"]) + " (the base model's terms apply)"),
    ]
    table = "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
    body = f"""# T2VUnlearning adapters: {_md(concept)} erased from {_code(backbone)}

Adapters trained with [t2v-unlearn](https://pypi.org/project/t2v-unlearn/) by T2VUnlearning (Ye et al.): small
zero-initialised adapters on the video tokens after each attention layer where text meets video, trained on pseudo
data that the frozen model made with negative guidance. The base model's weights are not changed; the adapters
are `{WEIGHTS_NAME}` with `{CONFIG_NAME}` and attach to a stock diffusers pipeline through t2v-unlearn (plain
diffusers does not load them).

{table}

{_gallery_section(gallery, concept)}
{_evaluation_section(metrics, str(metrics_path) if metrics_path else None)}
{_snippet(backbone, hub_id, revision, repo_id, packaged)}"""
    card = ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}", body=body)
    files = {e[k][0]: e[k][1] for e in gallery for k in ("original", "erased") if e[k]}
    return str(card), files


def model_card(
    adapters_dir: str | os.PathLike,
    repo_id: str,
    metrics_path: str | os.PathLike | None = None,
    license: str | None = None,
) -> str:
    """The ``README.md`` of the Hub repository (:func:`card_contents`)."""
    return card_contents(adapters_dir, repo_id, metrics_path, license)[0]


def push(
    adapters_dir: str | os.PathLike,
    repo_id: str,
    metrics_path: str | os.PathLike | None = None,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    license: str | None = None,
) -> Any:
    """Create ``repo_id`` (if needed) and commit the adapters, the model card, the sample videos it shows and
    the metrics file in one commit. Returns huggingface_hub's ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    folder = Path(adapters_dir)
    card, shown = card_contents(folder, repo_id, metrics_path, license)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in ADAPTER_FILES]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in shown.items()]
    if metrics_path:
        operations.append(
            CommitOperationAdd(path_in_repo=f"eval/{Path(metrics_path).name}", path_or_fileobj=str(metrics_path))
        )
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.create_commit(
        repo_id,
        operations=operations,
        revision=revision,
        commit_message=commit_message or f"t2v-unlearn adapters from {folder}",
    )


def push_command(
    adapters: str,
    repo: str,
    metrics: str | None = None,
    private: bool = False,
    revision: str | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    license: str | None = None,
    dry_run: bool = False,
    allow_unfinished: bool = False,
) -> int:
    """Adapters + model card to the Hugging Face Hub: ``unlearn push ADAPTERS_DIR --repo user/name``.

    Args:
        adapters: adapter folder (``AdapterCheckpoint`` output or ``unlearn export --out``).
        repo: Hub repository id, ``user/name`` (created if missing).
        metrics: ``metrics.json``/``results.json`` for the card (default: ``<run>/eval/metrics.json`` next to
            the adapters, if there is one).
        private: create the repository private.
        revision: branch to commit to (default: main).
        endpoint: Hub endpoint (default: huggingface_hub's, ``$HF_ENDPOINT``).
        token: access token (default: ``$HF_TOKEN`` or ``hf auth login``).
        license: the card's licence (a Hub licence id, e.g. apache-2.0; default: the base model's, see
            ``unlearn.hub.BASE_MODEL_LICENSES``).
        dry_run: print the model card and upload nothing.
        allow_unfinished: push adapters of a run that failed or was interrupted.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:  # the same check in a dry run as in a real one
        validate_repo_id(repo)
        if repo.count("/") != 1:
            raise HFValidationError("it has no owner")
    except HFValidationError as e:
        raise InputError(f"--repo {repo!r} is not a Hub repository id of the form user/name ({e})") from None
    load_adapters(adapters)  # one clear error for a folder that is not an adapter folder, or NaN weights
    require_finished(adapters, "adapters", allow_unfinished)  # a failed/interrupted run is not published
    metrics = metrics or find_metrics(adapters)
    if dry_run:
        print(model_card(adapters, repo, metrics, license))
        return 0
    info = push(
        adapters,
        repo,
        metrics_path=metrics,
        private=private,
        token=token,
        endpoint=endpoint,
        revision=revision,
        license=license,
    )
    print(f"pushed {adapters} to {repo} ({info.commit_url})")
    return 0

"""Adapters to the Hugging Face Hub and back: `unlearn push` through the real huggingface_hub client, against a
Hub API served on 127.0.0.1 (there is no network here); `attach_adapters(pipe, "user/name")` through
`snapshot_download` from a folder laid out as a Hub cache, with the Hub offline."""

import base64
import http.server
import json
import threading

import pytest
import torch
import yaml
from hub_run import REVISION, trained_run

from unlearn.cli import main
from unlearn.methods.t2vunlearning.export import attach_adapters, backbone_provenance

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub(monkeypatch):
    """The three Hub endpoints an upload uses (create repo, preupload, commit), recording what arrives. The Hub
    is this local server, so the upload goes through even where ``HF_HUB_OFFLINE=1`` keeps the real one away."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    state = {"repos": [], "commits": [], "files": {}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _json(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path == "/api/repos/create":
                payload = json.loads(body)
                state["repos"].append(payload)
                return self._json(200, {"url": f"{endpoint}/{payload['organization'] or 'user'}/{payload['name']}"})
            if self.path == "/api/validate-yaml":  # the client has the Hub check the card's metadata
                content = json.loads(body)["content"]
                state["validated"] = content
                front = content.split("---")[1] if content.startswith("---") else ""
                try:
                    assert isinstance(yaml.safe_load(front), dict)
                except Exception as err:
                    return self._json(400, {"errors": [{"message": str(err)}]})
                return self._json(200, {})
            if "/preupload/" in self.path:
                files = json.loads(body)["files"]
                return self._json(
                    200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                )
            if "/commit/" in self.path:
                lines = [json.loads(x) for x in body.splitlines() if x.strip()]
                state["commits"].append(
                    {"path": self.path, "auth": self.headers.get("authorization"), "header": lines[0]["value"]}
                )
                for line in lines[1:]:
                    assert line["key"] == "file" and line["value"]["encoding"] == "base64"
                    state["files"][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                repo = self.path.split("/api/models/")[1].split("/commit/")[0]
                return self._json(200, {"commitUrl": f"{endpoint}/{repo}/commit/{COMMIT}", "commitOid": COMMIT})
            self._json(404, {"error": f"unexpected {self.path}"})

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["endpoint"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def test_provenance_from_a_hub_cache_snapshot_or_a_cached_hub_id(tmp_path, monkeypatch):
    snap = f"/data/hf/models--THUDM--CogVideoX-2b/snapshots/{REVISION}"
    assert backbone_provenance("cogvideox-2b", snap) == {
        "backbone_source": snap,
        "backbone_hub_id": "THUDM/CogVideoX-2b",
        "backbone_revision": REVISION,
    }
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    (tmp_path / "models--THUDM--CogVideoX-5b" / "refs").mkdir(parents=True)
    (tmp_path / "models--THUDM--CogVideoX-5b" / "refs" / "main").write_text(REVISION)
    assert backbone_provenance("cogvideox-5b", "THUDM/CogVideoX-5b")["backbone_revision"] == REVISION
    assert backbone_provenance("cogvideox-5b", "THUDM/CogVideoX-2b")["backbone_revision"] is None  # not cached
    local = backbone_provenance("cogvideox-2b", str(tmp_path))
    assert local["backbone_hub_id"] is None and local["backbone_revision"] is None


def test_push_uploads_adapters_and_model_card_then_attach_by_hub_id(tmp_path, hub, monkeypatch, capsys):
    bb, switch = trained_run(tmp_path)
    adapters = tmp_path / "run" / "adapters"
    assert (
        main(
            [
                "push",
                str(adapters),
                "--repo",
                "alice/cogx2b-no-golf-ball",
                "--endpoint",
                hub["endpoint"],
                "--token",
                "hf_test_token",
            ]
        )
        == 0
    )
    assert "alice/cogx2b-no-golf-ball" in capsys.readouterr().out
    assert [(r["organization"], r["name"]) for r in hub["repos"]] == [("alice", "cogx2b-no-golf-ball")]
    assert hub["validated"].startswith("---\n")
    commit = hub["commits"][0]
    assert commit["path"] == "/api/models/alice/cogx2b-no-golf-ball/commit/main"
    assert commit["auth"] == "Bearer hf_test_token"
    assert sorted(hub["files"]) == ["README.md", "adapters.safetensors", "eval/metrics.json", "t2v_adapter_config.json"]
    assert hub["files"]["adapters.safetensors"] == (adapters / "adapters.safetensors").read_bytes()

    # the model card
    from huggingface_hub import ModelCard

    card = ModelCard(hub["files"]["README.md"].decode())
    assert card.data.base_model == "THUDM/CogVideoX-2b" and "concept-erasure" in card.data.tags
    text = card.text
    for needle in (
        f"`{REVISION}`",
        "golf ball",
        "| η (negative guidance) | 7.0 |",
        "| α (localization loss) | 1.0 |",
        "| β (preservation loss) | 0.5 |",
        "| t2vunlearning | 93.8 | 71.9 | 77.5 | 95.2 |",
        "efficientnet-lite2",
        "cd" * 32,
        "builtin:imagenet10_video",
        "attach_adapters(pipe, 'alice/cogx2b-no-golf-ball')",
        f"DiffusionPipeline.from_pretrained('THUDM/CogVideoX-2b', revision='{REVISION}'",
    ):
        assert needle in text, needle

    # back from the Hub: the commit laid out as huggingface_hub caches it, the Hub unreachable
    cache = tmp_path / "hub_cache"
    snapshot = cache / "models--alice--cogx2b-no-golf-ball" / "snapshots" / COMMIT
    for name, data in hub["files"].items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    (cache / "models--alice--cogx2b-no-golf-ball" / "refs").mkdir()
    (cache / "models--alice--cogx2b-no-golf-ball" / "refs" / "main").write_text(COMMIT)
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    from diffusers import CogVideoXPipeline

    bb.save_pretrained(str(tmp_path / "pipe"))
    run = dict(
        prompt="a golf ball on the grass",
        num_frames=9,
        height=32,
        width=32,
        num_inference_steps=2,
        output_type="pt",
        max_sequence_length=16,
    )
    outputs = {}
    for name, where in (
        ("folder", {"path_or_repo": adapters}),
        ("hub", {"path_or_repo": "alice/cogx2b-no-golf-ball", "cache_dir": cache}),
    ):
        pipe = CogVideoXPipeline.from_pretrained(str(tmp_path / "pipe"))
        loaded = attach_adapters(pipe, **where)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), switch.state_dict().values()))
        outputs[name] = pipe(**run, generator=torch.Generator().manual_seed(0)).frames
    assert torch.equal(outputs["hub"], outputs["folder"])
    with pytest.raises(Exception, match="(?i)cache|offline|snapshot"):
        attach_adapters(pipe, "alice/not-there", cache_dir=cache)


def test_push_dry_run_and_bad_input(tmp_path, capsys):
    trained_run(tmp_path)
    assert main(["push", str(tmp_path / "run" / "adapters"), "--repo", "alice/x", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("---\n") and "base_model: THUDM/CogVideoX-2b" in out and "| original | 12.5 |" in out
    assert main(["push", str(tmp_path / "run" / "adapters"), "--repo", "no-slash", "--dry-run"]) == 2
    assert "user/name" in capsys.readouterr().err.splitlines()[-1]
    assert main(["push", str(tmp_path), "--repo", "alice/x", "--dry-run"]) == 2
    assert "not an adapter folder" in capsys.readouterr().err.splitlines()[-1]

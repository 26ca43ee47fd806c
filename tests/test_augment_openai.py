"""OpenAIChatSource against a real HTTP server on 127.0.0.1 that speaks the chat-completions protocol.

The server runs in a daemon thread started by the fixture and is shut down at the end of each test. Its
behaviour is scripted per request: a normal reply, a slow reply (longer than the client timeout), HTTP 500,
malformed JSON. Every loop in the client is bounded by ``max_retries``.
"""

from __future__ import annotations

import time

import pytest
from fake_servers import ChatServer

from unlearn.prompts.augment import EndpointError, OpenAIChatSource, PromptAugmenter


@pytest.fixture
def serve():
    servers = []

    def start(*script):
        s = ChatServer(script).__enter__()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def _source(url, **kw):
    kw.setdefault("timeout", 2.0)
    kw.setdefault("backoff", 0.01)
    return OpenAIChatSource(url, "tiny-llama", **kw)


def test_normal_reply_is_parsed_and_request_is_well_formed(serve, monkeypatch):
    monkeypatch.setenv("T2V_TEST_KEY", "sk-test-123")
    srv = serve("ok")
    src = _source(srv.url, api_key_env="T2V_TEST_KEY", temperature=0.7)
    out = src.generate("golf ball", 2, "hunyuanvideo", seed=11, synonyms=["golfball"])
    assert out == ["A golf ball rolls across the green.", "A golf ball at dawn, slow motion."]
    (req,) = srv.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test-123"
    body = req["body"]
    assert body["model"] == "tiny-llama" and body["seed"] == 11 and body["temperature"] == 0.7
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert "HunyuanVideo" in body["messages"][0]["content"] and '"golfball"' in body["messages"][3]["content"]
    assert src.calls == 1 and src.requests_sent == 1


def test_local_server_bypasses_environment_proxy(serve, monkeypatch):
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: using it would fail
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    srv = serve("ok")
    assert len(_source(srv.url, max_retries=0).generate("golf ball", 2, "plain", seed=0)) == 2


def test_no_key_no_header_and_full_url_accepted(serve, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    srv = serve("ok")
    src = _source(srv.url + "/chat/completions")
    src.generate("golf ball", 2, "plain", seed=0)
    assert "Authorization" not in srv.requests[0]["headers"]
    assert srv.requests[0]["path"] == "/v1/chat/completions"


def test_timeout_then_success_after_retry(serve):
    srv = serve(("sleep", 1.0), "ok")
    src = _source(srv.url, timeout=0.3, max_retries=2)
    t0 = time.monotonic()
    assert len(src.generate("golf ball", 2, "plain", seed=0)) == 2
    assert time.monotonic() - t0 < 3 and src.requests_sent == 2


def test_timeout_every_time_is_a_clear_error(serve):
    srv = serve(("sleep", 1.0))
    src = _source(srv.url, timeout=0.2, max_retries=1)
    with pytest.raises(EndpointError) as e:
        src.generate("golf ball", 2, "plain", seed=0)
    msg = str(e.value)
    assert srv.url + "/chat/completions" in msg and "timeout" in msg and "2 attempt(s)" in msg
    assert src.requests_sent == 2


def test_500_then_success_after_retry(serve):
    srv = serve(("status", 500), ("status", 503), "ok")
    src = _source(srv.url, max_retries=3)
    assert src.generate("golf ball", 2, "plain", seed=0)[0] == "A golf ball rolls across the green."
    assert len(srv.requests) == 3


def test_all_500_is_a_clear_error_after_bounded_retries(serve):
    srv = serve(("status", 500))
    src = _source(srv.url, max_retries=2)
    with pytest.raises(EndpointError, match=r"failed after 3 attempt\(s\): HTTP 500"):
        src.generate("golf ball", 2, "plain", seed=0)
    assert len(srv.requests) == 3


def test_client_error_is_not_retried(serve):
    srv = serve(("status", 404))
    src = _source(srv.url, max_retries=5)
    with pytest.raises(EndpointError, match=r"answered HTTP 404.*model name 'tiny-llama'"):
        src.generate("golf ball", 2, "plain", seed=0)
    assert len(srv.requests) == 1


def test_malformed_json_and_wrong_shape_are_clear_errors(serve):
    srv = serve("badjson")
    with pytest.raises(EndpointError, match=r"returned malformed JSON") as e:
        _source(srv.url).generate("golf ball", 2, "plain", seed=0)
    assert srv.url in str(e.value)
    srv2 = serve("nochoices")
    with pytest.raises(EndpointError, match=r"without choices\[0\]\.message\.content"):
        _source(srv2.url).generate("golf ball", 2, "plain", seed=0)


def test_unreachable_server_names_the_url():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    src = _source(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(EndpointError, match=rf"127\.0\.0\.1:{port}/v1/chat/completions failed after 2.*cannot connect"):
        src.generate("golf ball", 1, "plain", seed=0)


def test_augmenter_over_http_checks_concept_and_caches(serve, tmp_path):
    srv = serve(("ok", "1. A golf ball at dawn.\n2. A tennis court.\n"), ("ok", "1. Golf balls in a bucket."))
    src = _source(srv.url)
    aug = PromptAugmenter(src, cache_dir=tmp_path, max_rounds=3)
    s = aug.augment("golf ball", 2, "zeroscope", seed=0)
    assert s.prompts == ["A golf ball at dawn.", "Golf balls in a bucket."]
    assert len(srv.requests) == 2 and srv.requests[1]["body"]["seed"] != srv.requests[0]["body"]["seed"]
    s2 = PromptAugmenter(_source(srv.url), cache_dir=tmp_path).augment("golf ball", 2, "zeroscope", seed=0)
    assert s2 == s and len(srv.requests) == 2  # cache hit: no request
    assert "tiny-llama@" + srv.url in aug.cache_fields("golf ball", 2, "zeroscope", 0)["model_id"]


def test_cli_openai_source(serve, tmp_path, capsys):
    from unlearn.cli import main

    def augment_main(argv):
        return main(["augment", *argv])

    srv = serve("ok")
    out = tmp_path / "p.jsonl"
    rc = augment_main(
        [
            "--concept",
            "golf ball",
            "--n",
            "2",
            "--style",
            "plain",
            "--out",
            str(out),
            "--source",
            "openai",
            "--url",
            srv.url,
            "--model",
            "tiny-llama",
            "--no-cache",
            "--timeout",
            "2",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    from unlearn.prompts import PromptSuite

    assert PromptSuite.load(out).prompts == ["A golf ball rolls across the green.", "A golf ball at dawn, slow motion."]
    srv.script = [("status", 500)]
    srv.requests.clear()
    rc = augment_main(
        [
            "--concept",
            "golf ball",
            "--n",
            "2",
            "--out",
            str(out),
            "--source",
            "openai",
            "--url",
            srv.url,
            "--model",
            "m",
            "--no-cache",
            "--max-retries",
            "0",
        ]
    )
    assert rc == 1 and srv.url in capsys.readouterr().err

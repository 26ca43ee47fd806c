"""Augmentation through any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Works with vLLM (``vllm serve <model>``), llama.cpp's ``llama-server``, Ollama (``http://localhost:11434/v1``),
LM Studio, or a hosted API. ``base_url`` is the API root including ``/v1`` (as for the ``openai`` client); a
URL that already ends in ``/chat/completions`` is used as is. An API key, when needed, is read from the
environment variable named by ``api_key_env`` (never from a config file) and sent as a Bearer token.

Failures are bounded: each request has a timeout; connection errors, timeouts, HTTP 408/429/5xx are retried
``max_retries`` times with exponential backoff (``backoff * 2**attempt`` seconds, at most ``max_backoff``);
other 4xx answers and malformed JSON fail at once. Every error is an :class:`EndpointError` naming the URL.

Credentials never leave the process in text: a password in the URL (``http://user:PASS@host/v1``), secret
query parameters (``?api_key=...``) and the API key are replaced by ``***`` in every message, in ``model_id``
and so in the augmentation cache. Sending them in cleartext (``http://`` to a host other than this machine)
gives a warning.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .base import AugmentationSource, EndpointError, build_messages, instruction_template, parse_prompt_list
from .styles import get_style

__all__ = ["OpenAIChatSource", "redact_url"]

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_SECRET_PARAM = re.compile(r"key|token|secret|pass|auth|sig|credential", re.IGNORECASE)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _SECRET_PARAM.search(k)]
    return [x for s in found if s for x in {s, unquote(s)}]


def redact_url(url: str) -> str:
    """``url`` with the password of its user part and the values of secret-looking query parameters
    (``key``, ``token``, ``secret``, ``password``, ``auth``, ``sig``) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_PARAM.search(k) and v else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _is_loopback(host: str) -> bool:
    return host.lower() in _LOOPBACK or host.startswith("127.")


class OpenAIChatSource(AugmentationSource):
    """Prompts from an OpenAI-compatible chat-completions server.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server expects (vLLM: the served model id; Ollama: ``llama3:8b``).
        api_key_env: environment variable holding the API key; unset or empty = no Authorization header.
        timeout: seconds per request (connect and read).
        max_retries: retries after the first attempt (so at most ``1 + max_retries`` requests per call).
        backoff, max_backoff: retry delays in seconds.
        temperature, top_p, max_tokens: sampling; ``max_tokens`` default from the style.
        prompts_per_call: a request for more prompts is split into calls of at most this many.
        send_seed: send ``seed`` in the request (vLLM and OpenAI honour it; other servers may ignore it).
        extra_body: more JSON fields for the request (e.g. ``{"repetition_penalty": 1.1}`` for vLLM).
    """

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        temperature: float = 0.9,
        top_p: float = 0.95,
        max_tokens: int | None = None,
        prompts_per_call: int = 10,
        send_seed: bool = True,
        extra_body: dict | None = None,
    ):
        super().__init__()
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {redact_url(str(base_url))!r}")
        self.base_url = str(base_url).rstrip("/")
        #: the URL as shown in messages and stored in caches (credentials replaced by ***)
        self.display_url = redact_url(self.base_url)
        self._cleartext_warned = False
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.prompts_per_call = max(1, int(prompts_per_call))
        self.send_seed = send_seed
        self.extra_body = dict(extra_body or {})
        #: the content of the last reply (for debugging)
        self.last_raw_output: str | None = None
        #: HTTP requests sent (including retries)
        self.requests_sent = 0

    @property
    def url(self) -> str:
        if self.base_url.endswith("/chat/completions"):
            return self.base_url
        return self.base_url + "/chat/completions"

    @property
    def model_id(self) -> str:
        return f"{self.model}@{self.display_url}"

    def _scrub(self, text: str) -> str:
        """``text`` with every credential of this source (URL password, secret query values, API key) as ***."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        for secret in sorted({*_url_secrets(self.base_url), *([key] if key else [])}, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text.replace(self.base_url, self.display_url)

    def _warn_cleartext(self) -> None:
        if self._cleartext_warned:
            return
        self._cleartext_warned = True
        parts = urlsplit(self.base_url)
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if parts.scheme == "http" and not _is_loopback(parts.hostname or "") and (key or _url_secrets(self.base_url)):
            what = f"the API key from ${self.api_key_env}" if key else "the credentials in the URL"
            warnings.warn(
                f"{what} will be sent in cleartext over http:// to {parts.hostname}; anyone on the network "
                "can read it. Fix: use https:// (or a server on this machine)",
                UserWarning,
                stacklevel=3,
            )

    def instructions(self, style: str) -> str:
        params = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "prompts_per_call": self.prompts_per_call,
            "extra_body": self.extra_body,
        }
        return instruction_template(get_style(style)) + "\n---\n" + json.dumps(params, sort_keys=True)

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _proxies(self) -> dict | None:
        # a local server (vLLM on the same machine) must not be sent through an HTTP(S)_PROXY of the environment
        if _is_loopback(urlsplit(self.base_url).hostname or ""):
            return {"http": None, "https": None}
        return None

    def complete(self, messages: list[dict], *, seed: int | None = None, max_tokens: int | None = None) -> str:
        """POST one chat-completions request (with bounded retries); return the first choice's content."""
        import requests

        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "n": 1,
        }
        if max_tokens:
            body["max_tokens"] = int(max_tokens)
        if seed is not None and self.send_seed:
            body["seed"] = int(seed)
        body.update(self.extra_body)
        self._warn_cleartext()
        url = self.url
        shown = self._scrub(url)
        attempts = 1 + self.max_retries
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            self.requests_sent += 1
            try:
                resp = requests.post(
                    url, json=body, headers=self._headers(), timeout=self.timeout, proxies=self._proxies()
                )
            except requests.Timeout:
                last = f"no answer within {self.timeout:g} s (timeout)"
                continue
            except requests.ConnectionError as e:
                last = f"cannot connect ({type(e).__name__}: {_short(self._scrub(str(e)))})"
                continue
            except requests.RequestException as e:
                raise EndpointError(f"POST {shown} failed: {self._scrub(str(e))}") from None
            if resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {_short(self._scrub(resp.text))}"
                continue
            if resp.status_code != 200:
                raise EndpointError(
                    f"POST {shown} answered HTTP {resp.status_code}: {_short(self._scrub(resp.text))}. Fix: check the "
                    "model name "
                    f"{self.model!r}, the API key variable {self.api_key_env!r} and that the server speaks the "
                    "OpenAI chat-completions protocol"
                )
            try:
                data = resp.json()
            except ValueError as e:
                raise EndpointError(
                    f"POST {shown} returned malformed JSON ({e}): {_short(self._scrub(resp.text))}. Fix: check "
                    "that base_url points at an OpenAI-compatible API root (ending in /v1)"
                ) from None
            try:
                content = data["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                raise EndpointError(
                    f"POST {shown} returned JSON without choices[0].message.content: "
                    f"{_short(self._scrub(json.dumps(data)))}. Fix: use a chat-completions endpoint"
                ) from None
            if not isinstance(content, str):
                raise EndpointError(
                    f"POST {shown} returned a non-text message content: {_short(self._scrub(repr(content)))}"
                )
            return content
        raise EndpointError(
            f"POST {shown} failed after {attempts} attempt(s): {last}. Fix: start the server (vLLM, llama.cpp, "
            "Ollama) or correct --url; raise timeout/max_retries for a slow server"
        )

    def generate(self, concept: str, n: int, style: str, seed: int, synonyms: Sequence[str] = ()) -> list[str]:
        st = get_style(style)
        out: list[str] = []
        chunks = [min(self.prompts_per_call, n - i) for i in range(0, n, self.prompts_per_call)]
        for call, k in enumerate(chunks):
            self.calls += 1
            text = self.complete(
                build_messages(concept, k, st, synonyms),
                seed=seed + 1009 * call,
                max_tokens=self.max_tokens or (k * st.tokens_per_prompt + 32),
            )
            self.last_raw_output = text
            out.extend(parse_prompt_list(text))
        return out


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."

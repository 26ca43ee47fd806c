"""A scripted OpenAI-style chat-completions server on 127.0.0.1 (shared by the augmentation tests and the
bad-input catalogue's endpoint cases)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = "Here are the prompts:\n1. A golf ball rolls across the green.\n2. A golf ball at dawn, slow motion.\n"


class ChatServer:
    """Scripted chat-completions server: ``script`` is a list of actions, one per request (last one repeats)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                i = len(server.requests) - 1
                action = server.script[min(i, len(server.script) - 1)]
                kind, arg = action if isinstance(action, tuple) else (action, None)
                if kind == "sleep":
                    time.sleep(arg)
                    kind, arg = "ok", GOOD
                if kind == "ok":
                    payload = {
                        "id": f"c{i}",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": arg or GOOD},
                            }
                        ],
                    }
                    self._send(200, json.dumps(payload).encode())
                elif kind == "status":
                    self._send(arg, b'{"error": {"message": "boom"}}')
                elif kind == "badjson":
                    self._send(200, b'{"choices": [ this is not json')
                elif kind == "nochoices":
                    self._send(200, b'{"object": "list", "data": []}')

            def _send(self, code, data):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

"""/healthz and /readyz, served from start-up on every replica (leader or standby).

kopf's own liveness endpoint exists only once the operator runs, i.e. on the leader, so
probes against it would kill standbys. Here an asyncio task beats every few seconds in
whichever role the process is; /healthz answers 200 while the beat is fresh and 503 when
the event loop has been stuck longer than `stale_after` (a wedged controller gets
restarted; a standby waiting for the Lease is healthy). /readyz answers 200 once started.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Health:
    def __init__(self, stale_after: float = 60.0) -> None:
        self.stale_after = stale_after
        self.role = "starting"
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def status(self) -> tuple[int, dict[str, object]]:
        age = time.monotonic() - self.last_beat
        code = 200 if age < self.stale_after else 503
        return code, {"role": self.role, "lastBeatSecondsAgo": round(age, 1)}

    async def beat_forever(self, interval: float = 2.0) -> None:
        while True:
            self.beat()
            await asyncio.sleep(interval)

    def serve(self, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer | None:
        """Serve in a daemon thread (port 0: not at all)."""
        if not port:
            return None
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/healthz"):
                    code, body = health.status()
                elif self.path.startswith("/readyz"):
                    code, body = 200, {"role": health.role}
                else:
                    code, body = 404, {}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds are not news

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, name="ftjobs-health", daemon=True).start()
        return server

"""A kept-alive connection the server closes just as a request goes out on it.

An API server drops idle keep-alive connections; when the close crosses a request that
reuses one, urllib3 raises `RemoteDisconnected` and, for a write, does not retry (Go's
client does). The controller then lost the reconcile for its 2 s retry delay; the bench
lost a whole run at 1,000 jobs (docs/benchmarks.md). Fault injection: the race cannot be
caused on demand against the real API server, so a TCP proxy in front of it (TLS passes
through untouched) closes, on command, every connection opened before the command at the
next bytes the client sends on it, as a server closing an idle connection would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from ftjobs.k8s import Kube, KubeRetriable
from ftjobs.k8s import client as kube_client
from ftjobs.k8s.client import load_client
from tests.fixtures.controlplane import ControlPlane


class DroppingProxy:
    """Forwards 127.0.0.1:<port> to the API server; `drop_open()` makes every connection
    open now close (both ways, nothing forwarded) when its client next sends."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.generation = 0  # connections born before `doomed_below` are closed on send
        self.doomed_below = 0
        self.dropped = 0
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_open(self) -> None:
        self.doomed_below = self.generation

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            self.generation += 1
            self.accepted += 1
            born = self.generation
            for src, dst, from_client in ((down, up, True), (up, down, False)):
                threading.Thread(
                    target=self._pump, args=(src, dst, from_client, born), daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool, born: int) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if from_client and born <= self.doomed_below:
                    self.dropped += 1
                    break
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxied(cluster: ControlPlane) -> Iterator[tuple[Kube, DroppingProxy]]:
    port = int(cluster.server.rsplit(":", 1)[1])
    proxy = DroppingProxy(("127.0.0.1", port))
    api = load_client(cluster.kubeconfig)
    api.configuration.host = f"https://127.0.0.1:{proxy.port}"
    try:
        yield Kube(api), proxy
    finally:
        proxy.close()
        api.close()


def _account(namespace: str) -> dict[str, object]:
    name = f"sa-{uuid.uuid4().hex[:6]}"
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }


def test_a_write_on_a_connection_the_server_just_closed_goes_once_more(
    proxied: tuple[Kube, DroppingProxy], namespace: str
) -> None:
    kube, proxy = proxied
    kube.create(_account(namespace))  # opens the connection the next create reuses
    assert proxy.accepted == 1
    proxy.drop_open()
    obj = _account(namespace)
    created = kube.create(obj)  # a POST: urllib3 would not retry it
    assert proxy.dropped == 1, "the create did go out on the doomed connection"
    assert proxy.accepted == 2, "and again on a fresh one"
    assert created["metadata"]["name"] == obj["metadata"]["name"]  # type: ignore[index]
    stored = kube.get("v1", "ServiceAccount", namespace, obj["metadata"]["name"])  # type: ignore[index]
    assert stored is not None
    assert kube.requests["POST"] == 2, "counted once, as one request"


def test_negative_control_without_the_retry_the_write_fails_unreachable(
    proxied: tuple[Kube, DroppingProxy], namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_client, "DROPPED_CONNECTION_RETRIES", 0)
    kube, proxy = proxied
    kube.create(_account(namespace))
    proxy.drop_open()
    with pytest.raises(KubeRetriable, match="cannot reach the Kubernetes API server"):
        kube.create(_account(namespace))
    assert proxy.dropped == 1


def test_a_create_by_generate_name_is_not_sent_twice(
    proxied: tuple[Kube, DroppingProxy], namespace: str
) -> None:
    """A retried create by generateName that had got through would make a second object;
    it fails instead (the caller sees Unreachable and can look)."""
    kube, proxy = proxied
    kube.create(_account(namespace))
    proxy.drop_open()
    named_by_server = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"generateName": "gen-", "namespace": namespace},
    }
    with pytest.raises(KubeRetriable, match="cannot reach the Kubernetes API server"):
        kube.create(named_by_server)
    assert proxy.dropped == 1
    assert proxy.accepted == 1, "no second connection: not sent again"

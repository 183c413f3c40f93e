"""A local run listens on loopback only: rendezvous store, gloo, everything.

Two launcher processes (2 nodes of 1 worker, MASTER_ADDR 127.0.0.1) train a tiny model;
while they run, psutil lists every listening socket of the launchers and their workers.
The store port must be among them (so the check saw the rendezvous), and every one must
be bound to a loopback address. The negative control runs the same listing on a process
that listens on all interfaces and must report it.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.training.trainer_run import classification_spec, launch, write_config

pytestmark = pytest.mark.training


def listening(pids: list[int]) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every socket in LISTEN of `pids` and descendants."""
    found: set[tuple[str, int, str]] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            try:
                for conn in proc.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN:
                        found.add((conn.laddr.ip, conn.laddr.port, " ".join(proc.cmdline()[1:4])))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return found


def exposed(sockets: set[tuple[str, int, str]]) -> set[tuple[str, int, str]]:
    return {s for s in sockets if not ipaddress.ip_address(s[0].split("%")[0]).is_loopback}


def test_a_local_run_listens_on_loopback_only(
    tmp_path: Path,
    tiny_model_dir: Callable[..., Path],
    tiny_data_dir: Callable[..., Path],
) -> None:
    data = tiny_data_dir("sequence-classification", n=160)
    spec = classification_spec(
        tiny_model_dir("sequence-classification"),
        data / "train.jsonl",
        tmp_path / "out",
        hyperparameters={"maxSteps": 30},
        checkpointing={"everySteps": 10, "keep": 1},
    )
    write_config(tmp_path / "job.json", spec)
    nodes = launch(tmp_path / "job.json", tmp_path / "run")
    argv = psutil.Process(nodes.procs[0].pid).cmdline()
    master_port = int(next(a for a in argv if a.startswith("--master-port=")).split("=")[1])
    seen: set[tuple[str, int, str]] = set()
    while any(p.poll() is None for p in nodes.procs):
        seen |= listening([p.pid for p in nodes.procs])
        time.sleep(0.2)
    assert [p.returncode for p in nodes.procs] == [0, 0], nodes.output()[-3000:]
    assert any(port == master_port for _, port, _ in seen), seen  # the store was seen
    assert exposed(seen) == set(), f"listening beyond loopback: {exposed(seen)}"


def test_the_listing_catches_a_socket_on_every_interface() -> None:
    code = "import socket,time;s=socket.socket();s.bind(('0.0.0.0',0));s.listen();time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        found: set[tuple[str, int, str]] = set()
        while not found and time.monotonic() < deadline:
            found = exposed(listening([proc.pid]))
            time.sleep(0.1)
        assert found and next(iter(found))[0] == "0.0.0.0"
    finally:
        proc.kill()
        proc.wait()

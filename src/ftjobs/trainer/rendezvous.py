"""Where a local run's rendezvous and collectives listen: loopback only.

With `env://`, torch's rank 0 opens the rendezvous store (an unauthenticated TCPStore;
`broadcast_object_list` unpickles what comes through it) on MASTER_PORT on **every**
interface, whatever MASTER_ADDR says. When MASTER_ADDR is a loopback address (a local
`ftjobs run`, the tests) nothing outside the machine has any business connecting, so
rank 0 binds the store's socket to that address itself and hands it to torch
(`master_listen_fd`), and gloo/NCCL bootstrap on the loopback interface
(GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME, unless set already). In a cluster MASTER_ADDR
is the attempt's headless Service, nothing changes here, and the attempt's
NetworkPolicy decides who may connect.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from datetime import timedelta

import torch.distributed as dist

LOOPBACK_INTERFACE = "lo0" if sys.platform == "darwin" else "lo"


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def init_loopback_group(backend: str, rank: int, world_size: int, timeout: timedelta) -> bool:
    """Join the process group through a loopback-only store; False when the rendezvous
    is not local (MASTER_ADDR unset or not loopback), and nothing was done."""
    address = os.environ.get("MASTER_ADDR", "")
    port = os.environ.get("MASTER_PORT", "")
    if not (is_loopback(address) and port.isdigit()):
        return False
    host = "127.0.0.1" if address == "localhost" else address
    os.environ.setdefault("GLOO_SOCKET_IFNAME", LOOPBACK_INTERFACE)
    os.environ.setdefault("NCCL_SOCKET_IFNAME", LOOPBACK_INTERFACE)
    listen_fd: int | None = None
    if rank == 0:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, int(port)))
        listener.listen(128)
        # The store owns the socket from here on (a closed fd would end the rendezvous).
        listen_fd = listener.detach()
    store = dist.TCPStore(  # type: ignore[attr-defined]
        host,
        int(port),
        world_size,
        rank == 0,
        timeout,
        master_listen_fd=listen_fd,
    )
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    return True

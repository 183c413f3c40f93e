"""Start/stop the local test environment: Kubernetes control plane + kwok + versitygw.

    ~/.cache/ftjobs/venv/bin/python hack/cluster.py up      # build if needed, start, print env
    ~/.cache/ftjobs/venv/bin/python hack/cluster.py up --real-nodes 2   # + two real kubelets
    ~/.cache/ftjobs/venv/bin/python hack/cluster.py env     # print the env exports again
    ~/.cache/ftjobs/venv/bin/python hack/cluster.py status
    ~/.cache/ftjobs/venv/bin/python hack/cluster.py down    # stop and delete state

State lives in ~/.cache/ftjobs/cluster (kubeconfig, pki, logs, pids) and
~/.cache/ftjobs/s3 (data, credentials). `up` writes ~/.cache/ftjobs/cluster/env.sh;
`source` it (or export its variables) and pytest reuses the running servers.
The logic lives in tests/fixtures/controlplane.py and tests/fixtures/s3.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.controlplane import DEFAULT_STATE_DIR, ControlPlane
from tests.fixtures.nodes import RealNodes, teardown, teardown_stale
from tests.fixtures.s3 import DEFAULT_S3_STATE_DIR, S3Server

ENV_FILE = DEFAULT_STATE_DIR / "env.sh"
REAL_NODES_FILE = DEFAULT_STATE_DIR / "real-nodes"  # index of the running real-node instance


def _real_nodes_index() -> int | None:
    try:
        return int(REAL_NODES_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _running_cluster() -> ControlPlane | None:
    kc = DEFAULT_STATE_DIR / "kubeconfig"
    if not (DEFAULT_STATE_DIR / "cluster.json").is_file():
        return None
    cp = ControlPlane.attach(kc, owned=True)
    return cp if cp.procs and all(p.alive() for p in cp.procs.values()) else None


def _running_s3() -> S3Server | None:
    srv = S3Server.from_state_dir(DEFAULT_S3_STATE_DIR)
    return srv if srv is not None and srv.proc is not None and srv.proc.alive() else None


def _env_lines(cp: ControlPlane, srv: S3Server) -> list[str]:
    bin_dirs = sorted({str(Path(p).parent) for p in cp.bin_dir.values()})
    k = _real_nodes_index()
    return [
        *([f"export FTJOBS_TEST_REAL_NODES={k}"] if k is not None else []),
        f"export FTJOBS_TEST_KUBECONFIG={cp.kubeconfig}",
        f"export FTJOBS_TEST_S3_ENDPOINT={srv.endpoint_url}",
        f"export FTJOBS_TEST_S3_ACCESS_KEY={srv.access_key}",
        f"export FTJOBS_TEST_S3_SECRET_KEY={srv.secret_key}",
        f"export FTJOBS_TEST_S3_REGION={srv.region}",
        f"export FTJOBS_TEST_BIN_PATH={':'.join(bin_dirs)}",
    ]


def _print(cp: ControlPlane, srv: S3Server) -> None:
    print(f"kubeconfig:        {cp.kubeconfig}")
    print(f"api server:        {cp.server}")
    print(f"S3 endpoint:       {srv.endpoint_url}  (region {srv.region})")
    print(f"S3 credentials:    {srv.credentials_file}")
    print(f"logs:              {cp.log_dir}  {srv.log_path}")
    print(f"env file:          {ENV_FILE}   (source it; pytest then reuses these servers)")
    print(f"kubectl:           {cp.bin_dir['kubectl']} --kubeconfig {cp.kubeconfig} get nodes")
    print()
    print("\n".join(_env_lines(cp, srv)))


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    cp = _running_cluster()
    if cp is None:
        # stale state from a crashed run: stop whatever is left, then start fresh
        if (DEFAULT_STATE_DIR / "cluster.json").is_file():
            ControlPlane.attach(DEFAULT_STATE_DIR / "kubeconfig", owned=True).stop(clean=True)
        cp = ControlPlane(
            state_dir=DEFAULT_STATE_DIR, cpu_nodes=args.cpu_nodes, gpu_nodes=args.gpu_nodes
        ).start()
    else:
        print("control plane already running", file=sys.stderr)
    srv = _running_s3()
    if srv is None:
        stale = S3Server.from_state_dir(DEFAULT_S3_STATE_DIR)
        if stale is not None:
            stale.stop(clean=True)
        srv = S3Server.start(DEFAULT_S3_STATE_DIR)
    else:
        print("S3 server already running", file=sys.stderr)
    if args.real_nodes and _real_nodes_index() is None:
        teardown_stale()
        port = int(srv.endpoint_url.rsplit(":", 1)[1].rstrip("/"))
        nodes = RealNodes(
            cp,
            DEFAULT_STATE_DIR / "logs" / "real-nodes",
            count=args.real_nodes,
            forward_ports=(port,),
            die_with_parent=False,
        ).start()
        REAL_NODES_FILE.write_text(f"{nodes.index}\n")
        print(f"real nodes:        {', '.join(nodes.names)} (netns {nodes.netns}); pods reach S3"
              f" at http://{nodes.gateway_ip}:{port}")  # fmt: skip
    ENV_FILE.write_text("\n".join(_env_lines(cp, srv)) + "\n")
    _print(cp, srv)
    print(f"\nup in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    cp, srv = _running_cluster(), _running_s3()
    if cp is None or srv is None:
        print("not running (run: hack/cluster.py up)", file=sys.stderr)
        return 1
    print("\n".join(_env_lines(cp, srv)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cp, srv = _running_cluster(), _running_s3()
    if cp is not None:
        print(f"control plane: running {cp.server} pids={cp.pids()}")
        print(cp.kubectl("get", "nodes", "-o", "wide").stdout)
    else:
        print("control plane: not running")
    print(f"S3: running {srv.endpoint_url} pid={srv.pid}" if srv is not None else "S3: not running")
    return 0 if cp is not None and srv is not None else 1


def cmd_down(args: argparse.Namespace) -> int:
    k = _real_nodes_index()
    if k is not None:
        teardown(k)
        REAL_NODES_FILE.unlink()
        print("real nodes stopped", file=sys.stderr)
    if (DEFAULT_STATE_DIR / "cluster.json").is_file():
        ControlPlane.attach(DEFAULT_STATE_DIR / "kubeconfig", owned=True).stop(
            clean=not args.keep_state
        )
        print("control plane stopped", file=sys.stderr)
    else:
        print("control plane: nothing to stop", file=sys.stderr)
    srv = S3Server.from_state_dir(DEFAULT_S3_STATE_DIR)
    if srv is not None:
        srv.stop(clean=not args.keep_state)
        print("S3 server stopped", file=sys.stderr)
    else:
        print("S3 server: nothing to stop", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build if needed and start everything")
    up.add_argument("--cpu-nodes", type=int, default=2)
    up.add_argument("--gpu-nodes", type=int, default=2)
    up.add_argument(
        "--real-nodes", type=int, default=0, help="real kubelets to add (tests/fixtures/nodes.py)"
    )
    sub.add_parser("env", help="print the env exports for a running environment")
    sub.add_parser("status", help="show what is running")
    down = sub.add_parser("down", help="stop everything and delete state")
    down.add_argument("--keep-state", action="store_true", help="keep logs/data dirs")
    args = ap.parse_args(argv)
    return {"up": cmd_up, "env": cmd_env, "status": cmd_status, "down": cmd_down}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

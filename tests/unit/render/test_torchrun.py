"""The rendered command is a line both launchers accept, meaning what we intend.

Parsed, after the kubelet's $(JOB_COMPLETION_INDEX) expansion, by the programs themselves
(no process is started): torch's own torchrun parser and launch-config builder for
`launcher=("torchrun",)`, and ftjobs.trainer.launch's parser for the default launcher.
"""

from typing import Any

import pytest
from torch.distributed import run as torchrun

from ftjobs.api import constants as c
from ftjobs.render import RenderSettings
from ftjobs.trainer import launch
from tests.builders import make_job
from tests.unit.render.helpers import NAMESPACE, container, render

GRACE = RenderSettings().termination_grace_seconds
TORCHRUN = RenderSettings(launcher=("torchrun",))


def launch_config(
    container: dict[str, Any], index: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any, list[str]]:
    command = container["command"]
    assert command[0] == "torchrun"
    # The container's literal environment (torchrun reads some of it; it also sets
    # OMP_NUM_THREADS when unset, which must not leak into the test session).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for var in container["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
    # What the kubelet does with $(VAR) references to the container's environment.
    argv = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in command[1:]]
    return torchrun.config_from_args(torchrun.parse_args(argv))  # type: ignore[no-any-return]


@pytest.mark.parametrize(("nodes", "gpus", "index"), [(4, 8, 3), (2, 0, 1), (1, 0, 0)])
def test_torchrun_accepts_the_command(
    nodes: int, gpus: int, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = make_job("llm").nodes(nodes).gpus(gpus)
    objects = render(builder, attempt=2, settings=TORCHRUN)
    config, _, cmd_args = launch_config(container(objects), index, monkeypatch)
    assert (config.min_nodes, config.max_nodes) == (nodes, nodes)
    assert config.nproc_per_node == (gpus or 1)
    assert config.rdzv_backend == "static"
    assert config.rdzv_endpoint == f"llm-2-0.llm-2.{NAMESPACE}.svc:{c.MASTER_PORT}"
    assert config.rdzv_configs["rank"] == index
    assert int(config.rdzv_configs["timeout"]) == RenderSettings().rendezvous_timeout_seconds
    assert config.max_restarts == 0
    # Workers get most of the pod's grace period to checkpoint after SIGTERM.
    assert GRACE - 15 <= config.shutdown_timeout < GRACE
    # Each worker runs `python -m ftjobs.trainer --config /etc/ftjobs/job.json`.
    assert cmd_args[-4:] == ["-m", "ftjobs.trainer", "--config", "/etc/ftjobs/job.json"]


def test_shutdown_timeout_follows_the_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RenderSettings(launcher=("torchrun",), termination_grace_seconds=600)
    config, _, _ = launch_config(
        container(render(make_job("llm"), settings=settings)), 0, monkeypatch
    )
    assert 585 <= config.shutdown_timeout < 600


@pytest.mark.parametrize(("nodes", "gpus", "index"), [(4, 8, 3), (2, 0, 1), (1, 0, 0)])
def test_the_ftjobs_launcher_accepts_the_command(nodes: int, gpus: int, index: int) -> None:
    command = container(render(make_job("llm").nodes(nodes).gpus(gpus), attempt=2))["command"]
    assert command[:3] == ["python", "-m", "ftjobs.trainer.launch"]
    argv = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in command[3:]]
    args, rest = launch.parse_args(argv)
    assert (args.nnodes, args.node_rank, args.nproc_per_node) == (nodes, index, gpus or 1)
    assert args.master_addr == f"llm-2-0.llm-2.{NAMESPACE}.svc"
    assert args.master_port == c.MASTER_PORT
    assert args.module == "ftjobs.trainer"
    # Nothing of the launcher's line leaks into the trainer's argv.
    assert rest == ["--config", "/etc/ftjobs/job.json"]

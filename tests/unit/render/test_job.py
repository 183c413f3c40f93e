"""The Indexed Job, its torchrun command, failure policy and the headless Service."""

import shlex

import pytest

from ftjobs.api import constants as c
from ftjobs.render import RenderSettings
from tests.builders import make_job
from tests.unit.render.helpers import NAMESPACE, arg, by_kind, container, env, pod_spec, render


@pytest.mark.parametrize(("nodes", "gpus", "procs"), [(1, 0, 1), (2, 0, 4), (4, 8, 8), (3, 1, 1)])
def test_one_pod_per_node_and_one_process_per_gpu(nodes: int, gpus: int, procs: int) -> None:
    builder = make_job("llm").nodes(nodes).gpus(gpus)
    if not gpus:
        builder.procs(procs)
    objects = render(builder)
    job = by_kind(objects)["Job"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == nodes
    command = container(objects)["command"]
    assert arg(command, "--nnodes") == str(nodes)
    assert arg(command, "--nproc-per-node") == str(procs)


def test_the_launch_line_runs_the_trainer_module_with_the_mounted_config() -> None:
    objects = render(make_job("llm").nodes(4).gpus(8), attempt=2)
    command = container(objects)["command"]
    # The exit-code-preserving launcher by default (stock torchrun exits 1 on any failure).
    assert command[:3] == ["python", "-m", "ftjobs.trainer.launch"]
    assert arg(command, "--node-rank") == "$(JOB_COMPLETION_INDEX)"
    assert arg(command, "--master-addr") == f"llm-2-0.llm-2.{NAMESPACE}.svc"
    assert arg(command, "--master-port") == str(c.MASTER_PORT) == "29500"
    # Everything after the module is the trainer's own argv.
    module_at = command.index("-m", 3)
    assert command[module_at + 1 :] == [
        "ftjobs.trainer",
        "--config",
        f"{c.CONFIG_MOUNT_DIR}/{c.CONFIG_FILE_NAME}",
    ]
    # Exec form: no shell between the kubelet's SIGTERM and the launcher.
    assert "sh" not in command[0] and "-c" not in command
    assert "args" not in container(objects)
    # torchrun's own flags would reach the trainer's argv through this launcher.
    assert not any(a.startswith(("--max-restarts", "--rdzv")) for a in command)
    assert "TORCH_ELASTIC_SHUTDOWN_TIMEOUT" not in env(objects)


def test_stock_torchrun_gets_the_same_line_plus_its_own_flags() -> None:
    ours = container(render(make_job("llm").nodes(2)))["command"]
    objects = render(make_job("llm").nodes(2), settings=RenderSettings(launcher=("torchrun",)))
    theirs = container(objects)["command"]
    assert theirs[0] == "torchrun"
    # The controller restarts the whole gang; torchrun must not restart workers itself.
    assert arg(theirs, "--max-restarts") == "0"
    assert arg(theirs, "--rdzv-conf") == "timeout=1800"
    extra = {"--max-restarts=0", "--rdzv-conf=timeout=1800"}
    assert [a for a in theirs[1:] if a not in extra] == ours[3:]
    assert env(objects)["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"]["value"] == "110"
    module = RenderSettings(launcher=("python3", "-m", "torch.distributed.run"))
    assert arg(container(render(make_job("llm"), settings=module))["command"], "--max-restarts")
    assert command_of(RenderSettings(launcher=("/opt/conda/bin/torchrun",)))[1:] == theirs[1:]


def command_of(settings: RenderSettings) -> list[str]:
    command: list[str] = container(render(make_job("llm").nodes(2), settings=settings))["command"]
    return command


def test_the_node_rank_variable_is_the_completion_index() -> None:
    rank = env(render(make_job("llm").nodes(2)))["JOB_COMPLETION_INDEX"]
    assert rank["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )


def test_master_address_is_pod_zero_of_the_headless_service() -> None:
    objects = by_kind(render(make_job("llm").nodes(2), attempt=7))
    svc, job = objects["Service"], objects["Job"]
    pod = job["spec"]["template"]
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert pod["spec"]["subdomain"] == svc["metadata"]["name"]
    # The selector picks this attempt's pods only, not an older attempt's.
    assert svc["spec"]["selector"] == {c.LABEL_JOB: "llm", c.LABEL_ATTEMPT: "7"}
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert [p["port"] for p in svc["spec"]["ports"]] == [c.MASTER_PORT]
    host = f"{job['metadata']['name']}-0.{svc['metadata']['name']}.{NAMESPACE}.svc"
    assert arg(pod["spec"]["containers"][0]["command"], "--master-addr") == host


def test_pod_failure_policy_uses_the_trainers_exit_codes() -> None:
    job = by_kind(render(make_job("llm")))["Job"]["spec"]
    assert job["backoffLimit"] == 0
    assert "backoffLimitPerIndex" not in job
    rules = job["podFailurePolicy"]["rules"]
    codes = [r["onExitCodes"]["values"] for r in rules if "onExitCodes" in r]
    assert codes == [[c.EXIT_PERMANENT], [c.EXIT_RETRIABLE]]
    assert {r["onExitCodes"]["containerName"] for r in rules if "onExitCodes" in r} == {
        container(render(make_job("llm")))["name"]
    }
    # Permanent is decided first, so a disrupted pod that exits 78 still fails for good.
    assert rules[0]["onExitCodes"]["values"] == [c.EXIT_PERMANENT]
    assert {"type": "DisruptionTarget", "status": "True"} in rules[1]["onPodConditions"]
    assert all(r["action"] == "FailJob" for r in rules)
    # podFailurePolicy requires restartPolicy Never.
    assert pod_spec(render(make_job("llm")))["restartPolicy"] == "Never"


@pytest.mark.parametrize(
    ("suspend", "queue", "expected"),
    [(False, None, False), (True, None, True), (False, "q", True), (True, "q", True)],
)
def test_suspended_when_asked_or_queued(suspend: bool, queue: str | None, expected: bool) -> None:
    builder = make_job("llm").suspended(suspend)
    if queue:
        builder.queue(queue)
    assert by_kind(render(builder))["Job"]["spec"]["suspend"] is expected


def test_active_deadline_and_no_job_ttl() -> None:
    plain = by_kind(render(make_job("llm")))["Job"]["spec"]
    assert "activeDeadlineSeconds" not in plain
    job = by_kind(render(make_job("llm").deadline(3600).ttl(60)))["Job"]["spec"]
    assert job["activeDeadlineSeconds"] == 3600
    # The controller must still see a finished Job to decide the next attempt.
    assert "ttlSecondsAfterFinished" not in job


def test_pod_identity_and_termination() -> None:
    objects = render(make_job("llm"), settings=RenderSettings(termination_grace_seconds=300))
    pod = pod_spec(objects)
    assert pod["serviceAccountName"] == c.TRAINER_IDENTITY
    assert pod["automountServiceAccountToken"] is True
    assert pod["terminationGracePeriodSeconds"] == 300
    ctr = container(objects)
    assert ctr["name"] == "trainer"
    assert ctr["terminationMessagePath"] == c.TERMINATION_LOG
    assert ctr["terminationMessagePolicy"] == "FallbackToLogsOnError"
    variables = env(objects)
    assert variables["FTJOBS_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace"
    )
    assert variables["FTJOBS_JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        f"metadata.labels['{c.LABEL_JOB}']"
    )
    assert variables["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert variables["FTJOBS_REPORT_STATUS"]["value"] == "1"


def test_image_from_the_spec_else_the_settings() -> None:
    assert container(render(make_job("llm")))["image"] == c.DEFAULT_IMAGE
    settings = RenderSettings(image="registry.local/trainer:dev", image_pull_policy="Always")
    ctr = container(render(make_job("llm"), settings=settings))
    assert (ctr["image"], ctr["imagePullPolicy"]) == ("registry.local/trainer:dev", "Always")
    ctr = container(render(make_job("llm").image("ghcr.io/me/t:1"), settings=settings))
    assert ctr["image"] == "ghcr.io/me/t:1"


def test_the_command_reads_as_a_shell_line() -> None:
    # What an operator would paste into a pod's shell to reproduce rank 1.
    line = shlex.join(container(render(make_job("llm").nodes(2).gpus(8)))["command"])
    assert line == (
        "python -m ftjobs.trainer.launch --nnodes=2 --nproc-per-node=8 "
        "'--node-rank=$(JOB_COMPLETION_INDEX)' --master-addr=llm-1-0.llm-1.ml.svc "
        "--master-port=29500 -m ftjobs.trainer --config /etc/ftjobs/job.json"
    )

"""The images built from ./Dockerfile (hack/build-images.sh) run what the cluster runs.

The controller image runs as the Helm chart's Deployment renders it, the trainer image as
`render` writes the pod (uid/gid 1000, read-only root filesystem, the emptyDir mounts and
the config file a downwardAPI volume makes of the pod's annotation), both under podman
with a real OCI runtime. The archives handed to containerd hold the same images.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftjobs import __version__
from ftjobs.api.constants import CONFIG_ANNOTATION
from ftjobs.api.job import FineTuneJob
from ftjobs.render import render_job
from tests.builders import make_job
from tests.e2e.test_e2e_training import free_port
from tests.fixtures.controlplane import ensure_binaries
from tests.image.pod_runner import BuiltImage, PodRun, built_images, skopeo_config, storage_ref
from tests.training.tiny import make_tiny_model, tiny_dataset

REPO = Path(__file__).resolve().parents[2]


def _pin(name: str) -> str:
    for line in (REPO / "hack" / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in hack/constraints.txt")


@pytest.fixture(scope="module")
def images() -> dict[str, BuiltImage]:
    return built_images()


def _trainer_pod(tmp: Path, job: FineTuneJob | None = None) -> PodRun:
    job = job or make_job("img").build()
    objs = render_job(job, namespace="ns", name="img", uid="u-1", attempt=1, resume=False)
    batch = next(o for o in objs if o["kind"] == "Job")
    template = batch["spec"]["template"]
    meta = {
        "name": "img-1-0-abcde",
        "namespace": "ns",
        "labels": dict(template["metadata"]["labels"]),
        "annotations": {
            **template["metadata"].get("annotations", {}),
            "batch.kubernetes.io/job-completion-index": "0",
        },
    }
    spec = template["spec"]
    return PodRun(spec, spec["containers"][0], meta, tmp)


def _controller_pod(tmp: Path) -> PodRun:
    helm = str(ensure_binaries(("helm",))["helm"])
    proc = subprocess.run(
        [helm, "template", "ftjobs", str(REPO / "helm" / "ftjobs"), "-n", "ftjobs-system"],
        capture_output=True,
        text=True,
        check=True,
    )
    deploy = next(d for d in yaml.safe_load_all(proc.stdout) if d and d.get("kind") == "Deployment")
    template = deploy["spec"]["template"]
    meta = {"name": "ftjobs-controller-0", "namespace": "ftjobs-system", "labels": {}}
    meta["labels"] = template["metadata"].get("labels", {})
    spec = template["spec"]
    return PodRun(spec, spec["containers"][0], meta, tmp)


@pytest.fixture
def trainer_pod(tmp_path: Path) -> Iterator[PodRun]:
    run = _trainer_pod(tmp_path)
    yield run
    run.cleanup()


@pytest.fixture
def controller_pod(tmp_path: Path) -> Iterator[PodRun]:
    run = _controller_pod(tmp_path)
    yield run
    run.cleanup()


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


@pytest.mark.parametrize("target", ["trainer", "controller"])
def test_archive_holds_the_built_image(images: dict[str, BuiltImage], target: str) -> None:
    """What containerd imports (`ctr images import`) is the image the other tests run."""
    image = images[target]
    assert image.archive.is_file()
    from_archive = skopeo_config(f"docker-archive:{image.archive}")
    from_storage = skopeo_config(storage_ref(image.ref))
    assert from_archive["rootfs"]["diff_ids"] == from_storage["rootfs"]["diff_ids"]
    assert from_archive["config"]["User"] == "1000:1000"
    manifest = subprocess.run(
        ["tar", "-xOf", str(image.archive), "manifest.json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(manifest.stdout)[0]["RepoTags"] == [image.ref]


def test_controller_runs_as_the_chart_renders_it(
    images: dict[str, BuiltImage], controller_pod: PodRun
) -> None:
    ref = images["controller"].ref
    version = _ok(controller_pod.run(ref, command=["ftjobs", "version"]))
    assert __version__ in version
    assert "ftjobs" in _ok(controller_pod.run(ref, command=["ftjobs", "--help"]))
    # The chart's own command, asked for its usage: imports kopf, the k8s adapter, metrics.
    help_text = _ok(
        controller_pod.run(ref, command=[*controller_pod.container["command"], "--help"])
    )
    assert "--all-namespaces" in help_text
    ident = _ok(
        controller_pod.run(
            ref, command=["python", "-c", "import os; print(os.getuid(), os.getgid())"]
        )
    )
    assert ident.split() == ["1000", "1000"]


def test_controller_image_has_no_training_stack(
    images: dict[str, BuiltImage], controller_pod: PodRun
) -> None:
    probe = (
        "import importlib.util as u; print([m for m in ('torch', 'deepspeed') if u.find_spec(m)])"
    )
    out = _ok(controller_pod.run(images["controller"].ref, command=["python", "-c", probe]))
    assert out.strip() == "[]"


def test_trainer_stack_imports_as_the_rendered_pod(
    images: dict[str, BuiltImage], trainer_pod: PodRun
) -> None:
    probe = (
        "import importlib.metadata, json, os\n"
        "import torch, deepspeed, transformers, datasets, ftjobs.trainer\n"
        "w = []\n"
        "for p in ('/usr/ftjobs-probe', '/tmp/probe', '/scratch/probe', '/etc/ftjobs/job.json'):\n"
        "    try:\n"
        "        open(p, 'a').close(); w.append(p)\n"
        "    except OSError:\n"
        "        pass\n"
        "print(json.dumps({'torch': torch.__version__, 'deepspeed': deepspeed.__version__,"
        " 'transformers': transformers.__version__, 'datasets': datasets.__version__,"
        " 'bitsandbytes': importlib.metadata.version('bitsandbytes'),"
        " 'uid': os.getuid(), 'gid': os.getgid(), 'writable': w,"
        " 'config': open('/etc/ftjobs/job.json').read()}))"
    )
    out = _ok(trainer_pod.run(images["trainer"].ref, command=["python", "-c", probe]))
    got = json.loads(out.strip().splitlines()[-1])
    for name in ("torch", "deepspeed", "transformers", "datasets", "bitsandbytes"):
        assert got[name].split("+")[0] == _pin(name), (name, got)
    assert (got["uid"], got["gid"]) == (1000, 1000)
    # Read-only root filesystem and config volume: only the pod's emptyDirs take writes.
    assert got["writable"] == ["/tmp/probe", "/scratch/probe"]
    # The config file is the pod's annotation, byte for byte (the downwardAPI volume).
    assert got["config"] == trainer_pod.meta["annotations"][CONFIG_ANNOTATION]


def test_trainer_launcher_is_the_rendered_program(
    images: dict[str, BuiltImage], trainer_pod: PodRun
) -> None:
    """The rendered command's program (the launcher module) runs as the pod runs it."""
    command = [str(c) for c in trainer_pod.container["command"]]
    program = command[: command.index("ftjobs.trainer.launch") + 1]
    out = _ok(trainer_pod.run(images["trainer"].ref, command=[*program, "--help"]))
    assert "--nproc-per-node" in out and "-m MODULE" in out


def test_trainer_default_entrypoint_is_the_launcher(images: dict[str, BuiltImage]) -> None:
    config: dict[str, Any] = skopeo_config(storage_ref(images["trainer"].ref))["config"]
    assert config["Entrypoint"] == ["python", "-m", "ftjobs.trainer.launch"]
    assert config["User"] == "1000:1000"


@pytest.mark.timeout(1200)
def test_trainer_image_fine_tunes_as_the_rendered_pod(
    images: dict[str, BuiltImage], s3_server: Any, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    """The rendered pod's own command trains a tiny model on CPU, from and to S3.

    Differences from a cluster, each named: the S3 server is on this host's 127.0.0.1
    (host network), the headless Service's name resolves to 127.0.0.1 (--add-host) on a
    free port, DeepSpeed is told the accelerator is the CPU, and there is no API server to
    report status to.
    """
    model_dir = make_tiny_model("sequence-classification", tmp_path / "model")
    data = tiny_dataset("sequence-classification", tmp_path / "data", n=32)
    s3_client.upload_file(str(data), bucket, "data/train.jsonl")
    for path in model_dir.iterdir():
        s3_client.upload_file(str(path), bucket, f"models/tiny/{path.name}")
    job = (
        make_job("img")
        .task("sequence-classification")
        .spec("model", {"uri": f"s3://{bucket}/models/tiny"})
        .spec(
            "dataset",
            {
                "train": f"s3://{bucket}/data/train.jsonl",
                "fields": {"text": "text", "label": "label"},
            },
        )
        .spec("hyperparameters", {"maxSteps": 2, "globalBatchSize": 4, "microBatchSize": 4})
        .spec("deepspeed", {"zeroStage": 0, "precision": "fp32"})
        .spec("resources", {"nodes": 1, "cpu": "1", "memory": "2Gi"})
        .spec(
            "storage",
            {
                "output": f"s3://{bucket}/runs",
                "endpoint": s3_server.endpoint_url,
                "region": s3_server.region,
                "credentialsSecret": "s3",
            },
        )
        .build()
    )
    pod = _trainer_pod(tmp_path / "pod", job)
    pod.secrets = {
        "s3": {
            "AWS_ACCESS_KEY_ID": s3_server.access_key,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        }
    }
    command = [str(c) for c in pod.container["command"]]
    master = next(c.split("=", 1)[1] for c in command if c.startswith("--master-addr="))
    port = str(free_port())
    command = [f"--master-port={port}" if c.startswith("--master-port=") else c for c in command]
    try:
        proc = pod.run(
            images["trainer"].ref,
            command=command,
            network="host",
            hosts={master: "127.0.0.1"},
            extra_env={
                "DS_ACCELERATOR": "cpu",
                "OMP_NUM_THREADS": "1",
                "FTJOBS_REPORT_STATUS": "0",
            },
            timeout=1100,
        )
    finally:
        pod.cleanup()
    _ok(proc)
    keys = [
        o["Key"]
        for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="runs/").get("Contents", [])
    ]
    assert any(k.endswith("/model/config.json") for k in keys), keys

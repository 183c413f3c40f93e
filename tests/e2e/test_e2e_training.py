"""End to end on real parts: spec -> API server -> controller -> Job -> the pod's exact
command, env and mounted config run as local processes -> S3 -> status -> Succeeded.

kwok only pretends to run pods, so the test plays the kubelet: it reads the pod template
the controller created, resolves its env (fieldRefs, the Secret's keys), materialises its
volumes (job.json from the pod's config annotation, as its downwardAPI volume says;
emptyDirs) as local directories, and runs one process per Job index with MASTER_ADDR at
127.0.0.1 and a kubeconfig for the trainer's ServiceAccount.
A tiny model fine-tunes on CPU with its data on the test S3 server and its output on S3 or,
in the gs:// variant, on fake-gcs-server (a mixed-scheme job); rank 0 publishes progress
into the FineTuneJob's status; the test then ends the kwok pods with the processes' exit
codes, and the controller marks the job Succeeded with an outputModel that loads.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ftjobs.api.constants import TRAINER_IDENTITY
from tests.e2e.harness import (
    Api,
    ControllerProcess,
    ftj_manifest,
    install_crd,
    service_account_token,
    token_kubeconfig,
)
from tests.image.pod_runner import downward_api_files
from tests.training.tiny import make_tiny_model, tiny_dataset

NODES = 2


def sa_kubeconfig(cluster: Any, namespace: str, pod: dict[str, Any], out: Path) -> Path:
    """The kubeconfig of the shared trainer identity, its token bound to the pod as the kubelet's
    projected token is: the trainer admission policy admits the status patches of rank 0
    only from a pod of the FineTuneJob's own Job."""
    assert pod["spec"]["serviceAccountName"] == TRAINER_IDENTITY
    token = service_account_token(cluster, namespace, TRAINER_IDENTITY, pod)
    return token_kubeconfig(cluster, token, out, namespace)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def materialise(pod_spec: dict[str, Any], pod_meta: dict[str, Any], root: Path) -> dict[str, str]:
    """Local directories for the container's volume mounts: {mountPath: local dir}; a
    downwardAPI volume's files from the pod's metadata, as the kubelet writes them."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts: dict[str, str] = {}
    for mount in pod_spec["containers"][0].get("volumeMounts", []):
        local = root / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        volume = volumes[mount["name"]]
        if "downwardAPI" in volume:
            for path, value in downward_api_files(volume, pod_meta).items():
                (local / path).write_text(value)
        mounts[mount["mountPath"]] = str(local)
    return mounts


def localise(value: str, mounts: dict[str, str]) -> str:
    """Mount paths -> local dirs, in one pass (a local dir may contain a mount path)."""
    if not mounts:
        return value
    paths = sorted(mounts, key=len, reverse=True)
    pattern = r"(?<![\w.-])(" + "|".join(re.escape(p) for p in paths) + r")(?=/|$|[:=\s])"
    return re.sub(pattern, lambda m: mounts[m.group(1)], value)


def resolve_env(
    container: dict[str, Any], pod: dict[str, Any], index: int, secrets: dict[str, dict[str, str]]
) -> dict[str, str]:
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            if "job-completion-index" in path:
                env[var["name"]] = str(index)
            elif path == "metadata.namespace":
                env[var["name"]] = pod["metadata"]["namespace"]
            elif path == "metadata.name":
                env[var["name"]] = pod["metadata"]["name"]
            elif path.startswith("metadata.labels['"):
                env[var["name"]] = pod["metadata"]["labels"][path[len("metadata.labels['") : -2]]
            else:
                raise AssertionError(f"unhandled fieldRef {path}")
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secrets.get(ref["name"], {}).get(ref["key"])
            if value is None and not ref.get("optional"):
                raise AssertionError(f"secret key {ref} missing")
            if value is not None:
                env[var["name"]] = value
        else:
            raise AssertionError(f"unhandled env source {source}")
    return env


def expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), arg)


def download_prefix(uri: str, local: Path, s3: Any, gcs: Any) -> None:
    """Every object under `uri` (s3:// or gs://) into `local`, keys relative to `uri`."""
    scheme, _, rest = uri.partition("://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.rstrip("/") + "/"
    if scheme == "s3":
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        keys = [obj["Key"] for obj in listing]
    else:
        keys = [blob.name for blob in gcs.list_blobs(bucket, prefix=prefix)]
    assert keys, f"nothing under {uri}"
    for key in keys:
        target = local / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        if scheme == "s3":
            s3.download_file(bucket, key, str(target))
        else:
            gcs.bucket(bucket).blob(key).download_to_filename(str(target))


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("output_scheme", ["s3", "gs"])
def test_finetunejob_end_to_end(
    cluster: Any,
    s3_server: Any,
    s3_client: Any,
    bucket: str,
    namespace: str,
    tmp_path: Path,
    output_scheme: str,
    request: pytest.FixtureRequest,
) -> None:
    install_crd(cluster)
    api = Api(cluster.kubeconfig)
    s3 = s3_client
    model_dir = make_tiny_model("sequence-classification", tmp_path / "model")
    data = tiny_dataset("sequence-classification", tmp_path / "data", n=64)
    s3.upload_file(str(data), bucket, "data/train.jsonl")
    api.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3", "namespace": namespace},
            "stringData": {
                "AWS_ACCESS_KEY_ID": s3_server.access_key,
                "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
            },
        }
    )
    controller = ControllerProcess(
        cluster.kubeconfig, "--namespace", namespace, "--no-leader-elect", name="e2e"
    ).start()
    name = "e2e"
    storage: dict[str, Any] = {
        "output": f"s3://{bucket}/runs",
        "endpoint": s3_server.endpoint_url,
        "region": s3_server.region,
        "credentialsSecret": "s3",
    }
    gcs = None
    if output_scheme == "gs":
        # Data stays on s3://, the outputs go to gs:// (anonymous emulator: no gcs Secret).
        gcs_server = request.getfixturevalue("gcs_server")
        gcs_bucket = request.getfixturevalue("gcs_bucket")
        gcs = gcs_server.client()
        storage["output"] = f"gs://{gcs_bucket}/runs"
        storage["gcs"] = {"endpoint": gcs_server.endpoint_url}
    try:
        api.create_ftj(
            ftj_manifest(
                name,
                namespace,
                model={"uri": f"file://{model_dir}"},
                dataset={
                    "train": f"s3://{bucket}/data/train.jsonl",
                    "fields": {"text": "text", "label": "label"},
                },
                hyperparameters={
                    "maxSteps": 6,
                    "globalBatchSize": 8,
                    "microBatchSize": 4,
                    "learningRate": 1e-3,
                },
                deepspeed={"zeroStage": 0, "precision": "fp32"},
                resources={"nodes": NODES, "cpu": "1", "memory": "2Gi"},
                storage=storage,
                checkpointing={"everySteps": 3},
            )
        )
        pods = api.running_pods(namespace, name, 1, NODES)
        job = api.kube.get("batch/v1", "Job", namespace, f"{name}-1")
        template = job["spec"]["template"]
        container = template["spec"]["containers"][0]
        secret = {
            "s3": {
                "AWS_ACCESS_KEY_ID": s3_server.access_key,
                "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
            }
        }
        port = str(free_port())
        by_index = {
            int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]): p
            for p in pods
        }
        procs: dict[int, subprocess.Popen[bytes]] = {}
        logs: dict[int, Path] = {}
        for index, pod in sorted(by_index.items()):
            root = tmp_path / f"pod-{index}"
            mounts = materialise(template["spec"], pod["metadata"], root)
            kubeconfig = sa_kubeconfig(cluster, namespace, pod, root / "sa.yaml")
            env = resolve_env(container, pod, index, secret)
            env = {k: localise(v, mounts) for k, v in env.items()}
            argv = [localise(expand(a, env), mounts) for a in container["command"]]
            argv += [localise(expand(a, env), mounts) for a in container.get("args", [])]
            argv = [
                "--master-addr=127.0.0.1"
                if a.startswith("--master-addr=")
                else f"--master-port={port}"
                if a.startswith("--master-port=")
                else a
                for a in argv
            ]
            launcher = shutil.which(argv[0], path=str(Path(sys.executable).parent))
            assert launcher, f"{argv[0]} not found next to {sys.executable}"
            argv[0] = launcher
            logs[index] = root / "trainer.log"
            procs[index] = subprocess.Popen(
                argv,
                env={
                    **env,
                    "PATH": os.environ["PATH"],
                    "KUBECONFIG": str(kubeconfig),
                    "DS_ACCELERATOR": "cpu",
                    "OMP_NUM_THREADS": "1",
                    "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1",
                },
                stdout=logs[index].open("wb"),
                stderr=subprocess.STDOUT,
                cwd=root,
            )
        codes = {i: p.wait(1200) for i, p in procs.items()}
        output = "\n".join(f"--- rank {i} ---\n{logs[i].read_text()[-3000:]}" for i in logs)
        assert codes == {i: 0 for i in procs}, output
        status = api.status(namespace, name)
        assert status.get("progress", {}).get("step", 0) > 0, (status, output)
        for index, pod in by_index.items():
            cluster.pod_exit(pod["metadata"]["name"], namespace, codes[index])
        status = api.wait_phase(namespace, name, "Succeeded", timeout=60)
        assert status["progress"]["step"] == 6
        model_uri = status["outputModel"]
        assert model_uri.startswith(f"{storage['output']}/{namespace}/{name}/")
        # The exported model loads.
        local = tmp_path / "exported"
        download_prefix(model_uri, local, s3, gcs)
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(local)
        assert model.num_labels == 2
    finally:
        controller.stop()

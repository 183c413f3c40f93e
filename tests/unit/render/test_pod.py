"""The trainer pod: resources, placement, volumes, environment and credentials."""

from typing import Any

from ftjobs.api import constants as c
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.render import RenderSettings
from tests.builders import JobBuilder, make_job
from tests.unit.render.helpers import (
    by_kind,
    container,
    env,
    pod_spec,
    render,
    trainer_config_json,
)


def mounts(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container(objects)["volumeMounts"]}


def volumes(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec(objects)["volumes"]}


def test_cpu_job_requests_equal_limits_and_no_gpu() -> None:
    objects = render(make_job("llm").cpu("4").memory("16Gi"))
    res = container(objects)["resources"]
    assert res == {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"cpu": "4", "memory": "16Gi"},
    }
    pod = pod_spec(objects)
    assert "tolerations" not in pod and "nodeSelector" not in pod
    assert "/dev/shm" not in mounts(objects)


def test_gpu_job_limits_gpus_and_tolerates_the_gpu_taint() -> None:
    objects = render(make_job("llm").nodes(2).gpus(8))
    res = container(objects)["resources"]
    assert res["limits"]["nvidia.com/gpu"] == "8"
    assert "nvidia.com/gpu" not in res["requests"]
    assert pod_spec(objects)["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # NCCL needs more than the runtime's 64 MiB /dev/shm.
    assert mounts(objects)["/dev/shm"]["name"] == "dshm"
    assert volumes(objects)["dshm"]["emptyDir"] == {"medium": "Memory"}


def test_gpu_resource_name_and_toleration_are_settings() -> None:
    settings = RenderSettings(gpu_resource="amd.com/gpu", gpu_tolerations=False)
    objects = render(make_job("llm").gpus(2), settings=settings)
    assert container(objects)["resources"]["limits"]["amd.com/gpu"] == "2"
    assert "tolerations" not in pod_spec(objects)
    amd = render(make_job("llm").gpus(2), settings=RenderSettings(gpu_resource="amd.com/gpu"))
    assert pod_spec(amd)["tolerations"][0]["key"] == "amd.com/gpu"


def test_spec_tolerations_node_selector_priority_scheduler() -> None:
    builder = (
        make_job("llm")
        .gpus(1)
        .toleration("dedicated", "ml", effect="NoExecute", seconds=30)
        .toleration("nvidia.com/gpu", effect="NoSchedule")
        .node_label("cloud.google.com/gke-accelerator", "nvidia-h100-80gb")
        .node_selector(pool="train")
        .priority("high")
        .scheduler("volcano")
    )
    pod = pod_spec(render(builder))
    assert pod["tolerations"] == [
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "ml",
            "effect": "NoExecute",
            "tolerationSeconds": 30,
        },
        # The user's own GPU toleration is kept and not duplicated.
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-h100-80gb",
        "pool": "train",
    }
    assert pod["priorityClassName"] == "high"
    assert pod["schedulerName"] == "volcano"


def test_shared_memory_size_from_the_spec_on_cpu_too() -> None:
    objects = render(make_job("llm").shm("2Gi"))
    assert volumes(objects)["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    assert "/dev/shm" in mounts(objects)


def test_config_scratch_and_tmp_volumes() -> None:
    objects = render(make_job("llm"), attempt=2)
    got = mounts(objects)
    assert got[c.CONFIG_MOUNT_DIR] == {
        "name": "config",
        "mountPath": c.CONFIG_MOUNT_DIR,
        "readOnly": True,
    }
    # The kubelet writes the pod's config annotation to job.json, read-only.
    assert volumes(objects)["config"]["downwardAPI"] == {
        "defaultMode": 0o444,
        "items": [
            {
                "path": c.CONFIG_FILE_NAME,
                "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": f"metadata.annotations['{c.CONFIG_ANNOTATION}']",
                },
            }
        ],
    }
    annotations = by_kind(objects)["Job"]["spec"]["template"]["metadata"]["annotations"]
    assert TrainerConfig.model_validate_json(annotations[c.CONFIG_ANNOTATION]).attempt == 2
    assert volumes(objects)["scratch"]["emptyDir"] == {}
    assert {c.SCRATCH_DIR, "/tmp"} <= got.keys()
    # Every mount has a volume and every volume is mounted.
    assert {m["name"] for m in got.values()} == volumes(objects).keys()
    limited = render(make_job("llm"), settings=RenderSettings(scratch_size_limit="100Gi"))
    assert volumes(limited)["scratch"]["emptyDir"] == {"sizeLimit": "100Gi"}


def test_storage_endpoint_and_region_from_the_spec_else_the_settings() -> None:
    settings = RenderSettings(s3_endpoint="http://minio.storage:9000", s3_region="eu-west-1")
    defaults = env(render(make_job("llm"), settings=settings))
    assert defaults["AWS_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"
    assert defaults["AWS_DEFAULT_REGION"]["value"] == "eu-west-1"
    own = env(
        render(
            make_job("llm").endpoint("https://s3.example.com").region("us-east-2"),
            settings=settings,
        )
    )
    assert own["AWS_ENDPOINT_URL"]["value"] == "https://s3.example.com"
    assert own["AWS_DEFAULT_REGION"]["value"] == own["AWS_REGION"]["value"] == "us-east-2"
    bare = env(render(make_job("llm")))
    assert "AWS_ENDPOINT_URL" not in bare and "AWS_DEFAULT_REGION" not in bare


def _env_entries(node: Any) -> list[dict[str, Any]]:
    """Every env entry of every container anywhere in the objects."""
    if isinstance(node, dict):
        found = [e for e in node.get("env", []) if isinstance(e, dict)]
        return found + [e for v in node.values() for e in _env_entries(v)]
    if isinstance(node, list):
        return [e for v in node for e in _env_entries(v)]
    return []


def test_credentials_come_only_from_secret_key_refs() -> None:
    objects = render(make_job("llm").credentials("s3-creds"))
    variables = env(objects)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert variables[key] == {
            "name": key,
            "valueFrom": {
                "secretKeyRef": {"name": "s3-creds", "key": key}
                | ({"optional": True} if key == "AWS_SESSION_TOKEN" else {})
            },
        }
    # The renderer never sees a secret value: credential variables are references, and no
    # envFrom imports keys the trainer did not ask for.
    entries = _env_entries(objects)
    assert len(entries) == len(variables)
    for entry in entries:
        if "value" in entry:
            assert not any(w in entry["name"] for w in ("SECRET", "TOKEN", "ACCESS_KEY"))
    assert "envFrom" not in str(objects)
    config = trainer_config_json(objects)
    assert "s3-creds" in config and "AWS_" not in config


def test_no_credentials_env_without_a_secret() -> None:
    variables = env(render(make_job("llm")))
    assert not {k for k in variables if k.startswith("AWS_") and "KEY" in k}
    assert not any("secretKeyRef" in str(v) for v in variables.values())


def test_runtime_env_for_a_read_only_root_filesystem() -> None:
    variables = env(render(make_job("llm")))
    assert variables["HOME"]["value"] == "/tmp"
    assert variables["HF_HOME"]["value"].startswith(c.SCRATCH_DIR)
    # hf:// models download from the Hub; storage models must not reach it.
    assert "HF_HUB_OFFLINE" not in variables
    offline = env(render(make_job("llm").model("s3://models/llama/")))
    assert offline["HF_HUB_OFFLINE"]["value"] == "1"


def test_threads_per_process_share_the_pods_cpus() -> None:
    def threads(builder: JobBuilder) -> str:
        value: str = env(render(builder))["OMP_NUM_THREADS"]["value"]
        return value

    assert threads(make_job("a").cpu("16").procs(4)) == "4"
    assert threads(make_job("a").cpu("2")) == "2"
    assert threads(make_job("a").cpu("96").gpus(8)) == "12"
    assert threads(make_job("a").cpu("500m")) == "1"
    assert threads(make_job("a").cpu("3").procs(2)) == "1"


def test_hub_env_endpoint_and_token_by_reference_only() -> None:
    job = (
        make_job("llm")
        .model("s3://models/llama/")
        .train("hf://datasets/org/instructions/train.jsonl")
        .spec("hub", {"endpoint": "https://hub.mirror.example", "tokenSecret": "hf-token"})
    )
    variables = env(render(job))
    # A Hub dataset alone is enough to need the Hub.
    assert "HF_HUB_OFFLINE" not in variables
    assert variables["HF_ENDPOINT"]["value"] == "https://hub.mirror.example"
    assert variables["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}},
    }
    # Hub settings do nothing for a job that reads nothing from the Hub.
    offline = env(render(job.train("s3://data/train.jsonl")))
    assert offline["HF_HUB_OFFLINE"]["value"] == "1"
    assert "HF_TOKEN" not in offline and "HF_ENDPOINT" not in offline


def test_mlflow_credentials_come_only_from_secret_key_refs() -> None:
    tracking = {"trackingUri": "https://mlflow.example.com", "credentialsSecret": "ml-creds"}
    objects = render(make_job("llm").spec("tracking", {"mlflow": tracking}))
    variables = env(objects)
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        assert variables[key] == {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": "ml-creds", "key": key, "optional": True}},
        }
    assert "envFrom" not in str(objects)
    # Without a Secret (a server without auth) no MLflow variable is rendered.
    tracking.pop("credentialsSecret")
    plain = env(render(make_job("llm").spec("tracking", {"mlflow": tracking})))
    assert not {k for k in plain if k.startswith("MLFLOW_")}

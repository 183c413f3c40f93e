"""The pod's volumes: the resolved config (a downwardAPI file from the pod's annotation),
scratch space, /tmp, shared memory, and what the storage schemes need (render.schemes:
e.g. a credentials file from a Secret).

Every writable path is an emptyDir, which is what lets the root filesystem be read-only.
"""

from typing import Any

from ftjobs.api.constants import (
    CONFIG_ANNOTATION,
    CONFIG_FILE_NAME,
    CONFIG_MOUNT_DIR,
    SCRATCH_DIR,
)
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.schemes import scheme_mounts, scheme_volumes
from ftjobs.render.settings import RenderSettings

CONFIG_VOLUME = "config"
SCRATCH_VOLUME = "scratch"
TMP_VOLUME = "tmp"
SHM_VOLUME = "dshm"


def needs_shared_memory(spec: FineTuneJobSpec) -> bool:
    """Container runtimes give /dev/shm 64 MiB: too little for NCCL and dataloader workers."""
    return spec.resources.shared_memory is not None or spec.resources.gpus_per_node > 0


def scratch_size(spec: FineTuneJobSpec, settings: RenderSettings) -> str | None:
    """The /scratch emptyDir's sizeLimit: spec.resources.scratchSize, else the controller's."""
    return spec.resources.scratch_size or settings.scratch_size_limit


def config_volume() -> dict[str, Any]:
    """The config file: the kubelet writes the pod's CONFIG_ANNOTATION to CONFIG_FILE_NAME,
    byte for byte, as it would a ConfigMap's key (same file, same path for the trainer)."""
    field = {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{CONFIG_ANNOTATION}']"}
    return {
        "name": CONFIG_VOLUME,
        # 0444: the trainer reads its config and never changes it.
        "downwardAPI": {
            "defaultMode": 0o444,
            "items": [{"path": CONFIG_FILE_NAME, "fieldRef": field}],
        },
    }


def volumes(spec: FineTuneJobSpec, *, settings: RenderSettings) -> list[dict[str, Any]]:
    scratch: dict[str, Any] = {}
    if size := scratch_size(spec, settings):
        scratch["sizeLimit"] = size
    out: list[dict[str, Any]] = [
        config_volume(),
        # Checkpoints are written here first, then uploaded in the background.
        {"name": SCRATCH_VOLUME, "emptyDir": scratch},
        {"name": TMP_VOLUME, "emptyDir": {}},
    ]
    if needs_shared_memory(spec):
        shm: dict[str, Any] = {"medium": "Memory"}
        if spec.resources.shared_memory is not None:
            # Memory-backed: it counts against the container's memory limit.
            shm["sizeLimit"] = spec.resources.shared_memory
        out.append({"name": SHM_VOLUME, "emptyDir": shm})
    return out + scheme_volumes(spec)


def volume_mounts(spec: FineTuneJobSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT_DIR, "readOnly": True},
        {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_DIR},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
    ]
    if needs_shared_memory(spec):
        out.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    return out + scheme_mounts(spec)

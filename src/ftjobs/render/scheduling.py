"""Where and with what the pods run: resources, GPUs, node selector, tolerations, priority."""

from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.settings import RenderSettings


def resources(spec: FineTuneJobSpec, settings: RenderSettings) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS for CPU/memory: training is not burstable)."""
    res = spec.resources
    amounts: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    requests = dict(amounts)
    limits = dict(amounts)
    if res.gpus_per_node:
        # Extended resources must have requests == limits; the limit alone implies the request.
        limits[settings.gpu_resource] = str(res.gpus_per_node)
    return {"requests": requests, "limits": limits}


def gpu_toleration(settings: RenderSettings) -> dict[str, Any]:
    """GPU node pools are commonly tainted `<gpu resource>:NoSchedule` to keep CPU pods off."""
    return {"key": settings.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}


def tolerations(spec: FineTuneJobSpec, settings: RenderSettings) -> list[dict[str, Any]]:
    """The spec's tolerations (in order), plus the GPU taint's on GPU jobs unless given."""
    out = [t.model_dump(by_alias=True, exclude_none=True) for t in spec.resources.tolerations]
    gpu = spec.resources.gpus_per_node > 0 and settings.gpu_tolerations
    if gpu and not any(t.get("key") == settings.gpu_resource for t in out):
        out.append(gpu_toleration(settings))
    return out


def pod_scheduling(spec: FineTuneJobSpec, settings: RenderSettings) -> dict[str, Any]:
    """Pod-spec fields about placement; empty ones are left out."""
    res = spec.resources
    out: dict[str, Any] = {}
    if res.node_selector:
        out["nodeSelector"] = dict(sorted(res.node_selector.items()))
    tols = tolerations(spec, settings)
    if tols:
        out["tolerations"] = tols
    if res.priority_class_name:
        out["priorityClassName"] = res.priority_class_name
    if res.scheduler_name:
        out["schedulerName"] = res.scheduler_name
    return out

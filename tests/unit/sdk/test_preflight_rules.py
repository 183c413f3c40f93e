"""Preflight's pure rules: taint toleration as the scheduler matches it."""

from __future__ import annotations

from ftjobs.sdk.preflight import _tolerated

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GPU_TOL = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def test_gpu_taint_is_tolerated_by_the_renderers_toleration() -> None:
    assert _tolerated(GPU_TAINT, [GPU_TOL])


def test_other_taints_block_unless_tolerated() -> None:
    reserved = {"key": "team", "value": "vision", "effect": "NoSchedule"}
    assert not _tolerated(reserved, [GPU_TOL])
    assert _tolerated(reserved, [{"key": "team", "operator": "Equal", "value": "vision"}])
    assert not _tolerated(reserved, [{"key": "team", "operator": "Equal", "value": "nlp"}])
    assert _tolerated(reserved, [{"operator": "Exists"}])  # tolerates everything
    evict = {"key": "team", "value": "vision", "effect": "NoExecute"}
    assert not _tolerated(evict, [{"key": "team", "value": "vision", "effect": "NoSchedule"}])


def test_prefer_no_schedule_never_blocks() -> None:
    assert _tolerated({"key": "x", "effect": "PreferNoSchedule"}, [])

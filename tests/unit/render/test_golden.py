"""Golden files: the rendered objects of representative jobs, reviewed by eye.

`UPDATE_GOLDEN=1 pytest tests/unit/render/test_golden.py` rewrites them; review the diff
(the pod command must be a torchrun line a multi-node DeepSpeed job really needs).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftjobs.render import RenderSettings
from tests.builders import JobBuilder, make_job
from tests.unit.render.helpers import render

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "render"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@dataclass
class Case:
    job: JobBuilder
    attempt: int = 1
    resume: bool = False
    settings: RenderSettings = field(default_factory=RenderSettings)


CASES: dict[str, Case] = {
    # The quickstart shape: one CPU pod, storage on an in-cluster S3 server.
    "cpu-single-node": Case(
        make_job("sms-spam")
        .task("sequence-classification")
        .model("hf://sentence-transformers/all-MiniLM-L6-v2")
        .train("s3://datasets/sms-spam/train.csv")
        .epochs(2)
        .batch(16, 16)
        .cpu("2")
        .memory("4Gi")
        .credentials("s3-credentials"),
        settings=RenderSettings(s3_endpoint="http://versitygw.storage.svc:7070"),
    ),
    # Full fine-tuning across 4 nodes x 8 GPUs, ZeRO-3 bf16; a second attempt resuming.
    "zero3-4x8-bf16": Case(
        make_job("llama-8b-instruct")
        .model("s3://models/llama-3.1-8b/", dtype="bfloat16")
        .train("s3://datasets/instructions/train.jsonl")
        .nodes(4)
        .gpus(8)
        .zero(3)
        .bf16()
        .batch(256, 2)
        .cpu("96")
        .memory("1500Gi")
        .shm("256Gi")
        .output("s3://ml-outputs/finetunes")
        .region("us-east-1")
        .credentials("s3-credentials")
        .checkpoint(everySteps=500, keep=3)
        .deadline(259200),
        attempt=2,
        resume=True,
    ),
    # A LoRA adapter on one node with 2 GPUs.
    "lora": Case(
        make_job("mistral-lora")
        .model("hf://mistralai/Mistral-7B-v0.3")
        .lora(r=16, alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        .gpus(2)
        .bf16()
        .zero(2)
        .batch(32, 4)
        .cpu("16")
        .memory("128Gi")
        .endpoint("https://s3.eu-central-1.example.com")
        .credentials("s3-credentials"),
    ),
    # Queued in Kueue (created suspended) with a PriorityClass, on 2 x 4 GPUs.
    "kueue-priority": Case(
        make_job("queued-sft")
        .nodes(2)
        .gpus(4)
        .bf16()
        .queue("team-nlp")
        .priority("training-high")
        .cpu("32")
        .memory("256Gi")
        .credentials("s3-credentials"),
        settings=RenderSettings(image="registry.example.com/ml/ftjobs-trainer:0.1.0"),
    ),
    # CPU pool reserved by a taint, chosen by node labels, 2 nodes x 4 processes.
    "tolerations-node-selector": Case(
        make_job("cpu-pool")
        .task("seq2seq")
        .model("s3://models/t5-small/")
        .train("s3://datasets/translation/train.jsonl")
        .nodes(2)
        .procs(4)
        .batch(32, 4)
        .cpu("16")
        .memory("64Gi")
        .shm("8Gi")
        .node_selector(pool="training")
        .node_label("node.kubernetes.io/instance-type", "c7i.8xlarge")
        .toleration("dedicated", "training", effect="NoSchedule")
        .toleration("spot", operator="Exists", effect="NoExecute", seconds=300)
        .scheduler("volcano")
        .credentials("s3-credentials"),
    ),
    # Stock torchrun as the launcher (RenderSettings(launcher=("torchrun",))), 2 x 8 GPUs.
    "torchrun-launcher": Case(
        make_job("stock-torchrun").nodes(2).gpus(8).zero(3).bf16().cpu("64").memory("512Gi"),
        settings=RenderSettings(launcher=("torchrun",), termination_grace_seconds=300),
    ),
}


class _Dumper(yaml.SafeDumper):
    """Block style, literal blocks for multi-line strings (the config JSON annotation)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, width=100)


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    case = CASES[name]
    text = dump(render(case.job, attempt=case.attempt, resume=case.resume, settings=case.settings))
    path = GOLDEN_DIR / f"{name}.yaml"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert path.read_text() == text, f"{path.name} differs: review, then UPDATE_GOLDEN=1"
    # The golden is the objects, not just text: it loads back to what was rendered.
    assert list(yaml.safe_load_all(path.read_text())) == render(
        case.job, attempt=case.attempt, resume=case.resume, settings=case.settings
    )


def test_no_stale_golden_files() -> None:
    assert {p.stem for p in GOLDEN_DIR.glob("*.yaml")} == set(CASES)

"""Every example in examples/ validates, says how to run it, and renders."""

from pathlib import Path

import pytest

from ftjobs.sdk.manifests import render_manifests
from ftjobs.sdk.spec import is_finetunejob, load_documents, load_job

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    p
    for p in (ROOT / "examples").glob("**/*.yaml")
    if any(is_finetunejob(d) for d in load_documents(p))
)
IDS = [str(p.relative_to(ROOT / "examples")) for p in EXAMPLES]
REQUIRED = {
    "instruction-tuning-zero3.yaml",
    "lora-causal-lm.yaml",
    "translation-seq2seq.yaml",
    "question-answering.yaml",
    "kueue-queued.yaml",
    "spam-classification.yaml",
}


def test_the_documented_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= REQUIRED


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_example_validates(path: Path) -> None:
    job = load_job(path)
    assert job.metadata.name


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_example_starts_with_comments_saying_how_to_run_it(path: Path) -> None:
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert len(header) >= 2, "start with comment lines: what it is, how to run it"
    text = "\n".join(header)
    assert any(cmd in text for cmd in ("ftjobs run", "kubectl apply", "ftjobs submit")), text


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_example_renders(path: Path) -> None:
    job = load_job(path)
    objects = render_manifests(job, namespace="examples")
    job_objects = [o for o in objects if o["kind"] == "Job"]
    assert len(job_objects) == 1
    assert job_objects[0]["spec"]["completions"] == job.spec.resources.nodes


def test_the_zero3_example_is_two_nodes_of_eight_gpus_in_bf16() -> None:
    spec = load_job(ROOT / "examples/instruction-tuning-zero3.yaml").spec
    assert (spec.resources.nodes, spec.resources.gpus_per_node) == (2, 8)
    assert spec.deepspeed.zero_stage == 3 and spec.deepspeed.precision == "bf16"
    assert spec.storage.output.startswith("s3://") and spec.dataset.train.startswith("s3://")

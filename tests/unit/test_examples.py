"""Every example in examples/ validates, says how to run it, and renders."""

from pathlib import Path

import pytest

from ftjobs.sdk.manifests import render_manifests
from ftjobs.sdk.spec import is_finetunejob, load_documents, load_job
from tests.example_headers import argv, header_commands, header_lines

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
    """The header's commands are what tests/e2e/test_example_headers.py executes."""
    assert len(header_lines(path)) >= 2, "start with comment lines: what it is, how to run it"
    commands = header_commands(path)
    assert any(c.startswith(("ftjobs run", "kubectl apply", "ftjobs submit")) for c in commands), (
        commands
    )
    for c in commands:
        assert str(path.relative_to(ROOT)) in c or not c.startswith(("ftjobs", "kubectl apply")), c


def test_header_commands_are_read_like_a_shell_would(tmp_path: Path) -> None:
    example = tmp_path / "x.yaml"
    example.write_text(
        "# What it is: prose, not python or make advice: a note\n"
        "# Run it locally: ftjobs run x.yaml --set a=1 \\\n"
        "#     --set b=2   # a comment\n"
        "#   or on a cluster:   kubectl apply -f x.yaml\n"
        "#   python hack/prepare.py\n"
        "apiVersion: v1\n"
        "# ftjobs run after-the-header.yaml\n"
    )
    assert header_commands(example) == [
        "ftjobs run x.yaml --set a=1 --set b=2   # a comment",
        "kubectl apply -f x.yaml",
        "python hack/prepare.py",
    ]
    env = {"HOME": "/h", "B": "bkt"}
    assert argv("ftjobs run x.yaml --set a=1 --set b=2   # a comment", env)[-1] == "b=2"
    assert argv("aws s3 cp ~/m s3://$B/m", env) == ["aws", "s3", "cp", "/h/m", "s3://bkt/m"]


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

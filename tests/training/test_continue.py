"""Continue from a result: restart a job from a chosen checkpoint (resumeFromStep), and
fine-tune further from an earlier job's model (model.fromJob, resolved as `ftjobs run`
does) with the lineage in the model card and summary.json.

One process (1 simulated node), file:// storage; the tiny classification job.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftjobs.api.constants import EXIT_PERMANENT
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.sdk.local_parent import resolve_local_parent
from tests.training.trainer_run import classification_spec, run, write_config


def _steps(job: Path) -> list[int]:
    found = (job / "checkpoints").glob("step-*/MANIFEST.json")
    return sorted(int(p.parent.name[5:]) for p in found)


def test_restart_from_a_chosen_checkpoint_then_continue_from_the_model(
    tmp_path: Path, tiny_classification: tuple[Path, Path]
) -> None:
    model, data = tiny_classification
    overrides = {
        "hyperparameters": {"maxSteps": 12},
        "checkpointing": {"everySteps": 4, "keep": 3},
        "evaluation": {"compareBaseModel": False},
        "resources": {"nodes": 1},
    }
    spec = classification_spec(model, data, tmp_path / "a", **overrides)
    write_config(tmp_path / "a.json", spec, name="first")
    codes, nodes = run(tmp_path / "a.json", tmp_path / "run-a", nnodes=1)
    assert codes == [0], nodes.output()[-3000:]
    job = tmp_path / "a" / "t" / "first"
    assert _steps(job) == [4, 8, 12]

    # A step that is not a complete checkpoint: refused, permanently, with what there is.
    (job / "summary.json").unlink()
    bad = {**spec, "checkpointing": {**spec["checkpointing"], "resumeFromStep": 6}}
    write_config(tmp_path / "bad.json", bad, name="first")
    codes, nodes = run(tmp_path / "bad.json", tmp_path / "run-bad", nnodes=1)
    assert codes == [EXIT_PERMANENT], nodes.output()[-3000:]
    assert "resumeFromStep" in nodes.output() and "[4, 8, 12]" in nodes.output()
    assert _steps(job) == [4, 8, 12]  # nothing discarded on a refusal

    # Restart from step 4: steps 8 and 12 of the abandoned run go, training redoes 5..12.
    again = {**spec, "checkpointing": {**spec["checkpointing"], "resumeFromStep": 4}}
    write_config(tmp_path / "b.json", again, name="first")
    codes, nodes = run(tmp_path / "b.json", tmp_path / "run-b", nnodes=1)
    assert codes == [0], nodes.output()[-3000:]
    summary = json.loads((job / "summary.json").read_text())
    assert summary["resumedFromStep"] == 4 and summary["steps"] == 12
    assert f"resumed from file://{job}/checkpoints/step-{4:09d}/" in nodes.output()

    # A second job fine-tunes the first one's model further (`model.fromJob: first`, as
    # `ftjobs run` resolves it from the same output root): lineage in the card.
    second = classification_spec(
        model, data, tmp_path / "a", **{**overrides, "hyperparameters": {"maxSteps": 4}}
    )
    second["model"] = {"fromJob": "first"}
    resolved, parent = resolve_local_parent(FineTuneJobSpec.model_validate(second), "t")
    assert parent is not None and resolved.model.uri == f"file://{job / 'model'}"
    config = TrainerConfig.for_job(resolved, name="second", namespace="t", parent=parent)
    (tmp_path / "c.json").write_text(config.model_dump_json(by_alias=True))
    codes, nodes = run(tmp_path / "c.json", tmp_path / "run-c", nnodes=1)
    assert codes == [0], nodes.output()[-3000:]
    out = tmp_path / "a" / "t" / "second" / "model"
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["continuedFrom"] == {"name": "first", "namespace": "t", "uri": parent.uri}
    assert summary["baseModel"] == parent.uri
    lineage = json.loads((out / "lineage.json").read_text())
    assert [e["job"] for e in lineage] == ["second", "first"]
    assert [e["fromJob"] for e in lineage] == ["first", None]
    assert lineage[0]["baseModel"] == f"file://{job / 'model'}"
    assert lineage[1]["baseModel"] == f"file://{model}"
    card = (out / "README.md").read_text()
    assert "## Lineage" in card
    continued = "Continued from the FineTuneJob `t/first` (`model.fromJob: first`)"
    assert f"{continued}, whose exported model `{parent.uri}` was the base" in card
    chain = card[card.index("## Lineage") :]
    assert (
        chain.index("`t/second`")
        < chain.index("`t/first`")
        < chain.index(f"base: `file://{model}`")
    )

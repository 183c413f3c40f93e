"""hf:// models and datasets, downloaded by the trainer from a Hub-compatible server.

The server (tests/fixtures/hub.py) serves the Hub's HTTP API from a folder holding the
tiny model and toy data; the trainer reaches it through the real huggingface_hub and
datasets clients, pointed at it by spec.hub.endpoint (HF_ENDPOINT in the processes).
Runs go through `ftjobs.sdk.local.run_local`, the runner of `ftjobs run`, which must let
a job that names an hf:// model reach the Hub although this shell sets HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ftjobs.api.constants import EXIT_PERMANENT
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.sdk.local import run_local
from tests.fixtures.hub import HubServer
from tests.training.conftest import TinyModelFactory
from tests.training.trainer_run import classification_spec

TOKEN = "hf_fixture_token_5f1e0c"


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model_dir: TinyModelFactory,
    tiny_data_dir: Callable[..., Path],
) -> Iterator[HubServer]:
    """A Hub holding org/tiny-bert (branch main, tag v1 with an extra file), the same
    model as private/tiny-bert (token needed), and the dataset org/toy-sentiment."""
    root = tmp_path_factory.mktemp("hub")
    model = tiny_model_dir("sequence-classification")
    shutil.copytree(model, root / "models/org/tiny-bert/main")
    shutil.copytree(model, root / "models/org/tiny-bert/v1")
    (root / "models/org/tiny-bert/v1/NOTES.md").write_text("tag v1\n")
    shutil.copytree(model, root / "models/private/tiny-bert/main")
    data = root / "datasets/org/toy-sentiment/main/data"
    data.mkdir(parents=True)
    shutil.copy(tiny_data_dir("sequence-classification", n=160) / "train.jsonl", data)
    server = HubServer(root, token=TOKEN).start()
    yield server
    server.stop()


def _config(
    hub: HubServer, output: Path, cache: Path, nodes: int = 1, **model: str
) -> TrainerConfig:
    doc = classification_spec(
        Path("/unused"),
        Path("/unused"),
        output,
        model={"uri": "hf://org/tiny-bert@v1", "cacheUri": f"file://{cache}", **model},
        dataset={"train": "hf://datasets/org/toy-sentiment/data/train.jsonl"},
        hyperparameters={"maxSteps": 4},
        checkpointing={"everySteps": 1000},
        evaluation={"compareBaseModel": False, "maxSamples": 16},
        hub={"endpoint": hub.url},
        resources={"nodes": nodes},
    )
    spec = FineTuneJobSpec.model_validate(doc)
    return TrainerConfig.for_job(spec, name="hub", namespace="t")


def test_hub_model_downloaded_once_per_job_then_cached(hub: HubServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run_local(_config(hub, tmp_path / "out1", cache, nodes=2), nproc=1, nnodes=2)
    logs = "\n".join(p.read_text() for p in first.logs if p.exists())
    assert first.exit_code == 0, (first.message, logs[-3000:])
    # Two nodes, one download from the Hub: node 1 read rank 0's committed copy.
    assert hub.downloads("model.safetensors") == 1
    v1 = hub.commit("models", "org/tiny-bert", "v1")
    assert v1 != hub.commit("models", "org/tiny-bert", "main")
    cached = cache / "org/tiny-bert" / v1
    assert (cached / "MANIFEST.json").is_file()
    assert (cached / "NOTES.md").read_text() == "tag v1\n"  # the revision asked for
    assert not (cached / ".cache").exists()  # the client's bookkeeping is not the model
    # The data came from the Hub too: its rows are in the data report.
    report = (tmp_path / "out1/t/hub/data-report.json").read_text()
    assert "hf://datasets/org/toy-sentiment" in report

    # A retry or a later job on the same commit reads the cache, not the Hub.
    second = run_local(_config(hub, tmp_path / "out2", cache, nodes=2), nproc=1, nnodes=2)
    assert second.exit_code == 0, second.message
    assert hub.downloads("model.safetensors") == 1


def test_hub_errors_are_permanent_and_say_what_to_do(hub: HubServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = run_local(
        _config(hub, tmp_path / "out", cache, uri="hf://private/tiny-bert"), nproc=1, nnodes=1
    )
    assert result.exit_code == EXIT_PERMANENT, result.message  # a retry cannot help
    assert "hf://private/tiny-bert" in result.message
    assert "spec.hub.tokenSecret" in result.message
    assert TOKEN not in result.message

    result = run_local(
        _config(hub, tmp_path / "out2", cache, uri="hf://org/tiny-bert", revision="v9"),
        nproc=1,
        nnodes=1,
    )
    assert result.exit_code == EXIT_PERMANENT, result.message
    assert "revision 'v9' does not exist" in result.message


def test_hub_token_from_the_environment_opens_a_private_model(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a pod HF_TOKEN comes from spec.hub.tokenSecret; `ftjobs run` takes this shell's.
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    config = _config(hub, tmp_path / "out", tmp_path / "cache", uri="hf://private/tiny-bert")
    result = run_local(config, nproc=1, nnodes=1)
    assert result.exit_code == 0, result.message

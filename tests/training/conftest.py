"""Fixtures of the training tier: tiny offline models and toy data, built once per session.

Every test here runs on scarce shared CPUs, so torch gets one or two threads and the
Hugging Face libraries never try the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.training.tiny import make_tiny_model, tiny_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")


@pytest.fixture(scope="session", autouse=True)
def _few_torch_threads() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("FTJOBS_TEST_THREADS", "2")))
    yield
    torch.set_num_threads(threads)


TinyModelFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFactory:
    """`tiny_model_dir(task, kind=None, labels=None) -> Path`: a tiny HF model folder.

    Built once per (task, kind, labels) per session; treat the folder as read-only.
    """
    root = tmp_path_factory.mktemp("tiny-models")
    cache: dict[tuple[str, str | None, tuple[str, ...] | None], Path] = {}

    def factory(task: str, kind: str | None = None, labels: list[str] | None = None) -> Path:
        key = (task, kind, tuple(labels) if labels else None)
        if key not in cache:
            name = f"{task}-{kind or 'default'}-{len(cache)}"
            cache[key] = make_tiny_model(task, root / name, labels=labels, kind=kind)
        return cache[key]

    return factory


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`tiny_data_dir(task, n=64) -> Path` of a folder holding `train.jsonl` (read-only)."""
    root = tmp_path_factory.mktemp("tiny-data")
    cache: dict[tuple[str, int], Path] = {}

    def factory(task: str, n: int = 64) -> Path:
        if (task, n) not in cache:
            cache[(task, n)] = tiny_dataset(task, root / f"{task}-{n}", n=n).parent
        return cache[(task, n)]

    return factory


@pytest.fixture
def tiny_classification(
    tiny_model_dir: TinyModelFactory, tiny_data_dir: Callable[..., Path]
) -> tuple[Path, Path]:
    """(model dir, train.jsonl) of the tiny sequence-classification job the trainer runs use."""
    model = tiny_model_dir("sequence-classification")
    return model, tiny_data_dir("sequence-classification", n=160) / "train.jsonl"

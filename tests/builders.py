"""Fluent builders of FineTuneJobs for tests (in the style of kueue's test wrappers).

    make_job("a").nodes(2).gpus(8).zero(3).bf16().lora().queue("q").build()

The builder holds the camelCase document a user would write, so `.doc()` is also what
`kubectl apply` would send; `.build()` validates it into a FineTuneJob exactly as the CLI
and the controller do. Unless a test sets the batch sizes, `build()` makes the global
batch size fit the world size (microBatchSize x nodes x processes per node), so shape
changes (`.nodes(4).gpus(8)`) need no arithmetic in the test.
"""

from __future__ import annotations

import copy
from typing import Any, Self

from ftjobs.api.job import FineTuneJob


def _base(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ftjobs.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "task": "causal-lm",
            "model": {"uri": "hf://sshleifer/tiny-gpt2"},
            "dataset": {"train": "s3://datasets/instructions/train.jsonl"},
            "hyperparameters": {"maxSteps": 100, "microBatchSize": 1},
            "storage": {"output": "s3://outputs/finetunes"},
        },
    }


class JobBuilder:
    """Mutating builder; every method returns the builder."""

    def __init__(self, name: str) -> None:
        self._doc = _base(name)
        self._batch_set = False

    # -- generic ---------------------------------------------------------------------------
    def set(self, path: str, value: Any) -> Self:
        """Set a camelCase dotted path below the document, e.g. `spec.model.revision`."""
        *parents, leaf = path.split(".")
        node = self._doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        return self

    def spec(self, path: str, value: Any) -> Self:
        """Set a camelCase dotted path below `spec`."""
        return self.set(f"spec.{path}", value)

    def unset(self, path: str) -> Self:
        *parents, leaf = f"spec.{path}".split(".")
        node = self._doc
        for part in parents:
            node = node[part]
        node.pop(leaf, None)
        return self

    # -- metadata --------------------------------------------------------------------------
    def namespace(self, namespace: str) -> Self:
        return self.set("metadata.namespace", namespace)

    def uid(self, uid: str) -> Self:
        return self.set("metadata.uid", uid)

    def generation(self, generation: int) -> Self:
        return self.set("metadata.generation", generation)

    def label(self, key: str, value: str) -> Self:
        self._doc["metadata"].setdefault("labels", {})[key] = value
        return self

    # -- what to train ---------------------------------------------------------------------
    def task(self, task: str) -> Self:
        return self.spec("task", task)

    def model(self, uri: str, **fields: Any) -> Self:
        return self.spec("model", {"uri": uri, **fields})

    def train(self, uri: str) -> Self:
        return self.spec("dataset.train", uri)

    def validation(self, uri: str) -> Self:
        return self.spec("dataset.validation", uri)

    def test_data(self, uri: str) -> Self:
        return self.spec("dataset.test", uri)

    def dataset(self, **fields: Any) -> Self:
        self._doc["spec"]["dataset"].update(fields)
        return self

    def lora(self, r: int = 8, alpha: int = 16, **fields: Any) -> Self:
        return self.spec("lora", {"r": r, "alpha": alpha, **fields})

    # -- optimisation ----------------------------------------------------------------------
    def epochs(self, epochs: int) -> Self:
        self.unset("hyperparameters.maxSteps")
        return self.spec("hyperparameters.epochs", epochs)

    def max_steps(self, steps: int) -> Self:
        self.unset("hyperparameters.epochs")
        return self.spec("hyperparameters.maxSteps", steps)

    def batch(self, global_batch: int, micro_batch: int = 1) -> Self:
        self._batch_set = True
        self.spec("hyperparameters.globalBatchSize", global_batch)
        return self.spec("hyperparameters.microBatchSize", micro_batch)

    def learning_rate(self, lr: float) -> Self:
        return self.spec("hyperparameters.learningRate", lr)

    def zero(self, stage: int) -> Self:
        return self.spec("deepspeed.zeroStage", stage)

    def bf16(self) -> Self:
        return self.spec("deepspeed.precision", "bf16")

    def fp16(self) -> Self:
        return self.spec("deepspeed.precision", "fp16")

    def fp32(self) -> Self:
        return self.spec("deepspeed.precision", "fp32")

    def offload(self, *, optimizer: bool = True, parameters: bool = False) -> Self:
        self.spec("deepspeed.offloadOptimizer", "cpu" if optimizer else "none")
        return self.spec("deepspeed.offloadParameters", "cpu" if parameters else "none")

    # -- resources and scheduling ----------------------------------------------------------
    def nodes(self, nodes: int) -> Self:
        return self.spec("resources.nodes", nodes)

    def gpus(self, per_node: int) -> Self:
        return self.spec("resources.gpusPerNode", per_node)

    def procs(self, per_node: int) -> Self:
        return self.spec("resources.processesPerNode", per_node)

    def cpu(self, quantity: str) -> Self:
        return self.spec("resources.cpu", quantity)

    def memory(self, quantity: str) -> Self:
        return self.spec("resources.memory", quantity)

    def shm(self, quantity: str) -> Self:
        return self.spec("resources.sharedMemory", quantity)

    def image(self, image: str) -> Self:
        return self.spec("resources.image", image)

    def node_selector(self, **labels: str) -> Self:
        self._doc["spec"].setdefault("resources", {}).setdefault("nodeSelector", {}).update(labels)
        return self

    def node_label(self, key: str, value: str) -> Self:
        """A node-selector entry whose key is not a Python identifier (`a.b/c`)."""
        self._doc["spec"].setdefault("resources", {}).setdefault("nodeSelector", {})[key] = value
        return self

    def toleration(
        self,
        key: str | None,
        value: str | None = None,
        *,
        effect: str | None = "NoSchedule",
        operator: str | None = None,
        seconds: int | None = None,
    ) -> Self:
        tol: dict[str, Any] = {"key": key, "value": value, "effect": effect}
        tol["operator"] = operator or ("Equal" if value is not None else "Exists")
        tol["tolerationSeconds"] = seconds
        tol = {k: v for k, v in tol.items() if v is not None}
        self._doc["spec"].setdefault("resources", {}).setdefault("tolerations", []).append(tol)
        return self

    def priority(self, priority_class: str) -> Self:
        return self.spec("resources.priorityClassName", priority_class)

    def scheduler(self, name: str) -> Self:
        return self.spec("resources.schedulerName", name)

    # -- storage ---------------------------------------------------------------------------
    def output(self, uri: str) -> Self:
        return self.spec("storage.output", uri)

    def endpoint(self, url: str) -> Self:
        return self.spec("storage.endpoint", url)

    def region(self, region: str) -> Self:
        return self.spec("storage.region", region)

    def credentials(self, secret: str) -> Self:
        return self.spec("storage.credentialsSecret", secret)

    def checkpoint(self, **fields: Any) -> Self:
        """camelCase checkpointing fields: everySteps, everySeconds, keep, resume."""
        self._doc["spec"].setdefault("checkpointing", {}).update(fields)
        return self

    # -- lifecycle -------------------------------------------------------------------------
    def queue(self, name: str) -> Self:
        return self.spec("queueName", name)

    def suspended(self, suspend: bool = True) -> Self:
        return self.spec("suspend", suspend)

    def deadline(self, seconds: int) -> Self:
        return self.spec("activeDeadlineSeconds", seconds)

    def ttl(self, seconds: int) -> Self:
        return self.spec("ttlSecondsAfterFinished", seconds)

    def max_restarts(self, restarts: int, backoff_seconds: int | None = None) -> Self:
        self.spec("failurePolicy.maxRestarts", restarts)
        if backoff_seconds is not None:
            self.spec("failurePolicy.backoffSeconds", backoff_seconds)
        return self

    # -- results ---------------------------------------------------------------------------
    def doc(self) -> dict[str, Any]:
        """The camelCase document (a copy), batch sizes fitted unless set explicitly."""
        doc = copy.deepcopy(self._doc)
        if not self._batch_set:
            spec = doc["spec"]
            res = spec.get("resources", {})
            gpus = res.get("gpusPerNode", 0)
            procs = gpus or res.get("processesPerNode", 1)
            hp = spec["hyperparameters"]
            hp["globalBatchSize"] = hp.get("microBatchSize", 8) * res.get("nodes", 1) * procs
        return doc

    def build(self) -> FineTuneJob:
        """The validated FineTuneJob (raises pydantic's ValidationError if invalid)."""
        return FineTuneJob.model_validate(self.doc(), by_alias=True)


def make_job(name: str = "job") -> JobBuilder:
    return JobBuilder(name)

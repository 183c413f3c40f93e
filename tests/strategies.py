"""Hypothesis strategies for VALID FineTuneJob documents (camelCase dicts, as users write them).

Enums, literals and metric lists come from the models, so a new optimizer or task is
generated without touching this file; ranges are kept sane (small clusters, small batch
sizes) and the cross-field rules are respected by construction:
globalBatchSize = microBatchSize x world size x accumulation, fp16 only with GPUs,
offload only with the right ZeRO stage, LoRA only for tasks that support it, metrics
from the task's list, split ratios summing below 1.
"""

from __future__ import annotations

import typing
from typing import Any

from hypothesis import strategies as st

from ftjobs.api.spec import (
    LORA_TASKS,
    TASK_FIELDS,
    TASK_METRICS,
    DatasetSpec,
    DeepSpeed,
    Hyperparameters,
    ModelSpec,
    Task,
    Toleration,
)

Draw = typing.Callable[[st.SearchStrategy[Any]], Any]


def literals(model: type, field: str) -> list[Any]:
    """The allowed values of a Literal field (optionally `Literal[...] | None`)."""
    annotation = model.model_fields[field].annotation  # type: ignore[attr-defined]
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return list(typing.get_args(arg))
    raise TypeError(f"{model.__name__}.{field} is not a Literal")


names = st.from_regex(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{1,12}[a-z0-9]", fullmatch=True)
keys = st.from_regex(r"[a-z0-9_]{1,12}(/[a-z0-9_.-]{1,12}){0,3}", fullmatch=True)
columns = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
label_values = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)


@st.composite
def data_uris(draw: Draw) -> str:
    if draw(st.booleans()):
        return f"s3://{draw(buckets)}/{draw(keys)}"
    return f"file:///{draw(keys)}"


@st.composite
def model_uris(draw: Draw) -> str:
    kind = draw(st.sampled_from(["hf", "s3", "file"]))
    if kind == "hf":
        return f"hf://{draw(columns)}/{draw(columns)}"
    if kind == "s3":
        return f"s3://{draw(buckets)}/{draw(keys)}/"
    return f"file:///{draw(keys)}"


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value or the marker `None` (the field is then left out)."""
    return st.none() | strategy


def put(target: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Add the fields that are not None; leaving fields out exercises the defaults."""
    target.update({k: v for k, v in fields.items() if v is not None})
    return target


@st.composite
def resources(draw: Draw) -> dict[str, Any]:
    gpus = draw(st.sampled_from([0, 0, 1, 2, 4, 8]))
    procs = draw(maybe(st.just(gpus) if gpus else st.integers(1, 4)))
    tolerations = draw(
        st.lists(
            st.builds(
                dict,
                key=names,
                operator=st.sampled_from(literals(Toleration, "operator")),
                effect=st.sampled_from(literals(Toleration, "effect")),
            ),
            max_size=2,
        )
    )
    for toleration in tolerations:
        if toleration["operator"] == "Exists":
            toleration.pop("value", None)
    return put(
        {},
        nodes=draw(maybe(st.integers(1, 4))),
        gpusPerNode=gpus or draw(st.sampled_from([None, 0])),
        processesPerNode=procs,
        cpu=draw(maybe(st.sampled_from(["1", "2", "500m", 4, "3.5"]))),
        memory=draw(maybe(st.sampled_from(["1Gi", "8Gi", "16G", "512Mi"]))),
        sharedMemory=draw(maybe(st.sampled_from(["1Gi", "64Mi"]))),
        image=draw(maybe(st.sampled_from(["ghcr.io/ftjobs/trainer:0.1.0", "trainer:dev"]))),
        nodeSelector=draw(maybe(st.dictionaries(names, label_values, max_size=2))),
        tolerations=tolerations or None,
        priorityClassName=draw(maybe(names)),
        schedulerName=draw(maybe(names)),
    )


def world_size(res: dict[str, Any]) -> int:
    gpus = res.get("gpusPerNode", 0)
    return int(res.get("nodes", 1) * (gpus or res.get("processesPerNode", 1)))


@st.composite
def hyperparameters(draw: Draw, world: int) -> dict[str, Any]:
    micro = draw(st.sampled_from([1, 2, 4, 8]))
    accumulation = draw(st.integers(1, 4))
    by_epochs = draw(st.booleans())
    return put(
        {},
        learningRate=draw(maybe(st.floats(1e-6, 1e-2))),
        epochs=draw(st.integers(1, 5)) if by_epochs else None,
        maxSteps=None if by_epochs else draw(st.integers(1, 10_000)),
        globalBatchSize=micro * world * accumulation,
        microBatchSize=micro,
        optimizer=draw(maybe(st.sampled_from(literals(Hyperparameters, "optimizer")))),
        scheduler=draw(maybe(st.sampled_from(literals(Hyperparameters, "scheduler")))),
        warmupSteps=draw(maybe(st.integers(0, 500))),
        weightDecay=draw(maybe(st.sampled_from([0.0, 0.01, 0.1]))),
        gradientClipping=draw(maybe(st.sampled_from([0.0, 1.0, 5.0]))),
        maxSeqLength=draw(maybe(st.integers(8, 4096))),
        seed=draw(maybe(st.integers(0, 2**31 - 1))),
    )


@st.composite
def deepspeed(draw: Draw, gpus: int) -> dict[str, Any]:
    stage = draw(st.integers(0, 3))
    precisions = [p for p in literals(DeepSpeed, "precision") if gpus or p != "fp16"]
    return put(
        {},
        zeroStage=stage,
        precision=draw(maybe(st.sampled_from(precisions))),
        offloadOptimizer=draw(st.sampled_from(["none", "cpu"])) if stage >= 1 else None,
        offloadParameters=draw(st.sampled_from(["none", "cpu"])) if stage == 3 else None,
        overrides=draw(maybe(st.just({"steps_per_print": 10, "wall_clock_breakdown": False}))),
    )


@st.composite
def dataset(draw: Draw, task: str) -> dict[str, Any]:
    validation = draw(st.integers(0, 9)) * 0.05
    test = draw(st.integers(0, 9)) * 0.05
    classification = task == Task.SEQUENCE_CLASSIFICATION.value
    return put(
        {"train": draw(data_uris())},
        validation=draw(maybe(data_uris())),
        test=draw(maybe(data_uris())),
        format=draw(maybe(st.sampled_from(literals(DatasetSpec, "format")))),
        fields=draw(maybe(st.dictionaries(st.sampled_from(TASK_FIELDS[task]), columns))),
        promptTemplate=draw(maybe(st.just("Input: {text}\nOutput: "))),
        labels=draw(maybe(st.lists(label_values, min_size=2, max_size=4, unique=True)))
        if classification
        else None,
        cleaning=draw(maybe(st.builds(dict, dedupe=st.booleans(), maxChars=st.integers(1, 10**5)))),
        split=draw(
            maybe(st.just({"validationRatio": round(validation, 2), "testRatio": round(test, 2)}))
        ),
        streaming=draw(maybe(st.booleans())),
        maxSamples=draw(maybe(st.integers(1, 10**6))),
    )


@st.composite
def performance(draw: Draw, spec: dict[str, Any]) -> dict[str, Any]:
    """A valid `spec.performance` for the rest of `spec` (task, lora, GPUs, ZeRO, streaming)."""
    gpus = spec.get("resources", {}).get("gpusPerNode", 0)
    streamed_epochs = spec["dataset"].get("streaming") and "maxSteps" not in spec["hyperparameters"]
    can_pack = spec["task"] == Task.CAUSAL_LM.value and not streamed_epochs
    zero = spec.get("deepspeed", {}).get("zeroStage", 2)
    precision = spec.get("deepspeed", {}).get("precision", "fp32")
    can_quantize = bool(gpus) and "lora" in spec and zero < 3 and precision != "fp32"
    return put(
        {},
        attention=draw(
            maybe(st.sampled_from(["sdpa", "eager"] + (["flash_attention_2"] if gpus else [])))
        ),
        gradientCheckpointing=draw(maybe(st.booleans())),
        packing=draw(maybe(st.booleans())) if can_pack else None,
        fusedOptimizer=draw(maybe(st.booleans())),
        prefetch=draw(maybe(st.booleans())),
        compile=draw(maybe(st.booleans())),
        quantization=draw(maybe(st.sampled_from(["none", "nf4"]))) if can_quantize else None,
    )


@st.composite
def specs(draw: Draw) -> dict[str, Any]:
    """The `spec` of a valid FineTuneJob."""
    task = draw(st.sampled_from([t.value for t in Task]))
    res = draw(resources())
    metrics = TASK_METRICS[task]
    spec = put(
        {
            "task": task,
            "model": put(
                {"uri": draw(model_uris())},
                dtype=draw(maybe(st.sampled_from(literals(ModelSpec, "dtype")))),
            ),
            "dataset": draw(dataset(task)),
            "hyperparameters": draw(hyperparameters(world_size(res))),
            "storage": put(
                {"output": draw(data_uris())},
                endpoint=draw(maybe(st.just("http://minio.storage.svc:9000"))),
                region=draw(maybe(st.sampled_from(["us-east-1", "eu-west-3"]))),
                credentialsSecret=draw(maybe(names)),
            ),
        },
        lora=draw(maybe(st.builds(dict, r=st.integers(1, 64), alpha=st.integers(1, 128))))
        if task in LORA_TASKS
        else None,
        deepspeed=draw(maybe(deepspeed(res.get("gpusPerNode", 0)))),
        resources=res or None,
        checkpointing=draw(
            maybe(st.builds(dict, everySteps=st.integers(1, 1000), keep=st.integers(1, 5)))
        ),
        evaluation=draw(
            maybe(
                st.builds(
                    dict,
                    everySteps=st.integers(1, 1000),
                    metrics=st.lists(st.sampled_from(metrics), min_size=1, unique=True),
                )
            )
        ),
        failurePolicy=draw(maybe(st.builds(dict, maxRestarts=st.integers(0, 10)))),
        queueName=draw(maybe(names)),
        suspend=draw(maybe(st.booleans())),
        ttlSecondsAfterFinished=draw(maybe(st.integers(0, 86_400))),
        activeDeadlineSeconds=draw(maybe(st.integers(1, 86_400))),
    )
    return put(spec, performance=draw(maybe(performance(spec))))


@st.composite
def finetunejob_docs(draw: Draw) -> dict[str, Any]:
    """A whole valid FineTuneJob document, ready for `kubectl apply` or `parse_job`."""
    return {
        "apiVersion": "ftjobs.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": draw(names)},
        "spec": draw(specs()),
    }

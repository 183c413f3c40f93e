"""The FineTuneJob spec root (FineTuneJobSpec) and its cross-field rules.

Every field has a description (it becomes `kubectl explain` text). Cross-field rules are
written twice on purpose: as a pydantic validator (offline `ftjobs validate`) and as a
CEL rule in `json_schema_extra` (the API server), with the same message and field path.
The parts of the spec live one concept per module (task, model, dataset, training,
resources, storage, lifecycle, performance); they are re-exported here so
`from ftjobs.api.spec import ...` keeps working.
"""

from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue, Strict, model_validator

from ftjobs.api.dataset import Cleaning, DatasetSpec, Fields, Split
from ftjobs.api.lifecycle import (
    DEFAULT_STARTUP_TIMEOUT,
    DURATION_PATTERN,
    Checkpointing,
    Evaluation,
    FailurePolicy,
    MlflowTracking,
    Tracking,
    duration_seconds,
)
from ftjobs.api.model import REVISION_NEEDS_HF, REVISION_TWICE, Hub, ModelSpec
from ftjobs.api.performance import Performance
from ftjobs.api.resources import (
    TOLERATION_KEY,
    TOLERATION_SECONDS,
    TOLERATION_VALUE,
    Resources,
    Toleration,
)
from ftjobs.api.storage import SA_NAME_AND_ANNOTATIONS, ServiceAccount, Storage
from ftjobs.api.task import (
    ALL_FIELDS,
    LORA_TASK_MESSAGE,
    LORA_TASKS,
    METRIC_MESSAGE,
    PACKING_TASK_MESSAGE,
    PACKING_TASKS,
    TASK_FIELDS,
    TASK_METRICS,
    TASKS,
    Task,
    cel_task_in,
    cel_task_not_in,
    fields_message,
)
from ftjobs.api.training import DeepSpeed, Hyperparameters, Lora
from ftjobs.api.types import ApiModel, DnsLabel, DnsSubdomain, RuleError, cel, nearest_multiples

PACKING_STREAMING_MESSAGE = (
    "packing with dataset.streaming needs hyperparameters.maxSteps "
    "(the number of packed rows is not known ahead)"
)
QLORA_LORA_MESSAGE = "quantization (QLoRA) needs lora: the 4-bit base weights stay frozen"
QLORA_GPU_MESSAGE = "quantization needs GPUs (gpusPerNode > 0): bitsandbytes 4-bit runs on CUDA"
QLORA_ZERO_MESSAGE = "quantization needs zeroStage 0, 1 or 2 (ZeRO-3 cannot shard 4-bit weights)"
QLORA_PRECISION_MESSAGE = (
    "quantization needs deepspeed.precision bf16 or fp16 (the 4-bit weights are stored "
    "in the 16-bit training dtype)"
)
FLASH_GPU_MESSAGE = "flash_attention_2 needs GPUs (gpusPerNode > 0); use sdpa on CPU"


QUEUE_PRIORITY_MESSAGE = "queuePriorityClass needs queueName (a Kueue LocalQueue)"

_CROSS_RULES: list[JsonValue] = [
    *(
        cel(
            f"self.task != '{task}' || !has(self.dataset.fields) || !("
            + " || ".join(
                f"has(self.dataset.fields.{name})" for name in ALL_FIELDS if name not in cols
            )
            + ")",
            fields_message(task),
            ".dataset.fields",
        )
        for task, cols in TASK_FIELDS.items()
    ),
    cel(
        "self.hyperparameters.globalBatchSize % (self.hyperparameters.microBatchSize * "
        "self.resources.nodes * (self.resources.gpusPerNode > 0 ? self.resources.gpusPerNode : "
        "(has(self.resources.processesPerNode) ? self.resources.processesPerNode : 1))) == 0",
        "globalBatchSize must be divisible by microBatchSize x total processes "
        "(nodes x processes per node)",
        ".hyperparameters.globalBatchSize",
    ),
    cel(
        f"!has(self.lora) || {cel_task_not_in(tuple(n for n in TASKS if n not in LORA_TASKS))}",
        LORA_TASK_MESSAGE,
        ".lora",
    ),
    cel(
        "self.deepspeed.precision != 'fp16' || self.resources.gpusPerNode > 0",
        "fp16 precision needs GPUs (gpusPerNode > 0); use bf16 or fp32 on CPU",
        ".deepspeed.precision",
    ),
    cel(
        "!has(self.evaluation.metrics) || self.evaluation.metrics.all(m, "
        + " || ".join(
            f"(self.task == '{task}' && m in {list(metrics)!r})"
            for task, metrics in TASK_METRICS.items()
        )
        + ")",
        METRIC_MESSAGE,
        ".evaluation.metrics",
    ),
    cel(
        f"!self.performance.packing || {cel_task_in(PACKING_TASKS)}",
        PACKING_TASK_MESSAGE,
        ".performance.packing",
    ),
    cel(
        "!self.performance.packing || !self.dataset.streaming "
        "|| has(self.hyperparameters.maxSteps)",
        PACKING_STREAMING_MESSAGE,
        ".performance.packing",
    ),
    cel(
        "self.performance.quantization == 'none' || has(self.lora)",
        QLORA_LORA_MESSAGE,
        ".performance.quantization",
    ),
    cel(
        "self.performance.quantization == 'none' || self.resources.gpusPerNode > 0",
        QLORA_GPU_MESSAGE,
        ".performance.quantization",
    ),
    cel(
        "self.performance.quantization == 'none' || self.deepspeed.zeroStage < 3",
        QLORA_ZERO_MESSAGE,
        ".performance.quantization",
    ),
    cel(
        "self.performance.quantization == 'none' || self.deepspeed.precision != 'fp32'",
        QLORA_PRECISION_MESSAGE,
        ".performance.quantization",
    ),
    cel(
        "self.performance.attention != 'flash_attention_2' || self.resources.gpusPerNode > 0",
        FLASH_GPU_MESSAGE,
        ".performance.attention",
    ),
    cel(
        "!has(self.queuePriorityClass) || has(self.queueName)",
        QUEUE_PRIORITY_MESSAGE,
        ".queuePriorityClass",
    ),
]


class FineTuneJobSpec(ApiModel):
    """A fine-tuning job: task, model, data, hyperparameters, DeepSpeed, resources, storage."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _CROSS_RULES})

    task: Annotated[Task, Strict(False)] = Field(description="What the model learns to do.")
    model: ModelSpec = Field(description="The base model.")
    dataset: DatasetSpec = Field(description="Training data and its preparation.")
    hyperparameters: Hyperparameters = Field(description="Optimisation settings.")
    lora: Lora | None = Field(default=None, description="Train a LoRA adapter instead.")
    deepspeed: DeepSpeed = Field(default_factory=DeepSpeed, description="DeepSpeed settings.")
    resources: Resources = Field(default_factory=Resources, description="Compute per pod.")
    performance: Performance = Field(
        default_factory=Performance, description="Speed and memory features of the trainer."
    )
    storage: Storage = Field(description="Outputs and object-store access.")
    hub: Hub = Field(
        default_factory=Hub, description="Hugging Face Hub access for hf:// models and datasets."
    )
    service_account: ServiceAccount | None = Field(
        default=None, description="The pods' identity (workload identity for cloud storage)."
    )
    image_pull_secrets: list[DnsSubdomain] | None = Field(
        default=None,
        max_length=16,
        description="Secrets (docker-registry) to pull the trainer image with, added to the "
        "controller's defaults.",
    )
    checkpointing: Checkpointing = Field(
        default_factory=Checkpointing, description="Checkpoint cadence and retention."
    )
    evaluation: Evaluation = Field(default_factory=Evaluation, description="Evaluation settings.")
    tracking: Tracking = Field(
        default_factory=Tracking, description="Experiment tracking (TensorBoard, MLflow)."
    )
    failure_policy: FailurePolicy = Field(
        default_factory=FailurePolicy, description="Retries on retriable failures."
    )
    queue_name: DnsSubdomain | None = Field(
        default=None, description="Kueue LocalQueue; the job waits for admission."
    )
    queue_priority_class: DnsSubdomain | None = Field(
        default=None,
        description="Kueue WorkloadPriorityClass: the job's priority in its queue (which "
        "jobs Kueue admits first and which it preempts), independent of the pods' "
        "resources.priorityClassName. Needs queueName.",
    )
    suspend: bool = Field(
        default=False,
        description="Suspend the job (pods stop after a checkpoint); false resumes it. "
        "The only field that may change after creation.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="Delete the child objects this long after finishing (outputs in storage stay).",
    )
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Fail the job after this many seconds of running."
    )
    startup_timeout: str = Field(
        default=DEFAULT_STARTUP_TIMEOUT,
        pattern=DURATION_PATTERN,
        max_length=7,
        description="How long an attempt's pods may be stuck before starting (a missing "
        "Secret: CreateContainerConfigError; an image that cannot be pulled: ErrImagePull, "
        "ImagePullBackOff; no node fits: Unschedulable) before the job ends Failed with "
        "that reason. A number and a unit: 90s, 10m, 2h.",
    )

    @model_validator(mode="after")
    def _rules(self) -> "FineTuneJobSpec":
        hp, res = self.hyperparameters, self.resources
        unit = hp.micro_batch_size * res.world_size
        if hp.global_batch_size % unit:
            raise RuleError(
                "hyperparameters.globalBatchSize",
                "globalBatchSize must be divisible by microBatchSize x total processes "
                f"(nodes x processes per node): {hp.global_batch_size} is not divisible by "
                f"{hp.micro_batch_size} x {res.world_size} process(es) = {unit}; nearest valid: "
                f"{nearest_multiples(hp.global_batch_size, unit)}",
            )
        task = str(self.task)
        given = self.dataset.fields.model_dump(by_alias=True, exclude_none=True)
        if any(name not in TASKS[task].fields for name in given):
            raise RuleError("dataset.fields", fields_message(task))
        if self.queue_priority_class is not None and self.queue_name is None:
            raise RuleError("queuePriorityClass", QUEUE_PRIORITY_MESSAGE)
        if self.lora is not None and not TASKS[task].lora:
            raise RuleError("lora", LORA_TASK_MESSAGE)
        if self.deepspeed.precision == "fp16" and res.gpus_per_node == 0:
            raise RuleError(
                "deepspeed.precision",
                "fp16 precision needs GPUs (gpusPerNode > 0); use bf16 or fp32 on CPU",
            )
        allowed = TASKS[task].metrics
        if any(metric not in allowed for metric in self.evaluation.metrics or ()):
            # The list, not the item: the CEL rule's fieldPath cannot name an index.
            raise RuleError("evaluation.metrics", METRIC_MESSAGE)
        self._performance_rules()
        return self

    def _performance_rules(self) -> None:
        perf, gpus = self.performance, self.resources.gpus_per_node
        if perf.packing and not TASKS[str(self.task)].packing:
            raise RuleError("performance.packing", PACKING_TASK_MESSAGE)
        if perf.packing and self.dataset.streaming and self.hyperparameters.max_steps is None:
            raise RuleError("performance.packing", PACKING_STREAMING_MESSAGE)
        if perf.quantization != "none":
            if self.lora is None:
                raise RuleError("performance.quantization", QLORA_LORA_MESSAGE)
            if gpus == 0:
                raise RuleError("performance.quantization", QLORA_GPU_MESSAGE)
            if self.deepspeed.zero_stage == 3:
                raise RuleError("performance.quantization", QLORA_ZERO_MESSAGE)
            if self.deepspeed.precision == "fp32":
                raise RuleError("performance.quantization", QLORA_PRECISION_MESSAGE)
        if perf.attention == "flash_attention_2" and gpus == 0:
            raise RuleError("performance.attention", FLASH_GPU_MESSAGE)

    @property
    def gradient_accumulation_steps(self) -> int:
        hp = self.hyperparameters
        return hp.global_batch_size // (hp.micro_batch_size * self.resources.world_size)


# Every field of the spec is immutable once created except `suspend`; the CRD
# generator turns this into CEL transition rules.
MUTABLE_SPEC_FIELDS = ("suspend",)
IMMUTABLE_MESSAGE = "is immutable; create a new FineTuneJob"
__all__ = [
    "ALL_FIELDS",
    "DEFAULT_STARTUP_TIMEOUT",
    "DURATION_PATTERN",
    "FLASH_GPU_MESSAGE",
    "IMMUTABLE_MESSAGE",
    "LORA_TASKS",
    "LORA_TASK_MESSAGE",
    "METRIC_MESSAGE",
    "MUTABLE_SPEC_FIELDS",
    "PACKING_STREAMING_MESSAGE",
    "PACKING_TASKS",
    "PACKING_TASK_MESSAGE",
    "QLORA_GPU_MESSAGE",
    "QLORA_LORA_MESSAGE",
    "QLORA_PRECISION_MESSAGE",
    "QLORA_ZERO_MESSAGE",
    "REVISION_NEEDS_HF",
    "REVISION_TWICE",
    "SA_NAME_AND_ANNOTATIONS",
    "TASKS",
    "TASK_FIELDS",
    "TASK_METRICS",
    "TOLERATION_KEY",
    "TOLERATION_SECONDS",
    "TOLERATION_VALUE",
    "Checkpointing",
    "Cleaning",
    "DatasetSpec",
    "DeepSpeed",
    "DnsLabel",
    "Evaluation",
    "FailurePolicy",
    "Fields",
    "FineTuneJobSpec",
    "Hub",
    "Hyperparameters",
    "Lora",
    "MlflowTracking",
    "ModelSpec",
    "Performance",
    "Resources",
    "ServiceAccount",
    "Split",
    "Storage",
    "Task",
    "Toleration",
    "Tracking",
    "duration_seconds",
    "fields_message",
]

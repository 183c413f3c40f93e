"""The FineTuneJob spec: what to fine-tune, on which data, how, where, with what resources.

Every field has a description (it becomes `kubectl explain` text). Cross-field rules are
written twice on purpose: as a pydantic validator (offline `ftjobs validate`) and as a
CEL rule in `json_schema_extra` (the API server), with the same message and field path.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, JsonValue, Strict, model_validator

from ftjobs.api.performance import Performance
from ftjobs.api.types import (
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    ApiModel,
    DataUri,
    DnsLabel,
    DnsSubdomain,
    HttpUrl,
    ImageRef,
    ModelUri,
    OutputUri,
    Quantity,
    RuleError,
    ShortStr,
    cel,
    nearest_multiples,
)


class Task(StrEnum):
    CAUSAL_LM = "causal-lm"
    SEQUENCE_CLASSIFICATION = "sequence-classification"
    SEQ2SEQ = "seq2seq"
    QUESTION_ANSWERING = "question-answering"


LORA_TASKS = (Task.CAUSAL_LM.value, Task.SEQ2SEQ.value, Task.SEQUENCE_CLASSIFICATION.value)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    Task.SEQUENCE_CLASSIFICATION.value: ("accuracy", "f1", "loss"),
    Task.CAUSAL_LM.value: ("perplexity", "loss"),
    Task.SEQ2SEQ.value: ("chrf", "bleu", "loss"),
    Task.QUESTION_ANSWERING.value: ("exact_match", "f1", "loss"),
}
PACKING_TASK_MESSAGE = "packing is supported for causal-lm"
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
# Columns each task reads from dataset.fields (trainer/data/formatting.py).
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    Task.SEQUENCE_CLASSIFICATION.value: ("text", "textPair", "label"),
    Task.CAUSAL_LM.value: ("text", "prompt", "response"),
    Task.SEQ2SEQ.value: ("source", "target"),
    Task.QUESTION_ANSWERING.value: ("question", "context", "answer"),
}
ALL_FIELDS = (
    "text",
    "textPair",
    "label",
    "prompt",
    "response",
    "source",
    "target",
    "question",
    "context",
    "answer",
)


def fields_message(task: str) -> str:
    return f"{task} reads only {', '.join(TASK_FIELDS[task])} from dataset.fields"


METRIC_MESSAGE = (
    "metric not available for the task ("
    + "; ".join(f"{task}: {', '.join(metrics)}" for task, metrics in TASK_METRICS.items())
    + ")"
)


REVISION_NEEDS_HF = (
    "revision applies to hf:// models; an s3:// or file:// model is pinned by its prefix "
    "(put the version in the path, e.g. s3://models/llama/v3/)"
)
REVISION_TWICE = "revision is given twice: in the uri (@...) and in model.revision; keep one"


SA_NAME_AND_ANNOTATIONS = (
    "annotations apply to the ServiceAccount the controller creates; with serviceAccount.name, "
    "annotate your own ServiceAccount instead"
)


class ModelSpec(ApiModel):
    """The base model to fine-tune."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.revision) || self.uri.startsWith('hf://')",
                    REVISION_NEEDS_HF,
                    ".revision",
                ),
                cel(
                    "!has(self.revision) || !self.uri.startsWith('hf://') "
                    "|| !self.uri.contains('@')",
                    REVISION_TWICE,
                    ".revision",
                ),
            ]
        }
    )

    uri: ModelUri = Field(
        description="Where the base model lives: s3://bucket/prefix/, file:///path or "
        "hf://org/name[@revision] (a Hugging Face layout: config.json, weights, tokenizer; "
        "hf:// models are downloaded by the pods, see spec.hub)."
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[^\s@]+$",
        description="Revision (branch, tag or commit) of an hf:// model; the default branch "
        "when unset. Refused for s3:// and file:// models, whose prefix is the version.",
    )
    cache_uri: OutputUri | None = Field(
        default=None,
        description="Keep downloaded hf:// models here (s3:// or file:// prefix), under "
        "<cacheUri>/<org>/<name>/<commit>/: retries and later jobs read this copy instead "
        "of the Hub, and the Hub is asked once per job rather than once per node.",
    )
    gguf_file: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^[^/\s]+\.gguf$",
        description="Name of a GGUF file inside the model location to load (dequantized) instead "
        "of safetensors weights.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="dtype the weights are loaded in; auto follows the precision."
    )

    @model_validator(mode="after")
    def _rules(self) -> "ModelSpec":
        if self.revision is not None:
            if not self.uri.startswith("hf://"):
                raise RuleError("revision", REVISION_NEEDS_HF)
            if "@" in self.uri:
                raise RuleError("revision", REVISION_TWICE)
        return self


class Hub(ApiModel):
    """How the pods reach the Hugging Face Hub (or a mirror) for hf:// models and datasets."""

    endpoint: HttpUrl | None = Field(
        default=None,
        description="Hub or mirror URL, given to the pods as HF_ENDPOINT; "
        "https://huggingface.co when unset.",
    )
    token_secret: DnsSubdomain | None = Field(
        default=None,
        description="Secret with the key HF_TOKEN (private or gated repos), passed to the pods "
        "as an environment variable. Tokens never go in the spec.",
    )


class Cleaning(ApiModel):
    """Cleaning rules applied before formatting; data-report.json counts what each one dropped."""

    strip_whitespace: bool = Field(default=True, description="Strip leading/trailing whitespace.")
    drop_empty: bool = Field(default=True, description="Drop rows whose text fields are empty.")
    max_chars: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Drop rows longer than this many characters."
    )
    dedupe: bool = Field(default=True, description="Drop exact duplicate rows (after stripping).")


class Split(ApiModel):
    """How validation/test sets are carved from train when they are not given."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.validationRatio + self.testRatio < 1.0",
                    "validationRatio + testRatio must be below 1",
                    ".testRatio",
                )
            ]
        }
    )

    validation_ratio: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Share of rows for validation."
    )
    test_ratio: float = Field(default=0.1, ge=0.0, lt=1.0, description="Share of rows for test.")
    seed: int = Field(
        default=42, ge=0, le=2**31 - 1, description="Seed of the hash that assigns rows to splits."
    )

    @model_validator(mode="after")
    def _ratios_below_one(self) -> "Split":
        if self.validation_ratio + self.test_ratio >= 1.0:
            raise RuleError("testRatio", "validationRatio + testRatio must be below 1")
        return self


class Fields(ApiModel):
    """Column names in the data files, per task; unset ones use the task's defaults."""

    text: ShortStr | None = Field(
        default=None, description="Input text (classification, causal-lm)."
    )
    text_pair: ShortStr | None = Field(
        default=None, description="Second text for pair classification."
    )
    label: ShortStr | None = Field(default=None, description="Label column (classification).")
    prompt: ShortStr | None = Field(
        default=None, description="Prompt column (causal-lm instruction)."
    )
    response: ShortStr | None = Field(default=None, description="Response column (causal-lm).")
    source: ShortStr | None = Field(default=None, description="Source text (seq2seq).")
    target: ShortStr | None = Field(default=None, description="Target text (seq2seq).")
    question: ShortStr | None = Field(default=None, description="Question (question-answering).")
    context: ShortStr | None = Field(
        default=None, description="Context passage (question-answering)."
    )
    answer: ShortStr | None = Field(default=None, description="Answer text (question-answering).")


class DatasetSpec(ApiModel):
    """Training data and how to prepare it."""

    train: DataUri = Field(
        description="Training data file or prefix: s3://, file:// or "
        "hf://datasets/org/name[@revision][/path] (read by streaming from the Hub)."
    )
    validation: DataUri | None = Field(
        default=None, description="Validation data; carved from train by `split` when unset."
    )
    test: DataUri | None = Field(
        default=None, description="Test data; carved from train by `split` when unset."
    )
    format: Literal["auto", "jsonl", "parquet", "csv"] = Field(
        default="auto", description="File format; auto infers it from the file extension."
    )
    fields: Fields = Field(default_factory=Fields, description="Column mapping.")
    prompt_template: str | None = Field(
        default=None,
        max_length=8192,
        description="Python format template over the row's columns, e.g. "
        "'Translate to German: {source}'.",
    )
    labels: list[ShortStr] | None = Field(
        default=None,
        min_length=2,
        max_length=1_000,
        description="Label names in index order (classification); inferred from train if unset.",
    )
    cleaning: Cleaning = Field(default_factory=Cleaning, description="Cleaning rules.")
    split: Split = Field(default_factory=Split, description="Deterministic split settings.")
    streaming: bool = Field(
        default=False, description="Stream train data from storage instead of loading it in memory."
    )
    max_samples: int | None = Field(
        default=None, ge=1, description="Use at most this many training rows (quick runs)."
    )


class Hyperparameters(ApiModel):
    """Optimisation settings."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.epochs) != has(self.maxSteps)",
                    "exactly one of epochs or maxSteps must be set",
                    ".maxSteps",
                ),
                cel(
                    "self.globalBatchSize % self.microBatchSize == 0",
                    "globalBatchSize must be a multiple of microBatchSize",
                    ".globalBatchSize",
                ),
            ]
        }
    )

    learning_rate: float = Field(default=2e-5, gt=0.0, le=1.0, description="Peak learning rate.")
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="Passes over train.")
    max_steps: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Optimizer steps (instead of epochs)."
    )
    global_batch_size: int = Field(
        default=8, ge=1, le=1_000_000, description="Samples per optimizer step, all ranks together."
    )
    micro_batch_size: int = Field(
        default=8, ge=1, le=65_536, description="Samples per forward pass on one rank."
    )
    optimizer: Literal["adamw", "adam", "sgd"] = Field(default="adamw", description="Optimizer.")
    scheduler: Literal["linear", "cosine", "constant"] = Field(
        default="linear", description="Learning-rate schedule after warmup."
    )
    warmup_steps: int = Field(default=0, ge=0, description="Linear warmup steps.")
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0, description="Weight decay.")
    gradient_clipping: float = Field(
        default=1.0, ge=0.0, description="Max gradient norm; 0 disables clipping."
    )
    max_seq_length: int = Field(
        default=512, ge=8, le=1_048_576, description="Tokens per sample after truncation."
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Training seed.")

    @model_validator(mode="after")
    def _rules(self) -> "Hyperparameters":
        if (self.epochs is None) == (self.max_steps is None):
            raise RuleError("maxSteps", "exactly one of epochs or maxSteps must be set")
        if self.global_batch_size % self.micro_batch_size:
            g, m = self.global_batch_size, self.micro_batch_size
            raise RuleError(
                "globalBatchSize",
                f"globalBatchSize must be a multiple of microBatchSize: {g} is not a multiple "
                f"of {m}; nearest valid: {nearest_multiples(g, m)}",
            )
        return self


class Lora(ApiModel):
    """A LoRA adapter (PEFT) instead of full fine-tuning."""

    r: int = Field(default=8, ge=1, le=1024, description="Adapter rank.")
    alpha: int = Field(default=16, ge=1, le=4096, description="Scaling numerator (alpha / r).")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Adapter dropout.")
    target_modules: list[ShortStr] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Module names to adapt; the architecture's defaults when unset.",
    )
    merge_on_export: bool = Field(
        default=False, description="Also export the base weights with the adapter merged in."
    )


class DeepSpeed(ApiModel):
    """DeepSpeed engine settings."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.offloadParameters == 'none' || self.zeroStage == 3",
                    "offloadParameters needs zeroStage 3",
                    ".offloadParameters",
                ),
                cel(
                    "self.offloadOptimizer == 'none' || self.zeroStage >= 1",
                    "offloadOptimizer needs zeroStage 1 or higher",
                    ".offloadOptimizer",
                ),
            ]
        }
    )

    zero_stage: int = Field(default=2, ge=0, le=3, description="ZeRO stage 0-3.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32", description="Training precision; fp16 needs GPUs."
    )
    offload_optimizer: Literal["none", "cpu"] = Field(
        default="none", description="Offload optimizer state to CPU memory."
    )
    offload_parameters: Literal["none", "cpu"] = Field(
        default="none", description="Offload parameters to CPU memory (ZeRO-3 only)."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Raw DeepSpeed config keys merged last over the resolved config.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    @model_validator(mode="after")
    def _rules(self) -> "DeepSpeed":
        if self.offload_parameters != "none" and self.zero_stage != 3:
            raise RuleError("offloadParameters", "offloadParameters needs zeroStage 3")
        if self.offload_optimizer != "none" and self.zero_stage < 1:
            raise RuleError("offloadOptimizer", "offloadOptimizer needs zeroStage 1 or higher")
        return self


TOLERATION_KEY = "operator must be Exists when key is empty (a toleration of every taint)"
TOLERATION_VALUE = "value must be empty when operator is Exists"
TOLERATION_SECONDS = "tolerationSeconds needs effect NoExecute"


class Toleration(ApiModel):
    """A Kubernetes toleration for the training pods."""

    # Kubernetes' own rules for a pod's tolerations: without them the FineTuneJob is
    # accepted and its Job refused, leaving the job stuck in Pending.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.operator == 'Exists' || (has(self.key) && self.key != '')",
                    TOLERATION_KEY,
                    ".operator",
                ),
                cel(
                    "self.operator != 'Exists' || !has(self.value) || self.value == ''",
                    TOLERATION_VALUE,
                    ".value",
                ),
                cel(
                    "!has(self.tolerationSeconds) || "
                    "(has(self.effect) && self.effect == 'NoExecute')",
                    TOLERATION_SECONDS,
                    ".tolerationSeconds",
                ),
            ]
        }
    )

    key: str | None = Field(
        default=None, max_length=316, pattern=LABEL_KEY_PATTERN, description="Taint key."
    )
    operator: Literal["Equal", "Exists"] = Field(default="Equal", description="Match operator.")
    value: str | None = Field(
        default=None, max_length=63, pattern=LABEL_VALUE_PATTERN, description="Taint value."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect; all effects when unset."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="How long a NoExecute taint is tolerated."
    )

    @model_validator(mode="after")
    def _rules(self) -> "Toleration":
        if self.operator != "Exists" and not self.key:
            raise RuleError("operator", TOLERATION_KEY)
        if self.operator == "Exists" and self.value:
            raise RuleError("value", TOLERATION_VALUE)
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise RuleError("tolerationSeconds", TOLERATION_SECONDS)
        return self


class Resources(ApiModel):
    """Compute for the training pods: one pod per node, one process per GPU."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.processesPerNode) || self.gpusPerNode == 0 "
                    "|| self.processesPerNode == self.gpusPerNode",
                    "processesPerNode must equal gpusPerNode when GPUs are requested",
                    ".processesPerNode",
                )
            ]
        }
    )

    nodes: int = Field(default=1, ge=1, le=1024, description="Pods (nodes) in the job.")
    gpus_per_node: int = Field(default=0, ge=0, le=16, description="GPUs per pod; 0 trains on CPU.")
    processes_per_node: int | None = Field(
        default=None,
        ge=1,
        le=128,
        description="Trainer processes per pod; gpusPerNode by default, 1 on CPU.",
    )
    cpu: Quantity = Field(default="2", description="CPU request (and limit) per pod.")
    memory: Quantity = Field(default="8Gi", description="Memory request (and limit) per pod.")
    shared_memory: Quantity | None = Field(
        default=None, description="Size of /dev/shm (dataloader workers, NCCL)."
    )
    image: ImageRef | None = Field(
        default=None, description="Trainer image; the controller's default when unset."
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]] = (
        Field(default_factory=dict, max_length=64, description="Node labels the pods must match.")
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=64, description="Tolerations for the pods."
    )
    priority_class_name: DnsSubdomain | None = Field(default=None, description="PriorityClass.")
    scheduler_name: DnsSubdomain | None = Field(
        default=None, description="Scheduler for the pods (e.g. a gang scheduler)."
    )

    @property
    def procs_per_node(self) -> int:
        if self.gpus_per_node:
            return self.gpus_per_node
        return self.processes_per_node or 1

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    @model_validator(mode="after")
    def _rules(self) -> "Resources":
        if (
            self.processes_per_node is not None
            and self.gpus_per_node
            and self.processes_per_node != self.gpus_per_node
        ):
            raise RuleError(
                "processesPerNode",
                "processesPerNode must equal gpusPerNode when GPUs are requested",
            )
        return self


class Storage(ApiModel):
    """Where outputs go and how to reach the object store."""

    output: OutputUri = Field(
        description="Output prefix; the job writes under <output>/<namespace>/<name>/."
    )
    endpoint: HttpUrl | None = Field(
        default=None, description="S3-compatible endpoint URL; AWS when unset."
    )
    region: str | None = Field(
        default=None, pattern=r"^[a-z0-9\-]{1,32}$", max_length=32, description="S3 region."
    )
    credentials_secret: DnsSubdomain | None = Field(
        default=None,
        description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, passed to the pods "
        "as environment variables. Credentials never go in the spec.",
    )


class ServiceAccount(ApiModel):
    """The trainer pods' Kubernetes identity, for cloud access without keys (IRSA, GKE
    Workload Identity, Azure Workload Identity)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.name) || !has(self.annotations)",
                    SA_NAME_AND_ANNOTATIONS,
                    ".annotations",
                )
            ]
        }
    )

    name: DnsSubdomain | None = Field(
        default=None,
        description="An existing ServiceAccount in the job's namespace to run the pods as "
        "(bound to the job's own Role so rank 0 can report progress). When unset the "
        "controller creates <job>-trainer.",
    )
    annotations: (
        dict[Annotated[str, Field(max_length=316)], Annotated[str, Field(max_length=1024)]] | None
    ) = Field(
        default=None,
        max_length=32,
        description="Annotations of the ServiceAccount the controller creates, e.g. "
        "eks.amazonaws.com/role-arn or iam.gke.io/gcp-service-account.",
    )

    @model_validator(mode="after")
    def _rules(self) -> "ServiceAccount":
        if self.name is not None and self.annotations is not None:
            raise RuleError("annotations", SA_NAME_AND_ANNOTATIONS)
        return self


class Checkpointing(ApiModel):
    """When to checkpoint and how many to keep."""

    every_steps: int | None = Field(
        default=None, ge=1, description="Checkpoint every N optimizer steps."
    )
    every_seconds: int | None = Field(
        default=None, ge=30, description="Checkpoint at most every N seconds of training."
    )
    keep: int = Field(default=2, ge=1, le=1000, description="Checkpoints kept (newest).")
    resume: bool = Field(
        default=True, description="Resume from the latest complete checkpoint when one exists."
    )
    resume_from_step: int | None = Field(
        default=None,
        ge=1,
        description="Restart the first attempt from this step's checkpoint (it must be complete "
        "and verify); newer checkpoints of the job are discarded. Retries resume from the latest.",
    )


class Evaluation(ApiModel):
    """Validation during training and the final test."""

    every_steps: int | None = Field(
        default=None, ge=1, description="Validate every N steps; only at the end when unset."
    )
    metrics: list[ShortStr] | None = Field(
        default=None, max_length=16, description="Metrics to compute; the task's defaults if unset."
    )
    compare_base_model: bool = Field(
        default=True, description="Also evaluate the base model, for a before/after comparison."
    )
    max_samples: int | None = Field(
        default=None, ge=1, description="Evaluate on at most this many rows per split."
    )
    max_new_tokens: int = Field(
        default=64, ge=1, le=4096, description="Generation cap for generative metrics."
    )


class MlflowTracking(ApiModel):
    """An MLflow tracking server: params, metrics and artifacts of every attempt."""

    tracking_uri: HttpUrl = Field(description="MLflow tracking server URL (http or https).")
    experiment: ShortStr = Field(
        default="ftjobs", description="Experiment name (created when it does not exist)."
    )
    credentials_secret: DnsSubdomain | None = Field(
        default=None,
        description="Secret with MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
        "MLFLOW_TRACKING_TOKEN, passed to the pods as environment variables.",
    )


class Tracking(ApiModel):
    """Experiment tracking. TensorBoard event files are always written to <output>/tb/."""

    mlflow: MlflowTracking | None = Field(
        default=None, description="Also log to this MLflow tracking server."
    )


# A positive whole number of seconds, minutes or hours (a Go/CEL duration subset).
DURATION_PATTERN = r"^[1-9][0-9]{0,5}(s|m|h)$"
DEFAULT_STARTUP_TIMEOUT = "10m"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(value: str) -> int:
    """Seconds of a duration that matched DURATION_PATTERN ("10m" -> 600)."""
    return int(value[:-1]) * _DURATION_UNITS[value[-1]]


class FailurePolicy(ApiModel):
    """What to do when a pod fails."""

    max_restarts: int = Field(
        default=3, ge=0, le=1000, description="Retriable failures tolerated before Failed."
    )
    backoff_seconds: int = Field(
        default=10, ge=0, le=86_400, description="First delay before a new attempt; doubles."
    )
    max_backoff_seconds: int = Field(default=600, ge=0, le=86_400, description="Delay cap.")
    max_repeated_failures: int = Field(
        default=3,
        ge=2,
        le=1000,
        description="Stop retrying (Failed, reason RepeatedFailure) when this many attempts "
        "in a row fail with the same error (exit code and message, numbers aside) and no "
        "new checkpoint in between: retrying would only fail the same way again.",
    )


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
        "!has(self.lora) || self.task != 'question-answering'",
        "lora is supported for causal-lm, seq2seq and sequence-classification",
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
        "!self.performance.packing || self.task == 'causal-lm'",
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
        if any(name not in TASK_FIELDS[task] for name in given):
            raise RuleError("dataset.fields", fields_message(task))
        if self.lora is not None and self.task not in LORA_TASKS:
            raise RuleError(
                "lora", "lora is supported for causal-lm, seq2seq and sequence-classification"
            )
        if self.deepspeed.precision == "fp16" and res.gpus_per_node == 0:
            raise RuleError(
                "deepspeed.precision",
                "fp16 precision needs GPUs (gpusPerNode > 0); use bf16 or fp32 on CPU",
            )
        allowed = TASK_METRICS[str(self.task)]
        if any(metric not in allowed for metric in self.evaluation.metrics or ()):
            # The list, not the item: the CEL rule's fieldPath cannot name an index.
            raise RuleError("evaluation.metrics", METRIC_MESSAGE)
        self._performance_rules()
        return self

    def _performance_rules(self) -> None:
        perf, gpus = self.performance, self.resources.gpus_per_node
        if perf.packing and self.task != Task.CAUSAL_LM:
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
    "DURATION_PATTERN",
    "LORA_TASKS",
    "MUTABLE_SPEC_FIELDS",
    "TASK_FIELDS",
    "TASK_METRICS",
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
    "ModelSpec",
    "Performance",
    "Resources",
    "ServiceAccount",
    "Split",
    "Storage",
    "Task",
    "Toleration",
    "duration_seconds",
]

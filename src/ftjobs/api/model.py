"""The base model to fine-tune (spec.model) and how pods reach the Hugging Face Hub (spec.hub)."""

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from ftjobs.api.types import (
    ApiModel,
    DnsSubdomain,
    HttpUrl,
    ModelUri,
    OutputUri,
    RuleError,
    cel,
)

REVISION_NEEDS_HF = (
    "revision applies to hf:// models; an s3:// or file:// model is pinned by its prefix "
    "(put the version in the path, e.g. s3://models/llama/v3/)"
)
REVISION_TWICE = "revision is given twice: in the uri (@...) and in model.revision; keep one"
MODEL_MISSING_MESSAGE = (
    "the base model is required: model.uri (its location) or model.fromJob (the name of an "
    "earlier FineTuneJob in this namespace whose exported model is the base)"
)
MODEL_TWICE_MESSAGE = "model.uri and model.fromJob exclude each other: keep one"


class ModelSpec(ApiModel):
    """The base model to fine-tune."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.uri) || has(self.fromJob)", MODEL_MISSING_MESSAGE, ".uri"),
                cel("!has(self.uri) || !has(self.fromJob)", MODEL_TWICE_MESSAGE, ".fromJob"),
                cel(
                    "!has(self.revision) || has(self.fromJob) || !has(self.uri) "
                    "|| self.uri.startsWith('hf://')",
                    REVISION_NEEDS_HF,
                    ".revision",
                ),
                cel("!has(self.revision) || !has(self.fromJob)", REVISION_NEEDS_HF, ".revision"),
                cel(
                    "!has(self.revision) || !has(self.uri) || !self.uri.startsWith('hf://') "
                    "|| !self.uri.contains('@')",
                    REVISION_TWICE,
                    ".revision",
                ),
            ]
        }
    )

    uri: ModelUri | None = Field(
        default=None,
        description="Where the base model lives: s3://bucket/prefix/, gs://bucket/prefix/, "
        "file:///path or "
        "hf://org/name[@revision] (a Hugging Face layout: config.json, weights, tokenizer; "
        "hf:// models are downloaded by the pods, see spec.hub). Exactly one of uri and "
        "fromJob.",
    )
    from_job: DnsSubdomain | None = Field(
        default=None,
        description="Continue from an earlier FineTuneJob in the same namespace: its exported "
        "model (<its output>/model/) is the base. The job must have Succeeded; while it is "
        "still running this job waits in Pending. `ftjobs run` reads it from the local output "
        "of an earlier `ftjobs run` with that name. Exactly one of uri and fromJob.",
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
        description="Keep downloaded hf:// models here (s3://, gs:// or file:// prefix), under "
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
        if self.uri is None and self.from_job is None:
            raise RuleError("uri", MODEL_MISSING_MESSAGE)
        if self.uri is not None and self.from_job is not None:
            raise RuleError("fromJob", MODEL_TWICE_MESSAGE)
        if self.revision is not None:
            if self.uri is None or not self.uri.startswith("hf://"):
                raise RuleError("revision", REVISION_NEEDS_HF)
            if "@" in self.uri:
                raise RuleError("revision", REVISION_TWICE)
        return self

    @property
    def location(self) -> str:
        """The model's URI; a spec with model.fromJob gets one when the job is resolved
        (`ftjobs.api.parent.with_parent`), before anything loads the model."""
        if self.uri is None:
            raise ValueError(f"model.fromJob {self.from_job} is not resolved to a URI")
        return self.uri


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

"""Where outputs go and how the pods reach storage (spec.storage with its per-scheme
blocks, spec.serviceAccount)."""

from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from ftjobs.api.types import (
    ApiModel,
    DnsSubdomain,
    HttpUrl,
    OutputUri,
    RuleError,
    cel,
)

# The key of the credentials Secret that holds the service-account JSON key file.
SERVICE_ACCOUNT_KEY = "service-account.json"


class GcsAccess(ApiModel):
    """Where Google Cloud Storage is and who the pods are to it."""

    endpoint: HttpUrl | None = Field(
        default=None,
        description="GCS JSON API endpoint; Google's when unset. With an endpoint and no "
        "credentialsSecret the requests are anonymous (an emulator such as fake-gcs-server).",
    )
    credentials_secret: DnsSubdomain | None = Field(
        default=None,
        description=f"Secret with a service-account JSON key under `{SERVICE_ACCOUNT_KEY}`, "
        "mounted read-only into the pods as a file (GOOGLE_APPLICATION_CREDENTIALS). "
        "Unset: the pods' own identity (GKE Workload Identity, see serviceAccount).",
    )
    project: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9\-]{4,28}[a-z0-9]$",
        max_length=30,
        description="Google Cloud project (GOOGLE_CLOUD_PROJECT); the key's when unset.",
    )


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
    gcs: GcsAccess | None = Field(
        default=None,
        # Left out of rendered configs when unset, so jobs that use no gs:// render the same.
        exclude_if=lambda value: value is None,
        description="How the pods reach Google Cloud Storage for gs:// URIs (the fields above "
        "are for s3:// URIs; one job may use both).",
    )


SA_NAME_AND_ANNOTATIONS = (
    "annotations apply to the ServiceAccount the controller creates; with serviceAccount.name, "
    "annotate your own ServiceAccount instead"
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
        "(bound to the job's own Role so rank 0 can report progress). When neither name nor "
        "annotations is set, the pods run as the namespace's shared trainer identity "
        "ftjobs.trainer, which the controller creates once per namespace.",
    )
    annotations: (
        dict[Annotated[str, Field(max_length=316)], Annotated[str, Field(max_length=1024)]] | None
    ) = Field(
        default=None,
        max_length=32,
        description="Annotations of a ServiceAccount of this job's own (<job>-trainer, created "
        "by the controller), e.g. eks.amazonaws.com/role-arn or "
        "iam.gke.io/gcp-service-account.",
    )

    @model_validator(mode="after")
    def _rules(self) -> "ServiceAccount":
        if self.name is not None and self.annotations is not None:
            raise RuleError("annotations", SA_NAME_AND_ANNOTATIONS)
        return self

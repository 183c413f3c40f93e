"""Controller-wide rendering settings: what a cluster operator chooses, not the job's author."""

from dataclasses import dataclass

from ftjobs.api.constants import DEFAULT_IMAGE


@dataclass(frozen=True)
class RenderSettings:
    """Defaults and policies the controller (or `ftjobs render`) applies to every job."""

    # Trainer image when spec.resources.image is unset.
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    # docker-registry Secrets every trainer pod pulls with (spec.imagePullSecrets adds more).
    image_pull_secrets: tuple[str, ...] = ()
    # S3 endpoint/region when spec.storage.endpoint/region are unset (e.g. an in-cluster
    # MinIO/versitygw); None leaves the SDK's default (AWS).
    s3_endpoint: str | None = None
    s3_region: str | None = None
    # Extended resource name of the GPUs, and whether GPU pods tolerate the usual taint.
    gpu_resource: str = "nvidia.com/gpu"
    gpu_tolerations: bool = True
    # Time between SIGTERM and SIGKILL: the trainer checkpoints and exits EXIT_RETRIABLE.
    termination_grace_seconds: int = 120
    # The program (argv prefix) that starts the node's trainer processes; it takes
    # torchrun's flags (launch.py). The default, `python -m ftjobs.trainer.launch`, keeps
    # the workers' exit codes, which the podFailurePolicy and the controller classify
    # failures by; stock ("torchrun",) exits 1 whenever a worker fails.
    launcher: tuple[str, ...] = ("python", "-m", "ftjobs.trainer.launch")
    # torchrun only: how long ranks wait for pod 0's rendezvous store. torchrun's default
    # (600 s) is short when nodes pull a multi-GB image at different speeds.
    rendezvous_timeout_seconds: int = 1800
    # Restricted pod security. The root filesystem is read-only; /tmp, /scratch and caches
    # are emptyDirs. An image that must write elsewhere can turn it off.
    run_as_user: int = 1000
    read_only_root_filesystem: bool = True
    # Bound on the /scratch emptyDir (checkpoint staging, Hugging Face cache); None = node's.
    scratch_size_limit: str | None = None

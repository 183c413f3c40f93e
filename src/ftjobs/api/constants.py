"""Names and numbers shared by every layer: the API group, labels, exit codes.

The trainer, the renderer and the controller meet only through these constants,
the spec, the S3 layout and the status fields, so they live in the pure `api` package.
"""

from typing import Final

GROUP: Final = "ftjobs.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "FineTuneJob"
PLURAL: Final = "finetunejobs"
SINGULAR: Final = "finetunejob"
SHORT_NAMES: Final = ("ftj",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# Labels put on every child object; selectors and the controller's watches use them.
LABEL_JOB: Final = f"{GROUP}/job"
# The Job controller puts a pod's index of an Indexed Job here: render reads it into the
# trainer's node rank, the k8s adapter sorts pods by it.
COMPLETION_INDEX_ANNOTATION: Final = "batch.kubernetes.io/job-completion-index"
LABEL_ATTEMPT: Final = f"{GROUP}/attempt"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_KUEUE_QUEUE: Final = "kueue.x-k8s.io/queue-name"
LABEL_KUEUE_PRIORITY: Final = "kueue.x-k8s.io/priority-class"
# Kueue's Workload API (the controller reads a queued Job's Workload and sets spec.active)
# and the label Kueue puts on a Workload naming the Job it stands for.
KUEUE_WORKLOAD_API: Final = "kueue.x-k8s.io/v1beta2"
LABEL_KUEUE_JOB_UID: Final = "kueue.x-k8s.io/job-uid"
MANAGER: Final = "ftjobs-controller"
# The trainer's identity shared by every FineTuneJob of a namespace (ServiceAccount, Role
# and RoleBinding of this name). A dot, because a FineTuneJob name (a DNS-1035 label) has
# none: the per-job identity `<name>-trainer` can never take this name.
TRAINER_IDENTITY: Final = "ftjobs.trainer"

# `ftjobs cancel` sets this annotation; the controller deletes the running attempt and
# marks the job Cancelled (the record stays). Shared by the SDK and the controller.
ANNOTATION_CANCEL: Final = f"{GROUP}/cancel-requested"

# Trainer exit codes. The Job's podFailurePolicy and the controller classify pod
# failures by these, so they are part of the contract between trainer and controller.
EXIT_SUCCESS: Final = 0
# EX_TEMPFAIL (sysexits.h): preempted, SIGTERM, lost peer, storage hiccup -> new attempt.
EXIT_RETRIABLE: Final = 75
# EX_CONFIG (sysexits.h): bad spec, bad data, model that cannot load -> no retry.
EXIT_PERMANENT: Final = 78
TERMINATION_LOG: Final = "/dev/termination-log"

# The trainer's rendezvous port on pod 0 (torchrun --master-port).
MASTER_PORT: Final = 29500
# The scratch volume's size limit (spec.resources.scratchSize), for the trainer's
# export-space check: statvfs does not see an emptyDir's sizeLimit.
SCRATCH_SIZE_ENV: Final = "FTJOBS_SCRATCH_SIZE"
# Where the rendered pod mounts the resolved trainer config.
CONFIG_MOUNT_DIR: Final = "/etc/ftjobs"
CONFIG_FILE_NAME: Final = "job.json"
# The Job's pod-template annotation that carries the resolved trainer config; a downwardAPI
# volume projects it to CONFIG_MOUNT_DIR/CONFIG_FILE_NAME.
CONFIG_ANNOTATION: Final = f"{GROUP}/trainer-config"
# The API server refuses an object whose annotations total more than 256 KiB (keys and
# values); the config may take half, the rest stays for Kueue's and others' annotations.
CONFIG_MAX_BYTES: Final = 128 * 1024
SCRATCH_DIR: Final = "/scratch"

DEFAULT_IMAGE: Final = "ghcr.io/ftjobs/trainer:0.1.0"

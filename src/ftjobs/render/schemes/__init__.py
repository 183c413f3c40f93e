"""The pod side of every storage scheme, by scheme: the render layer's list of schemes.

`ftjobs.storage.backends` lists the same schemes for the storage side (a unit test keeps
the two in step). Adding a scheme: one module with a `DESCRIPTOR`, one line in
`DESCRIPTORS` (docs/architecture.md, "Add a storage backend").
"""

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.schemes import gs, s3
from ftjobs.render.schemes.base import Objects, SchemeDescriptor, SecretNeed, secret_ref
from ftjobs.render.settings import RenderSettings

# file:// paths are volumes the user mounts; nothing to add.
FILE = SchemeDescriptor("file")

DESCRIPTORS: dict[str, SchemeDescriptor] = {
    d.scheme: d for d in (FILE, s3.DESCRIPTOR, gs.DESCRIPTOR)
}
SCHEMES: tuple[str, ...] = tuple(DESCRIPTORS)


def scheme_env(spec: FineTuneJobSpec, settings: RenderSettings) -> Objects:
    """Every scheme's environment variables, in registry order."""
    return [e for d in DESCRIPTORS.values() for e in d.env(spec, settings)]


def scheme_volumes(spec: FineTuneJobSpec) -> Objects:
    return [v for d in DESCRIPTORS.values() for v in d.volumes(spec)]


def scheme_mounts(spec: FineTuneJobSpec) -> Objects:
    return [m for d in DESCRIPTORS.values() for m in d.mounts(spec)]


def secret_needs(spec: FineTuneJobSpec) -> list[SecretNeed]:
    """The Secrets the job's pods read for storage, with the keys each must hold."""
    return [n for d in DESCRIPTORS.values() for n in d.secrets(spec)]


__all__ = [
    "DESCRIPTORS",
    "SCHEMES",
    "SchemeDescriptor",
    "SecretNeed",
    "scheme_env",
    "scheme_mounts",
    "scheme_volumes",
    "secret_needs",
    "secret_ref",
]

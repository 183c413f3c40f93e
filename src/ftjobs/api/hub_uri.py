"""hf:// URIs: which Hub repo (model or dataset) and which revision they name.

`hf://org/name[@revision]` is a model; `hf://datasets/org/name[@revision][/path]` a
dataset (the form fsspec's HfFileSystem reads). Shared by the trainer (downloads) and
preflight (existence checks) so both read a URI the same way.
"""

from dataclasses import dataclass

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class HubRef:
    """A Hub repo and the revision asked for (None: the default branch)."""

    kind: str  # "model" or "dataset"
    repo: str
    revision: str | None

    @property
    def uri(self) -> str:
        prefix = "hf://datasets/" if self.kind == "dataset" else "hf://"
        return prefix + self.repo + (f"@{self.revision}" if self.revision else "")


def parse_hub_uri(uri: str, revision: str | None = None) -> HubRef:
    """The repo of an hf:// URI; `revision` applies when the URI carries none."""
    rest = uri.removeprefix("hf://")
    kind = "model"
    if rest.startswith("datasets/"):
        kind, rest = "dataset", rest.removeprefix("datasets/")
        rest = "/".join(rest.split("/")[:2])  # org/name[@rev]; the path inside is not the repo
    repo, _, found = rest.partition("@")
    return HubRef(kind=kind, repo=repo, revision=found or revision)

"""Run a rendered pod's container from the built images with a real OCI runtime (podman).

What a kubelet would do with the pod spec, for one container: the image's entrypoint
replaced by ``command``/``args`` (with ``$(VAR)`` expanded from the env), the env with
``fieldRef`` values taken from the pod's metadata, ``emptyDir`` volumes as fresh
world-writable directories, ``downwardAPI`` volumes as read-only files with the pod's
annotation or label values (the trainer's config),
and the securityContext (user/group, fsGroup, read-only root filesystem with nothing else
writable, no privilege escalation, dropped capabilities, the runtime's default seccomp).
Images come from the storage `hack/build-images.sh` builds into, under the refs it prints.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "build-images.sh"
IMAGES = Path(os.environ.get("FTJOBS_CACHE") or Path.home() / ".cache" / "ftjobs") / "images"
RUNROOT = os.environ.get("FTJOBS_IMAGES_RUNROOT", "/run/ftjobs-images")


@dataclass(frozen=True)
class BuiltImage:
    target: str
    ref: str
    archive: Path


def built_images() -> dict[str, BuiltImage]:
    """The images for the current sources (built now when missing: `make image` does it first)."""
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"hack/build-images.sh failed:\n{proc.stderr[-4000:]}"
    images = {}
    for line in proc.stdout.splitlines():
        target, ref, archive = line.split()
        images[target] = BuiltImage(target, ref, Path(archive))
    assert set(images) == {"trainer", "controller"}, proc.stdout
    return images


def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """podman on the build's storage, running containers with runc.

    cgroupfs and a file event log: these machines have no systemd. runc: crun 1.8 refuses
    the hybrid cgroup v1/v2 layout here.
    """
    base = [
        "podman",
        "--runtime",
        "runc",
        "--root",
        str(IMAGES / "storage"),
        "--runroot",
        RUNROOT,
        "--storage-driver",
        "overlay",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ]
    return subprocess.run(
        [*base, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def skopeo_config(transport_ref: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["skopeo", "inspect", "--config", transport_ref],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"skopeo inspect {transport_ref}: {proc.stderr}"
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def storage_ref(ref: str) -> str:
    return f"containers-storage:[overlay@{IMAGES / 'storage'}+{RUNROOT}]{ref}"


# podman's default rlimits (nofile 1048576, nproc = the host's) exceed what root may set
# in these VMs (no CAP_SYS_RESOURCE over the hard limits; runc then fails with "error
# setting rlimit"): ask for values within them.
RLIMITS = [
    "--ulimit",
    f"nofile={min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1048576)}",
    "--ulimit",
    "nproc=4096:4096",
]

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """The kubelet's $(VAR) expansion (unknown names stay as written)."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def field_value(path: str, meta: dict[str, Any]) -> str:
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str(meta[m.group(1)][m.group(2)])
    key = path.removeprefix("metadata.")
    return str(meta[key])


def downward_api_files(volume: dict[str, Any], meta: dict[str, Any]) -> dict[str, str]:
    """A downwardAPI volume's files as the kubelet writes them: {path: the field's value}."""
    return {
        item["path"]: field_value(item["fieldRef"]["fieldPath"], meta)
        for item in volume["downwardAPI"]["items"]
    }


@dataclass
class PodRun:
    """One container of a pod spec, ready to run under podman."""

    pod: dict[str, Any]
    container: dict[str, Any]
    meta: dict[str, Any]
    workdir: Path
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for item in self.container.get("env", []):
            source = item.get("valueFrom", {})
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), env)
            elif "fieldRef" in source:
                env[item["name"]] = field_value(source["fieldRef"]["fieldPath"], self.meta)
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                value = self.secrets.get(ref["name"], {}).get(ref["key"])
                assert value is not None or ref.get("optional"), f"Secret key {ref} missing"
                if value is not None:
                    env[item["name"]] = value
            else:
                raise AssertionError(f"env source not handled here: {item}")
        return env

    def _volume_args(self) -> list[str]:
        volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        args: list[str] = []
        for mount in self.container.get("volumeMounts", []):
            vol = volumes[mount["name"]]
            host = self.workdir / "volumes" / mount["name"]
            if not host.exists():
                host.mkdir(parents=True)
                if "emptyDir" in vol:
                    host.chmod(0o777)  # as the kubelet creates an emptyDir
                elif "downwardAPI" in vol:
                    for path, text in downward_api_files(vol, self.meta).items():
                        (host / path).write_text(text)
                        (host / path).chmod(vol["downwardAPI"].get("defaultMode", 0o644))
                else:
                    raise AssertionError(f"volume kind not handled here: {vol}")
            ro = mount.get("readOnly") or "downwardAPI" in vol
            args += ["--volume", f"{host}:{mount['mountPath']}:{'ro' if ro else 'rw'},z"]
        return args

    def _security_args(self) -> list[str]:
        pod_ctx = self.pod.get("securityContext", {})
        ctx = {**pod_ctx, **self.container.get("securityContext", {})}
        args: list[str] = []
        if "runAsUser" in ctx:
            args += ["--user", f"{ctx['runAsUser']}:{ctx.get('runAsGroup', ctx['runAsUser'])}"]
        if "fsGroup" in pod_ctx:
            args += ["--group-add", str(pod_ctx["fsGroup"])]
        if ctx.get("readOnlyRootFilesystem"):
            # Only the pod's volumes are writable (podman would add tmpfs /tmp, /run by default).
            args += ["--read-only", "--read-only-tmpfs=false"]
        if ctx.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        for cap in ctx.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", cap]
        if ctx.get("privileged"):
            args.append("--privileged")
        return args

    def run(
        self,
        image: str,
        *,
        command: list[str] | None = None,
        network: str = "none",
        extra_env: dict[str, str] | None = None,
        hosts: dict[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run the container (its own command, or `command` instead) to completion.

        `hosts`: extra name -> address entries (what the cluster DNS would answer).
        """
        env = {**self.env(), **(extra_env or {})}
        argv = command or [
            *self.container.get("command", []),
            *self.container.get("args", []),
        ]
        argv = [expand(str(a), env) for a in argv]
        args = ["run", "--rm", "--pull", "never", "--network", network, *RLIMITS]
        args += self._security_args() + self._volume_args()
        for name, address in (hosts or {}).items():
            args += ["--add-host", f"{name}:{address}"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        # As a pod's `command`: replaces the image's ENTRYPOINT and drops its CMD.
        if argv:
            args += ["--entrypoint", json.dumps(argv), image]
        else:
            args.append(image)
        return podman(*args, timeout=timeout)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir / "volumes", ignore_errors=True)

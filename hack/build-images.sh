#!/usr/bin/env bash
# Build the project's images (trainer and controller) from ./Dockerfile, offline from any
# container registry, and leave them as archives containerd can import.
#
# Contract (other scripts and tests rely on it; keep it stable):
#   hack/build-images.sh [--print] [--no-build]
#     builds what is missing (progress on stderr: step lines with elapsed time); with
#     --print, then writes exactly these lines on stdout:
#       trainer <ref> <archive-path>
#       controller <ref> <archive-path>
#     --no-build: print only; exit 3 when the archives for the current inputs are missing.
#   refs      localhost/ftjobs/trainer:<version>-<key>, localhost/ftjobs/controller:<version>-<key>
#             <key> = 12 hex of a sha256 over every input (Dockerfile, hack/constraints.txt,
#             pyproject.toml, README.md, src/, hack/images/, this script, the bases' ids),
#             so a source change gives new tags.
#   archives  $FTJOBS_CACHE/images/out/<key>/{trainer,controller}.tar: docker-archive,
#             uncompressed, RepoTags = the ref.  `ctr -n k8s.io images import <archive>`,
#             `podman load -i <archive>` and `docker load -i <archive>` read them.
#             This key's and the newest earlier key's archives are kept (older ones are
#             pruned before a new export).
#
# How (no registry is reachable here; Debian's mirror and PyPI are):
#   1. rootfs   mmdebstrap: Debian bookworm minbase + python3, pip, venv (Debian packages)
#   2. bases    stand-ins for the Dockerfile's public bases, in buildah's storage:
#                 localhost/ftjobs-base/python:3.11-slim-bookworm          (PYTHON_IMAGE)
#                 localhost/ftjobs-base/pytorch:<torch>-<cuda>-{runtime,devel}
#                   = the python stand-in + the pinned torch wheel from PyPI (PYTORCH_IMAGE)
#   3. images   `buildah build --layers` of ./Dockerfile, --target controller and trainer,
#               with --build-arg PYTHON_IMAGE/PYTORCH_IMAGE pointing at the stand-ins and
#               DEEPSPEED_OPS="" (no nvcc here: a pure-Python DeepSpeed wheel).
#               The layer cache keeps the dependency layers when only src/ changed.
#   4. archives `buildah push ... docker-archive:`
# Everything lives under $FTJOBS_CACHE/images (default ~/.cache/ftjobs/images): storage/
# (buildah's containers-storage), rootfs/, pip-cache/ (torch wheels for the stand-in),
# out/<key>/, logs/.  Needs root (buildah, mmdebstrap); installs buildah, mmdebstrap,
# skopeo and podman with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=$0

# Everything runs from main(): bash reads the whole function before running it, so an
# edit of this file during a (long) build does not change the running build.
main() {
PRINT=0 BUILD=1
for a in "$@"; do
  case $a in
    --print) PRINT=1 ;;
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,35p' "$SCRIPT"; exit 0 ;;
    *) echo "build-images: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${FTJOBS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
APT_TOOLS=(buildah mmdebstrap skopeo podman crun conmon)

CACHE=${FTJOBS_CACHE:-$HOME/.cache/ftjobs}
IMG=$CACHE/images
LOGS=$IMG/logs
STORE=(--root "$IMG/storage" --runroot "${FTJOBS_IMAGES_RUNROOT:-/run/ftjobs-images}" --storage-driver overlay)

pin() { sed -n "s/^$1==//Ip" hack/constraints.txt | head -1; }
arg_default() { sed -n "s/^ARG $1=\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" Dockerfile | head -1; }
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
TORCH_VERSION=$(pin torch)
CUDA_TAG=$(arg_default CUDA_TAG)
PY_BASE=localhost/ftjobs-base/python:3.11-slim-$DEBIAN_SUITE
TORCH_REPO=localhost/ftjobs-base/pytorch
TORCH_TAG=$TORCH_VERSION-$CUDA_TAG

START=$(date +%s)
log() { printf '[build-images +%4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
sha() { sha256sum | cut -c1-12; }

# The key of the project images: every file the Dockerfile copies or that decides how it
# is built (the .dockerignore'd caches excluded).
inputs_key() {
  {
    cat Dockerfile .dockerignore hack/constraints.txt pyproject.toml README.md "$SCRIPT" hack/images/*
    find src -type f ! -path '*/__pycache__/*' ! -name '*.py[cod]' ! -path '*.egg-info/*' \
      -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "$1"
  } | sha
}

print_lines() {
  local key=$1
  echo "trainer localhost/ftjobs/trainer:$VERSION-$key $IMG/out/$key/trainer.tar"
  echo "controller localhost/ftjobs/controller:$VERSION-$key $IMG/out/$key/controller.tar"
}

# The bases' ids enter the key, so without a build only the last recorded ids can be used.
if [[ $BUILD == 0 ]]; then
  [[ -f $IMG/bases.id ]] || { log "no images built yet (run without --no-build)"; exit 3; }
  key=$(inputs_key "$(cat "$IMG/bases.id")")
  [[ -f $IMG/out/$key/done ]] || { log "images for the current inputs ($key) are not built"; exit 3; }
  [[ $PRINT == 1 ]] && print_lines "$key"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "needs root (buildah storage, mmdebstrap); these machines run as root"
mkdir -p "$IMG" "$LOGS"
# One build at a time (make and a pytest fixture may both ask).
exec 8>"$IMG/.lock"
if ! flock -n 8; then log "another build-images is running; waiting for it"; flock 8; fi

missing=()
for t in "${APT_TOOLS[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]} (Debian packages)"
  # one apt at a time with hack/install-node-packages.sh (make -j in .ci/run)
  DEBIAN_FRONTEND=noninteractive flock /tmp/ftjobs-apt.lock apt-get -o DPkg::Lock::Timeout=600 \
    install -y -q --no-install-recommends "${APT_TOOLS[@]}" \
    >"$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log" >&2; die "apt-get install failed"; }
fi

bah() { buildah "${STORE[@]}" "$@"; }
# RUN steps reach PyPI through this machine's network: give them its CA bundle (it holds
# the CA of a TLS-inspecting proxy where there is one).
CA_BUNDLE=${FTJOBS_IMAGES_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
# --force-rm: a failed step leaves no working container (GBs after a half torch install).
RUN_OPTS=(--layers --force-rm --isolation chroot --network host)
[[ -f $CA_BUNDLE ]] && RUN_OPTS+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
image_id() { bah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }

# run_logged <name> <cmd...>: full output to logs/<name>.log; builder steps on stderr
# with the elapsed time, so a long build shows where it is.
run_logged() {
  local name=$1 logf=$LOGS/$1.log t0; shift
  t0=$(date +%s)
  log "$name: started (log: $logf)"
  set +e
  "$@" 2>&1 | tee "$logf" | while IFS= read -r line; do
    case $line in
      *STEP* | *COMMIT* | *"Using cache"* | "I: "* | *"Successfully tagged"* | Writing\ manifest*)
        log "$name: ${line:0:150}" ;;
    esac
  done
  local rc=${PIPESTATUS[0]}
  set -e
  ((rc == 0)) || { tail -40 "$logf" >&2; die "$name failed (rc=$rc); full log: $logf"; }
  log "$name: done in $(($(date +%s) - t0))s"
}

# --- 1+2. base stand-ins, rebuilt only when their definition changes ---------------------
base_key=$({ echo "$DEBIAN_SUITE $DEBIAN_PACKAGES"; cat hack/images/python.Containerfile; } | sha)
if [[ $(cat "$IMG/python.key" 2>/dev/null) != "$base_key" || -z $(image_id "$PY_BASE") ]]; then
  rootfs=$IMG/rootfs/$DEBIAN_SUITE-$base_key
  mkdir -p "$rootfs"
  if [[ ! -f $rootfs/rootfs.tar ]]; then
    log "step 1/4: Debian $DEBIAN_SUITE rootfs with mmdebstrap (~2 min)"
    run_logged mmdebstrap mmdebstrap --variant=minbase --format=tar --include="$DEBIAN_PACKAGES" \
      "$DEBIAN_SUITE" "$rootfs/rootfs.tar.part" "$DEBIAN_MIRROR"
    mv "$rootfs/rootfs.tar.part" "$rootfs/rootfs.tar"
  fi
  cp hack/images/python.Containerfile "$rootfs/Containerfile"
  log "step 2/4: python base stand-in $PY_BASE"
  run_logged base-python bah build "${RUN_OPTS[@]}" \
    -f "$rootfs/Containerfile" -t "$PY_BASE" "$rootfs"
  echo "$base_key" >"$IMG/python.key"
fi
py_id=$(image_id "$PY_BASE")

# Keyed on the pins of torch and the CUDA wheels it pulls, not on every pin: another pin
# changing is applied by the Dockerfile's own pip install, without a new multi-GB base.
torch_key=$({ echo "$py_id $TORCH_VERSION"; cat hack/images/pytorch.Containerfile
  grep -iE '^(torch|triton|nvidia-|cuda-)' hack/constraints.txt; } | sha)
if [[ $(cat "$IMG/pytorch.key" 2>/dev/null) != "$torch_key" || -z $(image_id "$TORCH_REPO:$TORCH_TAG-runtime") ]]; then
  ctx=$IMG/pytorch-context
  rm -rf "$ctx"; mkdir -p "$ctx" "$IMG/pip-cache"
  cp hack/images/pytorch.Containerfile "$ctx/Containerfile"
  cp hack/constraints.txt "$ctx/constraints.txt"
  log "step 2/4: pytorch base stand-in $TORCH_REPO:$TORCH_TAG-{runtime,devel} (torch $TORCH_VERSION from PyPI; several GB on a cold cache, ~10 min)"
  run_logged base-pytorch bah build "${RUN_OPTS[@]}" \
    --volume "$IMG/pip-cache:/root/.cache/pip" \
    --build-arg "PYTHON_IMAGE=$PY_BASE" --build-arg "TORCH_VERSION=$TORCH_VERSION" \
    -f "$ctx/Containerfile" -t "$TORCH_REPO:$TORCH_TAG-runtime" -t "$TORCH_REPO:$TORCH_TAG-devel" "$ctx"
  echo "$torch_key" >"$IMG/pytorch.key"
else
  log "step 1-2/4: base stand-ins cached ($PY_BASE, $TORCH_REPO:$TORCH_TAG-{runtime,devel})"
fi
torch_id=$(image_id "$TORCH_REPO:$TORCH_TAG-runtime")
echo "$py_id $torch_id" >"$IMG/bases.id"

# --- 3+4. the project's Dockerfile, both targets, then archives ---------------------------
key=$(inputs_key "$py_id $torch_id")
out=$IMG/out/$key
if [[ -f $out/done ]]; then
  log "step 3-4/4: images for inputs $key cached in $out"
else
  # Keep the newest earlier key's archives and make this one (each trainer archive is
  # several GB; pruned before exporting so the disk never holds three): two checkouts
  # sharing the cache (a worktree and main) do not delete the archive the other just built.
  for old in $(ls -1td "$IMG"/out/*/ 2>/dev/null | tail -n +2); do
    old=${old%/}
    ok=$(basename "$old")
    log "pruning images of older inputs $ok"
    bah rmi "localhost/ftjobs/trainer:$VERSION-$ok" "localhost/ftjobs/controller:$VERSION-$ok" >/dev/null 2>&1 || true
    rm -rf "$old"
  done
  rm -rf "$out"; mkdir -p "$out"
  for target in controller trainer; do
    ref=localhost/ftjobs/$target:$VERSION-$key
    log "step 3/4: $target image $ref from ./Dockerfile (buildah, layer cache in $IMG/storage)"
    run_logged "build-$target" bah build "${RUN_OPTS[@]}" --pull=never \
      --build-arg "PYTHON_IMAGE=$PY_BASE" --build-arg "PYTORCH_IMAGE=$TORCH_REPO" \
      --build-arg "DEEPSPEED_OPS=" --target "$target" -f Dockerfile -t "$ref" .
    log "step 4/4: $target archive $out/$target.tar"
    rm -f "$out/$target.tar"
    run_logged "push-$target" bah push "$ref" "docker-archive:$out/$target.tar.part:$ref"
    mv "$out/$target.tar.part" "$out/$target.tar"
    log "$target: $(du -h "$out/$target.tar" | cut -f1) archive"
  done
  touch "$out/done"
fi
log "ready (key $key)"
if [[ $PRINT == 1 ]]; then print_lines "$key"; fi
}

main "$@"

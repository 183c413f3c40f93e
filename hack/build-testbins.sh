#!/usr/bin/env bash
# Build (once) and cache the binaries the integration tiers run against:
#   kubernetes  kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#   etcd        etcd (server only)
#   kwok        kwok, kwokctl
#   versitygw   S3 server (posix backend)
#   fakegcs     fake-gcs-server (Google Cloud Storage JSON API emulator) for gs:// tests
#   helm        helm v3
#   toxiproxy   toxiproxy-server (TCP fault injector in front of the S3 server)
#   kubelet     kubelet (same Kubernetes module/version) for the real-node tier
#   containerd  containerd v2 + containerd-shim-runc-v2 + ctr
#   runc        runc (cgo + libseccomp from Debian's libseccomp-dev, hack/install-node-packages.sh)
#   cni         CNI plugins bridge, host-local, loopback, portmap
#   coredns     CoreDNS with only the plugins the real-node tier uses
#   kueue       Kueue manager + its CRDs and webhook manifests (from the module zip)
# Everything comes from the Go module proxy and is built with the local Go
# toolchain. Binaries land in ~/.cache/ftjobs/bin/<component>-<version>/ and are
# never rebuilt while present, so a warm run takes well under a second.
#
# The Go build and module caches live under the same root ($CACHE/go/{build,mod}), so
# one FTJOBS_CACHE=<empty dir> gives a truly cold build (what a clean CI machine does)
# without touching the real caches. kubernetes and kubelet, when both are missing, are
# compiled by ONE `go build` (they share most of the k8s.io/kubernetes packages).
#
# Usage: hack/build-testbins.sh [component...]   (default: all)
# Env:   FTJOBS_CACHE (default ~/.cache/ftjobs), FTJOBS_GO_PARALLEL (default: the CPUs)
#        FTJOBS_GOCACHE / FTJOBS_GOMODCACHE override the Go caches' places.
#        FTJOBS_BIN_VERSIONS_ONLY=1: print "<component> <dir>" lines and exit.
set -euo pipefail

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
VERSITYGW_VERSION=v1.8.0
HELM_VERSION=v3.21.4
TOXIPROXY_VERSION=v2.12.0
CONTAINERD_VERSION=v2.4.2
CNI_VERSION=v1.10.0
COREDNS_VERSION=v1.15.0
RUNC_VERSION=v1.5.3
KUEUE_VERSION=v0.17.0
FAKEGCS_VERSION=v1.56.1

CACHE=${FTJOBS_CACHE:-$HOME/.cache/ftjobs}
BIN_ROOT=$CACHE/bin
SRC_ROOT=$CACHE/src
LOG_ROOT=$CACHE/build-logs
PAR=${FTJOBS_GO_PARALLEL:-$(nproc 2>/dev/null || echo 2)}

START=$(date +%s)
log() { printf '[build-testbins +%4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# -modcacherw: a throwaway FTJOBS_CACHE (a cold-build measurement) can be rm -rf'd
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -modcacherw"
export GOCACHE=${FTJOBS_GOCACHE:-$CACHE/go/build} GOMODCACHE=${FTJOBS_GOMODCACHE:-$CACHE/go/mod}
command -v go >/dev/null || die "go is not on PATH (need Go >= 1.26)"

dir_of() {
  case $1 in
    kubernetes) echo "$BIN_ROOT/kubernetes-$K8S_VERSION" ;;
    k8s-all) echo "$BIN_ROOT/k8s-all-$K8S_VERSION" ;;
    etcd) echo "$BIN_ROOT/etcd-$ETCD_VERSION" ;;
    kwok) echo "$BIN_ROOT/kwok-$KWOK_VERSION" ;;
    versitygw) echo "$BIN_ROOT/versitygw-$VERSITYGW_VERSION" ;;
    helm) echo "$BIN_ROOT/helm-$HELM_VERSION" ;;
    toxiproxy) echo "$BIN_ROOT/toxiproxy-$TOXIPROXY_VERSION" ;;
    kubelet) echo "$BIN_ROOT/kubelet-$K8S_VERSION" ;;
    containerd) echo "$BIN_ROOT/containerd-$CONTAINERD_VERSION" ;;
    cni) echo "$BIN_ROOT/cni-$CNI_VERSION" ;;
    coredns) echo "$BIN_ROOT/coredns-$COREDNS_VERSION" ;;
    runc) echo "$BIN_ROOT/runc-$RUNC_VERSION" ;;
    kueue) echo "$BIN_ROOT/kueue-$KUEUE_VERSION" ;;
    fakegcs) echo "$BIN_ROOT/fakegcs-$FAKEGCS_VERSION" ;;
    *) die "unknown component $1" ;;
  esac
}
bins_of() {
  case $1 in
    kubernetes) echo "kube-apiserver kube-controller-manager kube-scheduler kubectl" ;;
    k8s-all) echo "kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet" ;;
    etcd) echo "etcd" ;;
    kwok) echo "kwok kwokctl" ;;
    versitygw) echo "versitygw" ;;
    helm) echo "helm" ;;
    toxiproxy) echo "toxiproxy-server" ;;
    kubelet) echo "kubelet" ;;
    containerd) echo "containerd containerd-shim-runc-v2 ctr" ;;
    cni) echo "bridge host-local loopback portmap" ;;
    coredns) echo "coredns" ;;
    runc) echo "runc" ;;
    kueue) echo "kueue" ;;
    fakegcs) echo "fake-gcs-server" ;;
  esac
}

ALL=(etcd versitygw fakegcs kwok kubernetes helm toxiproxy kubelet containerd runc cni coredns kueue)
if [[ ${FTJOBS_BIN_VERSIONS_ONLY:-} == 1 ]]; then
  for c in "${ALL[@]}"; do echo "$c $(dir_of "$c")"; done
  exit 0
fi

cached() {
  local d; d=$(dir_of "$1")
  for b in $(bins_of "$1"); do [[ -x $d/$b ]] || return 1; done
  [[ $1 != kueue || -d $d/crd ]]
}

# new_wrapper <name> : fresh wrapper module dir, echoed
new_wrapper() {
  local w=$SRC_ROOT/$1
  rm -rf "$w"; mkdir -p "$w"; echo "$w"
}

# go_build_into <component> <wrapperdir> <ldflags> <pkg...>: build into a temp
# dir next to the final one, then rename, so a half build is never "cached".
go_build_into() {
  local comp=$1 w=$2 ldflags=$3; shift 3
  local final tmp logf
  final=$(dir_of "$comp"); tmp=$final.tmp.$$
  logf=$LOG_ROOT/$comp.log
  rm -rf "$tmp"; mkdir -p "$tmp" "$LOG_ROOT"
  log "$comp: resolving modules (go get) ... log: $logf"
  ( cd "$w" && go get "$@" ) >"$logf" 2>&1 || { tail -30 "$logf" >&2; die "$comp: go get failed"; }
  log "$comp: compiling $(bins_of "$comp") (-p $PAR)"
  ( cd "$w" && go build -p "$PAR" -trimpath -tags="${GO_TAGS:-selinux,notest}" -ldflags "$ldflags" -o "$tmp/" "${@%@*}" ) >>"$logf" 2>&1 \
    || { tail -40 "$logf" >&2; rm -rf "$tmp"; die "$comp: go build failed"; }
  # Packages whose directory name is not the binary's name (toxiproxy's cmd/server).
  local pair
  for pair in ${RENAME_BINS:-}; do mv "$tmp/${pair%%:*}" "$tmp/${pair#*:}"; done
  for b in $(bins_of "$comp"); do [[ -x $tmp/$b ]] || die "$comp: $b missing after build"; done
  # Non-binary files a component ships with (Kueue's CRDs), copied before the rename.
  [[ -z ${POST_BUILD:-} ]] || (cd "$w" && "$POST_BUILD" "$tmp") || die "$comp: $POST_BUILD failed"
  rm -rf "$final"; mv "$tmp" "$final"
  log "$comp: done -> $final ($(du -sh "$final" | cut -f1))"
}

# k8s_wrapper <name>: wrapper module requiring k8s.io/kubernetes@$K8S_VERSION with
# every staging module pinned to its published version; sets W and K8S_LD.
k8s_wrapper() {
  local v=$K8S_VERSION minor staging_v
  minor=${v#v1.}; minor=${minor%%.*}
  staging_v=v0.${v#v1.}
  W=$(new_wrapper "$1-$v")
  log "$1: reading staging modules from k8s.io/kubernetes@$v go.mod"
  local modfile; modfile=$(cd "$W" && go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $modfile ]] || die "$1: could not download go.mod of k8s.io/kubernetes@$v"
  local staging
  staging=$(grep -E '=> \./staging/' "$modfile" | awk '{print $1}' | sort -u)
  [[ -n $staging ]] || die "$1: no staging replaces found in $modfile"
  {
    echo "module ftjobs.local/testbins/$1"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_v"; done
    echo ")"
  } >"$W/go.mod"
  log "$1: wrapper module with $(wc -w <<<"$staging") staging replaces at $staging_v"
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  K8S_LD="-s -w"
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    K8S_LD+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date -X $p.gitCommit=ftjobs-testbins"
  done
}

k8s_pkgs() {
  local b
  for b in "$@"; do echo "k8s.io/kubernetes/cmd/$b@$K8S_VERSION"; done
}

build_kubernetes() {
  k8s_wrapper kubernetes
  # shellcheck disable=SC2046
  go_build_into kubernetes "$W" "$K8S_LD" $(k8s_pkgs $(bins_of kubernetes))
}

# The kubelet is its own component so adding it did not invalidate cached
# control-plane binaries; it shares the Go module and build caches with them.
build_kubelet() {
  k8s_wrapper kubelet
  # shellcheck disable=SC2046
  go_build_into kubelet "$W" "$K8S_LD" $(k8s_pkgs kubelet)
}

# Both at once (a cold machine): one `go build` of the five commands, so the shared
# k8s.io/kubernetes packages are compiled once and the links overlap; then the binaries
# are split into the two components' directories.
build_kubernetes_and_kubelet() {
  k8s_wrapper k8s-all
  # shellcheck disable=SC2046
  go_build_into k8s-all "$W" "$K8S_LD" $(k8s_pkgs $(bins_of kubernetes) kubelet)
  local all; all=$(dir_of k8s-all)
  mkdir -p "$all/kubelet.part"
  mv "$all/kubelet" "$all/kubelet.part/"
  rm -rf "$(dir_of kubelet)"; mv "$all/kubelet.part" "$(dir_of kubelet)"
  rm -rf "$(dir_of kubernetes)"; mv "$all" "$(dir_of kubernetes)"
}

build_etcd() {
  local v=$ETCD_VERSION w
  w=$(new_wrapper "etcd-$v")
  # etcd's server module replaces its sibling modules with ../ paths; pin them
  # to the same published version instead.
  cat >"$w/go.mod" <<EOF
module ftjobs.local/testbins/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $v

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $v
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $v
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $v
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $v
)
EOF
  mkdir -p "$w/etcd"
  cat >"$w/etcd/main.go" <<'EOF'
// Command etcd runs the etcd server (same entry point as etcd's own main).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  go_build_into etcd "$w" "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=ftjobs-testbins" \
    "go.etcd.io/etcd/server/v3/etcdmain@$v" "./etcd"
}

# simple_build <component> <module> <version> <pkg...>: wrapper that only requires it
simple_build() {
  local comp=$1 mod=$2 v=$3 w; shift 3
  w=$(new_wrapper "$comp-$v")
  printf 'module ftjobs.local/testbins/%s\n\ngo 1.26.0\n\nrequire %s %s\n' "$comp" "$mod" "$v" >"$w/go.mod"
  local pkgs=() p
  for p in "$@"; do pkgs+=("$p@$v"); done
  go_build_into "$comp" "$w" "-s -w $LDFLAGS_EXTRA" "${pkgs[@]}"
}

build_kwok() {
  LDFLAGS_EXTRA="-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    simple_build kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
}
build_versitygw() {
  LDFLAGS_EXTRA="-X main.Version=$VERSITYGW_VERSION" \
    simple_build versitygw github.com/versity/versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw
}
build_containerd() {
  # Static (CGO_ENABLED=0) build: the btrfs/devmapper/zfs snapshotters need cgo
  # and are left out; overlayfs is all the nodes use. Seccomp is applied by runc.
  GO_TAGS=no_btrfs,no_devmapper,no_zfs,no_aufs \
    LDFLAGS_EXTRA="-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
    simple_build containerd github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" \
    github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr
}
build_runc() {
  # Debian's runc 1.1.5 cannot start containerd 2.4's pod sandboxes ("can't get final
  # child's PID from pipe: EOF"); runc needs cgo (nsexec) and libseccomp for RuntimeDefault.
  CGO_ENABLED=1 GO_TAGS=seccomp,urfave_cli_no_docs \
    LDFLAGS_EXTRA="-X main.version=${RUNC_VERSION#v}" \
    simple_build runc github.com/opencontainers/runc "$RUNC_VERSION" github.com/opencontainers/runc
}
build_cni() {
  local m=github.com/containernetworking/plugins
  LDFLAGS_EXTRA="" simple_build cni "$m" "$CNI_VERSION" \
    "$m/plugins/main/bridge" "$m/plugins/ipam/host-local" "$m/plugins/main/loopback" "$m/plugins/meta/portmap"
}
build_coredns() {
  # Our own main with only the plugins the real-node Corefile uses: CoreDNS's
  # default build links every cloud provider's DNS SDK.
  local v=$COREDNS_VERSION w
  w=$(new_wrapper "coredns-$v")
  printf 'module ftjobs.local/testbins/coredns\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns %s\n' "$v" >"$w/go.mod"
  mkdir -p "$w/coredns"
  cat >"$w/coredns/main.go" <<'EOF'
// Command coredns runs CoreDNS with the plugins the ftjobs real-node tier needs.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
EOF
  go_build_into coredns "$w" "-s -w -X github.com/coredns/coredns/coremain.GitCommit=ftjobs-testbins" \
    "github.com/coredns/coredns/coremain@$v" "./coredns"
}
# Kueue's CRDs and webhook manifests come from the same module zip the manager is
# built from, so the API the tests install always matches the binary.
kueue_manifests() {
  local dest=$1 mod
  mod=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kueue) || return 1
  mkdir -p "$dest/crd" "$dest/webhook"
  cp "$mod"/config/components/crd/bases/*.yaml "$dest/crd/"
  cp "$mod/config/components/webhook/manifests.yaml" "$dest/webhook/"
  chmod -R u+w "$dest/crd" "$dest/webhook"
}
build_kueue() {
  local v=$KUEUE_VERSION p=sigs.k8s.io/kueue/pkg/version
  POST_BUILD=kueue_manifests LDFLAGS_EXTRA="-X $p.GitVersion=$v -X $p.GitCommit=ftjobs-testbins" \
    simple_build kueue sigs.k8s.io/kueue "$v" sigs.k8s.io/kueue/cmd/kueue
}
build_fakegcs() {
  # The module's root package is the server's main (the binary takes the module's name).
  LDFLAGS_EXTRA="" simple_build fakegcs github.com/fsouza/fake-gcs-server "$FAKEGCS_VERSION" \
    github.com/fsouza/fake-gcs-server
}
build_helm() {
  LDFLAGS_EXTRA="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    simple_build helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
}
build_toxiproxy() {
  LDFLAGS_EXTRA="-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" RENAME_BINS="server:toxiproxy-server" \
    simple_build toxiproxy github.com/Shopify/toxiproxy/v2 "$TOXIPROXY_VERSION" github.com/Shopify/toxiproxy/v2/cmd/server
}

want=("$@"); [[ ${#want[@]} -gt 0 ]] || want=("${ALL[@]}")
mkdir -p "$BIN_ROOT" "$SRC_ROOT" "$LOG_ROOT"

# One build at a time per machine (pytest fixtures may call this concurrently
# with make). flock is in util-linux; fall back to no locking if absent.
if command -v flock >/dev/null && [[ -z ${FTJOBS_BUILD_LOCKED:-} ]]; then
  exec 9>"$CACHE/.build-testbins.lock"
  if ! flock -n 9; then
    log "another build-testbins is running; waiting for it"
    flock 9
  fi
  export FTJOBS_BUILD_LOCKED=1
fi

wanted() { local c; for c in "${want[@]}"; do [[ $c == "$1" ]] && return 0; done; return 1; }
for c in "${want[@]}"; do
  if cached "$c"; then
    log "$c: cached at $(dir_of "$c")"
    continue
  fi
  t0=$(date +%s)
  fn=build_$c
  if [[ $c == kubernetes || $c == kubelet ]] && wanted kubernetes && wanted kubelet \
      && ! cached kubernetes && ! cached kubelet; then
    c="kubernetes+kubelet"; fn=build_kubernetes_and_kubelet
  fi
  log "$c: building (not cached)"
  "$fn"
  log "$c: built in $(( $(date +%s) - t0 ))s"
done
log "all requested components ready under $BIN_ROOT"

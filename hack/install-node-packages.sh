#!/usr/bin/env bash
# Debian packages the real-node tier needs (tests/fixtures/nodes.py):
#   libseccomp-dev  hack/build-testbins.sh builds runc with cgo against it, so containers
#                   get the RuntimeDefault seccomp profile (libseccomp2 is in the base system)
#   iptables        portmap CNI plugin + the kubernetes Service DNAT in the nodes' netns
#   busybox-static  the one binary of the local test/pause image (no registry here)
# Everything else (kubelet, containerd, runc, CNI plugins, CoreDNS) is built by
# hack/build-testbins.sh. Idempotent; a warm run only checks that the files exist.
set -euo pipefail
need=()
[[ -f /usr/include/seccomp.h ]] || need+=(libseccomp-dev)
command -v iptables >/dev/null || need+=(iptables)
[[ -x /bin/busybox ]] || need+=(busybox-static)
if [[ ${#need[@]} -eq 0 ]]; then
  echo "[install-node-packages] libseccomp-dev, iptables, busybox-static present" >&2
  exit 0
fi
SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
echo "[install-node-packages] apt-get install ${need[*]}" >&2
# make -j (.ci/run) may run hack/build-images.sh's apt-get at the same time: one at a time
# (our lock), and wait for a foreign apt's dpkg lock instead of failing.
APT=(flock /tmp/ftjobs-apt.lock $SUDO apt-get -o DPkg::Lock::Timeout=600)
"${APT[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${need[@]}"

#!/usr/bin/env bash
# Installs the Debian packages pvnet needs (only those missing), then configures and builds.
#   tools/setup.sh            build/       (RelWithDebInfo, the one the pvnet command and benchmarks use)
#   tools/setup.sh --asan     build/ and build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer)
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Why each is here: README.md, "Dependencies".
packages=(
  build-essential cmake pkg-config
  libxen-dev                       # Xen's public headers (io/ring.h, io/netif.h, grant_table.h) and libraries
  libboost-dev libboost-program-options-dev
  googletest libgtest-dev libgmock-dev
  libbenchmark-dev
  libpcap-dev                      # reading pcap/pcapng traces, writing pcap
  nlohmann-json3-dev               # STATS.json and report.json
  iproute2 tcpdump                 # namespaces for trace generation and TAP tests
  iputils-ping python3             # tools/make-traces.sh: ping and python3's socket module make the traffic
  qemu-system-x86 busybox-static iperf3   # pvnet guest: real Linux guests (docs/guests.md)
  xz-utils                         # pvnet xen-lab: the domUs' vmlinux out of the xz-compressed bzImage
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients  # pvnet guest run --libvirt
  clang libclang-rt-dev            # tools/fuzz.sh: libFuzzer targets (tests/fuzz) need clang and its runtimes
  gnuplot-nox                      # pvnet replay --compare --report: the charts (PNG)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON

configure_and_build() {
  local dir=$1; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S . -B "$dir" -DPVNET_WERROR=$werror "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$jobs"
}

configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${1:-}" = "--asan" ]; then
  configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DPVNET_SANITIZE=ON -DPVNET_BENCHMARKS=OFF
fi

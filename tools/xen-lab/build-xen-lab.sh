#!/usr/bin/env bash
# Builds what `pvnet xen-lab` boots, without installing Xen on the host (apt-get download + dpkg -x only):
#   CACHE/guest/        the plain pvnet test guest (tools/guest/build-guest.sh, called by pvnet before this script):
#                       its vmlinuz is the dom0 kernel (and, as CACHE/vmlinux, the domUs'), its initrd.img (busybox, iperf3) the first layer
#                       of both initramfs
#   CACHE/xen           the Xen 4.17 hypervisor (multiboot ELF, from xen-hypervisor-4.17-amd64)
#   CACHE/dom0-xen.cpio.gz   second dom0 layer: xl, xenstored, xenconsoled, xen-init-dom0, libxl-save-helper,
#                       xenstore-*, their libraries, the xen-* modules of the guest kernel, tcpdump, /init
#   CACHE/domU-xen.cpio.gz   second domU layer: xen-netfront.ko, /init
#   CACHE/vmlinux       the domUs' kernel: the guest's vmlinuz (an xz-compressed bzImage) decompressed here, so that
#                       `xl create` loads an ELF instead of libxenguest running xz in dom0 under TCG (~5 s a domU)
#   CACHE/stamp         what the cached part was built from
# Then, every run: WORKDIR/dom0.img and WORKDIR/domU.img (the layers + a third one with the scenario script, the
# pvnet binary given and the libraries ldd finds for it). The kernel unpacks concatenated cpio archives in order,
# later files replacing earlier ones (the guest's /init is replaced by ours).
# usage: build-xen-lab.sh CACHE WORKDIR SCENARIO PVNET_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$(cd "${1:?usage: build-xen-lab.sh CACHE WORKDIR SCENARIO PVNET}" && pwd)
workdir=${2:?workdir}
scenario=${3:?scenario}
pvnet_bin=${4:?pvnet binary}
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
die() { echo "pvnet xen-lab build: $*" >&2; exit 1; }
[ -f "$here/scenarios/$scenario.sh" ] || die "no scenario '$scenario' (tools/xen-lab/scenarios/)"
[ -f "$cache/guest/vmlinuz" ] && [ -f "$cache/guest/initrd.img" ] || die "$cache/guest is not built"
busybox_bin=$(command -v busybox) || die "busybox is missing (tools/setup.sh)"
# The host's xz, not busybox's unxz (which says "corrupted data" on the kernel's stream: x86 BCJ filter).
xz_bin=$(command -v xz) || die "xz is missing (tools/setup.sh: xz-utils)"
pack() { (cd "$1" && find . | "$busybox_bin" cpio -o -H newc 2>/dev/null | gzip -1 >"$2"); }
# pack_raw DIR OUT: an uncompressed archive, for what dom0 would otherwise gunzip at boot only to hold as is.
pack_raw() { (cd "$1" && find . | "$busybox_bin" cpio -o -H newc 2>/dev/null >"$2"); }

xen_packages="xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils libxenmisc4.17 libxencall1
  libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4 libxentoollog1 libxendevicemodel1 libxenhypfs1
  libyajl2"
dom0_modules="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback tun"
domU_modules="xen-netfront xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs tun"
xen_bins="xl xenstored xenconsoled xen-init-dom0 libxl-save-helper xenconsole"
kpkg=$(head -n1 "$cache/guest/stamp")
kver=${kpkg#linux-image-}
tcpdump_bin=$(command -v tcpdump || true)
# The host's iproute2 `ip` in both images (busybox's ip has no netns, tuntap or veth): at /usr/sbin/ip with its
# libraries, and /bin/ip (busybox's applet link) replaced by a link to it.
ip_bin=$(readlink -f "$(command -v ip)") || die "iproute2 ip is missing (tools/setup.sh)"
"$ip_bin" -V 2>/dev/null | grep -q iproute2 || die "$ip_bin is not iproute2's ip"
# host_bin ROOT BINARY DEST: copies a host binary and the host libraries ldd finds for it into ROOT.
host_bin() {
  mkdir -p "$1$(dirname "$3")"
  cp -L "$2" "$1$3"
  for lib in $(ldd "$2" | grep -o '/[^ ]*' | sort -u); do
    [ -e "$1$lib" ] && continue
    mkdir -p "$1$(dirname "$lib")"
    cp -L "$lib" "$1$lib"
  done
}

inputs=$(printf '%s\n' "$kpkg" $xen_packages \
  "$(sha256sum "$0" "$here"/dom0-init.sh "$here"/domU-init.sh "$here"/lib.sh "$cache/guest/initrd.img" \
     "$cache/guest/vmlinuz" | cut -d' ' -f1)" \
  "$tcpdump_bin" "$(sha256sum "$ip_bin" | cut -d' ' -f1)")
if ! { [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$inputs" ] && [ -f "$cache/xen" ] &&
       [ -f "$cache/dom0-xen.cpio.gz" ] && [ -f "$cache/domU-xen.cpio.gz" ] && [ -f "$cache/vmlinux" ]; }; then
  dl=$cache/dl
  mkdir -p "$dl"
  chmod 777 "$dl"  # apt's _apt user writes the download
  get() {
    (cd "$dl" && timeout 300 apt-get download -q "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  }
  missing() { for p in "$@"; do ls "$dl/${p}"_*.deb >/dev/null 2>&1 || echo "$p"; done; }
  # shellcheck disable=SC2086
  want=$(missing $xen_packages "$kpkg")
  if [ -n "$want" ]; then
    echo "pvnet xen-lab build: apt-get download" $want
    # shellcheck disable=SC2086
    get $want
    want=$(missing $want)
    if [ -n "$want" ]; then timeout 300 apt-get update -qq || true; get $want; want=$(missing $want); fi
    [ -z "$want" ] || die "apt-get download failed for: $want"
  fi
  tree=$cache/tree
  rm -rf "$tree" && mkdir -p "$tree"
  for p in $xen_packages; do dpkg -x "$(ls "$dl/${p}"_*.deb | head -n1)" "$tree"; done
  zcat "$tree/boot/xen-4.17-amd64.gz" >"$cache/xen.tmp"
  kx=$cache/kernel.x
  rm -rf "$kx" && mkdir -p "$kx"
  dpkg --fsys-tarfile "$(ls "$dl/${kpkg}"_*.deb | head -n1)" | tar -x -C "$kx" --wildcards '*/xen*.ko' '*/tun.ko'
  modfile() { find "$kx" -name "$1.ko" | head -n1; }

  # dom0 layer
  root=$cache/dom0.root
  rm -rf "$root" && mkdir -p "$root"/{lib/modules,usr/sbin,usr/bin,lab,etc/xen,var/lib/xen}
  for m in $dom0_modules; do f=$(modfile "$m"); [ -n "$f" ] || die "$m.ko not in $kpkg"; cp "$f" "$root/lib/modules/"; done
  libdir=usr/lib/x86_64-linux-gnu
  mkdir -p "$root/$libdir" "$root/usr/lib/xen-4.17/bin"
  cp -a "$tree/$libdir/"*.so* "$root/$libdir/"
  bins=()
  for b in $xen_bins; do
    cp "$tree/usr/lib/xen-4.17/bin/$b" "$root/usr/lib/xen-4.17/bin/"
    bins+=("$tree/usr/lib/xen-4.17/bin/$b")
  done
  for b in "$tree"/usr/bin/xenstore-*; do
    [ -L "$b" ] && continue
    cp "$b" "$root/usr/bin/"
    bins+=("$b")
  done
  if [ -n "$tcpdump_bin" ]; then cp "$tcpdump_bin" "$root/usr/sbin/tcpdump"; bins+=("$tcpdump_bin"); fi
  # The host's copies of what the Xen binaries need beyond the extracted libraries (libc, ncurses, zlib ...).
  for lib in $(LD_LIBRARY_PATH=$tree/$libdir ldd "${bins[@]}" 2>/dev/null | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
    case "$lib" in "$tree"/*) continue;; esac
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  host_bin "$root" "$ip_bin" /usr/sbin/ip
  mkdir -p "$root/bin" && ln -sf /usr/sbin/ip "$root/bin/ip"
  : >"$root/etc/xen/xl.conf"  # the defaults; xl complains when the file is missing
  cp "$here/dom0-init.sh" "$root/init"
  cp "$here/lib.sh" "$root/lab/lib.sh"
  chmod 755 "$root/init"
  pack "$root" "$cache/dom0-xen.cpio.gz.tmp"
  rm -rf "$root"

  # domU layer
  root=$cache/domU.root
  rm -rf "$root" && mkdir -p "$root"/{lib/modules,lab}
  for m in $domU_modules; do f=$(modfile "$m"); [ -n "$f" ] || die "$m.ko not in $kpkg"; cp "$f" "$root/lib/modules/"; done
  host_bin "$root" "$ip_bin" /usr/sbin/ip
  mkdir -p "$root/bin" && ln -sf /usr/sbin/ip "$root/bin/ip"
  # xenstore-read/write/rm: a domU scenario and dom0 take turns through the domU's data/ directory.
  mkdir -p "$root/usr/bin" "$root/$libdir"
  for b in xenstore-read xenstore-write xenstore-rm; do cp "$tree/usr/bin/$b" "$root/usr/bin/"; done
  cp -a "$tree/$libdir/"libxenstore.so* "$root/$libdir/"  # libxentoolcore comes with pvnet's libraries
  cp "$here/domU-init.sh" "$root/init"
  cp "$here/lib.sh" "$root/lab/lib.sh"
  chmod 755 "$root/init"
  pack "$root" "$cache/domU-xen.cpio.gz.tmp"
  rm -rf "$root" "$kx"

  # The domUs' kernel as the ELF inside the bzImage (what Linux's scripts/extract-vmlinux does): the first xz
  # stream, at an offset where the magic FD 37 7A 58 5A 00 starts, that decompresses to an ELF.
  rm -f "$cache/vmlinux.tmp"
  for pos in $(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$cache/guest/vmlinuz" | cut -d: -f1); do
    # (tail dies of SIGPIPE when xz stops at the stream's end: only xz's status counts)
    { tail -c +$((pos + 1)) "$cache/guest/vmlinuz" || true; } |
      "$xz_bin" -dc --single-stream >"$cache/vmlinux.tmp" 2>/dev/null &&
      [ "$(head -c 4 "$cache/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && break
    rm -f "$cache/vmlinux.tmp"
  done
  [ -f "$cache/vmlinux.tmp" ] || die "no xz-compressed ELF found in $cache/guest/vmlinuz"
  mv "$cache/vmlinux.tmp" "$cache/vmlinux"
  mv "$cache/xen.tmp" "$cache/xen"
  mv "$cache/dom0-xen.cpio.gz.tmp" "$cache/dom0-xen.cpio.gz"
  mv "$cache/domU-xen.cpio.gz.tmp" "$cache/domU-xen.cpio.gz"
  echo "$inputs" >"$cache/stamp"
  echo "pvnet xen-lab build: built the Xen layers in $cache ($kpkg, Xen $(ls "$dl"/xen-hypervisor-4.17-amd64_*.deb | sed 's/.*amd64_\(.*\)_amd64.deb/\1/'))"
fi

# Per run: the scenario and pvnet (stripped: the debug info is most of its size) with its libraries.
root=$workdir/run.root
rm -rf "$root" && mkdir -p "$root/lab"
cp "$here/scenarios/$scenario.sh" "$root/lab/scenario.sh"
echo "$scenario" >"$root/lab/scenario-name"
strip -o "$root/lab/pvnet" "$pvnet_bin" 2>/dev/null || cp "$pvnet_bin" "$root/lab/pvnet"
for lib in $(ldd "$pvnet_bin" | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# A trace for `pvnet frontend --tx` (scenarios with pvnet's frontend in a domU).
cp "$here/../../traces/udp-dns-ping.pcap" "$root/lab/trace.pcap"
# The hotplug script pvnet ships for vifs libxl writes (scenario xl-network-attach).
cp "$here/../xen/vif-pvnet" "$root/lab/vif-pvnet"
pack "$root" "$workdir/run.cpio.gz"
# libxenguest gunzips a PV ramdisk itself and keeps only the first gzip member: the domU gets the layers as one
# uncompressed stream of concatenated archives, which the kernel reads the same way.
zcat "$cache/guest/initrd.img" "$cache/domU-xen.cpio.gz" "$workdir/run.cpio.gz" >"$workdir/domU.img"
# dom0 carries the domU's kernel (the ELF vmlinux) and initramfs for `xl create`, in an uncompressed archive:
# both are files dom0 only copies, and a gzipped archive costs dom0's kernel a gunzip at boot under TCG.
rm -rf "$root" && mkdir -p "$root/lab"
cp "$cache/vmlinux" "$root/lab/vmlinux"
mv "$workdir/domU.img" "$root/lab/domU.img"
pack_raw "$root" "$workdir/domU-files.cpio"
mv "$root/lab/domU.img" "$workdir/domU.img"
cat "$cache/guest/initrd.img" "$cache/dom0-xen.cpio.gz" "$workdir/run.cpio.gz" >"$workdir/dom0.img"
# The kernel takes an uncompressed archive only at a 4-byte aligned offset of the initramfs (zeros before it are
# skipped): otherwise "Initramfs unpacking failed: invalid magic at start of compressed archive".
head -c $(( (4 - $(stat -c %s "$workdir/dom0.img") % 4) % 4 )) /dev/zero >>"$workdir/dom0.img"
cat "$workdir/domU-files.cpio" >>"$workdir/dom0.img"
rm -rf "$root" "$workdir/domU-files.cpio"
echo "pvnet xen-lab build: $workdir/dom0.img ($(du -h "$workdir/dom0.img" | cut -f1)), domU.img ($(du -h "$workdir/domU.img" | cut -f1))"

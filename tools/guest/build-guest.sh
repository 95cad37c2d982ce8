#!/usr/bin/env bash
# Builds the pvnet test guest ONCE into a cache folder (no disk image, nothing downloaded but Debian packages):
#   CACHE/vmlinuz      the kernel of the linux-image-6.1.0-NN-amd64 package apt offers (apt-get download + dpkg -x)
#   CACHE/initrd.img   busybox-static, the virtio-net modules of that kernel, iperf3 and its shared libraries,
#                      tools/guest/init.sh as /init
#   CACHE/stamp        what it was built from; a later run with the same inputs does nothing
# usage: build-guest.sh CACHE_DIR
# Needs on the host: apt-get (network to the Debian mirror, first build only), busybox-static, iperf3 (tools/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: build-guest.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# The virtio-net stack, in the order /init loads it (the package has no modules.dep).
guest_modules="failover net_failover virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_net"
die() { echo "pvnet guest build: $*" >&2; exit 1; }
for tool in busybox iperf3 apt-get dpkg ldd; do
  command -v "$tool" >/dev/null || die "'$tool' is missing on the host (run tools/setup.sh)"
done
busybox_bin=$(command -v busybox)
# Debian's busybox (non-static) needs libs; busybox-static is what the guest needs.
file_out=$(ldd "$busybox_bin" 2>&1 || true)
echo "$file_out" | grep -q "not a dynamic executable" || die "$busybox_bin is not static: install busybox-static"

# The kernel: the version linux-image-amd64 points at, or one already in the cache when apt cannot say.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-6[^ ]*-amd64\)$/\1/p' | head -n1)
if [ -z "$kpkg" ]; then
  kpkg=$(ls "$cache" 2>/dev/null | sed -n 's/^\(linux-image-.*-amd64\)\.tree$/\1/p' | tail -n1)
fi
[ -n "$kpkg" ] || die "apt offers no linux-image-amd64 (apt-get update?)"

inputs=$(printf '%s\n' "$kpkg" "$(sha256sum "$here/init.sh" "$0" "$busybox_bin" "$(command -v iperf3)" | cut -d' ' -f1)")
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$inputs" ] && [ -f "$cache/vmlinuz" ] &&
   [ -f "$cache/initrd.img" ]; then
  echo "pvnet guest build: cached in $cache ($kpkg)"
  exit 0
fi

tree=$cache/$kpkg.tree
if [ ! -d "$tree/boot" ]; then
  echo "pvnet guest build: apt-get download $kpkg"
  dl=$cache/dl
  mkdir -p "$dl"
  chmod 777 "$dl"  # apt's _apt user writes the download
  (cd "$dl" && timeout 300 apt-get download -q "$kpkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb=$(ls "$dl"/"$kpkg"_*.deb 2>/dev/null | head -n1)
  if [ -z "$deb" ]; then  # stale package lists: the mirror moved on
    timeout 300 apt-get update -qq || true
    (cd "$dl" && timeout 300 apt-get download -q "$kpkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    deb=$(ls "$dl"/"$kpkg"_*.deb 2>/dev/null | head -n1)
  fi
  [ -n "$deb" ] || die "apt-get download $kpkg failed"
  rm -rf "$tree.tmp" "$tree.x"
  mkdir -p "$tree.tmp" "$tree.x"
  dpkg -x "$deb" "$tree.x"
  # Keep only what the guest uses (the whole package is about 400 MB unpacked).
  kv=${kpkg#linux-image-}
  mkdir -p "$tree.tmp/boot" "$tree.tmp/lib/modules/$kv"
  cp "$tree.x/boot/vmlinuz-$kv" "$tree.tmp/boot/"
  for m in $guest_modules; do
    f=$(find "$tree.x/lib/modules/$kv" -name "$m.ko" | head -n1)
    [ -n "$f" ] || die "module $m not in $kpkg"
    cp "$f" "$tree.tmp/lib/modules/$kv/"
  done
  rm -rf "$tree.x" "$deb"
  mv "$tree.tmp" "$tree"
fi
kver=${kpkg#linux-image-}
cp "$tree/boot/vmlinuz-$kver" "$cache/vmlinuz.tmp"

root=$cache/initrd.root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,lib,lib64,usr/lib}
cp "$busybox_bin" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  # The applet named busybox would overwrite the binary itself (docs/machine-notes.md).
  [ "$applet" = busybox ] && continue
  ln -sf busybox "$root/bin/$applet"
done

# The virtio-net stack of this kernel (uncompressed .ko in Debian 12's package).
moddir=$root/lib/modules/$kver
mkdir -p "$moddir"
for m in $guest_modules; do
  f=$(find "$tree/lib/modules/$kver" -name "$m.ko" | head -n1)
  [ -n "$f" ] || die "module $m not in $kpkg"
  cp "$f" "$moddir/"
done

# iperf3 and the libraries ldd finds for it, at the same paths.
cp "$(command -v iperf3)" "$root/bin/iperf3"
for lib in $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
echo "127.0.0.1 localhost" >"$root/etc/hosts"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"

(cd "$root" && find . | "$busybox_bin" cpio -o -H newc 2>/dev/null | gzip -1 >"$cache/initrd.img.tmp")
rm -rf "$root"
mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
mv "$cache/initrd.img.tmp" "$cache/initrd.img"
# libvirt's qemu runs as libvirt-qemu: the images must be readable by it.
chmod 755 "$cache"
chmod 644 "$cache/vmlinuz" "$cache/initrd.img"
echo "$inputs" >"$cache/stamp"
echo "pvnet guest build: built $cache/vmlinuz and $cache/initrd.img ($kpkg, $(du -h "$cache/initrd.img" | cut -f1))"

#!/usr/bin/env bash
# Runs a command where /dev/kvm exists although this host has none: inside a QEMU VM under TCG (software
# emulation) with an emulated AMD CPU that has SVM and nested paging, so the VM's own kernel (Debian's,
# fetched once with apt) loads kvm_amd and gives the command a real /dev/kvm. The VM's root file system is
# this host's / over virtio-9p, so the command sees this checkout, its builds and the kernel cache as they
# are; /tmp, /run and /dev/shm are fresh tmpfs inside the VM. Used on development hosts whose KVM is absent
# (docs/testing.md, "Hosts without /dev/kvm"). Everything is emulated, so it is slow: numbers measured
# this way say nothing about speed, and the benchmarks refuse to be trusted from it.
#
#   scripts/nested-kvm.sh [--mem GiB] [--cpus N] [--single] [--suite SUITE] [--overlay DIR]...
#                         -- COMMAND [ARG...]
#
# --suite takes the VM's kernel from another Debian suite (default bookworm, Linux 6.1):
# bookworm-backports has a newer one, with KVM_PRE_FAULT_MEMORY (6.10). --single runs every vCPU
# on one host thread: slower, but the VM's kernel survives runs that make and close many VMs
# (sprout bench clone, the soak), which with a thread per vCPU crash it in code it is patching
# (docs/testing.md, "Hosts without /dev/kvm").
#
# The command runs as root in the current directory with SPROUT_* and PATH passed through; its output
# streams here and its exit status is this script's. 9p cannot hold Unix sockets, so a directory where
# the command binds one (the build directories, for the daemon tests) is named with --overlay: inside
# the VM it becomes an overlay whose writes stay in the VM's memory and are gone when it stops.
set -euo pipefail

mem=12
cpus=$(nproc)
suite=${SPROUT_NESTED_SUITE:-bookworm}
tcg_threads=multi
overlays=()
while (($#)); do
  case $1 in
  --mem) mem=$2; shift 2 ;;
  --cpus) cpus=$2; shift 2 ;;
  --overlay) overlays+=("$(realpath "$2")"); shift 2 ;;
  --suite) suite=$2; shift 2 ;;
  --single) tcg_threads=single; shift ;;
  --) shift; break ;;
  -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) break ;;
  esac
done
(($#)) || { echo "nested-kvm: no command (see --help)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "nested-kvm: needs root (the VM's 9p root passes host ownership through)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "nested-kvm: qemu-system-x86_64 missing: run scripts/setup.sh" >&2; exit 2; }
PATH=$PATH:/usr/sbin:/sbin
command -v depmod >/dev/null || { echo "nested-kvm: depmod missing (Debian's kmod): run scripts/setup.sh" >&2; exit 2; }

cache_root=${SPROUT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sprout}
# The modules the VM's init loads; their dependencies come from the kernel's own modules.dep.
modules=(virtio_pci 9pnet_virtio 9p overlay kvm-amd)
# A kit is keyed by what goes into it, so editing this script or choosing another suite rebuilds it.
kit=$cache_root/nested/$(sed -n '/^build_kit()/,/^}/p' "$0" | cat - <(echo "$suite ${modules[*]}") | sha256sum | cut -c1-16)

build_kit() {
  local tmp ver apt m dep
  tmp=$(mktemp -d /var/tmp/sprout-nested-kit.XXXXXX)
  echo "nested-kvm: fetching Debian's kernel from $suite (once; cached in $kit)" >&2
  # A private apt state, so a suite this host does not use (backports) is read without adding it.
  mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial"
  echo "deb http://deb.debian.org/debian $suite main" >"$tmp/apt/sources.list"
  apt=(apt-get -q -o "Dir::Etc::SourceList=$tmp/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$tmp/apt/lists" -o "Dir::Cache=$tmp/apt/cache")
  (cd "$tmp" && "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" download linux-image-amd64 >/dev/null 2>&1 &&
    ver=$(dpkg-deb -f linux-image-amd64_*.deb Depends | sed -n 's/.*linux-image-\([^ ,]*\).*/\1/p') &&
    "${apt[@]}" download "linux-image-$ver" >/dev/null 2>&1) ||
    { echo "nested-kvm: apt-get download linux-image-amd64 from $suite failed" >&2; return 1; }
  dpkg -x "$tmp"/linux-image-[0-9]*.deb "$tmp/root"
  ver=$(ls "$tmp/root/lib/modules")
  mkdir -p "$tmp/initramfs"/{bin,proc,sys,dev,newroot,mods}
  cp "$(command -v busybox)" "$tmp/initramfs/bin/busybox"
  # modules.dep lists every module a module needs, nearest first: load them in reverse, once each.
  # Busybox's insmod reads plain .ko files only, and newer Debian kernels compress theirs.
  local md=$tmp/root/lib/modules/$ver
  depmod -b "$tmp/root" "$ver" # the package leaves modules.dep to its postinst
  for m in "${modules[@]}"; do
    local pat=${m//[-_]/[-_]}
    if ! dep=$(grep -m1 -E "^([^:]*/)?$pat\.ko(\.xz|\.zst)?:" "$md/modules.dep"); then
      grep -qE "/$pat\.ko$" "$md/modules.builtin" 2>/dev/null && continue
      echo "nested-kvm: $ver has no module $m" >&2
      return 1
    fi
    for f in $(echo "${dep#*:}" | tr ' ' '\n' | tac) "${dep%%:*}"; do
      local name=${f##*/}
      name=${name%.xz}
      name=${name%.zst}
      [[ -e $tmp/initramfs/mods/$name ]] && continue
      case $f in
      *.xz) xz -dc "$md/$f" ;;
      *.zst) zstd -qdc "$md/$f" ;;
      *) cat "$md/$f" ;;
      esac >"$tmp/initramfs/mods/$name"
      echo "$name" >>"$tmp/initramfs/mods/order"
    done
  done
  # Stage 1 mounts the host's / and hands over to stage 2 (written per run, in the run's directory).
  cat >"$tmp/initramfs/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m || echo "nested-kvm: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,cache=loose hostroot /newroot ||
  { echo "nested-kvm: 9p mount failed"; poweroff -f; }
w=$(sed -n 's/.*sprout_nested=\([^ ]*\).*/\1/p' /proc/cmdline)
umount /proc /sys /dev
exec switch_root /newroot /bin/sh "$w/stage2.sh" "$w"
EOF
  chmod +x "$tmp/initramfs/init"
  mkdir -p "$kit.new"
  (cd "$tmp/initramfs" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$kit.new/initrd.gz"
  cp "$tmp/root/boot/vmlinuz-$ver" "$kit.new/vmlinuz"
  echo "$ver" >"$kit.new/version"
  rm -rf "$kit" && mv "$kit.new" "$kit"
  rm -rf "$tmp"
}
[[ -f $kit/vmlinuz && -f $kit/initrd.gz ]] || build_kit

run=$(mktemp -d /var/tmp/sprout-nested.XXXXXX)
trap 'rm -rf "$run"' EXIT
cat >"$run/stage2.sh" <<'EOF'
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
hostname sprout-nested
sh "$1/run.sh" >"$1/out.log" 2>&1; echo $? >"$1/rc"
sync; echo o >/proc/sysrq-trigger
EOF
{
  for i in "${!overlays[@]}"; do
    d=$(printf %q "${overlays[$i]}")
    echo "mkdir -p /run/ov/$i/u /run/ov/$i/w && mount -t overlay overlay -o lowerdir=$d,upperdir=/run/ov/$i/u,workdir=/run/ov/$i/w $d || exit 2"
  done
  echo "cd $(printf %q "$PWD") || exit 2"
  while IFS= read -r v; do printf 'export %q\n' "$v"; done < <(env | grep -E '^(SPROUT_[A-Z0-9_]*|PATH|HOME|CI)=' || true)
  printf '%q ' "$@"
  echo
} >"$run/run.sh"
: >"$run/out.log"

echo "nested-kvm: booting $(cat "$kit/version") under TCG ($tcg_threads-threaded) with emulated SVM ($cpus vCPUs, ${mem} GiB)" >&2
tail -n +1 -F "$run/out.log" 2>/dev/null &
tailer=$!
qemu-system-x86_64 -accel "tcg,thread=$tcg_threads" -cpu max -smp "$cpus" -m "${mem}G" -display none -no-reboot \
  -serial "file:$run/console.log" -kernel "$kit/vmlinuz" -initrd "$kit/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 sprout_nested=$run" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,id=hostroot,multidevs=remap \
  2> >(grep -v "TCG doesn't support requested feature" >&2) &
qemu=$!
# The emulated VM's own kernel sometimes locks up for good (seen: every vCPU "stuck" in the idle
# loop, or an RCU stall first); a run that would hang until its timeout stops here instead, and
# says so. A guest that freezes without a word is not caught: give the command a timeout.
while kill -0 "$qemu" 2>/dev/null; do
  if grep -qE "soft lockup - CPU|rcu_preempt detected stalls" "$run/console.log" 2>/dev/null; then
    echo "nested-kvm: the VM's kernel locked up (QEMU TCG, not the command); stopping it" >&2
    kill "$qemu" 2>/dev/null || true
    break
  fi
  sleep 2
done
wait "$qemu" 2>/dev/null || true
sleep 1
kill "$tailer" 2>/dev/null || true
wait "$tailer" 2>/dev/null || true
if [[ ! -s $run/rc ]]; then
  echo "nested-kvm: the VM stopped before the command finished; its console:" >&2
  tail -n 40 "$run/console.log" >&2
  exit 125
fi
exit "$(cat "$run/rc")"

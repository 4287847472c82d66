#!/usr/bin/env bash
# Boot sprout's guest kernel under QEMU (-M microvm, -accel kvm) with a small
# test initramfs and check that user space works: /init runs, system calls
# (fork, exec, SYSCALL return state), the FPU across context switches, and
# user-mode port I/O after ioperm()/iopl() (sprout's doorbell path).
#
#   guest/kernel/test/smoke.sh [vmlinux]      default: guest/kernel/build.sh's result
#
# Environment: SMOKE_MEM (MiB, 256), SMOKE_TIMEOUT (s, 240), SMOKE_APPEND
# (extra kernel command line), SMOKE_SPIN (s of the tick-overhead probe, 0),
# SMOKE_IOPL=1 (ring the port after iopl(3) instead of ioperm()).
# Needs: qemu-system-x86_64, gcc + static glibc (libc6-dev), busybox-static,
# cpio.  Prints one PASS/FAIL line per check and the boot-to-marker time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The guest command line a PVM host needs (see ../README.md); harmless elsewhere.
readonly PVM_APPEND="noxsave clearcpuid=smap,popcnt,erms,fsrm"

die() { printf 'smoke: error: %s\n' "$*" >&2; exit 2; }

vmlinux=${1:-}
if [[ -z $vmlinux ]]; then
	vmlinux=$("$HERE/../build.sh") || die "guest/kernel/build.sh failed"
fi
[[ -r $vmlinux ]] || die "no kernel at $vmlinux"
for t in qemu-system-x86_64 gcc readelf cpio timeout; do
	command -v "$t" >/dev/null || die "'$t' not found"
done
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && ! readelf -l "$busybox" 2>/dev/null | grep -q INTERP ||
	die "a static busybox is needed (apt-get install busybox-static)"

work=$(mktemp -d "${TMPDIR:-/tmp}/sprout-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp "$busybox" "$root/bin/busybox"
for a in sh ls cat head date uname mount awk grep sleep; do
	ln -s busybox "$root/bin/$a"
done
for t in sctest fputest qexit spin; do
	gcc -O2 -Wall -static -o "$root/bin/$t" "$HERE/$t.c" ||
		die "cannot build $t.c statically (apt-get install libc6-dev)"
done
exit_mode=ioperm
[[ ${SMOKE_IOPL:-0} == 1 ]] && exit_mode=iopl
cat >"$root/init" <<EOF
#!/bin/sh
echo SPROUT-INIT-OK
mount -t proc proc /proc
mount -t sysfs sysfs /sys
ls /proc >/dev/null && echo "ls /proc: OK"
head -3 /proc/cpuinfo
grep -m1 '^flags' /proc/cpuinfo
date
uname -a
/bin/sctest
/bin/fputest
awk 'BEGIN { printf "awk float: %.4f\n", 3.14159 * 2 }'
[ ${SMOKE_SPIN:-0} -gt 0 ] && /bin/spin ${SMOKE_SPIN:-0}
/bin/qexit 0 $exit_mode
echo "qexit: FAIL (port write did not stop the VM)"
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"

append="console=ttyS0 panic=-1 $PVM_APPEND ${SMOKE_APPEND:-quiet}"
log=$work/serial.log
printf 'smoke: kernel %s\nsmoke: append %s\n' "$vmlinux" "$append"

start=${EPOCHREALTIME/./}
marker_us=
while IFS= read -r line; do
	now=${EPOCHREALTIME/./}
	line=${line%$'\r'}
	printf '[%6.2f] %s\n' "$(((now - start) / 10000))e-2" "$line" >>"$log"
	[[ -z $marker_us && $line == *SPROUT-INIT-OK* ]] && marker_us=$((now - start))
done < <(timeout "${SMOKE_TIMEOUT:-240}" qemu-system-x86_64 \
	-M microvm,x-option-roms=off,isa-serial=on,rtc=off -accel kvm \
	-cpu host,-xsave,-cx16 -m "${SMOKE_MEM:-256}" -nographic -no-reboot \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-kernel "$vmlinux" -initrd "$work/initramfs.cpio" -append "$append" 2>&1 &&
	echo "QEMU-EXIT 0" || echo "QEMU-EXIT $?")

sed 's/^/  | /' "$log"
fails=0
check() { # name, pattern
	if grep -q -- "$2" "$log"; then
		printf 'PASS %s\n' "$1"
	else
		printf 'FAIL %s\n' "$1"
		fails=$((fails + 1))
	fi
}
check "/init runs (SPROUT-INIT-OK)" 'SPROUT-INIT-OK'
check "fork/exec of busybox applets" 'ls /proc: OK'
check "SYSCALL returns to RCX with RFLAGS from R11" 'sctest: OK'
check "x87/SSE state across context switches" 'fputest: OK'
check "FP in another binary" 'awk float: 6.2832'
check "user-mode port I/O after $exit_mode() stops QEMU" 'QEMU-EXIT 1$'
if [[ -n $marker_us ]]; then
	printf 'boot-to-marker: %d.%02d s after QEMU start\n' $((marker_us / 1000000)) $((marker_us % 1000000 / 10000))
fi
((fails == 0)) || { printf 'smoke: %d check(s) failed\n' "$fails"; exit 1; }
printf 'smoke: all checks passed\n'

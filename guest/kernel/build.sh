#!/usr/bin/env bash
# Build sprout's guest kernel (an uncompressed vmlinux) from Debian's
# linux-source-6.1 package, sprout.config and patches/*.patch, with a cache.
#
#   guest/kernel/build.sh               build if needed, print the vmlinux path
#   guest/kernel/build.sh --print-path  print the cached path, exit 1 if not built
#   guest/kernel/build.sh --force       rebuild even on a cache hit
#
# Cache: ${SPROUT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sprout}/kernel/<key>/
#        {vmlinux,config,build.log}, and kernel/default -> <key>/vmlinux (last
#        built or found).
# key = sha256 of the package version + sprout.config + every patch + this script.
# Scratch: a fresh tree under ${TMPDIR:-/tmp}, removed after a successful build.
set -euo pipefail

readonly PKG=linux-source-6.1
readonly TARBALL=/usr/src/linux-source-6.1.tar.xz
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
readonly FRAGMENT=$HERE/sprout.config

msg() { printf 'sprout-kernel: %s\n' "$*" >&2; }
die() { msg "error: $*"; exit 1; }

usage() {
	sed -n '2,7s/^# \{0,1\}//p' "$SELF" >&2
	exit "${1:-2}"
}

print_path=0
force=0
for arg in "$@"; do
	case $arg in
	--print-path) print_path=1 ;;
	--force) force=1 ;;
	-h | --help) usage 0 ;;
	*) msg "unknown option: $arg"; usage 2 ;;
	esac
done

# ---- cache key ---------------------------------------------------------------
version=$(dpkg-query -W -f='${Version}' "$PKG" 2>/dev/null) ||
	die "package $PKG is not installed (apt-get install $PKG)"
[[ -n $version ]] || die "package $PKG is not installed (apt-get install $PKG)"
[[ -r $TARBALL ]] || die "$TARBALL is missing: reinstall it (apt-get install --reinstall $PKG)"
[[ -r $FRAGMENT ]] || die "$FRAGMENT is missing"

shopt -s nullglob
patches=("$HERE"/patches/*.patch)
shopt -u nullglob

key=$(
	printf 'package %s %s\n' "$PKG" "$version"
	for f in "$FRAGMENT" "${patches[@]}" "$SELF"; do
		printf 'file %s %s\n' "${f#"$HERE"/}" "$(sha256sum <"$f" | cut -d' ' -f1)"
	done
)
key=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)

cache_root=${SPROUT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sprout}
kdir=$cache_root/kernel
out=$kdir/$key

cached() { [[ -f $out/vmlinux && -f $out/config ]]; }

set_default() {
	local link=$kdir/default tmp
	[[ $(readlink "$link" 2>/dev/null || true) == "$key/vmlinux" ]] && return 0
	tmp=$kdir/.default.$$
	ln -sfn "$key/vmlinux" "$tmp"
	mv -T "$tmp" "$link"
}

if ((print_path)); then
	cached || { msg "not built yet (key $key)"; exit 1; }
	printf '%s\n' "$out/vmlinux"
	exit 0
fi

if cached && ! ((force)); then
	set_default || msg "warning: could not update $kdir/default"
	printf '%s\n' "$out/vmlinux"
	exit 0
fi

# ---- build -------------------------------------------------------------------
for tool in make gcc ld bc bison flex patch tar xz sha256sum flock; do
	command -v "$tool" >/dev/null ||
		die "'$tool' not found (apt-get install build-essential bc bison flex patch xz-utils util-linux)"
done
[[ -e /usr/include/libelf.h || -e /usr/include/elfutils/libelf.h ]] ||
	die "libelf headers not found (apt-get install libelf-dev)"

mkdir -p "$kdir"
# One build per cache at a time; a second caller waits, then finds the result.
exec 9>"$kdir/.lock"
if ! flock -n 9; then
	msg "another build holds $kdir/.lock; waiting"
	flock 9
fi
if cached && ! ((force)); then
	set_default || msg "warning: could not update $kdir/default"
	printf '%s\n' "$out/vmlinux"
	exit 0
fi

t0=$(date +%s)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/kbuild-sprout.XXXXXX")
log=$scratch/build.log
show_log=1
on_exit() {
	local rc=$?
	if ((rc != 0)); then
		((show_log)) && [[ -s $log ]] && { msg "last lines of $log:"; tail -n 30 "$log" >&2; }
		msg "build failed; scratch tree kept in $scratch (rm -rf it when done)"
	fi
}
trap on_exit EXIT

msg "cache miss (key ${key:0:16}...): building $PKG $version in $scratch"
msg "extracting $TARBALL"
tar -xf "$TARBALL" -C "$scratch"
src=$scratch/$PKG
[[ -f $src/Makefile ]] || die "$TARBALL did not unpack to $PKG/"
cd "$src"

for p in "${patches[@]}"; do
	msg "applying ${p#"$HERE"/}"
	patch -p1 --forward --batch --no-backup-if-mismatch <"$p" >>"$log" 2>&1 ||
		die "patch ${p#"$HERE"/} does not apply to $PKG $version"
done

# Fixed build identity: the same inputs give the same `uname -v`.
export KBUILD_BUILD_USER=sprout KBUILD_BUILD_HOST=sprout
export KBUILD_BUILD_TIMESTAMP="sprout-${key:0:12}"

msg "configuring: tinyconfig + sprout.config"
make tinyconfig >>"$log" 2>&1
scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >>"$log" 2>&1
make olddefconfig >>"$log" 2>&1

# Every option the fragment sets must survive olddefconfig unchanged.
dropped=()
while IFS= read -r line; do
	if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		grep -qxF -- "$line" .config || dropped+=("$line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" .config || echo 'absent'))")
	elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		! grep -q "^${BASH_REMATCH[1]}=" .config || dropped+=("$line (got: $(grep "^${BASH_REMATCH[1]}=" .config))")
	fi
done <"$FRAGMENT"
if ((${#dropped[@]})); then
	msg "these sprout.config options did not survive 'make olddefconfig' (missing dependency or renamed?):"
	printf '  %s\n' "${dropped[@]}" >&2
	show_log=0
	die "config check failed"
fi

jobs=$(nproc)
msg "building vmlinux with -j$jobs (4-8 minutes on 2 cores); log: $log"
make -j"$jobs" vmlinux >>"$log" 2>&1 || die "make vmlinux failed"
[[ -f vmlinux ]] || die "make succeeded but produced no vmlinux"

# Publish: config first, vmlinux last (its presence marks a complete entry);
# each file is written under a temporary name and renamed into place.
mkdir -p "$out"
cp "$log" "$out/.build.log.tmp.$$"
mv -f "$out/.build.log.tmp.$$" "$out/build.log"
cp .config "$out/.config.tmp.$$"
mv -f "$out/.config.tmp.$$" "$out/config"
cp vmlinux "$out/.vmlinux.tmp.$$"
mv -f "$out/.vmlinux.tmp.$$" "$out/vmlinux"
set_default

cd /
rm -rf "$scratch"
msg "built in $(($(date +%s) - t0)) s: $out/vmlinux"
printf '%s\n' "$out/vmlinux"

#!/usr/bin/env bash
# vm-images/build with extra Debian packages (image.packages of orchd's config, or
# --packages): they are in the root and in the manifest (whose hash is the cache key, and
# which orchd checks), the same inputs again are up to date, bad names are refused. Uses
# the debs (and a microVM kernel) cached by earlier builds.
set -uo pipefail
src=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR not set (run through meson test)}
build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root (the builder chroots into the root it assembles)"
for t in apt-get dpkg-deb mkfs.erofs cpio jq; do
	command -v "$t" >/dev/null || skip "$t is not installed (scripts/install-deps --vm)"
done
[ -x "$build/guest/orch-supervisor" ] || skip "orch-supervisor is not built"
apt-cache show jq >/dev/null 2>&1 || skip "apt has no package lists (apt-get update)"

out=$(mktemp -d /var/tmp/orch-image-packages.XXXXXX)
mnt=
trap '[ -z "$mnt" ] || umount "$mnt" 2>/dev/null; rm -rf "$out"' EXIT
cached=${ORCH_VM_OUT:-$src/vm-images/out}
mkdir -p "$out/debs"
[ -d "$cached/debs" ] && { cp -al "$cached/debs/." "$out/debs/" 2>/dev/null || cp -a "$cached/debs/." "$out/debs/"; }
# With ORCH_VM_KERNEL=microvm, the kernel built earlier too (building it takes minutes).
[ ! -d "$cached/kernel" ] || cp -a "$cached/kernel" "$out/kernel"
echo '{ "image": { "packages": ["jq"] } }' >"$out/orchd.json"
b() { "$src/vm-images/build" --supervisor "$build/guest/orch-supervisor" --out "$out" "$@"; }

b --quiet --config "$out/orchd.json" || fail "the build with image.packages failed"
grep -q '^packages .* jq$\|^packages .* jq ' "$out/image/manifest" ||
	fail "the manifest does not list jq: $(grep ^packages "$out/image/manifest")"
grep -q '^deb jq_' "$out/image/manifest" || fail "the manifest has no jq package file"
echo "ok - image.packages: jq is in the manifest"
mnt=$out/mnt
mkdir "$mnt"
if mount -t erofs -o loop,ro "$out/image/rootfs.erofs" "$mnt" 2>/dev/null; then
	[ -x "$mnt/usr/bin/jq" ] || fail "jq is not in the root"
	[ -x "$mnt/usr/bin/git" ] && [ -x "$mnt/usr/bin/rg" ] && [ -x "$mnt/usr/bin/curl" ] && [ -x "$mnt/usr/bin/python3" ] &&
		[ -x "$mnt/usr/bin/bash" ] && [ -d "$mnt/opt/orch/agents" ] &&
		[ -s "$mnt/etc/ssl/certs/ca-certificates.crt" ] || fail "the agents' tools are not all in the root"
	echo "ok - jq, git, rg, curl, python3, bash, the CA bundle and /opt/orch/agents are in the root"
	umount "$mnt"
else
	echo "note: cannot mount the erofs root here; its content is not checked"
fi
mnt=
msg=$(b --config "$out/orchd.json" 2>&1) || fail "the second build failed: $msg"
echo "$msg" | grep -q "up to date" || fail "the same inputs rebuilt the image: $msg"
echo "ok - the same packages again: up to date"
if msg=$(b --packages 'jq;rm' 2>&1); then fail "a bad package name was accepted"; fi
echo "$msg" | grep -q "is not a Debian package name" || fail "no reason for the refusal: $msg"
echo "ok - a bad package name is refused"
# The guest kernel's choice: an unknown one, and the microVM kernel with a root it cannot
# read, are refused before anything is built.
if msg=$(b --kernel bogus 2>&1); then fail "--kernel bogus was accepted"; fi
echo "$msg" | grep -q "kernel must be cloud or microvm" || fail "no reason for --kernel bogus: $msg"
if msg=$(b --kernel microvm --fs squashfs 2>&1); then fail "--kernel microvm --fs squashfs was accepted"; fi
echo "$msg" | grep -q "reads erofs roots only" || fail "no reason for microvm + squashfs: $msg"
grep -qx "${ORCH_VM_KERNEL:-cloud}" "$out/image/kernel" || fail "the image does not say its kernel: $(cat "$out/image/kernel" 2>&1)"
echo "ok - bad kernel choices are refused; the image says its kernel"
echo PASS

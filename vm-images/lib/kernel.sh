# The microVM guest kernel for vm-images/build --kernel microvm (sourced): Debian's own
# kernel source (linux-source-6.1 and its successors, through the linux-source
# metapackage), patched with vm-images/kernel/*.patch, configured with `make tinyconfig` and
# vm-images/kernel/microvm.config on top, everything built in. The build is cached by the
# source package's version and the hash of the configuration, the patches, these scripts
# and the compiler, below OUT/kernel/.

MICROVM_CONFIG=$here/kernel/microvm.config
MICROVM_PATCHES=$here/kernel

# microvm_patches: the patches applied to the source, in order, a line each (none is fine).
microvm_patches() {
	local p
	for p in "$MICROVM_PATCHES"/*.patch; do
		[ ! -e "$p" ] || echo "$p"
	done
}

# The versioned source package the linux-source metapackage currently depends on.
kernel_source_package() {
	local p
	p=$(apt-cache depends linux-source 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-source-[0-9]/ { print $2; exit }')
	[ -n "$p" ] || return 1
	echo "$p"
}

# What building a kernel needs besides the image builder's tools (scripts/install-deps
# --kernel installs it).
kernel_build_tools() {
	local t
	for t in make gcc ld bc bison flex perl xz patch; do
		command -v "$t" >/dev/null || die "$t not found; the microVM kernel needs it (scripts/install-deps --kernel)"
	done
	[ -f /usr/include/gelf.h ] || die "libelf headers not found; the microVM kernel needs them (scripts/install-deps --kernel)"
}

# kernel_cache_key DEB: the cache key of a build from the source package DEB.
kernel_cache_key() {
	{
		basename "$1"
		awk -v f="$(basename "$1")" '$1 == "deb" && $2 == f { print $3 }' "$manifest"
		cat "$MICROVM_CONFIG" "$here/lib/kernel.sh"
		microvm_patches | while IFS= read -r p; do cat "$p"; done
		gcc --version | head -n 1
	} | sha256sum | cut -c1-16
}

# config_check CONFIG FRAGMENT: every setting of FRAGMENT holds in CONFIG (Kconfig drops
# what a dependency refuses without a word; a dropped setting is an error here).
config_check() {
	local config=$1 fragment=$2 line key bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" "$config" ||
				{ echo "vm-images/build: $line did not hold: $(grep "^${line%%=*}=" "$config" || echo unset)" >&2; bad=1; }
			;;
		"# CONFIG_"*" is not set")
			key=${line#\# }
			key=${key%% *}
			! grep -q "^$key=" "$config" ||
				{ echo "vm-images/build: $line did not hold: $(grep "^$key=" "$config")" >&2; bad=1; }
			;;
		esac
	done <"$fragment"
	return "$bad"
}

# build_microvm_kernel DEBS SRCPKG KCACHE: builds the kernel unless KCACHE/<key>/ has it;
# prints that directory (bzImage, config, kernel-version, sizes).
build_microvm_kernel() {
	local debs=$1 pkg=$2 kcache=$3 deb key dir kwork tarball start jobs
	deb=$(deb_of "$debs" "$pkg")
	key=$(kernel_cache_key "$deb")
	dir=$kcache/microvm-$key
	if [ -f "$dir/bzImage" ]; then
		echo "$dir"
		return 0
	fi
	kernel_build_tools
	mkdir -p "$kcache"
	kwork=$(mktemp -d "$kcache/build.XXXXXX")
	# Called in a command substitution: this trap is the subshell's own.
	# shellcheck disable=SC2064 # expand now: kwork is local
	trap "rm -rf '$kwork'" EXIT
	start=$(date +%s)
	tarball=./usr/src/$pkg.tar.xz
	mkdir -p "$kwork/src" "$kwork/obj"
	say "kernel: unpacking $(basename "$deb")"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "$tarball" | tar -xJ -C "$kwork/src" --strip-components=1 ||
		die "cannot unpack $tarball from $deb"
	local p
	while IFS= read -r p; do
		say "kernel: applying $(basename "$p")"
		patch -d "$kwork/src" -p1 --forward --batch <"$p" >"$kwork/patch.log" 2>&1 ||
			{ cat "$kwork/patch.log" >&2; die "$(basename "$p") does not apply to $pkg"; }
	done < <(microvm_patches)
	jobs=${ORCH_KERNEL_JOBS:-$(nproc)}
	local mk=(make -C "$kwork/src" O="$kwork/obj" ARCH=x86_64 -j"$jobs"
		KBUILD_BUILD_USER=orch KBUILD_BUILD_HOST=orch)
	say "kernel: configuring (tinyconfig + $(basename "$MICROVM_CONFIG"))"
	{
		"${mk[@]}" tinyconfig &&
			"$kwork/src/scripts/kconfig/merge_config.sh" -m -O "$kwork/obj" \
				"$kwork/obj/.config" "$MICROVM_CONFIG" &&
			"${mk[@]}" olddefconfig
	} >"$kwork/build.log" 2>&1 || { tail -n 30 "$kwork/build.log" >&2; die "kernel configuration failed"; }
	config_check "$kwork/obj/.config" "$MICROVM_CONFIG" ||
		die "$(basename "$MICROVM_CONFIG") does not apply to $pkg as written"
	say "kernel: building with $jobs jobs (minutes)"
	"${mk[@]}" bzImage >>"$kwork/build.log" 2>&1 ||
		{ tail -n 30 "$kwork/build.log" >&2; die "kernel build failed (log: $kwork/build.log)"; }
	mkdir -p "$kwork/out"
	cp "$kwork/obj/arch/x86/boot/bzImage" "$kwork/out/bzImage"
	cp "$kwork/obj/.config" "$kwork/out/config"
	"${mk[@]}" -s kernelrelease >"$kwork/out/kernel-version"
	{
		echo "source $(basename "$deb")"
		echo "build_seconds $(($(date +%s) - start)) jobs $jobs"
		size "$kwork/obj/vmlinux" | tail -n 1 | awk '{ print "vmlinux text", $1, "data", $2, "bss", $3 }'
		echo "bzImage $(stat -c %s "$kwork/out/bzImage")"
	} >"$kwork/out/sizes"
	rm -rf "$dir"
	mv "$kwork/out" "$dir"
	rm -rf "$kwork"
	# Older builds are dead weight: one kernel per configuration is kept.
	find "$kcache" -mindepth 1 -maxdepth 1 -name 'microvm-*' ! -path "$dir" -exec rm -rf {} +
	trap - EXIT
	echo "$dir"
}

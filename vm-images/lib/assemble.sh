# Image assembly for vm-images/build (sourced): kernel, initramfs, baseline, root.

# Modules the guest needs at boot, in groups the initramfs loads only when the kernel
# command line asks for them (each insmod costs tens of ms under TCG). Their dependencies
# come from the kernel's modules.dep.
GUEST_MODULE_GROUPS=(
	"base:virtio_pci virtio_blk virtio_console virtio_balloon"
	"erofs:erofs"
	"squashfs:squashfs"
	"virtiofs:fuse virtiofs"
	"vsock:vsock vmw_vsock_virtio_transport"
	"mem:virtio_mem"
)

# extract_kernel DEBS PKG KDIR VMLINUZ: extracts the kernel package into KDIR, copies the
# kernel to VMLINUZ and prints the kernel version.
extract_kernel() {
	local debs=$1 pkg=$2 kdir=$3 dest=$4 kver
	mkdir -p "$kdir"
	extract_deb "$(deb_of "$debs" "$pkg")" "$kdir"
	kver=$(ls -1 "$kdir/lib/modules" | head -n 1)
	[ -n "$kver" ] && [ -f "$kdir/boot/vmlinuz-$kver" ] || die "no kernel found in $pkg"
	cp "$kdir/boot/vmlinuz-$kver" "$dest"
	# The package leaves modules.dep to its postinst: generate it (kmod's depmod).
	depmod -b "$kdir" "$kver" || die "depmod failed for $kver"
	echo "$kver"
}

# module_closure MODDIR NAME...: the module files (relative to MODDIR) needed to load the
# named modules, dependencies first, from MODDIR/modules.dep. Built-in modules are skipped.
module_closure() {
	local moddir=$1 m
	shift
	local result
	result=$(awk -v want="$*" '
		function norm(s) { sub(/.*\//, "", s); sub(/\.ko(\.[a-z]+)?:?$/, "", s); gsub(/-/, "_", s); return s }
		{
			path = $1; sub(/:$/, "", path); name = norm(path)
			P[name] = path; D[name] = ""
			for (i = 2; i <= NF; i++) D[name] = D[name] " " norm($i)
		}
		function visit(m,   k, a, i) {
			if (m in seen) return
			seen[m] = 1
			if (!(m in P)) { print "MISSING " m; return }
			k = split(D[m], a, " ")
			for (i = 1; i <= k; i++) visit(a[i])
			print P[m]
		}
		END { n = split(want, W, " "); for (i = 1; i <= n; i++) visit(W[i]) }
	' "$moddir/modules.dep")
	while read -r m; do
		case "$m" in
		"MISSING "*)
			m=${m#MISSING }
			grep -q -E "/${m//_/[-_]}\.ko$" "$moddir/modules.builtin" ||
				die "module $m is neither in modules.dep nor built in"
			;;
		?*) echo "$m" ;;
		esac
	done <<<"$result"
}

# build_initramfs DEBS KDIR KVER WORK OUTPUT: KDIR "" is a kernel without modules (the
# microVM kernel, everything built in): an empty module list.
build_initramfs() {
	local debs=$1 kdir=$2 kver=$3 root=$4 dest=$5 m
	local moddir=$kdir/lib/modules/$kver
	mkdir -p "$root"/{bin,etc,proc,sys,dev,newroot} "$root/lib/modules/$kver"
	mkdir -p "$work/busybox"
	extract_deb "$(deb_of "$debs" busybox-static)" "$work/busybox"
	cp "$work/busybox/bin/busybox" "$root/bin/busybox"
	busybox_links "$root"
	install -m 0755 "$here/initramfs/init" "$root/init"
	# /etc/orch-modules: "GROUP PATH" lines in load order; a module shared by two groups
	# belongs to the first.
	local spec group seen=" "
	: >"$root/etc/orch-modules"
	[ -n "$kdir" ] || { pack_cpio "$root" "$dest"; return 0; }
	for spec in "${GUEST_MODULE_GROUPS[@]}"; do
		group=${spec%%:*}
		# shellcheck disable=SC2086 # the module names are words
		for m in $(module_closure "$moddir" ${spec#*:}); do
			case "$seen" in *" $m "*) continue ;; esac
			seen="$seen$m "
			echo "$group /lib/modules/$kver/$m" >>"$root/etc/orch-modules"
			mkdir -p "$root/lib/modules/$kver/$(dirname "$m")"
			cp "$moddir/$m" "$root/lib/modules/$kver/$m"
		done
	done
	pack_cpio "$root" "$dest"
}

# build_baseline DEBS WORK OUTPUT: the benchmark's initramfs (powers off at once).
build_baseline() {
	local debs=$1 root=$2 dest=$3
	mkdir -p "$root"/{bin,proc,sys,dev}
	cp "$work/busybox/bin/busybox" "$root/bin/busybox"
	install -m 0755 "$here/baseline/init" "$root/init"
	pack_cpio "$root" "$dest"
}

# busybox_links ROOT: /bin/<applet> -> busybox for every applet (made here, not at boot).
busybox_links() {
	local a
	for a in $("$1/bin/busybox" --list); do
		[ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"
	done
}

# pack_cpio DIR OUTPUT: an uncompressed newc archive (decompressing costs more than
# reading a few MB under TCG), with reproducible owners.
pack_cpio() {
	(cd "$1" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --quiet) >"$2"
}

# build_rootfs DEBS ROOT SUPERVISOR JAIL_EXEC PKG...: the guest's read-only root.
build_rootfs() {
	local debs=$1 root=$2 sup=$3 jexec=$4 p applet i
	shift 4
	mkdir -p "$root/usr"/{bin,sbin,lib,lib64}
	for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
	for p in "$@"; do
		extract_deb "$(deb_of "$debs" "$p")" "$root"
	done
	# Package documentation is dead weight in a VM.
	rm -rf "$root/usr/share"/{doc,man,info,locale,lintian,bug}
	# busybox applets where no package put a real tool.
	while read -r applet; do
		[ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done < <("$root/bin/busybox" --list-full)
	ln -sf /bin/busybox "$root/sbin/init"
	install -m 0755 "$sup" "$root/usr/bin/orch-supervisor"
	install -m 0755 "$jexec" "$root/usr/bin/orch-jail-exec"
	[ -z "${ORCH_SHELL_INIT:-}" ] || install -m 0755 "$ORCH_SHELL_INIT" "$root/usr/bin/orch-shell-init"

	mkdir -p "$root"/{proc,sys,dev,run,tmp,var,workspace,root,etc/orch,opt/orch/agents}
	# What ca-certificates' postinst would make (maintainer scripts do not run here).
	if [ -d "$root/usr/share/ca-certificates" ]; then
		mkdir -p "$root/etc/ssl/certs"
		find "$root/usr/share/ca-certificates" -name '*.crt' | sort |
			xargs -r cat >"$root/etc/ssl/certs/ca-certificates.crt"
	fi
	install -m 0644 "$here/rootfs/inittab" "$root/etc/inittab"
	install -m 0755 "$here/rootfs/rc.sysinit" "$here/rootfs/rc.shutdown" \
		"$here/rootfs/run-supervisor" "$root/etc/orch/"
	echo orch-guest >"$root/etc/hostname"
	echo 'include /etc/ld.so.conf.d/*.conf' >"$root/etc/ld.so.conf"
	{
		echo 'root:x:0:0:root:/root:/bin/sh'
		for i in $(seq 0 63); do echo "agent-$i:x:$((10000 + i)):$((10000 + i)):orch agent $i:/workspace:/bin/sh"; done
		echo 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin'
	} >"$root/etc/passwd"
	{
		echo 'root:x:0:'
		echo 'tty:x:5:'
		for i in $(seq 0 63); do echo "agent-$i:x:$((10000 + i)):"; done
		echo 'nogroup:x:65534:'
	} >"$root/etc/group"
	printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
	ldconfig -r "$root" 2>/dev/null || die "ldconfig -r $root failed"
	# Every library the supervisor needs must resolve inside the root.
	if ! chroot "$root" /usr/bin/orch-supervisor --help >/dev/null 2>&1; then
		if chroot "$root" /lib64/ld-linux-x86-64.so.2 --list /usr/bin/orch-supervisor 2>&1 |
			grep -q 'not found'; then
			die "orch-supervisor has unresolved libraries in the root"
		fi
	fi
	# And every library it loads at run time (the LLM endpoint's libmicrohttpd).
	local lib
	while read -r lib; do
		[ -e "$root$lib" ] || die "$lib (loaded by orch-supervisor at run time) is not in the root"
		if chroot "$root" /lib64/ld-linux-x86-64.so.2 --list "$lib" 2>&1 | grep -q 'not found'; then
			die "$lib has unresolved libraries in the root"
		fi
	done < <(chroot "$root" /usr/bin/orch-supervisor --dlopen-list)
}

# pack_rootfs ROOT erofs|squashfs OUTPUT
pack_rootfs() {
	local root=$1 fs=$2 dest=$3
	case "$fs" in
	erofs) mkfs.erofs --quiet --all-root -T 0 "$dest" "$root" >/dev/null ;;
	squashfs) mksquashfs "$root" "$dest" -quiet -noappend -all-root -comp zstd \
		-mkfs-time 0 -all-time 0 >/dev/null ;;
	esac
}

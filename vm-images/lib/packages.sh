# Debian package resolution for vm-images/build (sourced). Uses only apt's own clients;
# nothing is installed on the host.

APT_OPTS=(-o APT::Sandbox::User=root -q)

# The versioned kernel package linux-image-cloud-amd64 currently depends on.
kernel_package() {
	local p
	p=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	[ -n "$p" ] || return 1
	echo "$p"
}

# The shared libraries an ELF file needs (as the host's dynamic loader resolves them), one
# path per line; none for a statically linked one.
needed_libs() {
	ldd "$1" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
}

# Debian packages holding the shared libraries an ELF binary needs, one per line: its
# DT_NEEDED closure and, for orch-supervisor, the libraries it loads with dlopen (listed
# by --dlopen-list) with their own closure. Statically linked binaries need none.
supervisor_packages() {
	local bin=$1 lib pkg
	if ! ldd "$bin" >/dev/null 2>&1; then
		return 0
	fi
	{
		needed_libs "$bin"
		if [ "$(basename "$bin")" = orch-supervisor ]; then
			"$bin" --dlopen-list | while read -r lib; do
				[ -e "$lib" ] || { echo "vm-images/build: $bin loads $lib, which is missing" >&2; exit 1; }
				echo "$lib"
				needed_libs "$lib"
			done
		fi
	} | sort -u |
		while read -r lib; do
			pkg=$(owner_of "$lib") || { echo "vm-images/build: no package owns $lib" >&2; return 1; }
			echo "$pkg"
		done | sort -u
}

# The package that ships a file, trying the merged-/usr aliases.
owner_of() {
	local f=$1 cand real
	real=$(realpath "$f")
	for cand in "$f" "$real" "${f#/usr}" "${real#/usr}" "/usr$f" "/usr$real"; do
		dpkg -S "$cand" 2>/dev/null | head -n 1 | cut -d: -f1 && return 0
	done
	return 1
}

# Depends/Pre-Depends closure of the given packages (no recommends), one per line.
package_closure() {
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances "$@" 2>/dev/null |
		grep -v -e '^ ' -e '^<' | sort -u
}

# "FILE SHA256" for each package at the version apt would download now.
package_uris() {
	apt-get "${APT_OPTS[@]}" download --print-uris "$@" 2>/dev/null |
		awk '{ sub(/^SHA256:/, "", $4); print $2, $4 }' | sort
}

# Downloads the packages not yet in DIR (checked against their SHA256).
download_packages() {
	local dir=$1 file sum missing=()
	shift
	while read -r file sum; do
		if [ ! -f "$dir/$file" ] || [ "$(sha256sum <"$dir/$file" | cut -d' ' -f1)" != "$sum" ]; then
			missing+=("${file%%_*}")
		fi
	done < <(package_uris "$@")
	[ "${#missing[@]}" -gt 0 ] || return 0
	(cd "$dir" && apt-get "${APT_OPTS[@]}" download "${missing[@]}" >/dev/null) ||
		die "apt-get download failed for: ${missing[*]} (run apt-get update?)"
}

# The cached .deb of a package, at the version recorded in the manifest ($manifest).
deb_of() {
	local dir=$1 pkg=$2 f
	f=$(awk -v p="${pkg}_" '$1 == "deb" && index($2, p) == 1 { print $2; exit }' "$manifest")
	[ -n "$f" ] && [ -f "$dir/$f" ] || die "package $pkg is not in $dir"
	echo "$dir/$f"
}

# Extracts a .deb's files into DIR, keeping DIR's directory symlinks (merged /usr).
extract_deb() {
	dpkg-deb --fsys-tarfile "$1" | tar -x --keep-directory-symlink -C "$2" "${@:3}"
}

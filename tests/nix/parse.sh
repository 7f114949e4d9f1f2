#!/usr/bin/env bash
# Every .nix file of the repository parses (nix-instantiate --parse).
. "$(dirname "$0")/lib.sh"
need_nix

if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git -C "$src" ls-files --cached --others --exclude-standard -- '*.nix' ':!:**/node_modules/**' | sort -u)
else
	mapfile -t files < <(cd "$src" && find . \( -name node_modules -o -name '.git' -o -name 'build*' -o -name out \) -prune -o -name '*.nix' -print | sed 's|^\./||' | sort)
fi
[ "${#files[@]}" -gt 0 ] || fail "no .nix files found under $src"

bad=0
for f in "${files[@]}"; do
	[ -f "$src/$f" ] || continue
	if out=$(nix-instantiate --readonly-mode --parse "$src/$f" 2>&1 >/dev/null); then
		echo "ok: $f"
	else
		echo "not ok: $f: $(grep -v build-users-group <<<"$out")"
		bad=$((bad + 1))
	fi
done
[ "$bad" = 0 ] || fail "$bad of ${#files[@]} .nix files do not parse"
echo "all ${#files[@]} .nix files parse"

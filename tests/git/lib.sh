# Helpers of the repository-task tests (sourced after tests/host/lib.sh's checks): a
# bare "upstream" repository, orchd with a git section, and a cleanup that unmounts the
# task workspaces (loop mounts below $T) before the state directory goes.
S=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR is not set (run through meson test)}
# shellcheck source=../lib/orchd.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/orchd.sh"

command -v git >/dev/null || skip "git is not installed"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 is not installed (e2fsprogs)"
command -v setpriv >/dev/null || skip "setpriv is not installed (util-linux)"
[ -w /dev/loop-control ] || skip "no loop devices (/dev/loop-control)"

# Every mount below $T, deepest first.
mounts_below() { awk -v t="$T" '$5 ~ "^"t"/" {print $5}' /proc/self/mountinfo | sort -r; }

git_cleanup() {
	local rc=$? m
	if [ -n "$ORCHD_PID" ] && kill -0 "$ORCHD_PID" 2>/dev/null; then
		kill "$ORCHD_PID" 2>/dev/null || true
		wait "$ORCHD_PID" 2>/dev/null || true
	fi
	for m in $(mounts_below); do umount -l "$m" 2>/dev/null || true; done
	# the mount points are immutable (git-ws.h)
	find "$T" -maxdepth 5 -type d -name 'task-*' -exec chattr -i {} + 2>/dev/null || true
	(exit $rc)
	cleanup
}
trap git_cleanup EXIT

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$T
g() { git -c user.name=tester -c user.email=tester@example.invalid -c init.defaultBranch=main "$@"; }

# make_upstream DIR: a bare repository with a few files on main (and a branch dev).
make_upstream() {
	local up=$1 w=$T/seed.$$
	g init -q --bare "$up"
	g init -q "$w"
	printf 'hello\n' >"$w/a.txt"
	printf 'keep me\n' >"$w/b.txt"
	mkdir -p "$w/src" "$w/.github/workflows"
	printf 'int main(void) { return 0; }\n' >"$w/src/main.c"
	printf 'on: push\n' >"$w/.github/workflows/ci.yml"
	printf 'build/\n' >"$w/.gitignore"
	g -C "$w" add -A
	g -C "$w" commit -qm "initial"
	g -C "$w" push -q "$up" HEAD:main
	g -C "$w" checkout -qb dev
	printf 'dev\n' >"$w/dev.txt"
	g -C "$w" add dev.txt
	g -C "$w" commit -qm "dev"
	g -C "$w" push -q "$up" HEAD:dev
	g --git-dir="$up" symbolic-ref HEAD refs/heads/main
	rm -rf "$w"
}

# start_git_orchd [JSON of the git section]: orchd with the local backend, 2 slots.
start_git_orchd() {
	local gitsec=${1:-{\}}
	cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "vms": { "local": { "slots": 2 } }, "git": $gitsec }
JSON
	start_orchd --config "$T/orchd.json"
}

# git_state ID: the result's state (recorded, failed, pending, ...)
git_state() { task_field "$1" git.state; }

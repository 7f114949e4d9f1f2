#!/usr/bin/env bash
# A repository task's workspace preparation against `git worktree add` by hand, in the
# same run (docs/WORKSPACES.md, "Benchmark"): a repository of 20,000 files served by
# `git daemon` on 127.0.0.1, its cache warm (fetched once, then fresh for
# git.fetch_interval_ms); orchd's preparation (lease to task.run: the ref resolved in the
# cache, a sparse image, mkfs.ext4, the loop mount, git clone --no-hardlinks of the
# mirror, .git given to the agent, the checkout in the agent's sandbox) as orchd logs it
# ("workspace ready ... ms="), vs `git worktree add` of the same commit from the same
# cache into a directory on the same file system, and (a second baseline: what orch adds
# to writing the files) into a fresh ext4 of the same size, mounted before the clock
# starts. Runs interleaved; medians compared.
# Run as root from a build tree: ORCH_BUILDDIR=$PWD/build bench/git/git-prepare-bench.sh
# [ROUNDS] [FILES] (default 5 and 20000).
set -euo pipefail
B=${ORCH_BUILDDIR:?set ORCH_BUILDDIR to the build directory}
ROUNDS=${1:-5}
FILES=${2:-20000}
[ "$(id -u)" = 0 ] || { echo "git-prepare-bench: needs root (jails, loop mounts)" >&2; exit 1; }
for t in git jq; do command -v $t >/dev/null || { echo "git-prepare-bench: $t is missing" >&2; exit 1; }; done

T=$(mktemp -d /tmp/orch-git-bench.XXXXXX)
chmod 0711 "$T"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for m in $(awk -v t="$T" '$5 ~ "^"t"/" {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" || true; done
	find "$T" -maxdepth 5 -type d -name 'task-*' -exec chattr -i {} + 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$T

# 20,000 files of about 1 KiB in 200 directories, one commit, through fast-import
echo "git-prepare-bench: making a repository of $FILES files" >&2
git init -q --bare "$T/repos/up.git"
python3 - "$FILES" >"$T/import" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
out.write(b"commit refs/heads/main\ncommitter b <b@x> 0 +0000\ndata 4\ninit\n")
for i in range(n):
    body = (f"file {i}\n" + "x" * (900 + i % 200) + "\n").encode()
    out.write(f"M 100644 inline d{i % 200:03d}/f{i:05d}.txt\ndata {len(body)}\n".encode())
    out.write(body + b"\n")
PY
git --git-dir="$T/repos/up.git" fast-import --quiet <"$T/import"
git --git-dir="$T/repos/up.git" symbolic-ref HEAD refs/heads/main
git --git-dir="$T/repos/up.git" repack -adq
PORT=$((30000 + $$ % 20000))
git daemon --export-all --base-path="$T/repos" --listen=127.0.0.1 --port=$PORT --reuseaddr "$T/repos" &
pids+=($!)
for _ in $(seq 1 50); do git ls-remote "git://127.0.0.1:$PORT/up.git" >/dev/null 2>&1 && break; sleep 0.1; done

UIDB=$((300000 + ($$ % 3000) * 70))
cat >"$T/config.json" <<JSON
{ "uid_base": $UIDB, "vms": { "local": { "slots": 1 } },
  "git": { "fetch_interval_ms": 86400000, "keep_workspaces": 0, "workspace_mib": 2048,
           "min_free_mib": 0 } }
JSON
"$B/host/orchd" --foreground -v --config "$T/config.json" --state-dir "$T/state" \
	--socket "$T/sock" 2>"$T/orchd.log" &
pids+=($!)
o() { "$B/host/orch" --socket "$T/sock" "$@"; }
for _ in $(seq 1 100); do o status >/dev/null 2>&1 && break; sleep 0.1; done
url="git://127.0.0.1:$PORT/up.git"
o --json dispatch --repo "$url" --wait -- true >/dev/null # the cache, fetched once
mirror=$(ls -d "$T"/state/git/repos/*/cache.git)
base=$(git --git-dir="$mirror" rev-parse refs/orch/head)

orchd_ms=()
wt_ms=()
fresh_ms=()
mkdir "$T/fresh"
for i in $(seq 1 "$ROUNDS"); do
	id=$(o --json dispatch --repo "$url" --wait -- true | jq -r .id)
	orchd_ms+=("$(grep "msg=\"workspace ready\" task=$id " "$T/orchd.log" | sed 's/.* ms=//')")
	t0=$(date +%s%N)
	git --git-dir="$mirror" worktree add -q --detach "$T/wt$i" "$base"
	t1=$(date +%s%N)
	wt_ms+=($(((t1 - t0) / 1000000)))
	git --git-dir="$mirror" worktree remove --force "$T/wt$i"
	truncate -s 2G "$T/fresh.img"
	mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$T/fresh.img"
	mount -o loop,noatime,noinit_itable,nodiscard "$T/fresh.img" "$T/fresh"
	t0=$(date +%s%N)
	git --git-dir="$mirror" worktree add -q --detach "$T/fresh/wt" "$base"
	t1=$(date +%s%N)
	fresh_ms+=($(((t1 - t0) / 1000000)))
	git --git-dir="$mirror" worktree remove --force "$T/fresh/wt"
	umount "$T/fresh"
	rm -f "$T/fresh.img"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
mo=$(median "${orchd_ms[@]}")
mw=$(median "${wt_ms[@]}")
mf=$(median "${fresh_ms[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "orchd's workspace preparation (ms):        ${orchd_ms[*]}"
echo "git worktree add by hand (ms):             ${wt_ms[*]}"
echo "git worktree add into a fresh ext4 (ms):   ${fresh_ms[*]}"
echo "median: orchd $mo ms; git worktree add $mw ms (ratio $(ratio "$mo" "$mw")x, target <= 1.5x);" \
	"into a fresh ext4 $mf ms (ratio $(ratio "$mo" "$mf")x)"

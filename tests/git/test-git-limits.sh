#!/usr/bin/env bash
# Task workspace limits (docs/WORKSPACES.md): a writer past git.workspace_mib gets ENOSPC
# inside the jail while the host's disk holds no more than the workspace's size; past
# git.workspace_inodes too; a result larger than git.max_result_mib is refused, with the
# reason; no workspace is made when the host's free space would drop below
# git.min_free_mib; the newest git.keep_workspaces are kept, `orch workspaces rm` removes
# one, not a running task's.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

make_upstream "$T/up.git"
start_git_orchd '{ "workspace_mib": 64, "workspace_inodes": 4096, "max_result_mib": 8,
                   "keep_workspaces": 1, "min_free_mib": 0 }'
free_kib() { df -k --output=avail "$T" | tail -1 | tr -d ' '; }

before=$(free_kib)
out=$(o --json dispatch --repo "$T/up.git" --wait -- sh -c '
	dd if=/dev/urandom of=big bs=1M count=200 2>err.txt; echo "dd=$?"; cat err.txt; rm err.txt
	df -k . | tail -1') || true
id=$(echo "$out" | jq -r .id)
o logs "$id" >"$T/w.log" 2>&1
grep -q "No space left on device" "$T/w.log" || fail "the writer did not get ENOSPC: $(cat "$T/w.log")"
img="$T/state/git/images/task-$id.img"
used=$(($(stat -c %b "$img") * 512 / 1048576))
[ "$used" -le 64 ] || fail "the image takes $used MiB of the host's disk"
after=$(free_kib)
echo "ok - ENOSPC in the jail at 64 MiB; the image takes $used MiB; the host's free space went from $((before / 1024)) to $((after / 1024)) MiB"
echo "$out" | jq -e '.git.state == "failed" and (.git.error | test("max_result_mib"))' >/dev/null ||
	fail "a result over max_result_mib: $(echo "$out" | jq -c .git)"
echo "ok - a 60 MiB result is refused: $(echo "$out" | jq -r .git.error)"

out=$(o --json dispatch --repo "$T/up.git" --wait -- sh -c '
	i=0; while [ $i -lt 6000 ]; do touch f$i 2>/dev/null || { echo "stopped at $i"; break; }; i=$((i + 1)); done') || true
id2=$(echo "$out" | jq -r .id)
o logs "$id2" 2>&1 | grep -q "stopped at" || fail "6000 files in a workspace of 4096 inodes: $(o logs "$id2" 2>&1 | tail -3)"
echo "ok - the inode limit: $(o logs "$id2" 2>&1 | grep 'stopped at')"

# retention: one finished workspace kept
wait_for 30 "retention" sh -c "[ \$(ls '$T/state/git/images' | wc -l) -le 1 ]"
[ -e "$T/state/git/images/task-$id2.img" ] || fail "the newest workspace was not kept: $(ls "$T/state/git/images")"
echo "ok - keep_workspaces"

# orch workspaces rm: not while the task runs; then it goes
r=$(o dispatch --repo "$T/up.git" -- sleep 5)
wait_for 30 "task $r to run" state_is "$r" running
o workspaces rm "$r" 2>"$T/rm.err" && fail "removed a running task's workspace"
grep -q "is running" "$T/rm.err" || fail "rm of a running task: $(cat "$T/rm.err")"
o --json workspaces | jq -e --argjson r "$r" 'any(.task == $r and .mounted)' >/dev/null || fail "the running task's workspace is not listed as mounted"
wait_for 60 "task $r" sh -c "[ \"\$($ORCH --socket $SOCK --json result $r | jq -r .git.state)\" = recorded ]"
o workspaces rm "$r" >/dev/null || fail "orch workspaces rm"
[ ! -e "$T/state/git/images/task-$r.img" ] && [ ! -e "$T/state/workspaces/local/task-$r" ] || fail "the workspace is still there"
o workspaces rm "$r" 2>/dev/null && fail "removed twice"
echo "ok - orch workspaces rm"

# no room: the host must keep min_free_mib
kill "$ORCHD_PID"; wait "$ORCHD_PID" 2>/dev/null || true
start_git_orchd '{ "workspace_mib": 64, "min_free_mib": 16000000 }'
out=$(o --json dispatch --repo "$T/up.git" --wait -- true) || true
echo "$out" | jq -e '.state == "failed" and (.reason | test("no room for another task workspace"))' >/dev/null ||
	fail "min_free_mib: $out"
echo "ok - no workspace when the host would keep less than min_free_mib"
echo "passed"

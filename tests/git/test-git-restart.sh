#!/usr/bin/env bash
# A result survives orchd's death (docs/WORKSPACES.md): orchd is killed with SIGKILL
# after a repository task ended and before its result was recorded; the next orchd
# records it, once. A row set back to pending (as if orchd died after making the branch
# and before noting it) is recorded again to the same commit, not a second one.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"

make_upstream "$T/up.git"
# the recording waits 4 s after the task ends: the window to kill orchd in (tests only)
export ORCHD_GIT_TEST_RECORD_DELAY_MS=4000
start_git_orchd
id=$(o dispatch --repo "$T/up.git" -- sh -c 'echo crash-safe >> a.txt; echo new > n.txt')
wait_for 30 "task $id to end" state_is "$id" succeeded
[ "$(git_state "$id")" = pending ] || fail "the result is $(git_state "$id"), expected pending"
# task.wait answers once the result is recorded, not when the task ends
rc=0
timeout 3 "$ORCH" --socket "$SOCK" --json dispatch --repo "$T/up.git" --wait -- true >/dev/null 2>&1 || rc=$?
[ "$rc" = 124 ] || fail "dispatch --wait returned ($rc) before the result was recorded"
kill -9 "$ORCHD_PID"
wait "$ORCHD_PID" 2>/dev/null || true
ORCHD_PID=
[ "$(sqlite3 "$T/state/orch.db" "SELECT state FROM git_tasks WHERE task = $id")" = pending ] || fail "not pending in the store after the kill"
echo "ok - killed with the result pending"

unset ORCHD_GIT_TEST_RECORD_DELAY_MS
start_git_orchd
out=$(o --json dispatch --repo "$T/up.git" --wait -- true) || fail "after the restart: $out"
wait_for 30 "the result of task $id" sh -c "[ \"\$($ORCH --socket $SOCK --json result $id | jq -r .git.state)\" = recorded ]"
res=$(o --json result "$id")
commit=$(echo "$res" | jq -r .git.commit)
base=$(echo "$res" | jq -r .git.base)
results=$(ls -d "$T"/state/git/repos/*/results.git)
[ "$(g --git-dir="$results" rev-parse "orch/task-$id")" = "$commit" ] || fail "branch"
[ "$(g --git-dir="$results" rev-list --count "$base..orch/task-$id")" = 1 ] || fail "more than one commit"
[ "$(g --git-dir="$results" diff --name-only "$base" "$commit" | tr '\n' ' ')" = "a.txt n.txt " ] || fail "changes"
n=$(grep -c "msg=\"result recorded\" task=$id " "$T/orchd.log")
[ "$n" = 1 ] || fail "recorded $n times"
echo "ok - recorded after the restart, once"

# as if orchd died between the branch and the store: pending again, same commit
kill "$ORCHD_PID"; wait "$ORCHD_PID" 2>/dev/null || true
sqlite3 "$T/state/orch.db" "UPDATE git_tasks SET state = 'pending', commit_id = NULL, branch = NULL WHERE task = $id"
start_git_orchd
wait_for 30 "the result of task $id again" sh -c "[ \"\$($ORCH --socket $SOCK --json result $id | jq -r .git.state)\" = recorded ]"
[ "$(task_field "$id" git.commit)" = "$commit" ] || fail "another commit: $(task_field "$id" git.commit)"
[ "$(g --git-dir="$results" rev-list --count "$base..orch/task-$id")" = 1 ] || fail "a second commit"
[ "$(task_field "$id" git.files_changed)" = 2 ] || fail "stats"
echo "ok - an existing branch is the result: no second commit"
echo "passed"

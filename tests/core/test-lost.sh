#!/bin/bash
# A supervisor that disappears mid-task: its running task becomes lost and is re-queued
# once (then succeeds on the restarted supervisor); without retries it ends `lost` with
# the reason. A supervisor that stops sending heartbeats (SIGSTOP) is treated the same.
# The cgroup directories of the killed supervisors do not pile up: each restart removes
# them.
. "$(dirname "$0")/../lib/orchd.sh"

VM=lost-$$ # a name no other test's supervisors use: their cgroup directories are not ours
cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "scheduler": { "heartbeat_ms": 200, "heartbeat_misses": 3 },
  "vms": { "$VM": { "slots": 2 } } }
JSON
start_orchd --config "$T/orchd.json"
sup_pid() { o --json status | jq -r '.vms[0].pid'; }

# 1. killed supervisor, task with a retry left; its log is per attempt
pid1=$(sup_pid)
id=$(o dispatch --retries 1 -- sh -c 'echo started; sleep 1; echo finished')
wait_for 10 "task $id running" state_is "$id" running
wait_for 10 "its first output" sh -c "'$ORCH' --socket '$SOCK' logs $id | grep -q started"
kill -9 "$pid1"
wait_for 20 "task $id succeeded after the retry" state_is "$id" succeeded
[ "$(task_field "$id" lost_count)" = 1 ] || fail "lost_count $(task_field "$id" lost_count)"
[ "$(task_field "$id" attempts)" = 2 ] || fail "attempts $(task_field "$id" attempts)"
# the attempt that finished, marked as the second; the lost one on request; both
[ "$(o logs "$id" 2>"$T/err")" = "$(printf 'started\nfinished')" ] || fail "output after retry: $(o logs "$id")"
[ "$(cat "$T/err")" = "--- attempt 2 ---" ] || fail "no attempt boundary: $(cat "$T/err")"
[ "$(o logs --attempt 1 "$id" 2>/dev/null)" = started ] || fail "attempt 1: $(o logs --attempt 1 "$id")"
[ "$(o logs --all-attempts "$id" 2>&1)" = "$(printf -- '--- attempt 1 ---\nstarted\n--- attempt 2 ---\nstarted\nfinished')" ] ||
	fail "all attempts: $(o logs --all-attempts "$id" 2>&1)"
[ "$(o --json logs "$id" | jq -s 'map(.attempt) | unique | tostring' -r 2>/dev/null | tail -1)" = "[2]" ] ||
	fail "--json: $(o --json logs "$id")"
[ "$(task_field "$id" output_bytes)" = 17 ] || fail "output_bytes $(task_field "$id" output_bytes)"
[ "$(sup_pid)" != "$pid1" ] || fail "supervisor was not restarted"
grep -q 'msg="task lost, re-queued"' "$T/orchd.log" || fail "no log line for the loss"

# 2. killed supervisor, no retries: ends lost with a reason; dispatch --wait exits 75
wait_for 20 "supervisor back" orchd_ready
o dispatch --wait --retries 0 -- sleep 30 >/dev/null 2>"$T/err" &
w=$!
wait_for 10 "a running task" sh -c "[ \"\$('$ORCH' --socket '$SOCK' --json tasks --state running | jq length)\" = 1 ]"
id=$(o --json tasks --state running | jq -r '.[0].id')
kill -9 "$(sup_pid)"
set +e
wait $w; rc=$?
set -e
[ $rc = 75 ] || fail "dispatch --wait of a lost task exited $rc"
[ "$(task_field "$id" state)" = lost ] || fail "state $(task_field "$id" state)"
task_field "$id" reason | grep -q "^lost: channel closed" || fail "reason: $(task_field "$id" reason)"
grep -q "task $id ended lost" "$T/err" || fail "dispatch --wait did not say the task was lost: $(cat "$T/err")"

# 3. missed heartbeats: a stopped supervisor is replaced
wait_for 20 "supervisor back" orchd_ready
pid3=$(sup_pid)
id=$(o dispatch --retries 1 -- sh -c 'sleep 0.5; echo hb')
wait_for 10 "task $id running" state_is "$id" running
kill -STOP "$pid3"
wait_for 20 "task $id succeeded after missed heartbeats" state_is "$id" succeeded
[ "$(task_field "$id" lost_count)" = 1 ] || fail "heartbeat loss not counted"
grep -q 'reason="missed heartbeats"' "$T/orchd.log" || fail "no missed-heartbeats log line"
kill -0 "$pid3" 2>/dev/null && fail "stopped supervisor $pid3 still exists"

# 4. three supervisors died without cleaning up; the one running now removed their
# cgroup directories (orch-$VM, or orch-$VM.N while another held that) when it started:
# one is left in each hierarchy, the live supervisor's, and it holds it locked.
wait_for 20 "supervisor back" orchd_ready
live=$(sup_pid)
v2=$(awk '$(NF-2) == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$v2" ] || skip "no cgroup2 mount"
mapfile -t dirs < <(find "$v2" -maxdepth 8 -type d -name "orch-$VM*" -prune 2>/dev/null)
[ "${#dirs[@]}" = 1 ] || fail "cgroup v2 directories of this VM: ${dirs[*]:-none} (want 1)"
ino=$(stat -c %i "${dirs[0]}")
grep -Eq "FLOCK +ADVISORY +WRITE +$live +[0-9a-f]+:[0-9a-f]+:$ino " /proc/locks ||
	fail "${dirs[0]} is not held by the live supervisor $live"
echo PASS

#!/bin/bash
# Scheduling end to end: priority first, then FIFO; a task pinned to an agent slot waits
# for that slot; a named VM is honoured; impossible placements are refused at submit.
. "$(dirname "$0")/../lib/orchd.sh"

cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "vms": { "a": { "slots": 1 }, "b": { "slots": 2 } } }
JSON
start_orchd --config "$T/orchd.json"
# occupy a's only slot and b's two
o dispatch --vm a -- sleep 1 >/dev/null
o dispatch --vm b --agent 0 -- sleep 1 >/dev/null
o dispatch --vm b --agent 1 -- sleep 1 >/dev/null
low=$(o dispatch --vm a --priority 0 -- true)
high=$(o dispatch --vm a --priority 5 -- true)
mid=$(o dispatch --vm a --priority 2 -- true)
high2=$(o dispatch --vm a --priority 5 -- true)
pinned=$(o dispatch --vm b --agent 1 -- true)
wait_for 30 "all tasks final" no_active
order=$(o --json tasks | jq -r '[.[] | select(.vm == "a" and .argv == ["true"])] | sort_by(.started_at, .id) | map(.id) | join(" ")')
[ "$order" = "$high $high2 $mid $low" ] || fail "order on a: $order (want $high $high2 $mid $low)"
[ "$(task_field "$pinned" vm)/$(task_field "$pinned" slot)" = b/1 ] || fail "pinned task ran on $(task_field "$pinned" vm)/$(task_field "$pinned" slot)"
set +e
o dispatch --vm a --agent 1 -- true 2>"$T/err"; rc=$?
set -e
[ $rc = 1 ] || fail "slot 1 of a one-slot VM: exit $rc"
grep -q "no configured VM can run this task" "$T/err" || fail "message: $(cat "$T/err")"
echo PASS

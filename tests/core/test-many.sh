#!/bin/bash
# 200 tasks over 4 agent slots: all finish with the right results, and every task's
# output is its own, complete and in order (nothing interleaved between tasks).
. "$(dirname "$0")/../lib/orchd.sh"

start_orchd
N=200
for i in $(seq 1 $N); do
	# odd tasks fail with their own code; every task prints 20 numbered lines. The first
	# four take a second, so that all four slots are busy at once however slowly the
	# tasks are submitted (a slow submitter, e.g. an ASan build, otherwise keeps at most
	# three in flight and the lowest free slots take every task).
	pause=0
	[ "$i" -gt 4 ] || pause=1
	o dispatch -- sh -c "sleep $pause; for l in \$(seq 1 20); do echo task-$i-line-\$l; done; exit \$(( $i % 2 ))" \
		>>"$T/ids"
done
[ "$(wc -l <"$T/ids")" = $N ] || fail "not all submitted"
wait_for 120 "all tasks final" no_active

o --json tasks --limit 1000 >"$T/all"
[ "$(jq length "$T/all")" = $N ] || fail "expected $N tasks"
[ "$(jq '[.[] | select(.state == "succeeded")] | length' "$T/all")" = $((N / 2)) ] ||
	fail "succeeded count"
[ "$(jq '[.[] | select(.state == "failed" and .exit_code == 1)] | length' "$T/all")" = $((N / 2)) ] ||
	fail "failed count"
# all 4 slots were used
[ "$(jq '[.[].slot] | unique | length' "$T/all")" = 4 ] || fail "slots used: $(jq -c '[.[].slot] | unique' "$T/all")"

i=0
while read -r id; do
	i=$((i + 1))
	o logs "$id" >"$T/out" || fail "logs $id"
	seq 1 20 | sed "s/^/task-$i-line-/" | cmp -s - "$T/out" || fail "output of task $id (#$i) differs"
done <"$T/ids"
echo PASS

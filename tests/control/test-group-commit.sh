#!/bin/bash
# Group commit of submissions (SQLite): four clients each pipeline 200 requests written in
# one go (more than a connection may have in flight, 64: the group commits before the
# connection would refuse one); one invalid submission in the middle and one `status` are
# answered in their place, every other submission is stored once and answered in order,
# with the task's id.
. "$(dirname "$0")/../lib/orchd.sh"

start_orchd
/usr/bin/python3 "$(dirname "$0")/pipeline-submit.py" batch "$SOCK" 4 200 >"$T/ids" ||
	fail "pipelined submissions"
n=$((4 * 200 - 2))
[ "$(wc -l <"$T/ids")" = $n ] || fail "$(wc -l <"$T/ids") submissions answered, expected $n"
[ "$(cut -d' ' -f2 "$T/ids" | sort -u | wc -l)" = $n ] || fail "a task id answered twice"
# every answered id is stored, with its own argv; nothing else is stored
o --json tasks --limit 10000 | jq -r '.[] | "\(.argv[1]) \(.id)"' | sort >"$T/stored"
sort "$T/ids" | cmp -s - "$T/stored" ||
	fail "stored tasks differ from the answers: $(sort "$T/ids" | diff - "$T/stored" | head -5)"
grep -q '^c0-100 ' "$T/stored" && fail "the invalid submission was stored"
wait_for 120 "all tasks final" no_active
echo PASS

#!/bin/bash
# Log followers that vanish or stall: orchd keeps streaming to the others, pauses a client
# that does not read (bounded queue), and a later replay has every byte exactly once.
. "$(dirname "$0")/../lib/orchd.sh"
command -v python3 >/dev/null || skip "python3 is not installed"

start_orchd
# ~8 MiB of numbered lines, produced over a few hundred ms
id=$(o dispatch -- sh -c 'seq 1 1000000; sleep 0.3; seq 1000001 1100000')
pids=()
for i in $(seq 1 6); do
	o logs -f "$id" >"$T/f$i" 2>/dev/null &
	pids+=($!)
done
# a client that asks to follow and never reads
python3 - "$SOCK" "$id" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.send(b'{"jsonrpc":"2.0","id":1,"method":"task.logs","params":{"id":%s,"follow":true}}\n' % sys.argv[2].encode())
time.sleep(4)
PY
stalled=$!
sleep 0.2
kill -9 "${pids[0]}" "${pids[1]}" "${pids[2]}" 2>/dev/null || true
wait_for 30 "task $id" state_is "$id" succeeded
for i in 4 5 6; do
	wait "${pids[$((i - 1))]}" || fail "follower $i failed"
	[ "$(wc -l <"$T/f$i")" = 1100000 ] || fail "follower $i got $(wc -l <"$T/f$i") lines"
done
o logs "$id" | cmp -s - <(seq 1 1100000) || fail "replay differs"
kill "$stalled" 2>/dev/null || true
wait "$stalled" 2>/dev/null || true
[ "$(o dispatch --wait -- echo alive)" = alive ] || fail "orchd stopped serving"
echo PASS

#!/usr/bin/env bash
# The egress gateway's bounds (docs/EGRESS.md): the in-jail proxy answers a malformed
# head 400, an over-long one 431 and one that never completes 408 (slowloris) without
# asking orchd; orchd's per-agent limits refuse a connection past
# egress.limits.connections with 429, cut a download at the task's byte limit and refuse
# the task's next connection, and close a connection at its duration limit; each is in
# the log, and orchd answers throughout.
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../lib/egress.sh"

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

egress_certs "$T" tls.test
HP=$((20000 + $$ % 20000))
SP=$((HP + 1))
egress_upstreams "$T" $HP $SP FAKE_PID

cat >"$T/config.json" <<JSON
{
  "uid_base": $UIDB,
  "vms": { "local": { "slots": 3, "egress": ["web"] } },
  "egress": {
    "sets": { "web": ["plain.test:$HP", "tls.test:$SP"] },
    "resolve": { "plain.test": "127.0.0.5", "tls.test": "127.0.0.6" },
    "allow_private": ["plain.test", "tls.test"],
    "limits": { "connections": 3, "bytes": 400000, "duration_ms": 1500 }
  }
}
JSON
start_orchd --config "$T/config.json"

# The jail's side of each case is a small Python program (the host's python3 is in the
# jail's read-only /usr), passed through the environment.
run() {
	local id
	id=$(o dispatch --egress web --env "PROG=$1" -- sh -c 'python3 -c "$PROG"')
	wait_for 60 "task $id" final "$id"
	echo "$id" >"$T/last"
	o logs "$id" 2>/dev/null || true
}
runsh() {
	local id
	id=$(o dispatch --egress web -- sh -c "$1")
	wait_for 60 "task $id" final "$id"
	echo "$id" >"$T/last"
	o logs "$id" 2>/dev/null || true
}
final() {
	case "$(task_field "$1" state)" in succeeded | failed | timed_out | cancelled | lost) return 0 ;; esac
	return 1
}

# 1. bad heads, answered by the helper itself
out=$(run '
import socket
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"GET /relative HTTP/1.1\r\n\r\n")
print(s.recv(4096).decode().splitlines()[0])')
echo "$out" | grep -q "^HTTP/1.1 400" || fail "malformed head: $out"
out=$(run "
import socket
s = socket.create_connection(('127.0.0.1', 3128))
s.sendall(b'GET http://plain.test:$HP/ HTTP/1.1\r\n')
for i in range(3):
    s.sendall(b'X-Pad: ' + b'a' * 7000 + b'\r\n')
print(s.recv(4096).decode().splitlines()[0])")
echo "$out" | grep -q "^HTTP/1.1 431" || fail "over-long head: $out"
start=$(date +%s)
out=$(run "
import socket
s = socket.create_connection(('127.0.0.1', 3128))
s.sendall(b'GET http://plain.test:$HP/ HTTP/1.1\r\nX-Slow: 1\r\n')
s.settimeout(30)
print(s.recv(4096).decode().splitlines()[0])")
echo "$out" | grep -q "^HTTP/1.1 408" || fail "slowloris: $out"
[ $(($(date +%s) - start)) -lt 25 ] || fail "the slow head was not cut in time"
grep -q "X-Slow\|X-Pad\|relative" "$T/server.log.headers" 2>/dev/null && fail "a bad head reached the upstream"

# 2. connections: three open tunnels, the fourth refused
out=$(run "
import socket
held = []
for i in range(4):
    s = socket.create_connection(('127.0.0.1', 3128))
    s.sendall(b'CONNECT tls.test:$SP HTTP/1.1\r\n\r\n')
    print(i, s.recv(4096).decode().splitlines()[0], flush=True)
    held.append(s)")
echo "$out" | grep -q "^2 HTTP/1.1 200" || fail "third connection: $out"
echo "$out" | grep -q "^3 HTTP/1.1 429" || fail "fourth connection: $out"

# 3. bytes: a download past the task's limit is cut, the next connection refused
out=$(runsh "curl -sS -o /dev/null -w 'got=%{size_download}\n' http://plain.test:$HP/big/2000000; curl -sS -w ' code=%{http_code}\n' http://plain.test:$HP/after")
got=$(echo "$out" | sed -n 's/.*got=\([0-9]*\).*/\1/p')
[ -n "$got" ] && [ "$got" -lt 1000000 ] || fail "the download was not cut: $out"
echo "$out" | grep -q "code=429" || fail "next connection after the byte limit: $out"
TASK=$(cat "$T/last")
o egress log --task "$TASK" --json | jq -e '[.[] | select(.reason | contains("byte limit"))] | length == 2' >/dev/null ||
	fail "byte limit not logged: $(o egress log --task "$TASK" --json)"

# 4. duration: a slow answer is cut after duration_ms
out=$(runsh "curl -sS -m 20 -w ' code=%{http_code}\n' http://plain.test:$HP/slow/5 2>&1; true")
echo "$out" | grep -q "slept" && fail "the slow request outlived the duration limit: $out"
TASK=$(cat "$T/last")
o egress log --task "$TASK" --json | jq -e '.[0].reason | contains("duration limit")' >/dev/null ||
	fail "duration limit not logged: $(o egress log --task "$TASK" --json)"

# 5. an agent that half-closes while its answer is on the way costs the supervisor no
# CPU while it waits (a half-closed socket stays readable: it must not be watched)
sup=$(o --json status | jq -r '.vms[0].pid')
[ -n "$sup" ] && [ -r "/proc/$sup/stat" ] || fail "no supervisor pid: $(o --json status)"
ticks() { awk '{ print $14 + $15 }' "/proc/$sup/stat"; }
before=$(ticks)
out=$(run "
import socket
s = socket.create_connection(('127.0.0.1', 3128))
s.sendall(b'GET http://plain.test:$HP/slow/1.4 HTTP/1.1\r\nHost: plain.test\r\n\r\n')
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
print(s.recv(4096).decode().splitlines()[0])")
echo "$out" | grep -q "^HTTP/1.0 200\|^HTTP/1.1 200" || fail "half-closed request: $out"
used=$(($(ticks) - before))
[ "$used" -lt 50 ] || fail "the supervisor spun while the agent's half-closed request waited: $used ticks"

o status >/dev/null || fail "orchd does not answer"
echo "PASS"

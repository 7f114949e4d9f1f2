#!/usr/bin/env bash
# The egress gateway on the local backend (docs/EGRESS.md): a jailed curl reaches an
# allowed plain-HTTP host and an allowed HTTPS host (CONNECT tunnel, end-to-end TLS)
# through the in-jail proxy at 127.0.0.1:3128; a host outside the task's sets, an IP
# literal, a name resolving to a loopback address and a tunnel whose TLS server name
# differs from its CONNECT host are refused with 403 and a reason, and the refused ones
# never reach the upstream; a task without sets gets nothing; every connection is in
# `orch egress log` and the task's summary in `orch result`. Upstreams on 127.0.0.x,
# names mapped by egress.resolve.
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../lib/egress.sh"

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

# A test CA and a certificate for tls.test (and front.test, the fronting case).
egress_certs "$T" tls.test front.test
HP=$((20000 + $$ % 20000))
SP=$((HP + 1))
egress_upstreams "$T" $HP $SP FAKE_PID

cat >"$T/config.json" <<EOF
{
  "uid_base": $UIDB,
  "vms": { "local": { "slots": 2, "egress": ["web", "tls", "priv", "ip"] } },
  "profiles": { "pkg": { "command": ["sh", "-c"], "egress": ["web"] } },
  "egress": {
    "sets": {
      "web": ["plain.test:$HP", "*.wild.test:$HP"],
      "tls": ["tls.test:$SP"],
      "priv": ["private.test:$HP"],
      "ip": ["127.0.0.5:$HP"],
      "unused": ["nowhere.test:1"]
    },
    "resolve": { "plain.test": "127.0.0.5", "a.wild.test": "127.0.0.5",
                 "tls.test": "127.0.0.6", "private.test": "127.0.0.5",
                 "front.test": "127.0.0.6" },
    "allow_private": ["plain.test", "a.wild.test", "tls.test", "front.test"]
  }
}
EOF
start_orchd --config "$T/config.json"

CA=$(cat "$T/ca.pem")
# run_curl SETS ARGS...: curl in a jail; prints "<http code> <body>" and the task id to fd 3
run() {
	local sets=$1 id
	shift
	if [ -n "$sets" ]; then
		id=$(o dispatch --egress "$sets" --env "CA=$CA" -- sh -c "$*")
	else
		id=$(o dispatch --env "CA=$CA" -- sh -c "$*")
	fi
	wait_for 30 "task $id" state_in_final "$id"
	echo "$id" >"$T/last"
	o logs "$id" 2>/dev/null || true
}
state_in_final() {
	local st
	st=$(task_field "$1" state)
	case "$st" in succeeded | failed | timed_out | cancelled | lost) return 0 ;; esac
	return 1
}
CURL='curl -sS -m 20 -w " code=%{http_code}\n"'
conns() { wc -l <"$T/server.log" 2>/dev/null || echo 0; }

# 1. plain HTTP to an allowed host: the proxy variables are set, no resolver in the jail
out=$(run web "env | grep -q '^HTTP_PROXY=http://127.0.0.1:3128' && $CURL http://plain.test:$HP/hello")
echo "$out" | grep -q "hello from plain.test:$HP/hello" || fail "plain HTTP: $out"
echo "$out" | grep -q "code=200" || fail "plain HTTP status: $out"
# a wildcard rule
out=$(run web "$CURL http://a.wild.test:$HP/w")
echo "$out" | grep -q "hello from a.wild.test:$HP/w" || fail "wildcard: $out"

# 2. HTTPS through a CONNECT tunnel, TLS end to end with the upstream
out=$(run tls "printf '%s\n' \"\$CA\" >/tmp/ca.pem && $CURL --cacert /tmp/ca.pem https://tls.test:$SP/hello")
echo "$out" | grep -q "hello from tls.test:$SP/hello" || fail "https: $out"
TLS_TASK=$(cat "$T/last")

# 3. a host outside the sets: 403 with the reason, nothing reaches the upstream
out=$(run web "$CURL http://other.test:$HP/x")
echo "$out" | grep -q "code=403" || fail "denied host: $out"
echo "$out" | grep -q "other.test:$HP is not in the task's egress sets (web)" || fail "reason: $out"
grep -q other.test "$T/server.log.headers" && fail "the denied request reached the upstream"
DENIED_TASK=$(cat "$T/last")
# the same for a plain-HTTP request with a large body the agent is still sending: it
# reads the 403 and its reason, three times of three
out=$(run web "head -c 8000000 /dev/zero >/tmp/big; for i in 1 2 3; do $CURL -H 'Expect:' --data-binary @/tmp/big http://other.test:$HP/post 2>&1; done")
[ "$(echo "$out" | grep -c "is not in the task's egress sets (web)")" = 3 ] ||
	fail "denied host, a large body: $out"

# 4. an IP literal the sets do not name
out=$(run web "$CURL http://127.0.0.5:$HP/x")
echo "$out" | grep -q "code=403" || fail "IP literal: $out"
echo "$out" | grep -q "IP-literal" || fail "IP literal reason: $out"
# ... and one they do
out=$(run ip "$CURL http://127.0.0.5:$HP/ip")
echo "$out" | grep -q "hello from 127.0.0.5:$HP/ip" || fail "allowed IP literal: $out"

# 5. a name that resolves to a loopback address without allow_private
before=$(conns)
out=$(run priv "$CURL http://private.test:$HP/x")
echo "$out" | grep -q "code=403" || fail "private: $out"
echo "$out" | grep -q "private.test resolves to 127.0.0.5 (loopback)" || fail "private reason: $out"

# 6. a tunnel whose ClientHello names another server than its CONNECT host (fronting)
out=$(run tls "printf '%s\n' \"\$CA\" >/tmp/ca.pem && $CURL --cacert /tmp/ca.pem --connect-to front.test:$SP:tls.test:$SP https://front.test:$SP/x; echo rc=\$?")
echo "$out" | grep -q "code=200" && fail "SNI mismatch went through: $out"
[ "$(conns)" = "$before" ] || fail "refused requests reached the upstream: $(cat "$T/server.log")"

# 7. a task that asked for no sets
out=$(run "" "$CURL http://plain.test:$HP/x")
echo "$out" | grep -q "code=403" || fail "no sets: $out"
echo "$out" | grep -q "no egress allowed for this task" || fail "no sets reason: $out"

# 8. a set the VM does not allow is refused at submission
o dispatch --egress unused -- true 2>"$T/err" && fail "set not allowed on the VM accepted"
grep -q "not allowed" "$T/err" || fail "submission error: $(cat "$T/err")"

# 8b. a profile that lists sets allows only those
o dispatch --profile pkg --egress tls -- true 2>"$T/err" && fail "a set outside the profile's accepted"
grep -q "not allowed for profile pkg" "$T/err" || fail "profile error: $(cat "$T/err")"
id=$(o dispatch --profile pkg --egress web -- "$CURL http://plain.test:$HP/prof")
wait_for 30 "task $id" state_in_final "$id"
o logs "$id" | grep -q "hello from plain.test:$HP/prof" || fail "profile task: $(o logs "$id")"

# 9. the log and the summary
log=$(o egress log --task "$DENIED_TASK" --json)
echo "$log" | jq -e '.[0].verdict == "denied" and .[0].host == "other.test" and
	(.[0].reason | contains("not in the task"))' >/dev/null || fail "egress log: $log"
log=$(o egress log --task "$TLS_TASK" --json)
echo "$log" | jq -e '.[0].verdict == "allowed" and .[0].kind == "connect" and
	.[0].bytes_up > 0 and .[0].bytes_down > 0' >/dev/null || fail "tunnel log: $log"
o egress log | grep -q "other.test" || fail "egress log text: $(o egress log)"
res=$(o --json result "$TLS_TASK" || true)
echo "$res" | jq -e '.egress.connections == 1 and .egress.allowed == 1 and .egress.sets == ["tls"]' \
	>/dev/null || fail "result summary: $res"
SNI_LOG=$(o egress log --json | jq -r '[.[] | select(.reason | contains("TLS server name"))] | length')
[ "$SNI_LOG" -ge 1 ] || fail "SNI refusal not logged: $(o egress log --json)"

echo "PASS"

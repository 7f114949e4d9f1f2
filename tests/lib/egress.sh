# The servers of the egress tests (sourced, after tests/lib/orchd.sh or tests/lib/vm.sh):
# what orchd's gateway talks to on the loopback addresses egress.resolve maps the test's
# names to (127.0.0.5-7), and what they serve. Each function prints what went wrong and
# returns 1 when it fails; the caller exits.
#
# egress_certs DIR NAME...: a test CA (DIR/ca.pem, DIR/ca.key: orchd's
#   egress.upstream_ca_file) and a certificate it signed for the DNS names NAME...
#   (DIR/srv.pem, DIR/srv.key; its CN the first NAME), which the servers below present.
# egress_token FILE PREFIX: a fresh token, PREFIX-<24 hex digits>, into FILE (mode 0600,
#   an egress.inject or llm.upstreams key_file) and on stdout.
# egress_git_repos DIR: bare repositories below DIR/git: proj.git (one commit, a README
#   "egress says hello") and many.git (150 branches b100..b249, each at its own commit: a
#   clone or fetch of all of them sends more than 1 KiB of "want" lines, which git gzips).
# egress_npm_registry DIR PORT: an npm registry in DIR/npm (static files in the registry's
#   JSON format): the package orch-egress-demo 1.0.0, whose index.js exports "demo package
#   loaded", its tarball at https://npm.test:PORT/.
# egress_upstreams DIR HTTP_PORT TLS_PORT PIDVAR: tests/egress/egress-server.py, plain
#   HTTP on 127.0.0.5:HTTP_PORT and TLS (DIR/srv.pem) on 127.0.0.6:TLS_PORT, what it got
#   in DIR/server.log*; sets the variable PIDVAR to its pid, returns once it is ready.
# egress_repo_server DIR PORT PIDVAR: tests/egress/egress-repo-server.py on
#   127.0.0.7:PORT, TLS (DIR/srv.pem): `git http-backend` for DIR/git and the registry
#   DIR/npm, the requests in DIR/requests.log; sets PIDVAR to its pid, returns once it
#   is ready.

egress_certs() {
	local dir=$1 san
	shift
	san=$(printf 'DNS:%s,' "$@")
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=orch egress test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
			-keyout "$dir/srv.key" -out "$dir/srv.csr" 2>/dev/null &&
		printf 'subjectAltName=%s\n' "${san%,}" >"$dir/srv.ext" &&
		openssl x509 -req -in "$dir/srv.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
			-CAcreateserial -days 2 -extfile "$dir/srv.ext" -out "$dir/srv.pem" 2>/dev/null ||
		{ echo "FAIL: cannot make the test CA and certificate in $dir" >&2; return 1; }
}

egress_token() {
	local token
	token="$2-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
	printf '%s\n' "$token" >"$1" && chmod 600 "$1" ||
		{ echo "FAIL: cannot write a token to $1" >&2; return 1; }
	echo "$token"
}

egress_git_repos() {
	local d=$1 tree i
	local gitenv=(env GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t)
	mkdir -p "$d/work" "$d/git" &&
		git -C "$d/work" init -q -b main &&
		echo "egress says hello" >"$d/work/README" &&
		git -C "$d/work" add README &&
		"${gitenv[@]}" git -C "$d/work" commit -qm first &&
		git clone -q --bare "$d/work" "$d/git/proj.git" &&
		git clone -q --bare "$d/work" "$d/git/many.git" &&
		tree=$(git -C "$d/git/many.git" rev-parse 'main^{tree}') &&
		for i in $(seq 100 249); do
			echo "create refs/heads/b$i $("${gitenv[@]}" git -C "$d/git/many.git" commit-tree -p main -m "c$i" "$tree")"
		done | git -C "$d/git/many.git" update-ref --stdin ||
		{ echo "FAIL: cannot make the test repositories in $d/git" >&2; return 1; }
}

egress_npm_registry() {
	local d=$1 port=$2 r=$1/npm/orch-egress-demo sha1 sri
	local tgz=$r/-/orch-egress-demo-1.0.0.tgz
	mkdir -p "$d/pkg/package" "$r/-" &&
		printf '{"name":"orch-egress-demo","version":"1.0.0","main":"index.js"}\n' \
			>"$d/pkg/package/package.json" &&
		printf 'module.exports = "demo package loaded";\n' >"$d/pkg/package/index.js" &&
		tar -C "$d/pkg" -czf "$tgz" package &&
		sha1=$(sha1sum <"$tgz" | cut -d' ' -f1) &&
		sri="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" ||
		{ echo "FAIL: cannot make the npm package in $d/pkg" >&2; return 1; }
	cat >"$r/packument.json" <<JSON || return 1
{"name":"orch-egress-demo","dist-tags":{"latest":"1.0.0"},
 "versions":{"1.0.0":{"name":"orch-egress-demo","version":"1.0.0","main":"index.js",
   "dist":{"tarball":"https://npm.test:$port/orch-egress-demo/-/orch-egress-demo-1.0.0.tgz",
           "shasum":"$sha1","integrity":"$sri"}}}}
JSON
}

# egress_ready PID OUT WHAT: waits up to 10 s for the server PID to print "ready" to OUT.
egress_ready() {
	local i
	for i in $(seq 1 100); do
		grep -q ready "$2" 2>/dev/null && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	echo "FAIL: $3 did not start: $(tail -n 5 "$2" 2>/dev/null)" >&2
	return 1
}

egress_upstreams() {
	local d=$1
	python3 "${ORCH_SOURCEDIR:?}/tests/egress/egress-server.py" 127.0.0.5 "$2" 127.0.0.6 "$3" \
		"$d/srv.pem" "$d/srv.key" "$d/server.log" >"$d/server.out" 2>&1 &
	printf -v "$4" %s $!
	egress_ready $! "$d/server.out" "the test upstreams (egress-server.py)"
}

egress_repo_server() {
	local d=$1
	python3 "${ORCH_SOURCEDIR:?}/tests/egress/egress-repo-server.py" 127.0.0.7 "$2" \
		"$d/srv.pem" "$d/srv.key" "$d/git" "$d/npm" "$d/requests.log" >"$d/repo-server.out" 2>&1 &
	printf -v "$3" %s $!
	egress_ready $! "$d/repo-server.out" "the git and npm server (egress-repo-server.py)"
}

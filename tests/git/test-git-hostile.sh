#!/usr/bin/env bash
# A repository and a workspace are hostile input (docs/WORKSPACES.md): settings the agent
# writes into its .git (fsmonitor, hooks, filters, external diff, pager) run nothing when
# orchd records the result, on the host or in its sandbox; symlinks (also a directory
# swapped for one) are recorded as links, and nothing outside the workspace is read;
# a deep tree is bounded; a local repository is read with its submitter's permissions,
# never root's, and pushed to with the pusher's.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

mark=/tmp/orch-git-pwned-$$
rm -f "$mark".*
make_upstream "$T/up.git"
start_git_orchd

# 1. the agent's .git config and attributes try to run commands when orchd reads it
out=$(o --json dispatch --repo "$T/up.git" --wait -- sh -c '
	set -e
	git config core.fsmonitor "touch '"$mark"'.fsmonitor; echo"
	git config core.hooksPath .git/hooks
	git config filter.evil.clean "sed s/secret/FILTERED/; touch '"$mark"'.filter"
	git config filter.evil.required true
	git config diff.external "touch '"$mark"'.diff"
	git config core.pager "touch '"$mark"'.pager"
	git config core.sshCommand "touch '"$mark"'.ssh"
	printf "#!/bin/sh\ntouch '"$mark"'.hook\n" > .git/hooks/pre-commit
	printf "#!/bin/sh\ntouch '"$mark"'.hook\n" > .git/hooks/post-commit
	chmod +x .git/hooks/*
	printf "* filter=evil diff=evil\n" > .gitattributes
	echo "the secret word" > data.txt
	git config diff.evil.textconv "touch '"$mark"'.textconv; cat"
	') || fail "hostile config task: $out"
id=$(echo "$out" | jq -r .id)
echo "$out" | jq -e '.git.state == "recorded"' >/dev/null || fail "not recorded: $(echo "$out" | jq -c .git)"
o diff "$id" >"$T/diff1"
o push "$id" >/dev/null 2>&1 || true
ls "$mark".* 2>/dev/null && fail "a command of the workspace's config ran on the host: $(ls "$mark".*)"
commit=$(task_field "$id" git.commit)
results=$(ls -d "$T"/state/git/repos/*/results.git)
[ "$(g --git-dir="$results" show "$commit:data.txt")" = "the secret word" ] || fail "the clean filter ran: $(g --git-dir="$results" show "$commit:data.txt")"
grep -q "^+the secret word" "$T/diff1" || fail "diff: $(cat "$T/diff1")"
echo "ok - the workspace's fsmonitor, hooks, filters, diff drivers, pager and ssh command run nothing"

# 2. symlinks out of the workspace, and a directory swapped for one
out=$(o --json dispatch --repo "$T/up.git" --wait -- sh -c '
	ln -s /etc/shadow shadow; ln -s / root; rm -rf src; ln -s /etc src
	ln -s ../../../../../../../etc/passwd rel') || fail "symlink task: $out"
id=$(echo "$out" | jq -r .id)
commit=$(echo "$out" | jq -r .git.commit)
for l in shadow root src rel; do
	[ "$(g --git-dir="$results" cat-file -p "$commit:$l" 2>/dev/null | head -c 100)" != "" ] || fail "$l missing"
	g --git-dir="$results" ls-tree "$commit" "$l" | grep -q "^120000 " || fail "$l is not a link: $(g --git-dir="$results" ls-tree "$commit" "$l")"
done
o diff "$id" >"$T/diff2"
grep -q "root:" "$T/diff2" && fail "a file outside the workspace was read: $(grep root: "$T/diff2")"
grep -q "^-int main" "$T/diff2" || fail "src/main.c is not shown deleted"
echo "ok - symlinks are recorded as links; nothing outside the workspace is read"

# 3. a deep tree: bounded, orchd unharmed
out=$(o --json dispatch --repo "$T/up.git" --wait -- sh -c '
	d=.; i=0; while [ $i -lt 600 ]; do d=$d/d; i=$((i + 1)); done
	mkdir -p "$d" 2>/dev/null || true
	cd deep 2>/dev/null; p=d; i=0
	while [ $i -lt 1500 ]; do mkdir $p 2>/dev/null || break; cd $p; i=$((i + 1)); done
	echo leaf > leaf.txt; echo depth=$i') || true
state=$(echo "$out" | jq -r .git.state)
case "$state" in recorded | failed) ;; *) fail "deep tree: $out" ;; esac
o status >/dev/null || fail "orchd does not answer after the deep tree"
echo "ok - a deep tree ends in a result or a clear failure ($state: $(echo "$out" | jq -r '.git.error // "recorded"' | cut -c1-120))"

# 4. a local repository is read as its submitter: nobody (in orchd's group) cannot
#    have orchd read root's private repository, and pushes to a local one as itself
kill "$ORCHD_PID"; wait "$ORCHD_PID" 2>/dev/null || true
mkdir -m 0700 "$T/private"
g clone -q --bare "$T/up.git" "$T/private/secret.git"
mkdir -m 0755 "$T/pub"
g clone -q --bare "$T/up.git" "$T/pub/up.git"
cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "group": "nogroup", "vms": { "local": { "slots": 2 } } }
JSON
start_orchd --config "$T/orchd.json"
chmod o+x "$T"
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$ORCH" --socket "$SOCK" "$@"; }
# root's task on the private repository fills a cache first
o --json dispatch --repo "$T/private/secret.git" --wait -- true | jq -e '.git.state == "recorded"' >/dev/null || fail "root's task on its repository"
command -v socat >/dev/null || skip "socat is not installed"
# the path through the control socket itself (orch would already refuse it: nobody cannot
# resolve it), the file:// URL through orch
sid=$(printf '{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["cat","a.txt"],"repo":"%s"}}\n' \
	"$T/private/secret.git" | setpriv --reuid 65534 --regid 65534 --clear-groups socat -t 5 - "UNIX-CONNECT:$SOCK" | jq -r .result.id)
[ -n "$sid" ] && [ "$sid" != null ] || fail "nobody's submission"
wait_for 60 "task $sid" sh -c "$ORCH --socket $SOCK --json result $sid | jq -e '.state == \"failed\"' >/dev/null"
task_field "$sid" reason | grep -q "cannot fetch" || fail "nobody had root's repository read: $(o --json result "$sid" | jq -c '{state,reason}')"
out=$(as_nobody --json dispatch --repo "file://$T/private/secret.git" --wait -- cat a.txt 2>&1) || true
echo "$out" | jq -e '.state == "failed" and (.reason | test("cannot fetch"))' >/dev/null ||
	fail "nobody had root's repository read through file://: $out"
echo "ok - nobody cannot have root's private repository read (as path and file:// URL)"
# nobody's own repository: read as nobody; root's task cannot be pushed by nobody into
# root's repository, root's push of it works
chown -R 65534:65534 "$T/pub/up.git"
out=$(as_nobody --json dispatch --repo "$T/pub/up.git" --wait -- sh -c 'echo by-nobody > n.txt' 2>&1) || fail "nobody's task: $out"
echo "$out" | jq -e '.git.state == "recorded"' >/dev/null || fail "nobody's task: $out"
rid=$(o --json dispatch --repo "$T/up.git" --wait -- sh -c 'echo by-root > r.txt' | jq -r .id)
as_nobody push "$rid" >/dev/null 2>"$T/push.err" && fail "nobody pushed into root's repository"
g --git-dir="$T/up.git" rev-parse -q --verify "refs/heads/orch/task-$rid" >/dev/null && fail "the ref is there"
o push "$rid" >/dev/null || fail "root's push of the same result"
g --git-dir="$T/up.git" rev-parse -q --verify "refs/heads/orch/task-$rid" >/dev/null || fail "root's push did not land"
echo "ok - a local repository is read and written with the caller's permissions"
ls "$mark".* 2>/dev/null && fail "markers: $(ls "$mark".*)"
echo "passed"

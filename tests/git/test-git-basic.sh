#!/usr/bin/env bash
# Repository tasks end to end on the local backend (docs/WORKSPACES.md): a task edits,
# adds and deletes files without committing, and with commits of its own; its branch
# holds exactly those changes, with the agent as author and the prompt in the message;
# `orch diff` shows them; `orch checkout` fetches the branch into a clone; `orch push`
# lands it on the upstream; --ref picks a branch; two concurrent tasks on one repository
# do not see each other's changes; a task that changes nothing has no branch.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

make_upstream "$T/up.git"
start_git_orchd '{ "keep_workspaces": 2 }'

# 1. uncommitted edits, an addition, a deletion, a symlink, an ignored build output,
#    and one commit of the agent's own
id=$(o dispatch --repo "$T/up.git" -- sh -c '
	set -e
	[ "$(git rev-parse --abbrev-ref HEAD)" = "orch/task-${ORCH_TASK%.*}" ] || { echo "not on the task branch" >&2; exit 9; }
	[ "$(git remote get-url origin)" = "'"$T/up.git"'" ] || { echo "origin is not the upstream" >&2; exit 9; }
	[ "$(stat -c %u .)" = "$(id -u)" ] && [ "$(stat -c %u a.txt)" = "$(id -u)" ] || { echo "not the agent'"'"'s files" >&2; exit 9; }
	echo changed >>a.txt
	rm b.txt
	mkdir -p new/dir && echo fresh >new/dir/f.txt
	ln -s a.txt link
	mkdir build && echo junk >build/out.o
	echo committed >c.txt && git add c.txt && git commit -qm "the agent'"'"'s own commit"
	echo "and then some" >>c.txt')
[ "$(o --json dispatch --repo "$T/up.git" --wait -- true | jq -r .git.state)" = recorded ] || fail "a second task's result"
wait_for 60 "task $id" sh -c "! $ORCH --socket $SOCK --json result $id | jq -e '.state == \"queued\" or .state == \"running\" or .state == \"leased\"' >/dev/null"
[ "$(task_field "$id" state)" = succeeded ] || fail "task $id: $(o logs "$id" 2>&1)"
wait_for 60 "task $id's result" sh -c "[ \"\$($ORCH --socket $SOCK --json result $id | jq -r .git.state)\" = recorded ]"
res=$(o --json result "$id")
branch=$(echo "$res" | jq -r .git.branch)
commit=$(echo "$res" | jq -r .git.commit)
base=$(echo "$res" | jq -r .git.base)
[ "$branch" = "orch/task-$id" ] || fail "branch '$branch'"
echo "$res" | jq -e '.git.files_changed == 5' >/dev/null || fail "files changed: $(echo "$res" | jq -c .git)"

# the branch in the cache, as the gate would push it
orch_push_out=$(o push "$id" 2>&1) || fail "orch push: $orch_push_out"
g --git-dir="$T/up.git" rev-parse -q --verify "refs/heads/orch/task-$id" >/dev/null || fail "orch push did not land on the upstream"
[ "$(g --git-dir="$T/up.git" rev-parse "refs/heads/orch/task-$id")" = "$commit" ] || fail "the upstream has another commit"
[ "$(g --git-dir="$T/up.git" rev-parse "$commit^")" = "$base" ] || fail "the result's parent is not the base"
[ "$(g --git-dir="$T/up.git" rev-parse main)" = "$base" ] || fail "main moved"
changes=$(g --git-dir="$T/up.git" diff --name-status --no-renames "$base" "$commit" | sort)
expect=$(printf 'A\tc.txt\nA\tlink\nA\tnew/dir/f.txt\nD\tb.txt\nM\ta.txt\n')
[ "$changes" = "$expect" ] || fail "the branch holds other changes: $changes"
[ "$(g --git-dir="$T/up.git" show "$commit:c.txt")" = "$(printf 'committed\nand then some')" ] || fail "c.txt"
[ "$(g --git-dir="$T/up.git" cat-file -p "$commit:link")" = "a.txt" ] || fail "the symlink is not a link"
[ "$(g --git-dir="$T/up.git" log -1 --format=%an "$commit")" = orch ] || fail "author"
g --git-dir="$T/up.git" log -1 --format=%B "$commit" | grep -q "Orch-Task: $id" || fail "message"
echo "ok - the branch holds exactly the workspace's changes, committed or not"

# orch diff: the same patch
o diff "$id" >"$T/diff"
grep -q '^+changed$' "$T/diff" && grep -q '^-keep me$' "$T/diff" && grep -q '^+fresh$' "$T/diff" || fail "orch diff: $(head -40 "$T/diff")"
g --git-dir="$T/up.git" diff --binary --no-renames "$base" "$commit" | cmp -s - "$T/diff" || fail "orch diff differs from git diff"
echo "ok - orch diff"

# orch checkout: into a clone, as its user
g clone -q "$T/up.git" "$T/clone"
(cd "$T/clone" && o checkout "$id" >/dev/null) || fail "orch checkout"
[ "$(g -C "$T/clone" rev-parse "orch/task-$id")" = "$commit" ] || fail "checkout: another commit"
(cd "$T/clone" && o checkout --branch review "$id" >/dev/null) || fail "orch checkout --branch"
[ "$(g -C "$T/clone" rev-parse review)" = "$commit" ] || fail "checkout --branch"
echo "ok - orch checkout"

# 2. a profile with a prompt: the prompt is the message, the profile the author
cat >"$T/prof.json" <<JSON
{ "uid_base": $UIDB, "vms": { "local": { "slots": 2 } },
  "profiles": { "coder": { "command": ["sh", "-c"], "repo": "$T/up.git", "ref": "dev" } } }
JSON
kill "$ORCHD_PID"; wait "$ORCHD_PID" 2>/dev/null || true
start_orchd --config "$T/prof.json"
out=$(o --json dispatch --profile coder --prompt 'echo "$ORCH_TASK" > from-prompt.txt; cat dev.txt' --wait) || fail "profile task: $out"
pid=$(echo "$out" | jq -r .id)
pc=$(echo "$out" | jq -r .git.commit)
[ "$(echo "$out" | jq -r .git.ref)" = dev ] || fail "the profile's ref"
cache=$(ls -d "$T"/state/git/repos/*/results.git | head -1)
[ "$(g --git-dir="$cache" log -1 --format=%an "$pc")" = coder ] || fail "author is not the profile"
g --git-dir="$cache" log -1 --format=%B "$pc" | grep -q 'echo "$ORCH_TASK" > from-prompt.txt' || fail "the prompt is not in the message"
[ "$(g --git-dir="$cache" rev-parse "$pc^")" = "$(g --git-dir="$T/up.git" rev-parse dev)" ] || fail "not on dev"
echo "ok - the profile's repository and ref; the prompt in the message, the profile as author"

# 3. two concurrent tasks on one repository do not see each other's changes
a=$(o dispatch --repo "$T/up.git" -- sh -c 'echo A > mine.txt; sleep 2; ls; test ! -e theirs.txt')
b=$(o dispatch --repo "$T/up.git" -- sh -c 'echo B > theirs.txt; sleep 2; ls; test ! -e mine.txt')
wait_for 60 "the concurrent tasks" sh -c "$ORCH --socket $SOCK --json result $a | jq -e '.git.state == \"recorded\"' >/dev/null && $ORCH --socket $SOCK --json result $b | jq -e '.git.state == \"recorded\"' >/dev/null"
[ "$(task_field "$a" state)" = succeeded ] && [ "$(task_field "$b" state)" = succeeded ] || fail "a task saw the other's file"
[ "$(task_field "$a" git.files_changed)" = 1 ] && [ "$(task_field "$b" git.files_changed)" = 1 ] || fail "a result holds the other's change"
echo "ok - concurrent tasks on one repository are apart"

# 4. no changes: recorded, no branch; diff empty; push refused
n=$(o --json dispatch --repo "$T/up.git" --wait -- true | jq -r .id)
[ "$(task_field "$n" git.state)" = recorded ] && [ "$(task_field "$n" git.branch)" = null ] || fail "no-change result"
[ -z "$(o diff "$n")" ] || fail "a diff of nothing"
o push "$n" 2>/dev/null && fail "pushed nothing"
echo "ok - a task that changes nothing has no branch"

# 5. a failing task's work is recorded too; a bad ref fails the task with the reason
f=$( (o --json dispatch --repo "$T/up.git" --wait -- sh -c 'echo half > half.txt; exit 3' || true) | jq -r .id)
[ "$(task_field "$f" state)" = failed ] && [ "$(task_field "$f" git.state)" = recorded ] || fail "failed task's result"
x=$(o --json dispatch --repo "$T/up.git" --ref no-such-branch --wait -- true) || true
echo "$x" | jq -e '.state == "failed" and (.reason | test("no branch, tag or commit"))' >/dev/null || fail "bad ref: $x"
o dispatch --repo "ext::sh -c touch% /tmp/x" -- true 2>/dev/null && fail "ext:: accepted"
o dispatch --repo "$T/up.git" --ref "--upload-pack=touch /tmp/x" -- true 2>/dev/null && fail "a ref option accepted"
echo "ok - a failed task's result; bad refs and repositories refused"

o --json workspaces | jq -e 'length >= 1 and all(.mounted == false)' >/dev/null || fail "workspaces: $(o --json workspaces)"
echo "passed"

#!/bin/bash
# A profile's extra read-only paths (ro_paths) reach the jail: orchd stores them with the
# task and sends them in task.run, and the supervisor binds them read-only at the same
# place. A profile whose path would show the jail orchd's own files (state directory,
# workspaces, LLM key files) is refused at dispatch. `orch profiles dispatch` of a profile
# with ro_paths goes through orchd's copy.
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (bwrap jails with per-agent uids)"
need bwrap jq
T=$(mktemp -d /tmp/orch-ops-ro.XXXXXX)
chmod 0711 "$T"
trap 'stop_orchd; rm -rf "$T"' EXIT
mkdir -m 0755 "$T/tools"
echo tool-data-42 >"$T/tools/data"
chmod 0644 "$T/tools/data"
mkdir -m 0700 "$T/keys"
echo sk-test-not-a-real-key >"$T/keys/anthropic"
chmod 0600 "$T/keys/anthropic"
cat >"$T/orchd.json" <<JSON
{ "profiles": {
    "ro": { "description": "reads a file of an extra read-only path",
            "command": ["/bin/sh", "-c",
                        "cat $T/tools/data; touch $T/tools/new 2>/dev/null && echo WROTE || echo READ-ONLY; echo \"\$1\"",
                        "sh"],
            "ro_paths": ["$T/tools", "/nonexistent-orch-ro"] },
    "exposing": { "description": "asks for the directory holding the workspaces",
                  "command": ["/bin/true"],
                  "ro_paths": ["$T/state"] },
    "keyed": { "description": "asks for the directory holding the API key",
               "command": ["/bin/true"],
               "ro_paths": ["$T/keys"] } },
  "llm": { "upstreams": { "a": { "kind": "anthropic", "base_url": "http://127.0.0.1:9",
                                 "key_file": "$T/keys/anthropic" } } } }
JSON
start_orchd --config "$T/orchd.json"

# wait_final ID: until the task has ended.
wait_final() {
	local i s
	for i in $(seq 300); do
		s=$(o --json result "$1" | jq -r .state)
		case $s in queued | leased | running) sleep 0.05 ;; *) return 0 ;; esac
	done
	fail "task $1 still $s"
}

id=$(o dispatch --profile ro --prompt hello) || fail "dispatch --profile ro"
wait_final "$id"
[ "$(o --json result "$id" | jq -r .state)" = succeeded ] ||
	fail "ro task: $(o --json result "$id" | jq -c '{state, reason}')"
out=$(o logs "$id")
[ "$out" = "$(printf 'tool-data-42\nREAD-ONLY\nhello')" ] || fail "ro task printed '$out'"
o --json result "$id" | jq -e --arg t "$T/tools" '.ro_paths == [$t, "/nonexistent-orch-ro"]' \
	>/dev/null || fail "ro_paths of the task: $(o --json result "$id" | jq -c .ro_paths)"
[ ! -e "$T/tools/new" ] || fail "the jail wrote into a read-only path"
echo "ok: a profile's ro_paths are bound read-only in the jail (absent ones skipped)"

# orchd refuses, at dispatch, read-only paths that would show the jail its own files (the
# supervisor refuses the workspace root again, tests/guest/check_supervisor.c).
for p in exposing:"orchd's state directory" keyed:"an LLM key file"; do
	if out=$(o dispatch --profile "${p%%:*}" 2>&1); then
		fail "profile ${p%%:*} was accepted: $out"
	fi
	echo "$out" | grep -qF "overlaps ${p#*:}" || fail "profile ${p%%:*}: $out"
	echo "ok: refused: $out"
done
[ "$(o --json tasks | jq length)" = 1 ] || fail "a refused dispatch stored a task"

# Client side: the profile comes from the same file; with ro_paths it is orchd's profile
# that runs (a client cannot name host paths for a jail).
out=$("$ORCH" --socket "$SOCK" profiles --config "$T/orchd.json" dispatch ro --prompt via-cli --wait) ||
	fail "profiles dispatch ro exited $?: $out"
[ "$out" = "$(printf 'tool-data-42\nREAD-ONLY\nvia-cli')" ] || fail "profiles dispatch printed '$out'"
echo "ok: orch profiles dispatch of a profile with ro_paths"
echo PASS

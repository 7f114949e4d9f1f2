#!/bin/bash
# Profiles end to end: the base profile's generated task runs through the real orchd,
# orch-supervisor and a bwrap jail; a profile with config files gets them written inside
# the jail, byte for byte.
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (bwrap jails with per-agent uids)"
need bwrap jq
T=$(mktemp -d /tmp/orch-ops-profile.XXXXXX)
chmod 0711 "$T"
trap 'stop_orchd; rm -rf "$T"' EXIT
start_orchd

# dispatch_profile [--dir DIR] NAME PROMPT: runs the generated task, prints its output.
dispatch_profile() {
	local dirarg=()
	[ "$1" = --dir ] && { dirarg=(--dir "$2"); shift 2; }
	local j envargs=() argv=()
	j=$("$ORCH" profiles "${dirarg[@]}" --json show "$1" --prompt "$2") || fail "profiles show $1"
	mapfile -t argv < <(echo "$j" | jq -r '.argv[] | @base64' | while read -r a; do echo "$a"; done)
	local i
	for i in "${!argv[@]}"; do argv[$i]=$(echo "${argv[$i]}" | base64 -d); done
	while read -r e; do envargs+=(--env "$(echo "$e" | base64 -d)"); done < <(echo "$j" | jq -r '.env[] | @base64')
	o dispatch --wait "${envargs[@]}" -- "${argv[@]}"
}

out=$(dispatch_profile base 'echo "home=$HOME"; id -u; echo "args-$((6 * 7))"') || fail "base task failed: $out"
echo "$out" | grep -qx 'home=/tmp/home' || fail "base output: $out"
echo "$out" | grep -qx 'args-42' || fail "base output: $out"
uid=$(echo "$out" | sed -n 2p)
[ "$uid" -ge 1000 ] || fail "the task ran as uid $uid"
echo "ok: base profile end to end (uid $uid, HOME=/tmp/home)"

# orch profiles dispatch: the same through `orch dispatch` (other options pass through).
out=$(o profiles dispatch base --prompt 'echo "pd-$((3 * 14))"; exit 3' --wait --agent 1); rc=$?
[ $rc = 3 ] || fail "profiles dispatch --wait exited $rc"
[ "$out" = pd-42 ] || fail "profiles dispatch printed '$out'"
id=$(o profiles dispatch base --prompt true)
[[ $id =~ ^[0-9]+$ ]] || fail "profiles dispatch printed '$id'"
o --json result "$id" | jq -e '.env | index("HOME=/tmp/home")' >/dev/null || fail "env not passed"
echo "ok: orch profiles dispatch base --prompt ... --wait"

# orch dispatch --profile base --prompt: orchd generates the same task itself.
out=$(o dispatch --profile base --prompt 'echo "dp-$((2 * 50))"; echo "home=$HOME"' --wait 2>&1); rc=$?
[ $rc = 0 ] || fail "dispatch --profile base --prompt exited $rc: $out"
[ "$out" = "$(printf 'dp-100\nhome=/tmp/home')" ] || fail "dispatch --profile printed '$out'"
echo "ok: orch dispatch --profile base --prompt ... --wait"

# A profile with a config file: written under $HOME inside the jail before the command.
mkdir "$T/prof"
cat >"$T/prof/cfg.json" <<'P'
{
  "description": "cat a config file",
  "command": ["/bin/sh", "-c", "cat \"$HOME/$1\"; echo; ls -a \"$HOME/.agent\"", "sh"],
  "prompt": ["{prompt}"],
  "env": { "HOME": "/tmp/home" },
  "files": { ".agent/config.json": "{\"q\":\"it's \\\"quoted\\\" $(not run) `nor this`\"}" }
}
P
out=$(dispatch_profile --dir "$T/prof" cfg .agent/config.json) || fail "cfg task failed: $out"
echo "$out" | head -1 | grep -qxF '{"q":"it'"'"'s \"quoted\" $(not run) `nor this`"}' ||
	fail "file content arrived as: $out"
echo "ok: a profile's config file is written inside the jail byte for byte"

# Every shipped profile generates a command that starts with its agent (or the writer).
for p in base claude codex gemini opencode pi; do
	a0=$("$ORCH" profiles --json show $p --prompt x | jq -r '.argv[0]')
	[ "$a0" = /bin/sh ] || fail "$p: argv[0] $a0"
done
echo PASS

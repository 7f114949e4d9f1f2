#!/bin/bash
# The bash completion of orch: verbs, options per verb, profile names from the real CLI.
set -u
fail() { echo "FAIL: $*"; exit 1; }
ORCH=${ORCH_BUILDDIR:?}/host/orch
. "${ORCH_SOURCEDIR:?}/docs/completion/orch.bash"
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _orch; echo "${COMPREPLY[*]}"; }
[ "$(comp "$ORCH" do)" = "doctor" ] || fail "verb: $(comp "$ORCH" do)"
[ "$(comp "$ORCH" doctor --no)" = "--no-boot" ] || fail "doctor option"
[ "$(comp "$ORCH" --json shell --pr)" = "--print" ] || fail "shell option after a global one"
[ "$(comp "$ORCH" profiles show co)" = "codex" ] || fail "profile names: $(comp "$ORCH" profiles show co)"
[ "$(comp "$ORCH" tasks --state su)" = "succeeded" ] || fail "states"
[ "$(comp "$ORCH" agents install co)" = "codex" ] || fail "agent names: $(comp "$ORCH" agents install co)"
[ "$(comp "$ORCH" agents ins)" = "install" ] || fail "agents subcommand"
[ "$(comp "$ORCH" dispatch --ra)" = "--raw" ] || fail "dispatch --raw"
for v in dispatch status tasks result logs cancel vm shell dashboard profiles doctor egress agents; do
	comp "$ORCH" "" | tr ' ' '\n' | grep -qx "$v" || fail "verb $v not offered"
	[ -f "$ORCH_SOURCEDIR/docs/man/orch-$v.1" ] || fail "no man page for $v"
done
echo PASS

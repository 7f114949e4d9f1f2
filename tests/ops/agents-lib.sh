# The real agent CLIs in tool loops (sourced after tests/lib/orchd.sh, by tests/ops/test-agents.sh
# and tests/vm/orchd-agents.sh): the five agents installed with `orch agents install`
# from npm, a fake upstream that asks each to run a shell command (llm-fake-upstream
# --tool-command), and the checks of one run.
#
# The agents go to $ORCH_TEST_AGENTS_DIR (default /var/tmp/orch-test-agents, kept between
# runs: only a new release is downloaded). Without the npm registry the installed ones are
# used; without either the test is skipped.

S=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR is not set}
FAKE=$B/tests/llm/llm-fake-upstream
AGENTS_DIR=${ORCH_TEST_AGENTS_DIR:-/var/tmp/orch-test-agents}
AGENT_NAMES=${ORCH_TEST_AGENTS:-"claude codex gemini opencode pi"}
# What each agent's shell runs: its uid, its task, its environment, into the workspace.
TOOL_CMD='{ id -u; echo "$ORCH_TASK"; env; } > "/workspace/tool-loop-$ORCH_TASK"'

[ -x "$FAKE" ] || skip "llm-fake-upstream is not built (host/llm absent)"

agents_all_current() {
	local a
	for a in $AGENT_NAMES; do
		[ -e "$AGENTS_DIR/$a/current/orch-agent.json" ] || return 1
	done
}

# agents_install: `orch agents install` of every agent (a no-op for versions already
# there); the installed ones when the registry cannot be reached.
agents_install() {
	local t0=$SECONDS
	if command -v npm >/dev/null &&
		"$ORCH" agents --dir "$AGENTS_DIR" install $AGENT_NAMES >"$T/agents-install.log" 2>&1; then
		echo "agents in $AGENTS_DIR ($((SECONDS - t0)) s):"
	elif agents_all_current; then
		echo "note: orch agents install failed (no npm or no registry); using what $AGENTS_DIR holds:"
		tail -3 "$T/agents-install.log" 2>/dev/null || true
	else
		tail -20 "$T/agents-install.log" 2>/dev/null || true
		skip "the agents cannot be installed (npm and the npm registry are needed once; see above)"
	fi
	"$ORCH" agents --dir "$AGENTS_DIR" list
}

# agents_fake_start: the fake upstream with the tool loop; sets KEY, PORT.
agents_fake_start() {
	KEY="sk-real-key-agents-$$"
	echo "$KEY" >"$T/key"
	chmod 600 "$T/key"
	"$FAKE" --port 0 --key "$KEY" --record "$T/rec.jsonl" --tool-command "$TOOL_CMD" \
		>"$T/fake.out" 2>"$T/fake.err" &
	FAKE_PID=$!
	wait_for 5 "the fake upstream" sh -c "[ -s '$T/fake.out' ]"
	PORT=$(head -1 "$T/fake.out")
}

# agents_llm_json: orchd's "llm" object: the three dialects to the fake, the models of
# the example config (the ones the shipped profiles pin).
agents_llm_json() {
	jq -n --argjson models "$(jq .llm.models "$S/host/orchd.example.json")" \
		--arg url "http://127.0.0.1:$PORT" --arg key "$T/key" '{
		upstreams: {
			anthropic: {kind: "anthropic", base_url: $url, key_file: $key},
			openai: {kind: "openai", base_url: $url, key_file: $key},
			gemini: {kind: "gemini", base_url: $url, key_file: $key}},
		models: $models}'
}

# The tool result as each dialect carries it back.
result_marker() {
	case "$1" in
	claude | pi | opencode) echo '"type":"tool_result"' ;;
	codex) echo '_call_output"' ;;
	gemini) echo '"functionResponse"' ;;
	esac
}

# agents_run NAME VM SLOT WORKSPACE TIMEOUT: runs the profile NAME on VM's slot SLOT and
# checks the tool loop: exit 0, the file the agent's shell wrote in WORKSPACE (the host
# directory of the slot) owned by the agent's uid, the tool-result round at the fake,
# spend recorded, the real key nowhere in the jail; sets RUN_MS.
agents_run() {
	local name=$1 vm=$2 slot=$3 ws=$4 timeout=$5 rc=0 t0 t1 id out f uid lines
	lines=$(wc -l <"$T/rec.jsonl" 2>/dev/null || echo 0)
	t0=$(date +%s%N)
	out=$(o --json dispatch --wait --vm "$vm" --agent "$slot" --timeout "$timeout" --profile "$name" \
		--prompt "Run the test command, then say done." 2>&1) || rc=$?
	t1=$(date +%s%N)
	RUN_MS=$(((t1 - t0) / 1000000))
	id=$(echo "$out" | jq -r '.id // empty' 2>/dev/null | tail -1)
	[ -n "$id" ] || fail "$name: dispatch printed no task: $out"
	if [ "$rc" != 0 ]; then
		o logs --raw "$id" 2>&1 | tail -40 >&2 || true
		fail "$name: the task exited $rc ($(task_field "$id" state) $(task_field "$id" reason))"
	fi
	f=$(ls "$ws"/tool-loop-"$id".* 2>/dev/null | head -1)
	[ -n "$f" ] || fail "$name: the agent's shell wrote no file in $ws (task $id)"
	uid=$(stat -c %u "$f")
	[ "$uid" = $((UIDB + slot)) ] || fail "$name: $f is owned by $uid, not the agent's uid $((UIDB + slot))"
	[ "$(head -1 "$f")" = $((UIDB + slot)) ] || fail "$name: the tool ran as uid $(head -1 "$f")"
	tail -n +"$((lines + 1))" "$T/rec.jsonl" | jq -r .body | grep -qF -- "$(result_marker "$name")" ||
		fail "$name: the fake upstream never saw the tool's result"
	tail -n +"$((lines + 1))" "$T/rec.jsonl" | grep -qF -- "$KEY" ||
		fail "$name: the upstream did not get the real key"
	if grep -rqF -- "$KEY" "$ws" || o logs --raw "$id" 2>&1 | grep -qF -- "$KEY"; then
		fail "$name: the real key reached the jail"
	fi
	[ "$(task_field "$id" spend_tokens)" -gt 0 ] || fail "$name: no spend recorded for task $id"
	[ "$(o --json result "$id" | jq -r .message)" = done ] ||
		fail "$name: orch result shows no final message 'done': $(o result "$id" | tail -3)"
	echo "ok - $name: tool loop in $RUN_MS ms (task $id, slot $slot, $(task_field "$id" spend_tokens) tokens)"
}

#!/usr/bin/env bash
# orchd with the libvirt backend, end to end (meson suite 'e2e'): a VM declared in the
# config boots from the guest image, `orch dispatch` runs tasks on two agents, files they
# write appear in the VM's workspace with the agents' uids, and `virsh destroy` of the
# domain mid-task makes the task lost and retried on the restarted VM. Exits 77 (skip)
# with a reason when libvirt/QEMU cannot run here. ORCH_E2E_TRANSPORT=vsock|virtio-serial
# forces the channel (default auto).
set -uo pipefail
. "$(dirname "$0")/../lib/vm.sh"
vm_setup "libvirt's system instance, virtiofsd"

st=$(mktemp -d /tmp/orch-lv-e2e.XXXXXX)
chmod 0755 "$st"
vm=e2e$$
orchd_pid=
failures=0
cleanup() {
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	[ -z "$fake_pid" ] || { kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null; }
	virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1
	if [ "$failures" != 0 ]; then
		echo "--- orchd log"; tail -n 40 "$st/orchd.log"
		echo "--- guest console"; tail -n 30 "$st/vm/$vm/console.log" 2>/dev/null
	fi
	vm_unmount_below "$st"
	rm -rf "$st"
}
trap cleanup EXIT
passed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

# The LLM path from inside the VM, when the fake upstream is built (host/llm present).
fake=$build/tests/llm/llm-fake-upstream
fake_pid=
llm_json=
key="sk-real-key-vm-$$"
if [ -x "$fake" ]; then
	echo "$key" >"$st/key"
	chmod 600 "$st/key"
	"$fake" --port 0 --key "$key" --record "$st/rec.jsonl" >"$st/fake.out" 2>&1 &
	fake_pid=$!
	for _ in $(seq 1 50); do [ -s "$st/fake.out" ] && break; sleep 0.1; done
	port=$(head -1 "$st/fake.out")
	llm_json=', "llm": { "upstreams": { "fake": { "kind": "anthropic",
	  "base_url": "http://127.0.0.1:'$port'", "key_file": "'$st/key'" } },
	  "models": { "claude-x": { "upstream": "fake", "input_usd_per_mtok": 3,
	                            "output_usd_per_mtok": 15 } } }'
fi

cat >"$st/orchd.json" <<JSON
{
  "state_dir": "$st",
  "uid_base": 10000,
  "scheduler": { "retries": 1, "heartbeat_ms": 1000, "heartbeat_misses": 5 },
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "slots": 2,
                    "transport": "${ORCH_E2E_TRANSPORT:-auto}",
                    "autostart": true, "boot_timeout_ms": 180000 } }
  $llm_json
}
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 600); do [ -S "$st/orch.sock" ] && break; sleep 0.1; done
o() { "$orch" --socket "$st/orch.sock" "$@"; }

out0=$(timeout 300 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --agent 0 --wait -- \
	sh -c 'echo agent0 > /workspace/f0; echo "uid=$(id -u)"')
rc0=$?
out1=$(timeout 300 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --agent 1 --wait -- \
	sh -c 'echo agent1 > /workspace/f1; echo "uid=$(id -u)"; ls /workspace/../agent-0 2>&1 || true')
rc1=$?
[ "$rc0" = 0 ] && [ "$out0" = "uid=10000" ] && ok "agent 0 ran in the VM" || fail "agent 0: rc $rc0 out '$out0'"
case "$out1" in uid=10001*) [ "$rc1" = 0 ] && ok "agent 1 ran in the VM" || fail "agent 1 rc $rc1" ;;
*) fail "agent 1: rc $rc1 out '$out1'" ;; esac
ws=$st/workspaces/$vm
[ "$(stat -c %u "$ws/agent-0/f0" 2>/dev/null)" = 10000 ] && ok "agent 0's file is uid 10000 on the host" || fail "agent 0's file: $(ls -ln "$ws/agent-0" 2>&1)"
[ "$(stat -c %u "$ws/agent-1/f1" 2>/dev/null)" = 10001 ] && ok "agent 1's file is uid 10001 on the host" || fail "agent 1's file: $(ls -ln "$ws/agent-1" 2>&1)"
case "$out1" in *f0*) fail "agent 1 sees agent 0's workspace" ;; *) ok "agent 1 does not see agent 0's workspace" ;; esac

# orch vm list / console with this backend.
o vm list | grep -q "^$vm *libvirt *ready" && ok "orch vm list shows the VM ready" || fail "vm list: $(o vm list)"
o vm console "$vm" >/dev/null && ok "orch vm console reads the console log" || fail "vm console: $(o vm console "$vm" 2>&1)"

# An agent in the VM calls its in-jail LLM endpoint (busybox wget); the supervisor
# forwards llm.request over the channel and orchd answers from the (fake) upstream with
# the real key, which never enters the VM.
llm_call() {
	timeout 300 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --agent 0 --wait -- sh -c '
		env | grep -q "'"$key"'" && echo KEY-LEAKED
		wget -q -O - --header "content-type: application/json" \
			--header "anthropic-version: 2023-06-01" --header "x-api-key: $ANTHROPIC_API_KEY" \
			--post-data "{\"model\":\"claude-x\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
			http://127.0.0.1:4000/v1/messages' 2>&1
}
if [ -n "$fake_pid" ]; then
	llm_out=$(llm_call)
	case "$llm_out" in
	*KEY-LEAKED*) fail "the real key is inside the VM" ;;
	*"Hello from the fake upstream"*) ok "an agent in the VM reached the LLM through orchd" ;;
	*) fail "llm answer: '$llm_out'" ;;
	esac
	grep -q "$key" "$st/rec.jsonl" 2>/dev/null && ok "the upstream got the real key" || fail "no real key upstream"
	# ... on the LLM channel of its own: the guest was told orch.llm=ADDR (run-supervisor
	# passes it as --llm-connect, and then the control channel carries no llm.*), and with
	# virtio-serial the domain has the port org.orch.llm.
	dom_xml=$(virsh -c qemu:///system dumpxml "orch-$vm" 2>/dev/null)
	case "$dom_xml" in
	*orch.llm=*) ok "the guest has an LLM channel of its own" ;;
	*) fail "no orch.llm= on the guest's cmdline" ;;
	esac
	case "$dom_xml" in
	*"<vsock"*) ;;
	*"name='org.orch.llm'"*) ok "the domain has the virtio-serial port org.orch.llm" ;;
	*) fail "no org.orch.llm port in the domain" ;;
	esac
else
	echo "# LLM checks skipped: $fake is not built (host/llm absent)"
fi

# Agent 1's debug shell through orchd (<state_dir>/shell/<vm>/agent-N.sock), which relays
# to the domain's virtio-serial port for that slot (<state_dir>/vm/<vm>/chan/shell-N.sock,
# a directory only root and QEMU may enter).
if command -v setpriv >/dev/null; then
	out=$(timeout 10 setpriv --reuid 65534 --regid 0 --clear-groups \
		socat - "UNIX-CONNECT:$st/vm/$vm/chan/shell-1.sock" </dev/null 2>&1)
	case "$out" in
	*"Permission denied"*) ok "nobody but root reaches the VM's shell port directly" ;;
	*) fail "uid 65534 reached the VM's shell port: $out" ;;
	esac
fi
# The shell starts when the guest notices the connection: repeat the command until the
# answer comes (bounded).
coproc SHELL { timeout 90 socat - "UNIX-CONNECT:$st/shell/$vm/agent-1.sock" 2>&1; }
shell_ok=0 shell_out=
for _ in $(seq 1 60); do
	echo 'echo shell-$((40+2)) uid-$(id -u)' >&"${SHELL[1]}" 2>/dev/null || break
	while IFS= read -r -t 1 line <&"${SHELL[0]}"; do
		shell_out="$shell_out$line"
		case "$line" in *"shell-42 uid-10001"*) shell_ok=1; break ;; esac
	done
	[ "$shell_ok" = 1 ] && break
done
echo exit >&"${SHELL[1]}" 2>/dev/null
kill "$SHELL_PID" 2>/dev/null; wait "$SHELL_PID" 2>/dev/null
[ "$shell_ok" = 1 ] && ok "agent 1's debug shell over virtio-serial" || fail "debug shell: '${shell_out: -300}'"

# virsh destroy mid-task: the task is lost, re-queued, and runs again on the restarted VM.
id=$(o dispatch --vm "$vm" --agent 0 -- sh -c 'echo run >> /workspace/runs; sleep 6; echo finished')
for _ in $(seq 1 300); do
	[ "$(cat "$ws/agent-0/runs" 2>/dev/null | wc -l)" -ge 1 ] && break
	sleep 0.1
done
virsh -c qemu:///system destroy "orch-$vm" >/dev/null && ok "domain destroyed mid-task" || fail "virsh destroy"
timeout 300 "$orch" --socket "$st/orch.sock" result "$id" >/dev/null
for _ in $(seq 1 600); do
	state=$(o --json result "$id" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))' 2>/dev/null)
	[ "$state" = succeeded ] || [ "$state" = failed ] && break
	sleep 0.5
done
[ "$state" = succeeded ] && ok "task succeeded after the VM was destroyed and restarted" || fail "task state '$state'"
[ "$(wc -l <"$ws/agent-0/runs")" = 2 ] && ok "it ran twice (lost, then retried)" || fail "runs: $(cat "$ws/agent-0/runs")"
grep -q 'task lost, re-queued' "$st/orchd.log" && ok "orchd logged the loss" || fail "no loss in orchd's log"
# Both boots were started by a child process (reaper.h), not on orchd's loop.
[ "$(grep 'msg="domain started"' "$st/orchd.log" | grep -c 'by=child')" -ge 2 ] &&
	! grep -q 'starting the domain in line' "$st/orchd.log" &&
	ok "both boots were started off orchd's loop, by a child" ||
	fail "boots: $(grep 'domain started\|in line' "$st/orchd.log")"

# kill -9 of orchd mid-task: the domain keeps running, the restarted orchd adopts it, the
# supervisor says hello again with the task still running, and it finishes once.
id=$(o dispatch --vm "$vm" --agent 1 -- sh -c 'echo run >> /workspace/runs; sleep 8; echo finished')
for _ in $(seq 1 600); do
	[ -s "$ws/agent-1/runs" ] && break
	sleep 0.1
done
kill -KILL "$orchd_pid"; wait "$orchd_pid" 2>/dev/null
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>>"$st/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 600); do o status >/dev/null 2>&1 && break; sleep 0.1; done
out=$(timeout 300 "$orch" --socket "$st/orch.sock" logs -f "$id" 2>&1)
for _ in $(seq 1 600); do
	state=$(o --json result "$id" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))' 2>/dev/null)
	[ "$state" = succeeded ] || [ "$state" = failed ] && break
	sleep 0.5
done
grep -q 'adopted a running domain' "$st/orchd.log" && ok "the restarted orchd adopted the running domain" || fail "no adoption in orchd's log"
[ "$state" = succeeded ] && [ "$(wc -l <"$ws/agent-1/runs")" = 1 ] &&
	ok "the task survived orchd's kill -9 and ran once" || fail "task state '$state', runs $(wc -l <"$ws/agent-1/runs"), output '$out'"
# The adopted domain's LLM channel: orchd connects to its port again and the supervisor,
# which saw the old connection go, opens its end again.
if [ -n "$fake_pid" ]; then
	llm_out=
	for _ in 1 2 3 4 5; do
		llm_out=$(llm_call)
		case "$llm_out" in *"Hello from the fake upstream"*) break ;; esac
		sleep 2 # the guest reopens its end with backoff (up to 5 s)
	done
	case "$llm_out" in
	*"Hello from the fake upstream"*) ok "the adopted domain's agents reach the LLM" ;;
	*) fail "llm answer after adoption: '$llm_out'" ;;
	esac
fi

# A boot that does not reach hello in time: the VM is marked down with the console's
# last lines in its error (and retried with backoff).
kill -TERM "$orchd_pid"; wait "$orchd_pid" 2>/dev/null
cat >"$st/slow.json" <<JSON
{ "state_dir": "$st", "uid_base": 10000,
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 1, "memory_mib": 256, "slots": 1,
                    "autostart": true, "boot_timeout_ms": 1000 } } }
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/slow.json" -s "$st" -S "$st/orch.sock" \
	2>>"$st/orchd.log" &
orchd_pid=$!
err=
for _ in $(seq 1 200); do
	err=$(o --json vm list 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get("last_error") or "")' 2>/dev/null)
	case "$err" in *"no hello from the supervisor within 1000 ms; console"*) break ;; esac
	sleep 0.1
done
case "$err" in *"no hello from the supervisor within 1000 ms; console"*) ok "a boot timeout names the console log in the VM's error" ;;
*) fail "boot timeout error: '$err'" ;; esac

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]

#!/usr/bin/env bash
# Time from dispatch to an agent CLI's first LLM request: in an orch jail (local backend:
# `orch dispatch --profile NAME`, through the supervisor, bwrap, the profile's files and
# the in-jail endpoint) next to the same CLI started bare (the same command line,
# environment and files, as uid nobody, talking to the fake upstream directly), runs
# alternating in the same process, after one discarded warm-up of each. With --vm also in
# a libvirt VM (reported with its accelerator; no bare baseline there). Target: jail
# p50 <= 1.2 x bare p50.
#
#   bench/agents/agents-start.sh [BUILD_DIR] [--runs N] [--agents "claude pi"] [--vm]
#
# The agents come from $ORCH_AGENTS_DIR (default /var/tmp/orch-test-agents, where the
# tests install them: `orch agents --dir DIR install all`). Run as root.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$src/build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
runs=5
agents="claude codex gemini opencode pi"
with_vm=0
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=${2:?}; shift ;;
	--agents) agents=${2:?}; shift ;;
	--vm) with_vm=1 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "agents-start: unknown option '$1'" >&2; exit 2 ;;
	esac
	shift
done
dir=${ORCH_AGENTS_DIR:-/var/tmp/orch-test-agents}
[ "$(id -u)" = 0 ] || { echo "agents-start: run as root" >&2; exit 1; }
for b in host/orchd host/orch tests/llm/llm-fake-upstream guest/orch-supervisor; do
	[ -x "$build/$b" ] || { echo "agents-start: build first ($build/$b)" >&2; exit 1; }
done
for a in $agents; do
	[ -e "$dir/$a/current/orch-agent.json" ] ||
		{ echo "agents-start: $a is not installed in $dir (orch agents --dir $dir install $a)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/orch-agents-bench.XXXXXX)
chmod 0711 "$T"
fake_pid=
orchd_pid=
vm=bench$$
cleanup() {
	[ -z "$orchd_pid" ] || { kill "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null || true; }
	[ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true
	[ "$with_vm" = 0 ] || virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
o() { "$build/host/orch" --socket "$T/orch.sock" "$@"; }

# The fake upstream takes any key: the bare CLIs keep the profile's placeholder.
"$build/tests/llm/llm-fake-upstream" --port 0 --record "$T/rec.jsonl" >"$T/fake.out" 2>/dev/null &
fake_pid=$!
for _ in $(seq 1 100); do [ -s "$T/fake.out" ] && break; sleep 0.05; done
port=$(head -1 "$T/fake.out")
echo sk-bench >"$T/key"
chmod 600 "$T/key"
vms='{"local": {"slots": 1}}'
if [ "$with_vm" = 1 ]; then
	"$src/scripts/libvirtd-up"
	image=$("$src/vm-images/build" --quiet --print --supervisor "$build/guest/orch-supervisor" \
		--out "${ORCH_VM_OUT:-$src/vm-images/out}")
	export ORCH_VM_IMAGE=$image
	vms=$(jq -n --arg vm "$vm" '{"local": {"slots": 1}, ($vm): {backend: "libvirt", vcpus: 2,
		memory_mib: 3072, slots: 1, boot_timeout_ms: 300000}}')
fi
jq -n --arg dir "$dir" --arg url "http://127.0.0.1:$port" --arg key "$T/key" \
	--argjson vms "$vms" --argjson models "$(jq .llm.models "$src/host/orchd.example.json")" '{
	uid_base: 470000, agents_dir: $dir, vms: $vms,
	llm: {upstreams: {anthropic: {kind: "anthropic", base_url: $url, key_file: $key},
			  openai: {kind: "openai", base_url: $url, key_file: $key},
			  gemini: {kind: "gemini", base_url: $url, key_file: $key}},
	      models: $models}}' >"$T/orchd.json"
"$build/host/orchd" --foreground -v --config "$T/orchd.json" --state-dir "$T/state" \
	--socket "$T/orch.sock" 2>"$T/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 6000); do
	o --json status 2>/dev/null | jq -e '.vms | all(.state == "ready")' >/dev/null 2>&1 && break
	sleep 0.05
done
accel=
[ "$with_vm" = 0 ] || accel=$(grep -o "accel=[a-z]*" "$T/orchd.log" | tail -1 | cut -d= -f2 || true)

prompt="Say hello."
now_ms() { date +%s%3N; }
lines() { wc -l <"$T/rec.jsonl"; }
# first_request_after N: t_ms of the first request recorded after line N (waits for it).
first_request_after() {
	local n=$1 i
	for i in $(seq 1 600); do
		if [ "$(lines)" -gt "$n" ]; then
			tail -n +"$((n + 1))" "$T/rec.jsonl" | head -1 | jq -r .t_ms
			return
		fi
		sleep 0.05
	done
	echo "agents-start: no LLM request arrived" >&2
	exit 1
}

jail_once() { # VM AGENT
	local n t0 t1
	n=$(lines)
	t0=$(now_ms)
	o dispatch --vm "$1" --wait --timeout 600s --profile "$2" --prompt "$prompt" >/dev/null 2>&1 || true
	t1=$(first_request_after "$n")
	echo $((t1 - t0))
}

# The bare command: the profile's own argv and environment (orch profiles show), its
# endpoint rewritten to the fake upstream, HOME (/tmp/home in the jail) a fresh
# directory of nobody's.
bare_once() { # AGENT
	local n t0 t1 home env argv
	o profiles --config "$T/orchd.json" show "$1" --json --prompt "$prompt" >"$T/show.json"
	home=$(mktemp -d "$T/home.XXXXXX")
	mapfile -d '' env < <(jq -j --arg p "127.0.0.1:$port" --arg h "$home" \
		'.env[] | gsub("127\\.0\\.0\\.1:4000"; $p) | gsub("/tmp/home"; $h) |
		 (., "\u0000")' "$T/show.json")
	mapfile -d '' argv < <(jq -j '.argv[] | (., "\u0000")' "$T/show.json")
	mkdir "$home/ws"
	chown -R 65534:65534 "$home"
	n=$(lines)
	t0=$(now_ms)
	(cd "$home/ws" && env -i "${env[@]}" HOME="$home" TMPDIR="$home" LANG=C.UTF-8 \
		setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs -- "${argv[@]}" \
		</dev/null >/dev/null 2>&1) || true
	t1=$(first_request_after "$n")
	rm -rf "$home"
	echo $((t1 - t0))
}

p50() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-10s %10s %10s %7s' agent "jail p50" "bare p50" ratio
[ "$with_vm" = 0 ] || printf ' %14s' "VM p50 ($accel)"
printf '\n'
worst=0
for a in $agents; do
	jail_once local "$a" >/dev/null
	bare_once "$a" >/dev/null
	j="" b="" v=""
	for _ in $(seq 1 "$runs"); do
		j="$j $(jail_once local "$a")"
		b="$b $(bare_once "$a")"
	done
	jp=$(echo "$j" | p50)
	bp=$(echo "$b" | p50)
	ratio=$(awk -v j="$jp" -v b="$bp" 'BEGIN { printf "%.2f", j / b }')
	printf '%-10s %8s ms %8s ms %6sx' "$a" "$jp" "$bp" "$ratio"
	if [ "$with_vm" = 1 ]; then
		jail_once "$vm" "$a" >/dev/null
		for _ in $(seq 1 "$runs"); do v="$v $(jail_once "$vm" "$a")"; done
		printf ' %11s ms' "$(echo "$v" | p50)"
	fi
	printf '\n'
	awk -v r="$ratio" -v w="$worst" 'BEGIN { exit !(r > w) }' && worst=$ratio
done
echo "worst ratio ${worst}x (target <= 1.2x); $runs runs each, $(nproc) CPUs"

# Shared helpers of the host integration tests (sourced). Each test gets its own state
# dir and socket under a temp dir, runs the real orchd + orch-supervisor + bwrap, and
# cleans up after itself.
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/vm.sh" # vm_unmount_below, vm_sanitizer_report

B=${ORCH_BUILDDIR:?ORCH_BUILDDIR is not set (run through meson test)}
ORCHD=$B/host/orchd
ORCH=$B/host/orch

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; [ -f "${T:-/nonexistent}/orchd.log" ] && tail -30 "$T/orchd.log" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (bwrap jails with per-agent uids)"
command -v bwrap >/dev/null || skip "bwrap is not installed"
command -v jq >/dev/null || skip "jq is not installed"
[ -x "$B/guest/orch-supervisor" ] || fail "orch-supervisor is not built"

T=$(mktemp -d /tmp/orch-host-test.XXXXXX)
chmod 0711 "$T"
SOCK=$T/orch.sock
ORCHD_PID=
# Agent uids of this test only: orchds sharing a host (other tests, other users) keep
# apart, also where the per-uid process limit stands in for a missing pids cgroup.
UIDB=$((200000 + ($$ % 5000) * 70))

cleanup() {
	local rc=$?
	# a helper process a test started (e.g. the fake LLM upstream)
	[ -z "${FAKE_PID:-}" ] || kill "$FAKE_PID" 2>/dev/null || true
	if [ -n "$ORCHD_PID" ] && kill -0 "$ORCHD_PID" 2>/dev/null; then
		kill "$ORCHD_PID" 2>/dev/null || true
		wait "$ORCHD_PID" 2>/dev/null || true
	fi
	# Under ASan/UBSan builds: any report from orchd (or the supervisor) fails the test.
	vm_sanitizer_report "$T/orchd.log" >&2 || rc=1
	vm_unmount_below "$T" # a libvirt VM's workspace mount, left by orchd
	[ -n "${KEEP:-}" ] || rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

o() { "$ORCH" --socket "$SOCK" "$@"; }

# start_orchd [orchd args...]: starts orchd on $T/state and waits until it answers.
# Without --config it gets one that only sets uid_base; configs of tests set it too.
start_orchd() {
	case " $* " in
	*" --config "*) ;;
	*)
		echo "{ \"uid_base\": $UIDB }" >"$T/base.json"
		set -- --config "$T/base.json" "$@"
		;;
	esac
	"$ORCHD" --foreground --state-dir "$T/state" --socket "$SOCK" ${ORCHD_VERBOSE:--v} "$@" \
		2>>"$T/orchd.log" &
	ORCHD_PID=$!
	wait_for 10 "orchd ready" orchd_ready
}

orchd_ready() {
	local s
	s=$(o --json status 2>/dev/null) || return 1
	echo "$s" | jq -e '.vms | all(.state == "ready")' >/dev/null
}

# state_is ID STATE
state_is() {
	local s
	s=$(o --json result "$1" 2>/dev/null) || true # exits with the task's code
	[ -n "$s" ] && [ "$(echo "$s" | jq -r .state)" = "$2" ]
}

# no_active: nothing queued, leased or running
no_active() {
	local s
	s=$(o --json status 2>/dev/null) || return 1
	[ "$(echo "$s" | jq '.tasks.queued + .tasks.leased + .tasks.running')" = 0 ]
}

# wait_for SECONDS WHAT CMD...: polls CMD every 50 ms.
wait_for() {
	local secs=$1 what=$2 i=0
	shift 2
	while ! "$@"; do
		i=$((i + 1))
		[ $i -lt $((secs * 20)) ] || fail "timed out waiting for $what"
		sleep 0.05
	done
}

task_field() { { o --json result "$1" || true; } | jq -r ".$2"; }

# Shared helpers of the tests/ops scripts (sourced).
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -n "${TMUX_SOCK:-}" ] && tmux -S "$TMUX_SOCK" capture-pane -p -t "${PANE:-t}" 2>/dev/null | sed 's/^/  | /'; exit 1; }
need() { for p in "$@"; do command -v "$p" >/dev/null 2>&1 || skip "$p is not installed"; done; }

# pane_wait PANE PATTERN [SECONDS]: waits until the pane shows PATTERN (grep -E).
pane_wait() {
	local pane=$1 pat=$2 n=$(( ${3:-20} * 10 ))
	while [ $n -gt 0 ]; do
		tmux -S "$TMUX_SOCK" capture-pane -p -J -t "$pane" 2>/dev/null | grep -Eq -- "$pat" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	PANE=$pane fail "pane $pane never showed /$pat/"
}

# orchd with the local backend on a private state dir and socket (start_orchd [args]).
B=${ORCH_BUILDDIR:-}
ORCHD=$B/host/orchd
ORCH=$B/host/orch
o() { "$ORCH" --socket "$SOCK" "$@"; }
start_orchd() {
	[ -x "$ORCHD" ] && [ -x "$ORCH" ] || fail "orchd or orch is not built"
	[ -x "$B/guest/orch-supervisor" ] || fail "orch-supervisor is not built yet"
	SOCK=$T/orch.sock
	"$ORCHD" --foreground --state-dir "$T/state" --socket "$SOCK" "$@" 2>>"$T/orchd.log" &
	ORCHD_PID=$!
	local i s
	for i in $(seq 200); do
		s=$(o --json status 2>/dev/null) && [ -n "$s" ] &&
			echo "$s" | jq -e '.vms | all(.state == "ready")' >/dev/null 2>&1 && return 0
		kill -0 "$ORCHD_PID" 2>/dev/null || { tail -20 "$T/orchd.log"; fail "orchd exited"; }
		sleep 0.05
	done
	tail -20 "$T/orchd.log"
	fail "orchd did not get ready"
}
# Fails the test when LOG holds a sanitizer report (ASan/UBSan/LSan builds).
sanitizer_check() {
	if grep -qE "ERROR: AddressSanitizer|runtime error:|LeakSanitizer: detected memory leaks" "$1" 2>/dev/null; then
		grep -E -A20 "ERROR: AddressSanitizer|runtime error:|LeakSanitizer: detected" "$1" | head -60
		echo "FAIL: sanitizer report in $1"
		exit 1
	fi
}
stop_orchd() {
	local rc=0
	if [ -n "${ORCHD_PID:-}" ] && kill -0 "$ORCHD_PID" 2>/dev/null; then
		kill "$ORCHD_PID"
		wait "$ORCHD_PID" 2>/dev/null || rc=$?
		ORCHD_PID=
		[ "$rc" = 0 ] || { tail -20 "$T/orchd.log"; echo "FAIL: orchd exited with status $rc on SIGTERM"; exit 1; }
	fi
	# orchd's log holds the supervisors' too (the local backend)
	sanitizer_check "$T/orchd.log"
}

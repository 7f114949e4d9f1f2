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

#!/bin/bash
# orchd's metrics, scraped as a fleet operator would: over its Unix socket and its loopback
# TCP port with curl, and with `orch metrics`, each parsed by Prometheus' own parser
# (tests/metrics/prom-parse). The figures follow what ran: tasks by state, one lease and
# one dispatch observation per task, one boot of the local VM. Only root and the group
# reach the Unix socket; bad requests get 404/405; idle connections past the cap do not
# hold orchd's loop. A task lost with its supervisor is counted lost, the VM's boot again.
. "$(dirname "$0")/../lib/orchd.sh"
PARSE=$(dirname "$0")/prom-parse
command -v curl >/dev/null || skip "curl is not installed"
"$PARSE" </dev/null >/dev/null || { [ $? = 77 ] && skip "python3-prometheus-client is not installed"; }

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	echo $((20000 + $$ % 20000)))
cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "vms": { "m-$$": { "slots": 2 } },
  "metrics": { "tcp_port": $port } }
JSON
start_orchd --config "$T/orchd.json"
[ -S "$T/metrics.sock" ] || fail "no metrics socket beside the control socket"
[ "$(stat -c %a "$T/metrics.sock")" = 660 ] || fail "metrics socket mode $(stat -c %a "$T/metrics.sock")"

for i in 1 2 3 4; do o dispatch --wait -- echo "task $i" >/dev/null; done
o dispatch --wait -- sh -c 'exit 3' >/dev/null && fail "a failing task succeeded"

scrape_unix() { curl -sf --unix-socket "$T/metrics.sock" http://orchd/metrics; }
scrape_unix >"$T/unix.txt" || fail "cannot scrape the Unix socket"
"$PARSE" <"$T/unix.txt" >"$T/unix.samples" || fail "the Unix socket's exposition does not parse"
val() { awk -v k="$1" '$1 == k { print $2 }' "$T/$2"; }
want() { # SAMPLE VALUE FILE
	local v
	v=$(val "$1" "$3")
	[ "$v" = "$2" ] || fail "$1 = '${v}', want $2"
}
want 'orch_tasks{state="succeeded"}' 4.0 unix.samples
want 'orch_tasks{state="failed"}' 1.0 unix.samples
want 'orch_queue_depth{}' 0.0 unix.samples
want 'orch_tasks_finished_total{state="succeeded"}' 4.0 unix.samples
want 'orch_tasks_finished_total{state="failed"}' 1.0 unix.samples
want 'orch_task_lease_seconds_count{}' 5.0 unix.samples
want 'orch_task_lease_seconds_bucket{le="+Inf"}' 5.0 unix.samples
want 'orch_task_dispatch_seconds_count{}' 5.0 unix.samples
want 'orch_vm_boot_seconds_count{backend="local"}' 1.0 unix.samples
want 'orch_vms{state="ready"}' 1.0 unix.samples
want "orch_vm_slots{vm=\"m-$$\"}" 2.0 unix.samples
want "orch_vm_slots_busy{vm=\"m-$$\"}" 0.0 unix.samples
want 'orch_info{store="sqlite",version="0.1.0"}' 1.0 unix.samples
# a histogram's buckets are cumulative and end at its count
awk '/^orch_task_dispatch_seconds_bucket/ { if ($2 + 0 < prev) bad = 1; prev = $2 + 0 }
     END { exit bad }' "$T/unix.samples" || fail "dispatch buckets not cumulative"

# the TCP port answers the same families with Prometheus' content type
curl -sfD "$T/head" "http://127.0.0.1:$port/metrics" >"$T/tcp.txt" || fail "cannot scrape 127.0.0.1:$port"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/head" || fail "content type: $(cat "$T/head")"
"$PARSE" <"$T/tcp.txt" >"$T/tcp.samples" || fail "the TCP exposition does not parse"
want 'orch_tasks{state="succeeded"}' 4.0 tcp.samples
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 200 ] || fail "/ is not the metrics"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/x")" = 404 ] || fail "/x is not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d a=b "http://127.0.0.1:$port/metrics")" = 405 ] ||
	fail "POST is not 405"

# orch metrics: the same text through the control socket
o metrics >"$T/cli.txt" || fail "orch metrics failed"
"$PARSE" <"$T/cli.txt" >"$T/cli.samples" || fail "orch metrics does not parse"
want 'orch_task_lease_seconds_count{}' 5.0 cli.samples
[ "$(o --json metrics | jq -r '.text' | head -1)" = "$(head -1 "$T/cli.txt")" ] || fail "orch --json metrics"

# only root and the group: uid 65534 cannot connect to the Unix socket
if runuser -u nobody -- curl -s --max-time 5 --unix-socket "$T/metrics.sock" http://orchd/metrics \
	>"$T/nobody.txt" 2>&1; then
	fail "uid 65534 scraped the Unix socket: $(head -3 "$T/nobody.txt")"
fi

# 40 idle connections (the cap is 16) hold neither the control socket nor orchd's loop
/usr/bin/python3 - "$port" <<'PY' &
import socket, sys, time
conns = []
for _ in range(40):
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
        c.send(b"GET /metrics HTTP/1.1\r\n")  # never ends its head
        conns.append(c)
    except OSError:
        pass
time.sleep(4)
PY
idle=$!
sleep 1
t0=$(date +%s%N)
o status >/dev/null || fail "status failed with idle scrapers"
t1=$(date +%s%N)
[ $(((t1 - t0) / 1000000)) -lt 1000 ] || fail "status took $(((t1 - t0) / 1000000)) ms with idle scrapers"
wait $idle || true
scrape_unix >/dev/null || fail "the Unix socket does not answer after the idle connections"

# a task lost with its supervisor (kill -9, no retries): counted lost, the VM booted again
want 'orch_tasks_lost_total{}' 0.0 cli.samples
pid=$(o --json status | jq -r '.vms[0].pid')
id=$(o dispatch --retries 0 -- sleep 30)
wait_for 10 "task $id running" state_is "$id" running
kill -9 "$pid"
wait_for 20 "task $id lost" state_is "$id" lost
wait_for 20 "the supervisor back" orchd_ready
scrape_unix | "$PARSE" >"$T/lost.samples" || fail "the exposition after a loss does not parse"
want 'orch_tasks_lost_total{}' 1.0 lost.samples
want 'orch_tasks{state="lost"}' 1.0 lost.samples
want 'orch_vm_boot_seconds_count{backend="local"}' 2.0 lost.samples
echo PASS

#!/bin/bash
# Malformed control requests get JSON-RPC errors, and orchd keeps serving the same and
# other clients.
. "$(dirname "$0")/../lib/orchd.sh"
command -v socat >/dev/null || skip "socat is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"

start_orchd
python3 - "$SOCK" <<'PY' || fail "malformed requests"
import json, socket, sys

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rwb", buffering=0)

def ask(raw):
    f.write(raw + b"\n")
    line = f.readline()
    assert line, "connection closed after %r" % raw
    return json.loads(line)

def expect(raw, code, contains=""):
    r = ask(raw)
    assert "error" in r, (raw, r)
    assert r["error"]["code"] == code, (raw, r)
    assert contains in r["error"]["message"], (raw, r)

expect(b"{not json", -32700)
expect(b"[]", -32600)
expect(b'{"jsonrpc":"2.0","id":1}', -32600)
expect(b'{"jsonrpc":"1.0","id":1,"method":"status"}', -32600)
expect(b'{"jsonrpc":"2.0","id":1,"method":"nope"}', -32601)
expect(b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"x":1}}', -32602, "params.x: unknown key")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit"}', -32602, "params.argv")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":[]}}', -32602, "params.argv")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":[1]}}', -32602, "params.argv[0]")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["x"],"slot":99}}', -32602, "params.slot")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["x"],"vm":"nope"}}', -32002, "no VM")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["x"],"env":{"A=B":"c"}}}', -32602, "params.env")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["x"],"cwd":"rel"}}', -32602, "params.cwd")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.submit","params":{"argv":["x"],"priority":"high"}}', -32602, "params.priority")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.get","params":{"id":-1}}', -32602, "params.id")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.get","params":{"id":424242}}', -32002, "no task")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.list","params":{"state":"weird"}}', -32602, "params.state")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.logs","params":{"id":1,"follow":"yes"}}', -32602, "params.follow")
expect(b'{"jsonrpc":"2.0","id":1,"method":"task.get","params":{"id":1,"id":2}}', -32700)
# a line over the limit (2 MiB) is refused, and the connection goes on
f.write(b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}}\n')
r = json.loads(f.readline())
assert r["error"]["code"] in (-32600, -32700), r
r = ask(b'{"jsonrpc":"2.0","id":7,"method":"status"}')
assert r["id"] == 7 and r["result"]["vms"][0]["state"] == "ready", r
# a client that vanishes mid-line does not disturb anything
s2 = socket.socket(socket.AF_UNIX); s2.connect(path); s2.send(b'{"jsonrpc":"2.0","id":1,"met'); s2.close()
PY
# and other clients are served
[ "$(o dispatch --wait -- echo still-serving)" = still-serving ] || fail "orchd stopped serving"
kill -0 "$ORCHD_PID" || fail "orchd died"
echo PASS

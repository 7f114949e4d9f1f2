#!/usr/bin/python3
# A compromised guest on orchd's egress lane, for the local backend: orchd starts it in
# orch-supervisor's place (the config's "supervisor" key). For the VM named "evil" it
# says hello on the control channel (fd 3), answers task.run, and on the egress lane
# (fd 5) sends, in order:
#   frames for connections that do not exist, an open for a slot out of range, 300 opens
#   for a slot without a task (each must get a refusal); then, once a task runs in slot
#   0, an open for an allowed host and credit for it far past the window: a protocol
#   error, after which orchd must close the lane.
# What it saw goes to $ORCH_HOSTILE_DIR/evil.done as one line of JSON. For any other VM it
# execs the real supervisor ($ORCH_HOSTILE_REAL).
import json, os, socket, struct, sys, threading, time

if "--help" in sys.argv:
    print("--llm-connect ADDR --egress-connect ADDR   (hostile stand-in)")
    sys.exit(0)

def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

vm = arg("--cgroup-name", "orch-?")[len("orch-"):]
if vm != "evil":
    real = os.environ["ORCH_HOSTILE_REAL"]
    os.execv(real, [real] + sys.argv[1:])
outdir = os.environ["ORCH_HOSTILE_DIR"]
target = os.environ["ORCH_HOSTILE_TARGET"]  # host:port the task's set allows
seen = {}

ctl = socket.socket(fileno=3)
lane = socket.socket(fileno=5)
task_running = threading.Event()

def ctl_send(m):
    ctl.sendall((json.dumps(m) + "\n").encode())

def ctl_reader():
    buf = b""
    while True:
        d = ctl.recv(65536)
        if not d:
            return
        buf += d
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            m = json.loads(line)
            if m.get("method") == "task.run":
                p = m["params"]
                ctl_send({"jsonrpc": "2.0", "id": m["id"], "result": {
                    "task": p["task"], "slot": p["slot"], "started": True, "unenforced": []}})
                task_running.set()

ctl_send({"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {
    "protocol": 1, "supervisor": "0.1.0", "slots": 2, "boot_id": "evil-boot",
    "capabilities": {}}})
threading.Thread(target=ctl_reader, daemon=True).start()

def hb():
    seq = 0
    while True:
        time.sleep(0.5)
        ctl_send({"jsonrpc": "2.0", "method": "heartbeat", "params": {"seq": seq, "running": 0}})
        seq += 1
threading.Thread(target=hb, daemon=True).start()

def frame(t, conn, payload=b""):
    return struct.pack(">BBHII", t, 0, 0, conn, len(payload)) + payload

rbuf = b""
def read_frame(timeout=10):
    global rbuf
    lane.settimeout(timeout)
    while True:
        if len(rbuf) >= 12:
            t, f, r, conn, n = struct.unpack(">BBHII", rbuf[:12])
            if len(rbuf) >= 12 + n:
                p = rbuf[12:12 + n]
                rbuf = rbuf[12 + n:]
                return t, conn, p
        d = lane.recv(65536)
        if not d:
            return None
        rbuf += d

def opn(slot, host, port, kind="connect"):
    return json.dumps({"slot": slot, "kind": kind, "host": host, "port": port}).encode()

t, conn, p = read_frame()
seen["hello"] = t == 7 and conn == 0 and json.loads(p)["version"] == 1

# 1. frames for connections that never were: ignored
lane.sendall(frame(3, 4242, b"x" * 10) + frame(4, 4243, struct.pack(">I", 1 << 30)) +
             frame(6, 4244, b"bye") + frame(5, 4245))
# 2. a slot out of range, then 300 opens for a slot without a task
lane.sendall(frame(1, 1, opn(63, "a.test", 443)))
refused = 0
t, conn, p = read_frame()
seen["slot_out_of_range"] = t == 2 and conn == 1 and not json.loads(p)["ok"]
lane.sendall(b"".join(frame(1, 2 + i, opn(1, "a.test", 443)) for i in range(300)))
for i in range(300):
    fr = read_frame()
    if fr and fr[0] == 2 and not json.loads(fr[2])["ok"] and json.loads(fr[2])["status"] == 403:
        refused += 1
seen["no_task_refused"] = refused
# 3. a task in slot 0: an allowed tunnel, then data past the window
task_running.wait(60)
host, port = target.rsplit(":", 1)
lane.sendall(frame(1, 1000, opn(0, host, int(port))))
fr = read_frame()
seen["allowed_verdict"] = bool(fr and fr[0] == 2 and json.loads(fr[2])["ok"])
# credit far past the window for it (orchd may never owe more than the window)
lane.sendall(frame(4, 1000, struct.pack(">I", 1 << 30)))
# orchd must close the lane now
closed = False
try:
    while True:
        fr = read_frame(10)
        if fr is None:
            closed = True
            break
except (socket.timeout, OSError):
    pass
seen["lane_closed"] = closed
with open(os.path.join(outdir, "evil.done"), "w") as f:
    f.write(json.dumps(seen) + "\n")
while True:  # stay, heartbeating, until orchd stops us
    time.sleep(1)

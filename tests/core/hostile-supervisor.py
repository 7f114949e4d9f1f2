#!/usr/bin/python3
# A compromised guest for orchd's local backend: orchd starts it in orch-supervisor's
# place (the config's "supervisor" key; no test hook in orchd). For a VM named evil-NAME
# it plays scenario NAME against orchd's guest channels (fd 3, and fd 4 for LLM calls);
# for any other VM it execs the real supervisor ($ORCH_HOSTILE_REAL) with the same
# arguments, so honest VMs run beside the hostile ones in one orchd.
#
# Each scenario writes "$ORCH_HOSTILE_DIR/<vm>.done" (a line of JSON with what it saw)
# when its part is over, then stays connected sending heartbeats, so that the test reads
# orchd's behaviour from the outside (the store, orch result, orch logs).
import base64, json, os, socket, sys, threading, time, uuid

MAX_SEQ = 2**53 - 1

if "--help" in sys.argv:
    print("--llm-connect ADDR   (hostile stand-in)")
    sys.exit(0)

def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

vm = arg("--cgroup-name", "orch-?")[len("orch-"):]
if not vm.startswith("evil-"):
    real = os.environ["ORCH_HOSTILE_REAL"]
    os.execv(real, [real] + sys.argv[1:])
scenario = vm[len("evil-"):]
slots = int(arg("--slots", "1"))
outdir = os.environ.get("ORCH_HOSTILE_DIR", "/tmp")

def log(msg):
    sys.stderr.write("hostile[%s]: %s\n" % (vm, msg))
    sys.stderr.flush()

class Chan:
    """One NDJSON connection: a reader thread answers task.run/task.cancel with {} and
    records everything; send() writes raw bytes or JSON."""
    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.lock = threading.Lock()
        self.runs = []          # task.run params, in arrival order
        self.replies = {}       # id -> message
        self.notes = []         # notifications (llm.chunk / llm.done ...)
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self.reader, daemon=True).start()

    def send(self, m):
        data = m if isinstance(m, (bytes, bytearray)) else (json.dumps(m) + "\n").encode()
        with self.lock:
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                return False

    def reader(self):
        buf = b""
        while True:
            try:
                b = self.sock.recv(1 << 20)
            except OSError:
                b = b""
            if not b:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += b
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    m = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(m, dict):
                    continue
                meth = m.get("method")
                if meth in ("task.run", "task.cancel") and "id" in m:
                    self.send({"jsonrpc": "2.0", "id": m["id"], "result": {}})
                with self.cond:
                    if meth == "task.run":
                        self.runs.append(m["params"])
                    elif meth is None and "id" in m:
                        self.replies[m["id"]] = m
                    elif meth is not None:
                        self.notes.append(m)
                    self.cond.notify_all()

    def wait(self, pred, timeout=60):
        end = time.time() + timeout
        with self.cond:
            while not pred():
                left = end - time.time()
                if left <= 0 or self.closed:
                    return pred()
                self.cond.wait(left)
            return True

ctl = Chan(3)
llm = Chan(4) if "--llm-connect" in sys.argv else None

def hello(running=()):
    ctl.send({"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {
        "protocol": 1, "supervisor": "hostile", "slots": slots,
        "boot_id": uuid.uuid4().hex[:16], "capabilities": {},
        "running": [{"task": t, "slot": s} for t, s in running]}})
    if not ctl.wait(lambda: 1 in ctl.replies, 30):
        log("no hello reply")
        sys.exit(1)
    return ctl.replies[1]

def output(task, seq, data, stream="stdout"):
    return {"jsonrpc": "2.0", "method": "task.output", "params": {
        "task": task, "seq": seq, "stream": stream,
        "data": base64.b64encode(data).decode()}}

def exit_msg(task, rid, code=0, reason=""):
    return {"jsonrpc": "2.0", "id": rid, "method": "task.exit", "params": {
        "task": task, "status": "exited", "exit_code": code, "signal": 0,
        "duration_ms": 1, "rusage": {"utime_ms": 0, "stime_ms": 0, "maxrss_kb": 0},
        "reason": reason}}

def next_run(timeout=60):
    n = len(ctl.runs)
    if not ctl.wait(lambda: len(ctl.runs) > n, timeout):
        log("no task.run")
        sys.exit(1)
    return ctl.runs[n]

def done(**what):
    with open(os.path.join(outdir, vm + ".tmp"), "w") as f:
        json.dump(what, f)
    os.rename(os.path.join(outdir, vm + ".tmp"), os.path.join(outdir, vm + ".done"))
    log("done: %s" % json.dumps(what)[:200])

def heartbeats(forever=True):
    while True:
        if not ctl.send({"jsonrpc": "2.0", "method": "heartbeat",
                         "params": {"seq": hb_seq[0], "running": 0}}):
            sys.exit(0)
        hb_seq[0] += 1
        if not forever:
            return
        time.sleep(0.5)

hb_seq = [0]

def batched(msgs, per=2000):
    """Sends many messages in few writes (a flood is about orchd, not about Python), with
    a heartbeat now and then: a flood that looks alive is the harder case for orchd."""
    buf = []
    for m in msgs:
        buf.append(m)
        if len(buf) == per:
            buf.append((json.dumps({"jsonrpc": "2.0", "method": "heartbeat", "params":
                                    {"seq": hb_seq[0], "running": 1}}) + "\n").encode())
            hb_seq[0] += 1
            ctl.send(b"".join(buf))
            buf = []
    if buf:
        ctl.send(b"".join(buf))

# ---- scenarios ----

def forge():
    # hello claims the other VMs' tasks as running here; then exits and output for ids
    # that are unknown, finished or another VM's, again and again while they run.
    hello([("%d.1" % (i + 1), i) for i in range(slots)])
    rid = 1000
    end = time.time() + float(os.environ.get("ORCH_HOSTILE_SECONDS", "10"))
    rounds = 0
    while time.time() < end:
        for t in range(1, 80):
            for a in (1, 2):
                wid = "%d.%d" % (t, a)
                rid += 1
                ctl.send(exit_msg(wid, rid, code=66))
                ctl.send(output(wid, 0, b"FORGED-OUTPUT\n"))
        rounds += 1
        heartbeats(forever=False)
        time.sleep(0.2)
    done(rounds=rounds)
    heartbeats()

def seq():
    hello()
    run = next_run()
    t = run["task"]
    ctl.send(output(t, 0, b"A"))
    ctl.send(output(t, MAX_SEQ - 1, b"B"))      # a gap: accepted with a warning
    ctl.send(output(t, MAX_SEQ, b"C"))          # the last seq there is
    ctl.send(output(t, MAX_SEQ + 1, b"D"))      # beyond: refused by the schema
    ctl.send(output(t, 2**63 - 1, b"E"))        # INT64_MAX: refused
    ctl.send(output(t, 0, b"F"))                # duplicates: dropped
    ctl.send(output(t, 5, b"G"))
    # a reason that would retitle the operator's terminal and clear the screen
    ctl.send(exit_msg(t, 50, reason="\x1b]0;owned\x07\x1b[2Jdone"))
    ctl.wait(lambda: 50 in ctl.replies)
    done(task=t)
    heartbeats()

def flood():
    hello()
    run = next_run()
    t = run["task"]
    empty = output(t, 0, b"")
    empty_line = (json.dumps(empty) + "\n").encode()
    n_empty = int(os.environ.get("ORCH_HOSTILE_EMPTY", "1000000"))
    batched([empty_line] * n_empty)
    n = int(os.environ.get("ORCH_HOSTILE_TINY", "300000"))
    lines = ((json.dumps(output(t, i, b"o" if i % 2 == 0 else b"e",
                                "stdout" if i % 2 == 0 else "stderr")) + "\n").encode()
             for i in range(n))
    batched(lines)
    ctl.send(exit_msg(t, 51))
    ok = ctl.wait(lambda: 51 in ctl.replies, 120)
    done(task=t, empty=n_empty, tiny=n, acked=ok)
    heartbeats()

def bigout():
    hello()
    run = next_run()
    t = run["task"]
    chunk = b"x" * (64 * 1024)
    total = int(os.environ.get("ORCH_HOSTILE_BIG_MIB", "8")) * 16
    batched(((json.dumps(output(t, i, chunk)) + "\n").encode() for i in range(total)), per=16)
    ctl.send(exit_msg(t, 52))
    ctl.wait(lambda: 52 in ctl.replies, 120)
    done(task=t, chunks=total)
    heartbeats()

def llm_flood():
    hello()
    run = next_run()
    t = run["task"]
    slot = run["slot"]
    if llm is None:
        log("orchd gave no LLM channel")
        sys.exit(1)
    body = json.dumps({"model": "claude-x", "max_tokens": 100, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    b64 = base64.b64encode(body).decode()
    n = int(os.environ.get("ORCH_HOSTILE_LLM", "300"))
    for i in range(n):
        # this slot's task, slots without a task, slots that do not exist
        s = slot if i % 3 == 0 else (slot + 1) % slots if i % 3 == 1 else 9999 + i
        llm.send({"jsonrpc": "2.0", "id": 10 + i, "method": "llm.request", "params": {
            "req": "r%d" % i, "slot": min(s, 63), "method": "POST", "path": "/v1/messages",
            "headers": {"content-type": "application/json",
                        "anthropic-version": "2023-06-01"}, "body": b64}})
    # wait until (nearly) every request has its answer's head, then leave, most
    # likely in the middle of some streams
    llm.wait(lambda: len(llm.replies) >= n - 5, 30)
    replies = dict(llm.replies)
    llm.sock.shutdown(socket.SHUT_RDWR)
    llm.sock.close()
    ctl.send(output(t, 0, b"llm-done\n"))
    ctl.send(exit_msg(t, 53))
    ctl.wait(lambda: 53 in ctl.replies)
    codes = {}
    for m in replies.values():
        k = str(m["error"]["code"]) if "error" in m else str(m["result"].get("status"))
        codes[k] = codes.get(k, 0) + 1
    done(task=t, sent=n, replies=len(replies), codes=codes)
    heartbeats()

def llm_call(slot, req, rid, stream=False, latency=0):
    body = {"model": "claude-x", "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}
    if latency:
        body["metadata"] = {"user_id": "fake:latency=%d" % latency}
    llm.send({"jsonrpc": "2.0", "id": rid, "method": "llm.request", "params": {
        "req": req, "slot": slot, "method": "POST", "path": "/v1/messages",
        "headers": {"content-type": "application/json", "anthropic-version": "2023-06-01"},
        "body": base64.b64encode(json.dumps(body).encode()).decode()}})

def llm_done(req, timeout=30):
    return llm.wait(lambda: any(m.get("method") == "llm.done" and
                                m["params"]["req"] == req for m in llm.notes), timeout)

def spend():
    # the task ends while its LLM answer is still on its way: settled after the exit
    hello()
    run = next_run()
    llm_call(run["slot"], "late", 60, latency=700)
    time.sleep(0.2)
    ctl.send(exit_msg(run["task"], 54))
    ctl.wait(lambda: 54 in ctl.replies)
    ok = llm_done("late")
    done(task=run["task"], answered=ok)
    heartbeats()

def spendlost():
    # spends, then the VM goes away with the task running: it is lost, never "finished"
    hello()
    run = next_run()
    llm_call(run["slot"], "spent", 61)
    ok = llm_done("spent")
    done(task=run["task"], answered=ok)
    time.sleep(0.3)
    os._exit(0)

def storm():
    # say hello and go away at once, every time orchd restarts this VM
    hello()
    path = os.path.join(outdir, vm + ".starts")
    with open(path, "a") as f:
        f.write("%f\n" % time.time())
    sys.exit(3)

def garbage():
    big = b"[" + b"1," * (5 * 1024 * 1024) + b"1]"   # a 10 MiB line: over max_line
    ctl.send(big + b"\n")
    ctl.send(b"this is not json\n")
    ctl.send(b"\xff\xfe\xfd invalid utf-8 \x00 with a NUL\n")
    ctl.send(b"[" * 100000 + b"]" * 100000 + b"\n")                 # deep nesting
    ctl.send(b'{"jsonrpc":"2.0","id":1e999,"method":"hello"}\n')      # huge number
    ctl.send(b'{"jsonrpc":"2.0","id":5,"method":"task.exit","params":{}}\n')  # before hello
    ctl.send(b"[" + b",".join([b'{"jsonrpc":"2.0","id":%d,"method":"nope"}' % i
                               for i in range(2000)]) + b"]\n")     # a big batch
    ctl.send(b'{"jsonrpc":"2.0","id":77,"result":{}}\n')              # unknown reply
    ctl.send(b'{"jsonrpc":"2.0","method":"hello","params":' + b'{"a":' * 3000 + b'1' +
             b'}' * 3000 + b'}\n')
    ctl.send(b"x" * (9 * 1024 * 1024))                               # no newline yet
    ctl.send(b"\n")
    # after all that, the channel must still work: hello and heartbeats
    rep = hello()
    ok = "result" in rep
    # a flood of requests beyond the in-flight bound, never reading the replies is
    # not possible here (the reader thread reads); many requests at once then
    batched(((json.dumps(exit_msg("%d.9" % i, 100000 + i)) + "\n").encode()
             for i in range(20000)))
    done(hello_ok=ok)
    heartbeats()

SCENARIOS = {"forge": forge, "seq": seq, "flood": flood, "bigout": bigout,
             "llm": llm_flood, "storm": storm, "garbage": garbage, "spend": spend,
             "spendlost": spendlost}
if scenario not in SCENARIOS:
    log("unknown scenario %s" % scenario)
    sys.exit(2)
SCENARIOS[scenario]()

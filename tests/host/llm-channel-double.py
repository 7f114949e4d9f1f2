#!/usr/bin/env python3
# A stand-in for orch-supervisor's side of the LLM channel (the real supervisor does not
# take --llm-connect yet): says hello on fd 3; for each task.run it sends one Anthropic
# llm.request on fd 4 for the task's slot, collects llm.chunk until llm.done, reports the
# body as the task's output and ends the task. Tests orchd's side of the channel.
import sys, json, socket, base64, uuid
if "--help" in sys.argv:
    print("--llm-connect fd:N"); sys.exit(0)
s = socket.socket(fileno=3); f = s.makefile('rwb', buffering=0)
l = socket.socket(fileno=4); lf = l.makefile('rwb', buffering=0)
slots = int(sys.argv[sys.argv.index('--slots')+1])
def send(ff, m): ff.write((json.dumps(m)+"\n").encode())
send(f, {"jsonrpc":"2.0","id":1,"method":"hello","params":{"protocol":1,"supervisor":"fake","slots":slots,"boot_id":uuid.uuid4().hex[:16],"capabilities":{},"running":[]}})
for line in f:
    m = json.loads(line)
    if m.get("method") == "task.run":
        p = m["params"]; send(f, {"jsonrpc":"2.0","id":m["id"],"result":{}})
        body = json.dumps({"model":"claude-x","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}).encode()
        send(lf, {"jsonrpc":"2.0","id":7,"method":"llm.request","params":{"req":"r1","slot":p["slot"],"method":"POST","path":"/v1/messages","headers":{"content-type":"application/json","anthropic-version":"2023-06-01"},"body":base64.b64encode(body).decode()}})
        out = b""
        for ll in lf:
            mm = json.loads(ll); sys.stderr.write("LLM: %s\n" % ll[:300])
            if mm.get("method") == "llm.chunk": out += base64.b64decode(mm["params"]["data"])
            if mm.get("method") == "llm.done": break
        send(f, {"jsonrpc":"2.0","method":"task.output","params":{"task":p["task"],"seq":0,"stream":"stdout","data":base64.b64encode(out[:2000]).decode()}})
        send(f, {"jsonrpc":"2.0","id":100,"method":"task.exit","params":{"task":p["task"],"status":"exited","exit_code":0,"signal":0,"duration_ms":1,"output_seq":1,"rusage":{"utime_ms":0,"stime_ms":0,"maxrss_kb":0},"reason":""}})

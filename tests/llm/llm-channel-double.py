#!/usr/bin/env python3
# A stand-in for orch-supervisor's side of the LLM channel: says hello on fd 3; for each
# task.run it sends one Anthropic llm.request on fd 4, reports what came back as the
# task's output and ends the task. Tests orchd's side of the channel. The task's argv[0]
# picks what the guest does:
#   (anything else)   a request for the task's slot; the body from llm.chunk until llm.done
#   idle-slot         a request for another slot (no task runs there): the refusal's
#                     status and body
#   leave-mid-stream  a streamed request; the guest closes its LLM channel right after the
#                     reply head, waits 2 s (the stream ends upstream), ends the task and
#                     exits: orchd restarts it (a reboot mid-stream; the new one connects
#                     again)
import sys, json, socket, base64, uuid, time
if "--help" in sys.argv:
    print("--llm-connect fd:N"); sys.exit(0)
s = socket.socket(fileno=3); f = s.makefile('rwb', buffering=0)
l = socket.socket(fileno=4); lf = l.makefile('rwb', buffering=0)
slots = int(sys.argv[sys.argv.index('--slots')+1])
def send(ff, m): ff.write((json.dumps(m)+"\n").encode())
def request(slot, body):
    send(lf, {"jsonrpc":"2.0","id":7,"method":"llm.request","params":{"req":"r1","slot":slot,"method":"POST","path":"/v1/messages","headers":{"content-type":"application/json","anthropic-version":"2023-06-01"},"body":base64.b64encode(json.dumps(body).encode()).decode()}})
def finish(p, out):
    send(f, {"jsonrpc":"2.0","method":"task.output","params":{"task":p["task"],"seq":0,"stream":"stdout","data":base64.b64encode(out[:2000]).decode()}})
    send(f, {"jsonrpc":"2.0","id":100,"method":"task.exit","params":{"task":p["task"],"status":"exited","exit_code":0,"signal":0,"duration_ms":1,"output_seq":1,"rusage":{"utime_ms":0,"stime_ms":0,"maxrss_kb":0},"reason":""}})
send(f, {"jsonrpc":"2.0","id":1,"method":"hello","params":{"protocol":1,"supervisor":"fake","slots":slots,"boot_id":uuid.uuid4().hex[:16],"capabilities":{},"running":[]}})
for line in f:
    m = json.loads(line)
    if m.get("method") != "task.run":
        continue
    p = m["params"]; send(f, {"jsonrpc":"2.0","id":m["id"],"result":{}})
    mode = p["argv"][0]
    body = {"model":"claude-x","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}
    if mode == "leave-mid-stream":
        body["stream"] = True
        body["metadata"] = {"user_id": "fake:events=20;delay=50"}
        request(p["slot"], body)
        for ll in lf:
            if json.loads(ll).get("id") == 7:
                break
        lf.close(); l.close()
        time.sleep(2)
        finish(p, b"left mid-stream")
        time.sleep(0.2)
        sys.exit(0)
    request((p["slot"] + 1) % slots if mode == "idle-slot" else p["slot"], body)
    out = b""
    for ll in lf:
        mm = json.loads(ll); sys.stderr.write("LLM: %s\n" % ll[:300])
        if mm.get("id") == 7 and "result" in mm: out += b"status %d\n" % mm["result"]["status"]
        if mm.get("method") == "llm.chunk": out += base64.b64decode(mm["params"]["data"])
        if mm.get("method") == "llm.done": break
    finish(p, out)

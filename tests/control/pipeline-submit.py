#!/usr/bin/env python3
# Pipelined task.submit over several connections to orchd's control socket, checking that
# every connection's replies come in the order of its requests.
#
#   pipeline-submit.py batch SOCKET CLIENTS COUNT
#     CLIENTS connections each write COUNT requests in one go (all written before any
#     reply is read): tasks `true cC-I`; on connection 0 request COUNT/2 is an invalid
#     submission (relative cwd) and request COUNT/3 is `status`. Every reply must come in
#     order, the invalid one INVALID_PARAMS naming params.cwd, `status` its result, every
#     other one "queued" with ids increasing. Prints "cC-I TASK_ID" per stored task.
#   pipeline-submit.py stream SOCKET TOTAL WINDOW
#     one connection, TOTAL submissions `true sI`, at most WINDOW in flight; errors are
#     allowed (the store may be away). Replies must come in order. Prints "ok sI TASK_ID"
#     or "err sI CODE MESSAGE" per request.
import json
import socket
import sys


def fail(msg):
    sys.exit("pipeline-submit: " + msg)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s, s.makefile("rb")


def submit(rid, marker, cwd=None):
    params = {"argv": ["true", marker]}
    if cwd:
        params["cwd"] = cwd
    return {"jsonrpc": "2.0", "id": rid, "method": "task.submit", "params": params}


def read_reply(f, want_id):
    line = f.readline()
    if not line:
        fail("orchd closed the connection before the reply to %d" % want_id)
    m = json.loads(line)
    if m.get("id") != want_id:
        fail("reply out of order: expected id %d, got %s" % (want_id, line[:200]))
    return m


def batch(path, clients, count):
    bad, status = count // 2, count // 3
    conns = [connect(path) for _ in range(clients)]
    for c, (s, _) in enumerate(conns):
        out = []
        for i in range(1, count + 1):
            if c == 0 and i == bad:
                req = submit(i, "c%d-%d" % (c, i), cwd="relative/dir")
            elif c == 0 and i == status:
                req = {"jsonrpc": "2.0", "id": i, "method": "status"}
            else:
                req = submit(i, "c%d-%d" % (c, i))
            out.append(json.dumps(req).encode() + b"\n")
        s.sendall(b"".join(out))
    for c, (s, f) in enumerate(conns):
        last = 0
        for i in range(1, count + 1):
            m = read_reply(f, i)
            if c == 0 and i == bad:
                e = m.get("error") or fail("the invalid submission was accepted: %s" % m)
                if e["code"] != -32602 or "params.cwd" not in e["message"]:
                    fail("the invalid submission's error: %s" % e)
                continue
            if c == 0 and i == status:
                if "version" not in m.get("result", {}):
                    fail("status: %s" % m)
                continue
            r = m.get("result") or fail("submission c%d-%d refused: %s" % (c, i, m))
            if r.get("state") != "queued" or r["id"] <= last:
                fail("submission c%d-%d: %s (previous id %d)" % (c, i, r, last))
            last = r["id"]
            print("c%d-%d %d" % (c, i, r["id"]))
        s.close()


def stream(path, total, window):
    s, f = connect(path)
    sent = done = 0
    while done < total:
        out = []
        while sent < total and sent - done < window:
            sent += 1
            out.append(json.dumps(submit(sent, "s%d" % sent)).encode() + b"\n")
        if out:
            s.sendall(b"".join(out))
        done += 1
        m = read_reply(f, done)
        if "result" in m:
            if m["result"].get("state") != "queued":
                fail("s%d: %s" % (done, m))
            print("ok s%d %d" % (done, m["result"]["id"]))
        else:
            print("err s%d %d %s" % (done, m["error"]["code"], m["error"]["message"]))
    s.close()


if len(sys.argv) == 5 and sys.argv[1] == "batch":
    batch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
elif len(sys.argv) == 5 and sys.argv[1] == "stream":
    stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    fail("usage: pipeline-submit.py batch SOCKET CLIENTS COUNT | stream SOCKET TOTAL WINDOW")

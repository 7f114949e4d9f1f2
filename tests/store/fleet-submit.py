#!/usr/bin/env python3
# Submits COUNT tasks `sh -c SCRIPT sh N` (N = 1..COUNT) to orchd's control socket over one
# connection, pipelined (at most 32 in flight), and prints their ids in order.
# usage: fleet-submit.py SOCKET COUNT RETRIES SCRIPT
import json
import socket
import sys

sock_path, count, retries, script = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
f = s.makefile("rwb")
ids = {}
sent = 0
inflight = 0


def read_one():
    global inflight
    line = f.readline()
    if not line:
        sys.exit("fleet-submit: orchd closed the connection")
    m = json.loads(line)
    if "error" in m:
        sys.exit("fleet-submit: task %s: %s" % (m.get("id"), m["error"]["message"]))
    ids[m["id"]] = m["result"]["id"]
    inflight -= 1


while sent < count or inflight:
    while sent < count and inflight < 32:
        sent += 1
        req = {"jsonrpc": "2.0", "id": sent, "method": "task.submit",
               "params": {"argv": ["sh", "-c", script, "sh", str(sent)], "retries": retries}}
        f.write(json.dumps(req).encode() + b"\n")
        inflight += 1
    f.flush()
    read_one()
for i in range(1, count + 1):
    print(ids[i])

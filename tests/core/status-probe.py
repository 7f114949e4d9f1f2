#!/usr/bin/python3
# Asks orchd's control socket for `status` every INTERVAL ms until STOPFILE exists (or
# MAX seconds pass) and prints one line of JSON: how many answers, the p50 / p99 / max
# round trip in ms, and how many calls failed or got no answer within 5 s.
#
#   status-probe.py SOCKET STOPFILE [INTERVAL_MS] [MAX_SECONDS]
import json, os, socket, sys, time

sock_path, stop = sys.argv[1], sys.argv[2]
interval = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.02
limit = float(sys.argv[4]) if len(sys.argv) > 4 else 600

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
s.settimeout(5)
f = s.makefile("rb")
lat, failed, rid = [], 0, 0
end = time.time() + limit
while not os.path.exists(stop) and time.time() < end:
    rid += 1
    t0 = time.monotonic()
    try:
        s.sendall((json.dumps({"jsonrpc": "2.0", "id": rid, "method": "status"}) + "\n").encode())
        line = f.readline()
        m = json.loads(line)
        if m.get("id") != rid or "result" not in m:
            failed += 1
    except (OSError, ValueError):
        failed += 1
        break
    lat.append((time.monotonic() - t0) * 1000)
    time.sleep(interval)
lat.sort()
def pct(p):
    return round(lat[min(len(lat) - 1, int(len(lat) * p))], 2) if lat else None
print(json.dumps({"count": len(lat), "p50": pct(0.50), "p99": pct(0.99),
                  "max": round(lat[-1], 2) if lat else None, "failed": failed}))

#!/usr/bin/env python3
# A smart-HTTP git server for the repository-task tests, on loopback only: `git
# http-backend` for the repositories under ROOT at /git/..., answering 401 unless a
# request carries "Authorization: Basic base64(USER:TOKEN)". Every request's method,
# path and whether it was authorised are appended to LOG (JSON lines).
#
#   git-http-server.py ADDR PORT ROOT USER TOKEN LOG
import base64
import http.server
import json
import os
import socketserver
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import git_cgi  # noqa: E402

addr, port, root, user, token, log = sys.argv[1:7]
want = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        ok = self.headers.get("Authorization") == want
        with lock, open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "auth": ok}) + "\n")
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        git_cgi.serve(self, root, body, remote_user=user, receive_pack=True)

    do_GET = handle_any
    do_POST = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server((addr, int(port)), Handler)
print("ready", flush=True)
srv.serve_forever()

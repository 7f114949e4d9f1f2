#!/usr/bin/env python3
# An HTTPS server for the egress tests of real tools, on loopback only: `git
# http-backend` (smart HTTP) for the repositories under GIT_ROOT at /git/..., and an
# npm registry made of static files under NPM_ROOT (the packument at /<name>, tarballs
# at /<name>/-/<file>). Every request's path and headers are appended to LOG (JSON
# lines), so a test can see what reached it.
#
#   egress-repo-server.py ADDR PORT CERT KEY GIT_ROOT NPM_ROOT LOG
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import git_cgi  # noqa: E402

addr, port, cert, key, git_root, npm_root, log = sys.argv[1:8]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def record(self):
        with lock, open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": dict(self.headers.items())}) + "\n")

    def git(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        git_cgi.serve(self, git_root, self.rfile.read(n) if n else b"")

    def npm(self):
        rel = self.path.split("?")[0].lstrip("/").replace("%2f", "/").replace("%2F", "/")
        if "/-/" not in rel:
            rel = os.path.join(rel, "packument.json")
        p = os.path.realpath(os.path.join(npm_root, rel))
        if not p.startswith(os.path.realpath(npm_root)) or not os.path.isfile(p):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(p, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream" if p.endswith(".tgz")
                         else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.record()
        self.git() if self.path.startswith("/git/") else self.npm()

    def do_POST(self):
        self.record()
        self.git()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, peer = super().get_request()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx.wrap_socket(sock, server_side=True), peer


srv = Server((addr, int(port)), Handler)
print("ready", flush=True)
srv.serve_forever()

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
import subprocess
import sys
import threading

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
        path, _, query = self.path.partition("?")
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path[len("/git"):], QUERY_STRING=query,
                   REQUEST_METHOD=self.command, REMOTE_ADDR="127.0.0.1", REMOTE_USER=user,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)))
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run(["git", "-c", "http.receivepack=true", "http-backend"],
                             input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    do_GET = handle_any
    do_POST = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server((addr, int(port)), Handler)
print("ready", flush=True)
srv.serve_forever()

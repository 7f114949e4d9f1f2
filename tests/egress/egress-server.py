#!/usr/bin/env python3
# Upstreams for the egress tests, on loopback only: a plain HTTP server and an HTTPS
# server (certificate from a test CA the test made), both answering GET /hello with the
# Host they were asked for and recording every accepted connection (one line per
# connection in LOG) and every request's headers (one JSON line in LOG.headers), so a
# test can show that a refused request never reached them.
#
#   egress-server.py HTTP_ADDR HTTP_PORT TLS_ADDR TLS_PORT CERT KEY LOG
import http.server
import json
import socketserver
import ssl
import sys
import threading

http_addr, http_port, tls_addr, tls_port, cert, key, log = sys.argv[1:8]
lock = threading.Lock()


def record(line, suffix=""):
    with lock, open(log + suffix, "a") as f:
        f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _answer(self, body):
        record(json.dumps({"path": self.path, "headers": dict(self.headers.items())}), ".headers")
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/slow/"):
            import time
            time.sleep(float(self.path[6:]))
            self._answer("slept\n")
            return
        if self.path.startswith("/big/"):
            n = int(self.path[5:])
            record(json.dumps({"path": self.path, "headers": dict(self.headers.items())}), ".headers")
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        self._answer("hello from %s%s\n" % (self.headers.get("Host"), self.path))

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer("got %d bytes\n" % len(body))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, tls):
        super().__init__(addr, Handler)
        self.tls = tls

    def get_request(self):
        sock, peer = super().get_request()
        record("%s %s" % ("tls" if self.tls else "http", peer[0]))
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            sock = ctx.wrap_socket(sock, server_side=True)
        return sock, peer


plain = Server((http_addr, int(http_port)), False)
tls = Server((tls_addr, int(tls_port)), True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print("ready", flush=True)
tls.serve_forever()

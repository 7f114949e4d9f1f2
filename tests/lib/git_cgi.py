# `git http-backend` (smart HTTP) as a CGI behind an http.server handler, for the tests'
# git servers (tests/git/git-http-server.py, tests/egress/egress-repo-server.py).
import os
import subprocess


def serve(handler, root, body, remote_user=None, receive_pack=False):
    """Answers handler's request for /git/<repository>/... from the repositories under
    root, body being the request's body (already read)."""
    path, _, query = handler.path.partition("?")
    env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
               PATH_INFO=path[len("/git"):], QUERY_STRING=query,
               REQUEST_METHOD=handler.command, REMOTE_ADDR="127.0.0.1",
               CONTENT_TYPE=handler.headers.get("Content-Type", ""),
               CONTENT_LENGTH=str(len(body)))
    if remote_user:
        env["REMOTE_USER"] = remote_user
    if handler.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = handler.headers["Content-Encoding"]
    if handler.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = handler.headers["Git-Protocol"]
    cmd = ["git"] + (["-c", "http.receivepack=true"] if receive_pack else []) + ["http-backend"]
    out = subprocess.run(cmd, input=body, env=env, capture_output=True).stdout
    head, _, rest = out.partition(b"\r\n\r\n")
    status = 200
    headers = []
    for line in head.split(b"\r\n"):
        k, _, v = line.decode().partition(":")
        if k.lower() == "status":
            status = int(v.strip().split()[0])
        elif k:
            headers.append((k, v.strip()))
    handler.send_response(status)
    for k, v in headers:
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(rest)))
    handler.end_headers()
    handler.wfile.write(rest)

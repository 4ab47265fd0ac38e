#!/usr/bin/env python3
# A server that is hard to stop, for `reqresp lab --server-cmd` tests: a
# line-framed echo server (a thread per client) that IGNORES SIGTERM, and
# that starts a helper (`sleep`) in a session of its own, so the helper is
# outside the server's process group. The lab must kill the server after
# its drain timeout and find the helper in the server host's namespace.
#
# Usage: python3 ignores_sigterm.py [PORT]   (default 2222 on 0.0.0.0)

import signal
import socket
import subprocess
import sys
import threading

signal.signal(signal.SIGTERM, signal.SIG_IGN)
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 2222
# Left behind on purpose: only a sweep of the namespace finds it.
subprocess.Popen(["sleep", "600"], start_new_session=True)


def serve(conn):
    with conn, conn.makefile("rb") as lines:
        for line in lines:
            conn.sendall(b"Echo: " + line)


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", PORT))
server.listen(128)
print(f"listening on 0.0.0.0:{PORT}", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()

#!/usr/bin/env python3
# A deliberately broken server for `reqresp check` tests: a line-framed echo
# server (a thread per client) that keeps reading until a line is whole, but
# then answers only the FIRST line of what it has read and drops the rest.
# Messages sent one at a time work; several messages in one write get one
# answer. `reqresp check` must fail exactly the `merged` case.
#
# Usage: python3 first_message_only.py [PORT]   (prints "listening on 127.0.0.1:PORT")

import socket
import sys
import threading


def serve(conn):
    buf = b""
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
            if b"\n" in buf:
                line = buf.split(b"\n", 1)[0]
                buf = b""  # the bug: the rest of the read is dropped
                conn.sendall(b"Echo: " + line + b"\n")
    except OSError:
        pass
    conn.close()


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
server.listen(128)
print(f"listening on 127.0.0.1:{server.getsockname()[1]}", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()

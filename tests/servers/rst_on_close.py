#!/usr/bin/env python3
# A deliberately broken server for `reqresp check` tests: a correct
# line-framed echo server (a thread per client, answers every whole line)
# that closes each connection with RST instead of FIN: when the client has
# finished sending (recv() returns 0) it sets SO_LINGER to 0 before close().
# `reqresp check` must fail exactly the `close` case.
#
# Usage: python3 rst_on_close.py [PORT]   (prints "listening on 127.0.0.1:PORT")

import socket
import struct
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
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                conn.sendall(b"Echo: " + line + b"\n")
    except OSError:
        pass
    # The bug: linger 0 turns close() into a reset.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
server.listen(128)
print(f"listening on 127.0.0.1:{server.getsockname()[1]}", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()

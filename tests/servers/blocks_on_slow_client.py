#!/usr/bin/env python3
# A deliberately broken server for `reqresp check` tests: one thread with
# select() over every connection, as a careful student might write, but
# once a connection is readable it reads that client's line with blocking
# recv() calls until the newline. A client that has sent half a line
# blocks every other client until it sends the rest. Idle clients (nothing
# sent) do not block anyone. `reqresp check` must fail exactly `concurrent`.
#
# Usage: python3 blocks_on_slow_client.py [PORT]   (prints "listening on 127.0.0.1:PORT")

import select
import socket
import sys

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
server.listen(128)
print(f"listening on 127.0.0.1:{server.getsockname()[1]}", flush=True)
clients = []


def read_line(conn):
    """Blocks until a whole line is in (the bug); None at end of stream."""
    while True:
        # Look at what has arrived without taking it (blocks only while
        # nothing at all has arrived).
        data = conn.recv(1 << 17, socket.MSG_PEEK)
        if not data:
            return None
        newline = data.find(b"\n")
        if newline >= 0:
            return conn.recv(newline + 1)[:-1]
        # Half a line: wait, blocking everyone, until one more byte is in.
        more = conn.recv(len(data) + 1, socket.MSG_PEEK | socket.MSG_WAITALL)
        if len(more) <= len(data):
            return None


while True:
    readable, _, _ = select.select([server] + clients, [], [])
    for sock in readable:
        if sock is server:
            conn, _ = server.accept()
            clients.append(conn)
            continue
        try:
            line = read_line(sock)
            if line is not None:
                sock.sendall(b"Echo: " + line + b"\n")
                continue
        except OSError:
            pass
        clients.remove(sock)
        sock.close()

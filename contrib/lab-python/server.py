#!/usr/bin/env python3
# The original lab's server, kept as the "before" picture.
#
# A plain TCP socket with no framing: it takes whatever one recv(1024)
# returns as one message and answers "Echo: <message>" with a single send().
# That works in the lab only because the client waits for each answer and the
# messages are small. TCP is a byte stream: two messages sent close together
# can arrive in one recv, a long one can arrive split over two, a message over
# 1024 bytes is always cut, and send() may write only part of its buffer.
# Like the original it serves ONE client, then exits.
#
# reqresp speaks this protocol with `--framing raw`:
#   python3 server.py              then   reqresp client --framing raw
#   reqresp server --framing raw   then   python3 client.py
#
# Usage: python3 server.py [PORT [HOST]]   (default 2222 on 0.0.0.0;
#        port 0 picks a free port, printed on the first line)

import socket
import sys

HOST = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 2222

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((HOST, PORT))
server.listen(1)
print(f"Server listening on {HOST}:{server.getsockname()[1]}", flush=True)

conn, addr = server.accept()
print(f"Connected by {addr[0]}:{addr[1]}", flush=True)
while True:
    data = conn.recv(1024)
    if not data:
        break
    message = data.decode(errors="replace")
    print(f"Received: {message}", flush=True)
    conn.send(f"Echo: {message}".encode())

print("Client left, server stops", flush=True)
conn.close()
server.close()

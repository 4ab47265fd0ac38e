#!/usr/bin/env python3
# The original lab's client, kept as the "before" picture.
#
# A plain TCP socket with no framing: for each message one send(), then one
# recv(1024) taken as the whole response. It only works because each request
# waits for its answer and the messages are small: TCP is a byte stream, so a
# response can arrive split over two recv calls (the second half would then be
# read as the next response) and a response over 1024 bytes is always cut.
#
# reqresp speaks this protocol with `--framing raw`:
#   reqresp server --framing raw   then   python3 client.py
#
# Usage: python3 client.py [--host HOST] [--port PORT] [MESSAGE ...]
#        (default 127.0.0.1:2222; in the compose lab --host reqresp-server)

import argparse
import socket

parser = argparse.ArgumentParser(description="The original lab's TCP client.")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=2222)
parser.add_argument("messages", nargs="*",
                    default=["Hello, server!", "How are you?", "Bye"])
args = parser.parse_args()

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((args.host, args.port))
print(f"Connected to {args.host}:{args.port}", flush=True)

for message in args.messages:
    client.send(message.encode())
    print(f"Sent: {message}", flush=True)
    data = client.recv(1024)
    print(f"Received: {data.decode(errors='replace')}", flush=True)

client.close()

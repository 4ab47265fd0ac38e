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
#   HOST defaults to $REQRESP_SERVER, else 127.0.0.1 (the reqresp image sets
#   REQRESP_SERVER=reqresp-server, so in the Docker lab `python client.py`
#   reaches the server container as the original did); PORT to 2222.
#   With messages: sends each, then leaves. Without, like the original: reads
#   a line from the keyboard, sends it, prints the answer, until `exit` or
#   `bye` (not sent) or Ctrl-D. Lines piped into stdin are sent the same way.

import argparse
import os
import socket
import sys

parser = argparse.ArgumentParser(description="The original lab's TCP client.")
parser.add_argument("--host", default=os.environ.get("REQRESP_SERVER", "127.0.0.1"))
parser.add_argument("--port", type=int, default=2222)
parser.add_argument("messages", nargs="*")
args = parser.parse_args()


def typed():
    """Lines from the keyboard (with a prompt) or from a pipe."""
    while True:
        try:
            line = input("Message (exit or bye to stop): " if sys.stdin.isatty() else "")
        except EOFError:
            return
        if line.strip().lower() in ("exit", "bye"):
            return
        if line:
            yield line


client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((args.host, args.port))
print(f"Connected to {args.host}:{args.port}", flush=True)

for message in args.messages or typed():
    client.send(message.encode())
    print(f"Sent: {message}", flush=True)
    data = client.recv(1024)
    print(f"Received: {data.decode(errors='replace')}", flush=True)

client.close()

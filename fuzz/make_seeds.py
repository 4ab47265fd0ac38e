#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (fuzz/seeds/<target>/).

Small edge cases of the container formats and of packet decoding that the
fixtures in tests/fixtures do not cover. Deterministic: running it again
gives byte-identical files. Standard library only.
Usage: python3 fuzz/make_seeds.py

The seeds (and tests/fixtures) are run by an ordinary test on stable,
`fuzz_corpus::` in tests/e2e, through the same harness as the fuzz targets
(fuzz/harness.rs). File names have no .pcap extension: the repository
ignores *.pcap outside tests/fixtures.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_700_000_000


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pcap_header(link=101, snaplen=65535, magic=0xA1B2C3D4, e="<"):
    return struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link)


def record(data, sec=T0, frac=0, caplen=None, orig=None, e="<"):
    caplen = len(data) if caplen is None else caplen
    orig = len(data) if orig is None else orig
    return struct.pack(e + "IIII", sec, frac, caplen, orig) + data


def ipv4(proto, payload, flags_frag=0, src=(10, 0, 0, 2), dst=(10, 0, 0, 1)):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, flags_frag, 64, proto, 0,
                       bytes(src), bytes(dst)) + payload


def tcp(sport, dport, seq, ack, flags, payload=b"", options=b""):
    bits = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[f] for f in flags)
    options += b"\0" * (-len(options) % 4)
    off = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, bits, 65535, 0, 0) + options + payload


def block(btype, body, e="<"):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


SHB = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
IDB_RAW = block(1, struct.pack("<HHI", 101, 0, 65535))


def epb(data, iface=0, ticks=T0 * 1_000_000):
    return block(6, struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
                 + data)


# A short line-framed conversation, raw IPv4.
def conversation():
    c, s = 100, 900
    segs = [
        (True, tcp(40001, 2222, c, 0, "S")),
        (False, tcp(2222, 40001, s, c + 1, "SA")),
        (True, tcp(40001, 2222, c + 1, s + 1, "A")),
        (True, tcp(40001, 2222, c + 1, s + 1, "PA", b"hi\nthere\n")),
        (False, tcp(2222, 40001, s + 1, c + 10, "PA", b"Echo: hi\n")),
        (False, tcp(2222, 40001, s + 10, c + 10, "PA", b"Echo: there\n")),
        (True, tcp(40001, 2222, c + 10, s + 22, "FA")),
        (False, tcp(2222, 40001, s + 22, c + 11, "FA")),
    ]
    out = b""
    for i, (from_client, seg) in enumerate(segs):
        src, dst = ((10, 0, 0, 2), (10, 0, 0, 1)) if from_client else ((10, 0, 0, 1), (10, 0, 0, 2))
        out += record(ipv4(6, seg, src=src, dst=dst), frac=10 * i)
    return pcap_header() + out


reader = {
    "empty": b"",
    "one-byte": b"\xd4",
    "pcap-header-only": pcap_header(),
    "pcap-header-cut": pcap_header()[:20],
    "pcap-be-nano-header-only": pcap_header(magic=0xA1B23C4D, e=">"),
    "pcap-zero-length-record": pcap_header() + record(b""),
    "pcap-caplen-over-origlen": pcap_header() + record(ipv4(6, tcp(1, 2, 0, 0, "S")), orig=10),
    "pcap-caplen-over-snaplen": pcap_header(snaplen=40) + record(ipv4(6, tcp(1, 2, 0, 0, "PA", b"x" * 30))),
    "pcap-unknown-linktype": pcap_header(link=147) + record(b"\x01\x02\x03\x04"),
    "pcap-ipv4-fragment": pcap_header() + record(ipv4(6, tcp(1, 2, 0, 0, "PA", b"frag"), flags_frag=0x2000)),
    "pcap-tcp-options": pcap_header() + record(ipv4(6, tcp(1, 2, 0, 0, "S", options=bytes(
        [2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7])))),
    "pcap-ipv6-unknown-next-header": pcap_header() + record(struct.pack(
        "!IHBB16s16s", 6 << 28, 4, 253, 64, bytes(16), bytes(16)) + b"abcd"),
    "pcap-conversation": conversation(),
    "pcapng-shb-only": SHB,
    "pcapng-epb-without-idb": SHB + epb(ipv4(6, tcp(1, 2, 0, 0, "S"))),
    "pcapng-block-length-zero": SHB + IDB_RAW + struct.pack("<II", 6, 0),
    "pcapng-block-length-odd": SHB + IDB_RAW + struct.pack("<II", 6, 13) + b"\0" * 9,
    "pcapng-one-packet": SHB + IDB_RAW + epb(ipv4(6, tcp(1, 2, 0, 0, "S"))),
}
for name, data in reader.items():
    write("reader", name, data)

# The analyze target reads its first byte as options: bits 0-1 framing
# (auto, line, length, raw), bit 2 small buffer bounds, bit 3 --port 2222,
# bits 4-7 the text width.
for pick, name in [(0, "auto"), (1, "line"), (2, "length"), (3, "raw"), (4, "small-bounds"),
                   (8 | 3, "port-raw"), (0xF0, "wide")]:
    write("analyze", f"conversation-{name}", bytes([pick]) + conversation())
write("analyze", "options-only", b"\x05")
write("analyze", "pcapng-one-packet", b"\x00" + reader["pcapng-one-packet"])

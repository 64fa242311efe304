#!/usr/bin/env python3
"""Independent decoding of captured sable feed datagrams with PyPI `itchfeed` (an ITCH 5.0
parser sable does not own).

Input: a capture file of datagrams, each a 4-byte big-endian length then the UDP payload (a
MoldUDP64 packet). Output (stdout): one JSON object per message block, in capture order:
{"seq": <MoldUDP64 sequence number>, "type": "A", <every field itchfeed decoded, raw>}.
The MoldUDP64 framing (20-byte header, u16 block lengths) is split here; every block goes to
itchfeed's MessageParser, which raises on anything it cannot parse.
"""
import json
import struct
import sys

from itch.parser import MessageParser


def fields(msg):
    out = {}
    for attr in msg.get_attributes():
        if attr.startswith("_") or attr in ("message_format", "message_pack_format", "message_size"):
            continue
        value = getattr(msg, attr)
        if isinstance(value, bytes):
            out[attr] = value.decode("ascii")
        elif isinstance(value, (int, float, str)):
            out[attr] = value
    return out


def main(path):
    parser = MessageParser()
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        (n,) = struct.unpack_from(">I", data, at)
        packet = data[at + 4 : at + 4 + n]
        at += 4 + n
        session, seq, count = struct.unpack_from(">10sQH", packet, 0)
        if count in (0, 0xFFFF):
            continue
        off = 20
        for i in range(count):
            (length,) = struct.unpack_from(">H", packet, off)
            block = packet[off + 2 : off + 2 + length]
            off += 2 + length
            msg = parser.get_message_type(block)
            if msg.message_size != length:
                raise SystemExit(f"seq {seq + i}: itchfeed's {msg.message_type!r} is {msg.message_size} bytes, block is {length}")
            record = fields(msg)
            record["seq"] = seq + i
            record["type"] = block[:1].decode("ascii")
            record["session"] = session.decode("ascii")
            print(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Cross-check sable's SBE codec with an independent implementation: the PyPI `sbe` package
(0.4.x), which reads gateway/schema/sable-sbe.xml itself.

Driven by gateway/tests/sbe_schema.rs; install the package with
gateway/scripts/install-test-deps.sh.

  sbe_crosscheck.py schema SCHEMA
      Prints {templateId: {"name", "blockLength", "fields": [[name, offset, size], ...]}}.
  sbe_crosscheck.py decode SCHEMA DIR
      Decodes every DIR/*.bin (one SOFH frame each) and prints
      {file: {"name", "header", "fields"}}; nulls are null, enums and set choices by name.
  sbe_crosscheck.py encode SCHEMA SPEC.json OUTDIR
      SPEC.json is [{"file", "template", "fields"}, ...] in the decode format; writes each
      message as a SOFH frame to OUTDIR/file.
"""

import json
import os
import struct
import sys

import sbe

SOFH = struct.Struct(">IH")
SBE_LE = 0xEB50


# sbe 0.4.3's Set.encode builds a bitstring from an iterable, which bitstring >= 4.3 no longer
# accepts. Same meaning (bit n set for choice n), without bitstring.
def _set_encode(self, vals):
    vals = set(vals)
    names = {c.name for c in self.choices}
    assert vals <= names, f"{vals} is not a subset of {names}"
    return sum(1 << c.value for c in self.choices if c.name in vals)


sbe.Set.encode = _set_encode

# sbe 0.4.3 cannot encode an absent optional enum (it asks the encoding type for a nullValue
# it does not have). The SBE null of a uint8 enum is 255.
_find_value_by_name = sbe.Enum.find_value_by_name


def _enum_value(self, name):
    if name is None:
        return 255
    return _find_value_by_name(self, name)


sbe.Enum.find_value_by_name = _enum_value


def load(path):
    with open(path) as f:
        return sbe.Schema.parse(f)


def cmd_schema(schema):
    out = {}
    for tid, msg in schema.messages.items():
        pointers = schema.message_wrappers[tid].pointers
        out[tid] = {
            "name": msg.name,
            "blockLength": msg.blockLength,
            "fields": [[f.name, pointers[f.name].offset, pointers[f.name].size] for f in msg.fields],
        }
    return out


def cmd_decode(schema, directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".bin"):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            frame = f.read()
        length, encoding = SOFH.unpack_from(frame)
        if length != len(frame) or encoding != SBE_LE:
            raise SystemExit(f"{name}: bad SOFH length={length} encoding={encoding:#x} size={len(frame)}")
        decoded = schema.decode(frame[SOFH.size:])
        out[name] = {"name": decoded.message_name, "header": decoded.header, "fields": decoded.value}
    return out


def cmd_encode(schema, spec_path, directory):
    with open(spec_path) as f:
        spec = json.load(f)
    for item in spec:
        body = schema.encode(schema.messages[item["template"]], item["fields"])
        with open(os.path.join(directory, item["file"]), "wb") as f:
            f.write(SOFH.pack(SOFH.size + len(body), SBE_LE) + body)
    return {"written": len(spec)}


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    command, schema = argv[1], load(argv[2])
    if command == "schema":
        result = cmd_schema(schema)
    elif command == "decode" and len(argv) == 4:
        result = cmd_decode(schema, argv[3])
    elif command == "encode" and len(argv) == 5:
        result = cmd_encode(schema, argv[3], argv[4])
    else:
        raise SystemExit(__doc__)
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)

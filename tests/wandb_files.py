"""Reading what an offline wandb run wrote (shared by the wandb logging tests)."""

from __future__ import annotations

import struct
from pathlib import Path


def wandb_records(path: Path):
    """The records of a ``run-*.wandb`` file (LevelDB log format: 7-byte file header, 32 KiB blocks of
    ``crc32 | length | type`` chunks), parsed as wandb's protobuf ``Record``."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            raw = chunk if kind == 1 else buf + chunk
            rec = pb.Record()
            rec.ParseFromString(raw)
            yield rec
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 0:
            pos += (block - pos % block) % block

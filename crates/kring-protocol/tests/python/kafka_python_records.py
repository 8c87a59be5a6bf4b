#!/usr/bin/env python3
"""kafka-python's side of kring's record batch interop test.

Driven by crates/kring-protocol/tests/interop_kafka_python.rs:

  kafka_python_records.py read FILE
      Reads the concatenated record batches in FILE with kafka-python's
      MemoryRecords / DefaultRecordBatch, validates every CRC, and prints a
      dump of every batch and record field (format below).

  kafka_python_records.py write FILE
      Writes batches with kafka-python's DefaultRecordBatchBuilder, one or
      more per codec, to FILE, and prints the dump of what it *meant* to
      write (from its inputs, not read back), for kring to compare against.

Dump format, one line per batch and per record, bytes as hex, null as "-":
  batch codec=NAME base_offset=N leader_epoch=N pid=N epoch=N seq=N txn=0|1
        last_offset_delta=N base_ts=N max_ts=N count=N
  record offset=N ts=N key=HEX value=HEX headers=KEYHEX:VALHEX,...

Exit status 3 with a message on stderr when kafka-python or a codec
module is missing.
"""
import sys

INSTALL = ("python3 -m pip install kafka-python==3.0.12 lz4 python-snappy "
           "cramjam zstandard crc32c")
try:
    from kafka.record.default_records import (DefaultRecordBatch,
                                              DefaultRecordBatchBuilder)
    from kafka.record.memory_records import MemoryRecords
    import lz4.frame  # noqa: F401  (kafka-python's lz4 codec)
    import snappy  # noqa: F401  (python-snappy)
    import zstandard  # noqa: F401
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write(f"kafka-python interop needs: {INSTALL}\n(import failed: {e})\n")
    sys.exit(3)

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def hx(b):
    return "-" if b is None else bytes(b).hex()


def batch_line(codec, base_offset, leader_epoch, pid, epoch, seq, txn,
               last_offset_delta, base_ts, max_ts, count):
    return (f"batch codec={codec} base_offset={base_offset} "
            f"leader_epoch={leader_epoch} pid={pid} epoch={epoch} seq={seq} "
            f"txn={int(bool(txn))} last_offset_delta={last_offset_delta} "
            f"base_ts={base_ts} max_ts={max_ts} count={count}")


def record_line(offset, ts, key, value, headers):
    hs = ",".join(f"{k.encode().hex()}:{hx(v)}" for k, v in headers)
    return f"record offset={offset} ts={ts} key={hx(key)} value={hx(value)} headers={hs}"


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    out = []
    records = MemoryRecords(data)
    batches = 0
    while records.has_next():
        batch = records.next_batch()
        if batch is None:
            break
        if not isinstance(batch, DefaultRecordBatch):
            sys.exit(f"batch {batches} is not a v2 record batch")
        if not batch.validate_crc():
            sys.exit(f"batch {batches}: CRC mismatch (stored {batch.crc:#010x})")
        out.append(batch_line(
            CODECS[batch.compression_type], batch.base_offset,
            batch.leader_epoch, batch.producer_id, batch.producer_epoch,
            batch.base_sequence, batch.is_transactional,
            batch.last_offset_delta, batch.first_timestamp,
            batch.max_timestamp, batch.records_count))
        n = 0
        for rec in batch:
            out.append(record_line(rec.offset, rec.timestamp, rec.key,
                                   rec.value, rec.headers))
            n += 1
        if n != batch.records_count:
            sys.exit(f"batch {batches}: {n} records, header says {batch.records_count}")
        batches += 1
    if records.valid_bytes() != len(data):
        sys.exit(f"{len(data) - records.valid_bytes()} trailing bytes not a batch")
    print("\n".join(out))


def records_for(codec, n):
    """Deterministic, compressible records with every field shape."""
    base = 1_700_000_000_000 + 1000 * codec
    recs = []
    for i in range(n):
        ts = base + (i * 7919) % 500 - 100
        key = None if i % 5 == 0 else f"key-{i % 13}".encode()
        value = None if i % 17 == 16 else (f"value {i} of codec {codec} " * (1 + i % 9)).encode()
        headers = [(f"h{j}", None if (i + j) % 3 == 0 else f"hv{i}-{j}".encode())
                   for j in range(i % 4)]
        recs.append((ts, key, value, headers))
    return recs


def write(path):
    # (codec, records, txn, pid, epoch, seq)
    plans = []
    for codec in sorted(CODECS):
        plans.append((codec, records_for(codec, 40), False, -1, -1, -1))
        plans.append((codec, records_for(codec + 10, 3), codec % 2 == 1, 4000 + codec, 3, 100 * codec))
    out, data = [], bytearray()
    for codec, recs, txn, pid, epoch, seq in plans:
        b = DefaultRecordBatchBuilder(magic=2, compression_type=codec,
                                      is_transactional=txn, producer_id=pid,
                                      producer_epoch=epoch, base_sequence=seq,
                                      batch_size=1 << 20)
        for i, (ts, key, value, headers) in enumerate(recs):
            if b.append(i, timestamp=ts, key=key, value=value, headers=headers) is None:
                sys.exit("batch full")
        buf = bytes(b.build())
        written = DefaultRecordBatch(buf).compression_type
        if written != codec:
            sys.exit(f"kafka-python wrote codec {written} instead of {codec} "
                     "(data not compressible enough)")
        data += buf
        base_ts = recs[0][0]
        out.append(batch_line(CODECS[codec], 0, 0, pid, epoch, seq, txn,
                              len(recs) - 1, base_ts,
                              max(r[0] for r in recs), len(recs)))
        for i, (ts, key, value, headers) in enumerate(recs):
            out.append(record_line(i, ts, key, value, headers))
    with open(path, "wb") as f:
        f.write(data)
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("read", "write"):
        sys.exit(__doc__)
    {"read": read, "write": write}[sys.argv[1]](sys.argv[2])

"""Read a topic back with kafka-python, CRC checks on, and print one line
per record: partition, offset, timestamp, key, value, headers (hex; '-' is
null), tab-separated. Used by kring's end-to-end tests as an independent
record-batch decoder."""
import sys
import time

from kafka import KafkaConsumer, TopicPartition

bootstrap, topic, partitions, expected = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

consumer = KafkaConsumer(
    bootstrap_servers=bootstrap,
    enable_auto_commit=False,
    check_crcs=True,
    auto_offset_reset="earliest",
    max_partition_fetch_bytes=16 * 1024 * 1024,
    fetch_max_bytes=64 * 1024 * 1024,
)
tps = [TopicPartition(topic, p) for p in range(partitions)]
consumer.assign(tps)
consumer.seek_to_beginning(*tps)


def h(b):
    return "-" if b is None else b.hex()


seen = 0
out = sys.stdout
deadline = time.monotonic() + 180
while seen < expected:
    if time.monotonic() > deadline:
        sys.exit(f"kafka-python read {seen} of {expected} records")
    for tp, msgs in consumer.poll(timeout_ms=500, max_records=100000).items():
        for m in msgs:
            headers = ",".join(k.encode().hex() + "=" + h(v) for k, v in (m.headers or []))
            out.write(f"{m.partition}\t{m.offset}\t{m.timestamp}\t{h(m.key)}\t{h(m.value)}\t{headers}\n")
            seen += 1
# Anything more is a duplicate.
extra = sum(len(v) for v in consumer.poll(timeout_ms=500).values())
if extra:
    sys.exit(f"kafka-python read {extra} records beyond the {expected} expected")
out.flush()

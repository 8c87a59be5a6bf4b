package dev.kring.kafka;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads partitions {@code 0..partitions} of a topic from the beginning to
 * the end offsets they had at start-up with the Java consumer (CRC checks
 * on, manual assignment, no group), and prints one line per record:
 * partition, offset, timestamp, key, value, headers, tab-separated, bytes in
 * hex and {@code -} for null; headers as {@code hex(key)=hex(value)} joined
 * by commas. kring's end-to-end tests parse these lines.
 *
 * <p>Usage: {@code ReadTopic BOOTSTRAP TOPIC PARTITIONS [TIMEOUT_MS [ISOLATION]]},
 * ISOLATION being {@code read_uncommitted} (the default) or
 * {@code read_committed} (then the end offsets are the last stable ones, and
 * records of aborted transactions are skipped).
 * Exits 2 if the end offsets are not reached within the timeout.
 */
public final class ReadTopic {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private ReadTopic() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: ReadTopic BOOTSTRAP TOPIC PARTITIONS [TIMEOUT_MS]");
            System.exit(64);
        }
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        long timeoutMs = args.length > 3 ? Long.parseLong(args[3]) : 120_000L;
        String isolation = args.length > 4 ? args[4] : "read_uncommitted";

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(16 << 20));
        props.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(64 << 20));
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);

        BufferedWriter out = new BufferedWriter(
                new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 20);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(
                props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> end = new HashMap<>(
                    consumer.endOffsets(tps, Duration.ofMillis(timeoutMs)));
            long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
            StringBuilder line = new StringBuilder();
            while (!done(consumer, end)) {
                if (System.nanoTime() > deadline) {
                    out.flush();
                    System.err.println("ReadTopic: end offsets " + end + " not reached");
                    System.exit(2);
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    line.setLength(0);
                    line.append(r.partition()).append('\t')
                            .append(r.offset()).append('\t')
                            .append(r.timestamp()).append('\t');
                    hex(line, r.key());
                    line.append('\t');
                    hex(line, r.value());
                    line.append('\t');
                    boolean first = true;
                    for (Header h : r.headers()) {
                        if (!first) {
                            line.append(',');
                        }
                        first = false;
                        hex(line, h.key().getBytes(StandardCharsets.UTF_8));
                        line.append('=');
                        hex(line, h.value());
                    }
                    line.append('\n');
                    out.append(line);
                }
            }
        }
        out.flush();
    }

    private static boolean done(KafkaConsumer<?, ?> consumer, Map<TopicPartition, Long> end) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (consumer.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }

    private static void hex(StringBuilder sb, byte[] b) {
        if (b == null) {
            sb.append('-');
            return;
        }
        for (byte x : b) {
            sb.append(HEX[(x >> 4) & 0xf]).append(HEX[x & 0xf]);
        }
    }
}

package kring.perf;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * One measured run of `kring perf`'s workload through the Apache Kafka Java
 * producer, in this JVM, reported as one `kring-perf-run` line on stdout
 * (the format of crates/kring-cli/src/perf/line.rs).
 *
 * <p>It mirrors what kring's and librdkafka's runs do
 * (crates/kring-cli/src/perf/{workload,kring_client,rdkafka_client}.rs):
 * the same pool of record values, the same round-robin over explicit
 * partitions (or, with {@code --keys N}, the same keys in the same order,
 * sent without a partition so the client's default murmur2 partitioner
 * places them), the same sequence of value sizes with {@code --value-sizes},
 * the clock read only at one record in 64 (a latency sample,
 * the stop condition and pacing), one warm-up record per partition flushed
 * before measuring, and the window from the first send to the last delivery
 * result. CPU is the whole process's (every thread: sender, JIT, GC), read
 * from /proc/self/stat at both ends of the window. With {@code --warm-up-ms}
 * the workload also runs that long before the window, unmeasured, so that
 * the window sees the JIT-compiled steady state.
 *
 * <p>Arguments (the orchestrating `kring perf` resolves the workload):
 * {@code --bootstrap B --topic T (--value-size N | --value-sizes S:W,S:W,...)
 * --partitions P,P,... (--records N | --duration-ms D) [--rate R] [--keys N]
 * [--warm-up-ms W] [-X name=value]...}; every -X is a producer property.
 */
public final class JavaPerf {
    /** One record in this many is a latency sample (SendLoop::CLOCK_EVERY). */
    static final long CLOCK_EVERY = 64;
    /** Distinct record values (Payloads::POOL). */
    static final int POOL = 64;
    /** Distinct values per unit of weight in a mixed pool (Payloads::PER_WEIGHT). */
    static final int PER_WEIGHT = 16;
    /** Tag of the result line (RunResult::TAG). */
    static final String TAG = "kring-perf-run";
    /** Clock ticks per second of /proc/self/stat (USER_HZ, 100 on Linux). */
    static final double USER_HZ = 100.0;

    private JavaPerf() {}

    // ---- the workload ---------------------------------------------------

    /** The pool of record values: the same bytes Payloads::mixed makes. */
    static byte[][] payloads(int[] sizes, int[] weights) {
        int[] slots;
        if (sizes.length == 1) {
            slots = new int[POOL];
            Arrays.fill(slots, sizes[0]);
        } else {
            int n = 0;
            for (int w : weights) {
                n += PER_WEIGHT * w;
            }
            slots = new int[n];
            int at = 0;
            for (int i = 0; i < sizes.length; i++) {
                for (int j = 0; j < PER_WEIGHT * weights[i]; j++) {
                    slots[at++] = sizes[i];
                }
            }
        }
        return textValues(slots);
    }

    /** text_values of workload.rs: slot i gets a value of slots[i] bytes. */
    static byte[][] textValues(int[] slots) {
        final String[] words = {
            "kafka", "record", "batch", "partition", "offset", "leader", "broker", "topic",
            "ring", "linger", "acks", "epoch", "sequence", "producer", "value", "header",
            "\"id\":", "\"ts\":", "{", "}", ",", "0", "42", "1700000000",
        };
        long seed = 0x9E3779B97F4A7C15L;
        byte[][] values = new byte[slots.length][];
        for (int i = 0; i < slots.length; i++) {
            int size = slots[i];
            StringBuilder v = new StringBuilder(size + 16);
            while (v.length() < size) {
                seed ^= seed << 13;
                seed ^= seed >>> 7;
                seed ^= seed << 17;
                long r = seed;
                if ((r & 3) == 0) {
                    v.append(Long.toString(r >>> 20));
                } else {
                    v.append(words[(int) ((r >>> 32) % words.length)]);
                }
                v.append(' ');
            }
            // Every character is ASCII: one byte each.
            values[i] = Arrays.copyOf(v.toString().getBytes(StandardCharsets.US_ASCII), size);
        }
        return values;
    }

    /** The keys of a keyed workload (Keys::new): "key-" and 12 digits. */
    static byte[][] keys(int n) {
        byte[][] k = new byte[Math.max(1, n)][];
        for (int i = 0; i < k.length; i++) {
            k[i] = String.format("key-%012d", i).getBytes(StandardCharsets.US_ASCII);
        }
        return k;
    }

    /** The 64-bit mix of record `seq` (workload.rs `mix`: SplitMix64's output function). */
    static long mix(long seq) {
        long z = seq * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Maps the low 32 bits of `h` to 0..n (workload.rs `pick`). */
    static int pick(long h, int n) {
        return (int) (((h & 0xffffffffL) * n) >>> 32);
    }

    /** Whether record `seq` is a latency sample (SendLoop::is_sample). */
    static boolean isSample(long seq) {
        return seq % CLOCK_EVERY == (seq / CLOCK_EVERY) % CLOCK_EVERY;
    }

    // ---- what the process measures about itself -------------------------

    /** utime and stime of this process, in seconds. */
    static double[] cpu() throws IOException {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        // `pid (comm) state ...`: fields after the last ')' start at field 3.
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
        // utime and stime are fields 14 and 15 of the whole line.
        return new double[] {Long.parseLong(f[11]) / USER_HZ, Long.parseLong(f[12]) / USER_HZ};
    }

    /** Peak resident set size of this process in bytes (VmHWM). */
    static long maxRssBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                String kb = line.substring(6).trim().split("\\s+")[0];
                return Long.parseLong(kb) * 1024;
            }
        }
        return 0;
    }

    /** Counters and latency samples the delivery callbacks feed. */
    static final class Stats {
        final long epoch = System.nanoTime();
        final AtomicLong sent = new AtomicLong();
        final AtomicLong acked = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        final AtomicReference<String> firstError = new AtomicReference<>();
        private long[] latencyUs = new long[1024];
        private int samples;

        long nowNs() {
            return System.nanoTime() - epoch;
        }

        void fail(Exception e) {
            failed.incrementAndGet();
            firstError.compareAndSet(null, e.toString());
        }

        synchronized void sample(long sentNs) {
            long us = Math.max(1, (nowNs() - sentNs) / 1000);
            if (samples == latencyUs.length) {
                latencyUs = Arrays.copyOf(latencyUs, samples * 2);
            }
            latencyUs[samples++] = us;
        }

        /** p50, p99, p99.9 and max latency in milliseconds. */
        synchronized double[] latencyMs() {
            if (samples == 0) {
                return new double[4];
            }
            long[] s = Arrays.copyOf(latencyUs, samples);
            Arrays.sort(s);
            double[] out = new double[4];
            double[] q = {0.5, 0.99, 0.999, 1.0};
            for (int i = 0; i < 4; i++) {
                int rank = (int) Math.ceil(q[i] * s.length);
                out[i] = s[Math.min(s.length - 1, Math.max(0, rank - 1))] / 1000.0;
            }
            return out;
        }

        boolean waitAllDone(long timeoutNs) throws InterruptedException {
            long deadline = System.nanoTime() + timeoutNs;
            while (acked.get() + failed.get() < sent.get()) {
                if (System.nanoTime() - deadline > 0) {
                    return false;
                }
                Thread.sleep(1);
            }
            return true;
        }
    }

    // ---- the result line ------------------------------------------------

    /** line.rs's escape: no space and no line break in a value. */
    static String escape(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '\\' -> b.append("\\\\");
                case ' ' -> b.append("\\s");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    static void field(StringBuilder line, String key, Object value) {
        line.append(' ').append(key).append('=').append(escape(String.valueOf(value)));
    }

    // ---- the run --------------------------------------------------------

    static final class Args {
        String bootstrap;
        String topic = "kring-perf";
        int[] sizes = {100};
        int[] weights = {1};
        int keys = 0;
        int[] partitions = {0};
        long records = -1;
        long durationNs = -1;
        long rate = 0;
        long warmUpNs = 0;
        final List<String[]> props = new ArrayList<>();

        static Args parse(String[] argv) {
            Args a = new Args();
            for (int i = 0; i < argv.length; i++) {
                String k = argv[i];
                if (i + 1 >= argv.length) {
                    throw new IllegalArgumentException("missing value after " + k);
                }
                String v = argv[++i];
                switch (k) {
                    case "--bootstrap" -> a.bootstrap = v;
                    case "--topic" -> a.topic = v;
                    case "--value-size" -> {
                        a.sizes = new int[] {Integer.parseInt(v)};
                        a.weights = new int[] {1};
                    }
                    case "--value-sizes" -> {
                        String[] list = v.split(",");
                        a.sizes = new int[list.length];
                        a.weights = new int[list.length];
                        for (int j = 0; j < list.length; j++) {
                            String[] sw = list[j].split(":");
                            a.sizes[j] = Integer.parseInt(sw[0]);
                            a.weights[j] = sw.length > 1 ? Integer.parseInt(sw[1]) : 1;
                        }
                    }
                    case "--keys" -> a.keys = Integer.parseInt(v);
                    case "--partitions" -> a.partitions =
                            Arrays.stream(v.split(",")).mapToInt(Integer::parseInt).toArray();
                    case "--records" -> a.records = Long.parseLong(v);
                    case "--duration-ms" -> a.durationNs = TimeUnit.MILLISECONDS.toNanos(Long.parseLong(v));
                    case "--rate" -> a.rate = Long.parseLong(v);
                    case "--warm-up-ms" -> a.warmUpNs = TimeUnit.MILLISECONDS.toNanos(Long.parseLong(v));
                    case "-X" -> {
                        int eq = v.indexOf('=');
                        if (eq <= 0) {
                            throw new IllegalArgumentException("-X wants name=value, got " + v);
                        }
                        a.props.add(new String[] {v.substring(0, eq), v.substring(eq + 1)});
                    }
                    default -> throw new IllegalArgumentException("unknown argument " + k);
                }
            }
            if (a.bootstrap == null) {
                throw new IllegalArgumentException("--bootstrap is required");
            }
            if ((a.records < 0) == (a.durationNs < 0)) {
                throw new IllegalArgumentException("exactly one of --records and --duration-ms");
            }
            if (a.partitions.length == 0) {
                throw new IllegalArgumentException("--partitions lists no partition");
            }
            return a;
        }
    }

    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = Args.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("kring-perf-java: " + e.getMessage());
            System.exit(2);
            return;
        }
        Properties p = new Properties();
        p.put("bootstrap.servers", a.bootstrap);
        p.put("client.id", "kring-perf-java");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        for (String[] kv : a.props) {
            p.put(kv[0], kv[1]);
        }
        byte[][] values = payloads(a.sizes, a.weights);
        boolean mixed = a.sizes.length > 1;
        byte[][] keys = a.keys > 0 ? keys(a.keys) : null;
        boolean hashed = mixed || keys != null;
        // Partitions boxed once: no Integer allocated per record.
        Integer[] boxed = Arrays.stream(a.partitions).boxed().toArray(Integer[]::new);
        Stats stats = new Stats();
        long flushTimeoutNs = TimeUnit.SECONDS.toNanos(120);

        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            // Warm-up: one record per partition, flushed, so connections and
            // metadata are in place before anything is measured.
            AtomicLong warmDone = new AtomicLong();
            AtomicReference<String> warmError = new AtomicReference<>();
            Callback warm = (md, e) -> {
                if (e != null) {
                    warmError.compareAndSet(null, e.toString());
                }
                warmDone.incrementAndGet();
            };
            for (int part : a.partitions) {
                producer.send(new ProducerRecord<>(a.topic, part, null, values[0]), warm);
            }
            long warmSent = a.partitions.length;
            // Then, if asked, the workload itself for a while, unmeasured:
            // the JIT compiles the send path before the window opens (a
            // JVM's steady state, which is what a long-running producer
            // pays per record).
            long warmStart = System.nanoTime();
            for (long i = 0; System.nanoTime() - warmStart < a.warmUpNs; i++) {
                long h = hashed ? mix(i) : 0;
                byte[] key = keys == null ? null : keys[pick(h >>> 32, keys.length)];
                Integer part = keys == null ? boxed[(int) (i % boxed.length)] : null;
                byte[] value = mixed ? values[pick(h, values.length)] : values[(int) (i % values.length)];
                producer.send(new ProducerRecord<>(a.topic, part, key, value), warm);
                warmSent++;
                if (a.rate > 0 && i % CLOCK_EVERY == 0) {
                    long due = (long) (i * 1e9 / a.rate);
                    long now = System.nanoTime() - warmStart;
                    if (due > now) {
                        TimeUnit.NANOSECONDS.sleep(due - now);
                    }
                }
            }
            producer.flush();
            if (warmDone.get() < warmSent || warmError.get() != null) {
                System.err.println("kring-perf-java: warm-up failed: " + warmError.get());
                System.exit(1);
            }

            // One callback object for every record that is not a sample: no
            // allocation per record beyond what the client itself does.
            Callback counted = (md, e) -> {
                if (e == null) {
                    stats.acked.incrementAndGet();
                } else {
                    stats.fail(e);
                }
            };
            double[] cpu0 = cpu();
            long start = System.nanoTime();
            long startNs = stats.nowNs();
            int nParts = a.partitions.length;
            int partIdx = 0;
            long seq = 0;
            long valueBytes = 0;
            while (true) {
                if (a.records >= 0 && seq >= a.records) {
                    break;
                }
                Callback cb = counted;
                if (isSample(seq)) {
                    long now = System.nanoTime() - start;
                    if (a.rate > 0) {
                        long due = (long) (seq * 1e9 / a.rate);
                        if (due > now) {
                            TimeUnit.NANOSECONDS.sleep(due - now);
                            now = System.nanoTime() - start;
                        }
                    }
                    if (a.durationNs >= 0 && now >= a.durationNs) {
                        break;
                    }
                    long sentNs = startNs + now;
                    cb = (md, e) -> {
                        if (e == null) {
                            stats.acked.incrementAndGet();
                            stats.sample(sentNs);
                        } else {
                            stats.fail(e);
                        }
                    };
                }
                long h = hashed ? mix(seq) : 0;
                byte[] key = null;
                Integer partition = null;
                if (keys != null) {
                    key = keys[pick(h >>> 32, keys.length)];
                } else {
                    partition = boxed[partIdx];
                    if (++partIdx == nParts) {
                        partIdx = 0;
                    }
                }
                byte[] value = mixed ? values[pick(h, values.length)] : values[(int) (seq % values.length)];
                valueBytes += value.length;
                producer.send(new ProducerRecord<>(a.topic, partition, key, value), cb);
                stats.sent.incrementAndGet();
                seq++;
            }
            producer.flush();
            if (!stats.waitAllDone(flushTimeoutNs)) {
                System.err.println("kring-perf-java: delivery results missing after flush");
                System.exit(1);
            }
            long elapsedNs = System.nanoTime() - start;
            double[] cpu1 = cpu();

            double secs = Math.max(elapsedNs / 1e9, 1e-9);
            long acked = stats.acked.get();
            double user = cpu1[0] - cpu0[0];
            double sys = cpu1[1] - cpu0[1];
            double[] lat = stats.latencyMs();
            StringBuilder line = new StringBuilder(TAG);
            field(line, "client", "java");
            field(line, "records", seq);
            field(line, "acked", acked);
            field(line, "failed", stats.failed.get());
            if (stats.firstError.get() != null) {
                field(line, "first_error", stats.firstError.get());
            }
            field(line, "elapsed_s", secs);
            field(line, "msgs_per_s", acked / secs);
            double avgValue = seq == 0 ? 0.0 : valueBytes / (double) seq;
            field(line, "mb_per_s", acked * avgValue / secs / 1e6);
            field(line, "avg_value_bytes", avgValue);
            field(line, "cpu_user_s", user);
            field(line, "cpu_sys_s", sys);
            field(line, "cpu_s_per_m", acked == 0 ? 0.0 : (user + sys) * 1e6 / acked);
            field(line, "p50_ms", lat[0]);
            field(line, "p99_ms", lat[1]);
            field(line, "p999_ms", lat[2]);
            field(line, "max_ms", lat[3]);
            field(line, "max_rss_mb", maxRssBytes() / 1e6);
            System.out.println(line);
            System.out.flush();
        }
    }
}

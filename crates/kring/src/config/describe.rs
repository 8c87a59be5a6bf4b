//! One line per accepted property, for listings such as `kring produce -X
//! list`. Every name in [`PROPERTY_NAMES`](super::PROPERTY_NAMES) has one
//! (a test checks), so the list of names stays the single source.

/// A one-line description of an accepted property (with its default), or
/// `None` for a name kring does not accept.
pub fn property_description(name: &str) -> Option<&'static str> {
    Some(match name {
        "acks" => "0, 1 or all (-1): replicas that must acknowledge a batch (default all)",
        "batch.num.messages" => "librdkafka: records per batch at most (default no cap)",
        "batch.size" => "bytes at which a partition's batch is sealed (default 16384; 0: one record per batch, as in Java)",
        "bootstrap.servers" => "host:port[,host:port...] to fetch metadata from (required)",
        "buffer.memory" => "bytes of records buffered before send blocks (default 33554432)",
        "client.id" => "client id sent with every request (default kring)",
        "compression.codec" => "librdkafka alias of compression.type",
        "compression.gzip.level" => "gzip level, 1 (fastest) to 9 (smallest), -1: deflate's default, 6 (default -1)",
        "compression.level" => "librdkafka: level of the selected codec, -1 (its default) to 12; gzip 0-9, zstd 0-12, lz4 and snappy -1 or 0 (default -1)",
        "compression.lz4.level" => "lz4 level; kring has lz4's fast compressor only, Java's 9, and refuses others (default 9)",
        "compression.zstd.level" => "zstd level, -131072 to 22 (default 3)",
        "compression.type" => "none, gzip, snappy, lz4 or zstd (default none)",
        "debug" => "librdkafka debug contexts; accepted, logging is chosen by the tracing filter (KRING_LOG)",
        "delivery.timeout.ms" => "time a record may take from send to its result (default 120000)",
        "enable.idempotence" => "exactly-once per partition, no duplicates on retry (default true)",
        "linger.ms" => "how long a batch waits for more records, fractions allowed (default 5)",
        "max.block.ms" => "how long send blocks for metadata or buffer memory (default 60000)",
        "max.in.flight.requests.per.connection" => {
            "unacknowledged requests per broker (default 5; at most 5 with idempotence)"
        }
        "max.request.size" => "largest produce request and record, in bytes (default 1048576)",
        "delivery.report.only.error" => "librdkafka: true calls on_delivery for failed records only (default false)",
        "queue.buffering.max.messages" => "librdkafka: 0 only (no count limit); kring bounds its buffer in bytes, see queue.buffering.max.kbytes",
        "metadata.broker.list" => "librdkafka alias of bootstrap.servers",
        "request.required.acks" => "librdkafka alias of acks",
        "message.send.max.retries" => "librdkafka alias of retries",
        "message.max.bytes" => "librdkafka: max.request.size, 1000 to 1000000000",
        "topic.metadata.refresh.interval.ms" => "librdkafka alias of metadata.max.age.ms (-1, no periodic refresh, refused)",
        "socket.nagle.disable" => "librdkafka: true only, kring always sends at once (TCP_NODELAY)",
        "api.version.request" => "librdkafka: true only, kring always asks brokers for their API versions",
        "enable.ssl.certificate.verification" => "librdkafka: true only, kring always verifies broker certificates",
        "message.timeout.ms" => "librdkafka alias of delivery.timeout.ms (0: no timeout)",
        "metadata.max.age.ms" => "metadata is refreshed at least this often (default 300000)",
        "partitioner" => "default (murmur2_random), sticky or round_robin (default default)",
        "partitioner.adaptive.partitioning.enable" => {
            "true: the sticky partitioner prefers partitions with fewer batches queued, so slow brokers get less (default true)"
        }
        "partitioner.ignore.keys" => {
            "true: the default partitioner places keyed records like keyless ones, sticky (default false)"
        }
        "queue.buffering.max.kbytes" => "librdkafka: buffer.memory in KiB",
        "queue.buffering.max.ms" => "librdkafka alias of linger.ms",
        "reconnect.backoff.max.ms" => "upper bound of the reconnect backoff (default 1000)",
        "reconnect.backoff.ms" => "first wait before reconnecting to a broker (default 50)",
        "request.timeout.ms" => "how long to wait for a broker's response (default 30000)",
        "retries" => "retries of a failed batch (default 2147483647, bounded by delivery.timeout.ms)",
        "retry.backoff.max.ms" => "upper bound of the retry backoff (default 1000)",
        "retry.backoff.ms" => "first wait before retrying a batch (default 100)",
        "compression.threads" => "kring: threads compressing the batches the I/O thread seals (lingered, flushed); 0: the I/O thread itself (default 1 with 4+ CPUs, else 0)",
        "io.backend" => "auto (io_uring, else epoll where io_uring is refused), io_uring or epoll (default auto)",
        "sasl.jaas.config" => "Java JAAS line; its username and password are used (PLAIN, SCRAM), tokenauth=true (SCRAM with a delegation token), and OAuthBearerLoginModule's clientId, clientSecret, scope and extension_<key>",
        "sasl.mechanism" => "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (no default; no GSSAPI)",
        "sasl.oauthbearer.token.endpoint.url" => "OAUTHBEARER tokens from this OAuth 2 token endpoint (client_credentials grant), or file:// a token file; refreshed in the background (no default)",
        "sasl.oauthbearer.client.credentials.client.id" => "the token endpoint's client id (no default)",
        "sasl.oauthbearer.client.credentials.client.secret" => "the token endpoint's client secret; never logged or shown (no default)",
        "sasl.oauthbearer.client.id" => "librdkafka alias of sasl.oauthbearer.client.credentials.client.id",
        "sasl.oauthbearer.client.secret" => "librdkafka alias of sasl.oauthbearer.client.credentials.client.secret",
        "https.ca.location" => "librdkafka: PEM file (or directory) of CAs an https:// token endpoint must chain to; probe: the system trust store (default probe)",
        "https.ca.pem" => "librdkafka: the same CAs as PEM text (no default)",
        "sasl.oauthbearer.extensions" => "librdkafka: OAUTHBEARER SASL extensions, key=value,... (KIP-342; Confluent Cloud's logicalCluster, identityPoolId; no default)",
        "sasl.oauthbearer.scope" => "scope the token request asks for (no default)",
        "sasl.oauthbearer.method" => "librdkafka: oidc (a token endpoint) or default (a token provider); kring picks by what is set",
        "sasl.oauthbearer.header.urlencode" => "true: URL-encode the client id and secret in the Basic header, RFC 6749 2.3.1 (default false)",
        "sasl.oauthbearer.jwt.retriever.class" => "Java: JwtBearerJwtRetriever for the jwt-bearer grant (KIP-1139); DefaultJwtRetriever, ClientCredentialsJwtRetriever, FileJwtRetriever: by the endpoint's scheme (default)",
        "sasl.oauthbearer.jwt.validator.class" => "Java: DefaultJwtValidator or ClientJwtValidator (kring checks claims as the latter)",
        "sasl.oauthbearer.jwks.endpoint.url"
        | "sasl.oauthbearer.jwks.endpoint.refresh.ms"
        | "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms"
        | "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms"
        | "sasl.oauthbearer.expected.audience"
        | "sasl.oauthbearer.expected.issuer"
        | "sasl.oauthbearer.allow.unverified.audience"
        | "sasl.oauthbearer.allow.unverified.issuer"
        | "sasl.oauthbearer.clock.skew.seconds" => "Java: the broker's token validation; accepted (type checked) and ignored, as in a Java client",
        "sasl.oauthbearer.assertion.algorithm" => "RS256 or ES256: how a client assertion is signed (default RS256)",
        "sasl.oauthbearer.assertion.claim.aud" => "the aud claim of a signed client assertion (no default)",
        "sasl.oauthbearer.assertion.claim.iss" => "the iss claim of a signed client assertion; set, client_credentials sends an assertion instead of the secret (KIP-1258; no default)",
        "sasl.oauthbearer.assertion.claim.sub" => "the sub claim of a signed client assertion (no default)",
        "sasl.oauthbearer.assertion.claim.exp.seconds" => "a signed assertion expires this long after it is made, 0 to 86400 (default 300)",
        "sasl.oauthbearer.assertion.claim.nbf.seconds" => "a signed assertion is valid from this long before it is made, 0 to 3600 (default 60)",
        "sasl.oauthbearer.assertion.claim.jti.include" => "true: a random jti claim in each signed assertion (default false)",
        "sasl.oauthbearer.assertion.file" => "a ready-made client assertion (JWT), read for each token request; preferred to signing one (no default)",
        "sasl.oauthbearer.assertion.private.key.file" => "PEM PKCS #8 private key (PKCS #1 too for RS256) that signs client assertions (no default)",
        "sasl.oauthbearer.assertion.private.key.passphrase" => "password of an encrypted PKCS #8 assertion key; never shown (no default)",
        "sasl.oauthbearer.assertion.template.file" => "JSON {\"header\": {..}, \"payload\": {..}} merged into signed assertions (no default)",
        "sasl.oauthbearer.sub.claim.name" => "the token claim that names the principal (default sub)",
        "sasl.oauthbearer.scope.claim.name" => "the token claim that holds its scopes, a string or a list of strings when present (default scope)",
        "sasl.login.callback.handler.class" => "Java: OAuthBearerLoginCallbackHandler only (built in: the token endpoint)",
        "sasl.login.refresh.window.factor" => "refresh a token after this share of its lifetime, 0.5 to 1.0 (default 0.8)",
        "sasl.login.refresh.window.jitter" => "random share added to the window factor, 0 to 0.25 (default 0.05)",
        "sasl.login.refresh.min.period.seconds" => "least time between token refreshes, 0 to 900 (default 60)",
        "sasl.login.refresh.buffer.seconds" => "refresh at least this long before a token expires, 0 to 3600 (default 300)",
        "sasl.login.retry.backoff.ms" => "first wait before retrying a failed token fetch (default 100)",
        "sasl.login.retry.backoff.max.ms" => "upper bound of that wait, and how long a fetch keeps retrying (default 10000)",
        "sasl.login.connect.timeout.ms" => "connect timeout of a token request (default 10000)",
        "sasl.login.read.timeout.ms" => "read timeout of a token request (default 30000)",
        "sasl.mechanisms" => "librdkafka alias of sasl.mechanism",
        "sasl.password" => "SASL password (never logged or shown)",
        "sasl.username" => "SASL user name",
        "security.protocol" => "PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL (SSL ones need the tls feature)",
        "socket.connection.setup.timeout.max.ms" => "most the connect timeout grows to over consecutive failed attempts to a broker; not above socket.connection.setup.timeout.ms, every attempt's (default 30000)",
        "metadata.max.idle.ms" => "a topic not sent to for this long is left out of metadata requests until sent to again (default 300000, from 5000)",
        "metadata.recovery.strategy" => "Java: rebootstrap only, which kring does: back to bootstrap.servers when no known broker can be reached (default rebootstrap)",
        "metadata.recovery.rebootstrap.trigger.ms" => "Java: accepted; kring goes back to bootstrap.servers as soon as no known broker can be reached",
        "socket.connection.setup.timeout.ms" => "connect timeout of a broker's first attempt, doubled (±20 % jitter) per consecutive failed one up to socket.connection.setup.timeout.max.ms (default 10000)",
        "ssl.cipher.suites" => "cipher suites offered, in order (IANA names, comma-separated, or OpenSSL names); suites kring does not implement are skipped with a warning (default: all)",
        "ssl.ca.location" => "PEM file (or directory) of CAs to trust (default: the system trust store)",
        "ssl.ca.pem" => "CA certificates as PEM text",
        "ssl.certificate.location" => "client certificate chain, PEM file (mTLS)",
        "ssl.certificate.pem" => "client certificate chain as PEM text (mTLS)",
        "ssl.enabled.protocols" => "TLS versions offered: TLSv1.2, TLSv1.3 or both (default TLSv1.2,TLSv1.3)",
        "ssl.protocol" => "Java: TLS, TLSv1.2 or TLSv1.3, accepted (ssl.enabled.protocols chooses the versions)",
        "ssl.endpoint.identification.algorithm" => "https (default): check the broker's host name; none: skip that check",
        "ssl.key.location" => "client private key, PEM file (an encrypted PKCS #8 key with ssl.key.password)",
        "ssl.key.password" => "password of an encrypted PKCS #8 key (PBES2 with AES-CBC); never shown (no default)",
        "ssl.key.pem" => "client private key as PEM text (never shown)",
        "ssl.keystore.certificate.chain" => "Java PEM alias of ssl.certificate.pem",
        "ssl.keystore.key" => "Java PEM alias of ssl.key.pem",
        "ssl.keystore.location" => "Java PEM keystore: one file with the private key and its chain",
        "ssl.keystore.type" => "PEM or PKCS12, told apart by the file's content (JKS is refused: convert it with keytool)",
        "ssl.truststore.certificates" => "Java PEM alias of ssl.ca.pem",
        "ssl.truststore.location" => "Java: the CA certificates, a PEM or PKCS #12 file (ssl.truststore.password)",
        "ssl.truststore.type" => "PEM or PKCS12, told apart by the file's content (JKS is refused: convert it with keytool)",
        "statistics.interval.ms" => "period of the on_statistics callback (default 0: never)",
        "topic.metadata.propagation.max.ms" => {
            "how long a topic missing from metadata is waited for after first use (default 5000)"
        }
        "client.dns.lookup" => "Java: use_all_dns_ips only, what kring does (every address of a name in turn)",
        "connections.max.idle.ms" => "a broker connection idle this long is closed, and opened again when needed; -1 or 0: never (default 540000)",
        "interceptor.classes" => "Java: empty only (kring has no interceptors)",
        "key.serializer" => "Java: ByteArraySerializer, ByteBufferSerializer or BytesSerializer only (kring takes bytes)",
        "metric.reporters" => "Java: empty only (no JMX; see statistics.interval.ms)",
        "metrics.num.samples" => "Java: accepted, no effect (kring has no Java metrics)",
        "metrics.recording.level" => "Java: INFO, DEBUG or TRACE, accepted, no effect (kring has no Java metrics)",
        "metrics.sample.window.ms" => "Java: accepted, no effect (kring has no Java metrics)",
        "sticky.partitioning.linger.ms" => "librdkafka: refused (kring's sticky partitioner moves on when a batch is full or sent, as Java's)",
        "socket.timeout.ms" => "librdkafka: refused (set request.timeout.ms, kring's one request timeout)",
        "metadata.cluster.check.enable" => "Java (4.4): kring sends brokers no cluster check; true accepted with a warning, false is kring's behaviour",
        "buffer.memory.allocation.strategy" => "Java (4.4): kring charges a batch as its buffer grows, which is incremental; full accepted with a warning",
        "ssl.trustmanager.algorithm" => "Java (JSSE): PKIX only, which is how kring verifies certificates",
        "ssl.keymanager.algorithm" => "Java (JSSE): SunX509 (or PKIX) only; kring presents the one client certificate configured",
        "ssl.provider" => "Java: empty only (kring's TLS is rustls)",
        "security.providers" => "Java: empty only (kring's TLS is rustls)",
        "ssl.engine.factory.class" => "Java: empty only (kring's TLS is rustls)",
        "ssl.secure.random.implementation" => "Java: empty only (kring's TLS is rustls)",
        "ssl.keystore.password" => "password of a PKCS #12 key store, also its key's unless ssl.key.password is set; never shown (no default)",
        "ssl.truststore.password" => "password of a PKCS #12 trust store; never shown (no default)",
        "config.providers" => "Java: accepted empty only (kring loads no config provider classes)",
        "transaction.two.phase.commit.enable" => "Java: false only (kring has no two-phase commit, KIP-939)",
        "enable.metrics.push" => "Java (KIP-714): kring pushes no client metrics; true accepted with a warning, false is kring's behaviour",
        "partitioner.rack.aware" => "Java: false only (kring's partitioner is not rack-aware)",
        "client.rack" => "Java: accepted, no effect (read only by the rack-aware partitioner, which kring has not)",
        "partitioner.availability.timeout.ms" => "with adaptive partitioning: a broker unable to take requests this long gets no keyless records until it does; 0: off (default 0)",
        "partitioner.class" => "Java: RoundRobinPartitioner (round_robin), DefaultPartitioner (default), UniformStickyPartitioner (sticky); others: ProducerBuilder::custom_partitioner",
        "receive.buffer.bytes" => "socket receive buffer (SO_RCVBUF) per broker; -1: the kernel's, which it tunes (default -1; Java's 32768)",
        "send.buffer.bytes" => "socket send buffer (SO_SNDBUF) per broker; -1: the kernel's, which it tunes (default -1; Java's 131072)",
        "socket.keepalive.enable" => "librdkafka: TCP keepalive on broker connections (default true; Java always sets it, librdkafka's default is false)",
        "socket.receive.buffer.bytes" => "librdkafka alias of receive.buffer.bytes, 0 for the system default (default 0)",
        "socket.send.buffer.bytes" => "librdkafka alias of send.buffer.bytes, 0 for the system default (default 0)",
        "transaction.timeout.ms" => "how long the coordinator lets a transaction stay open before aborting it (default 60000)",
        "transactional.id" => "makes the producer transactional: records only between begin_transaction and commit/abort (needs idempotence)",
        "value.serializer" => "Java: ByteArraySerializer, ByteBufferSerializer or BytesSerializer only (kring takes bytes)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{ProducerConfig, PROPERTY_NAMES};
    use super::property_description;

    /// Every accepted name is described (a property added without a
    /// description fails here), and nothing else is.
    #[test]
    fn every_property_has_a_description() {
        for name in PROPERTY_NAMES {
            let d = property_description(name)
                .unwrap_or_else(|| panic!("`{name}` has no description in config/describe.rs"));
            assert!(!d.is_empty() && !d.contains('\n'), "{name}: {d:?}");
        }
        assert_eq!(property_description("no.such.property"), None);
    }

    /// A default a description states is the default: setting the property
    /// to it changes nothing but the mark that it was set.
    #[test]
    fn stated_defaults_are_the_defaults() {
        let shown =
            |c: &ProducerConfig| format!("{c:?}").replace("explicit: true", "explicit: false");
        let default = shown(&ProducerConfig::default());
        let mut checked = 0;
        for name in PROPERTY_NAMES {
            let d = property_description(name).unwrap();
            let Some(at) = d.find("(default ") else {
                continue;
            };
            let stated = d[at + "(default ".len()..]
                .split([')', ';'])
                .next()
                .unwrap();
            if stated.contains(' ') {
                continue; // prose, not a value ("no cap")
            }
            let set = ProducerConfig::default()
                .set(name, stated)
                .unwrap_or_else(|e| panic!("{name}={stated}: {e}"));
            assert_eq!(shown(&set), default, "{name}: stated default {stated}");
            checked += 1;
        }
        assert!(checked >= 34, "{checked}");
    }
}

//! Lies a fault can tell: a response rewritten after the broker built its
//! honest answer, to test that a client survives a hostile or broken
//! broker (absurd partition indexes, impossible offsets, partitions left
//! out or answered out of order, a producer id of -1) or one whose view
//! lags (a stale leader and epoch, a broker's old address).

use kring_protocol::messages::init_producer_id::InitProducerIdResponse;
use kring_protocol::messages::metadata::{MetadataResponse, MetadataResponsePartition};
use kring_protocol::messages::produce::ProduceResponse;

/// A response field to rewrite (see [`FaultAction::Lie`](crate::FaultAction::Lie)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lie {
    /// Metadata: every topic the response describes gets one more
    /// partition entry with this index (led by the first listed broker).
    /// A client must not size anything by it (`i32::MAX`, `1 << 30`, -5).
    ExtraPartitionIndex(i32),
    /// Metadata: every partition entry of every topic the response
    /// describes reports this index instead of its own (`i32::MAX`: a
    /// topic with nothing usable).
    PartitionIndex(i32),
    /// Metadata: every topic the response describes lists only its
    /// partitions with an index below this one, as a broker lagging
    /// behind a partition increase (or serving a topic created again with
    /// fewer partitions) does.
    PartitionsBelow(i32),
    /// Metadata: partition `partition` of every topic the response
    /// describes is reported led by `leader_id` at `leader_epoch`,
    /// whatever the cluster says: the view of a broker whose metadata lags
    /// behind a leader change. A client must ignore a leader older than
    /// the epoch it knows (KIP-320).
    PartitionLeader {
        /// The partition index the lie rewrites.
        partition: i32,
        /// The leader reported.
        leader_id: i32,
        /// The leader epoch reported (-1: none, as before KIP-320).
        leader_epoch: i32,
    },
    /// Metadata: broker `node_id` is advertised at `host:port` instead of
    /// its own address, as after the broker moved (a new host or
    /// `advertised.listeners`). A client must reconnect there.
    BrokerAddress {
        /// The broker whose address is rewritten.
        node_id: i32,
        /// The host advertised.
        host: String,
        /// The port advertised.
        port: i32,
    },
    /// Produce: every partition answered without an error reports this
    /// base offset (`i64::MAX`: the batch's offsets cannot be computed).
    BaseOffset(i64),
    /// Produce: the partition the fault is narrowed to (every partition,
    /// without a filter) is left out of the answer, though the request
    /// was applied — a broker answering fewer partitions than it was
    /// sent.
    OmitPartition,
    /// Produce: each topic's partitions are answered in the reverse of the
    /// order the request listed them (Kafka keeps the request's order; a
    /// client must match entries by topic and partition, not position).
    ReversePartitions,
    /// InitProducerId: an answer without an error gives this producer id
    /// (`-1`: none, which no broker should send with success), its epoch
    /// unchanged.
    ProducerId(i64),
    /// Produce (v10+): every partition answered with an error carries
    /// this KIP-951 `current_leader` hint, whatever the error. A Kafka
    /// broker sets the hint only with NOT_LEADER_OR_FOLLOWER and
    /// FENCED_LEADER_EPOCH, and a client should trust it with no other.
    CurrentLeader {
        /// The hinted leader's node id.
        leader_id: i32,
        /// The hinted leader epoch.
        leader_epoch: i32,
    },
}

/// A lie and the partition its fault was narrowed to (`None`: everything).
type Scoped = (Option<(String, i32)>, Lie);

/// Applies the metadata lies.
pub(crate) fn metadata(resp: &mut MetadataResponse, lies: &[Scoped]) {
    let leader = resp.brokers.first().map_or(-1, |b| b.node_id);
    for (_, lie) in lies {
        if let Lie::BrokerAddress {
            node_id,
            host,
            port,
        } = lie
        {
            for b in resp.brokers.iter_mut().filter(|b| b.node_id == *node_id) {
                b.host.clone_from(host);
                b.port = *port;
            }
        }
    }
    for (scope, lie) in lies {
        let topics = resp.topics.iter_mut().filter(|t| {
            t.error_code == 0
                && scope
                    .as_ref()
                    .is_none_or(|(name, _)| t.name.as_deref() == Some(name))
        });
        for t in topics {
            match *lie {
                Lie::ExtraPartitionIndex(index) => {
                    t.partitions.push(MetadataResponsePartition {
                        partition_index: index,
                        leader_id: leader,
                        replica_nodes: vec![leader],
                        isr_nodes: vec![leader],
                        ..Default::default()
                    });
                }
                Lie::PartitionIndex(index) => {
                    for p in &mut t.partitions {
                        p.partition_index = index;
                    }
                }
                Lie::PartitionsBelow(count) => {
                    t.partitions.retain(|p| p.partition_index < count);
                }
                Lie::PartitionLeader {
                    partition,
                    leader_id,
                    leader_epoch,
                } => {
                    for p in t.partitions.iter_mut() {
                        if p.partition_index == partition {
                            p.leader_id = leader_id;
                            p.leader_epoch = leader_epoch;
                        }
                    }
                }
                Lie::BrokerAddress { .. }
                | Lie::BaseOffset(_)
                | Lie::CurrentLeader { .. }
                | Lie::ProducerId(_)
                | Lie::OmitPartition
                | Lie::ReversePartitions => {}
            }
        }
    }
}

/// Applies the produce lies to a response of `version`.
pub(crate) fn produce(resp: &mut ProduceResponse, version: i16, lies: &[Scoped]) {
    for (scope, lie) in lies {
        for t in &mut resp.responses {
            match lie {
                Lie::ReversePartitions => t.partition_responses.reverse(),
                Lie::OmitPartition => t.partition_responses.retain(|p| {
                    scope
                        .as_ref()
                        .is_some_and(|(name, index)| !(*name == t.name && *index == p.index))
                }),
                _ => {}
            }
            for p in &mut t.partition_responses {
                let in_scope = scope
                    .as_ref()
                    .is_none_or(|(name, index)| *name == t.name && *index == p.index);
                if !in_scope {
                    continue;
                }
                match *lie {
                    Lie::BaseOffset(offset) if p.error_code == 0 => p.base_offset = offset,
                    // The field does not exist before v10.
                    Lie::CurrentLeader {
                        leader_id,
                        leader_epoch,
                    } if p.error_code != 0 && version >= 10 => {
                        p.current_leader.leader_id = leader_id;
                        p.current_leader.leader_epoch = leader_epoch;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Applies the InitProducerId lies (the scope names no partition here).
pub(crate) fn init_producer_id(resp: &mut InitProducerIdResponse, lies: &[Scoped]) {
    for (_, lie) in lies {
        if let Lie::ProducerId(id) = *lie {
            if resp.error_code == 0 {
                resp.producer_id = id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kring_protocol::messages::metadata::{MetadataResponseBroker, MetadataResponseTopic};
    use kring_protocol::messages::produce::{PartitionProduceResponse, TopicProduceResponse};

    #[test]
    fn lies_rewrite_only_what_they_name() {
        let mut m = MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 4,
                ..Default::default()
            }],
            topics: vec![
                MetadataResponseTopic {
                    name: Some("ok".into()),
                    ..Default::default()
                },
                MetadataResponseTopic {
                    name: Some("missing".into()),
                    error_code: 3,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        metadata(
            &mut m,
            &[
                (None, Lie::ExtraPartitionIndex(i32::MAX)),
                (None, Lie::BaseOffset(1)),
            ],
        );
        assert_eq!(m.topics[0].partitions.len(), 1);
        assert_eq!(m.topics[0].partitions[0].partition_index, i32::MAX);
        assert_eq!(m.topics[0].partitions[0].leader_id, 4);
        assert!(m.topics[1].partitions.is_empty());
        // Narrowed to a topic: the others are left alone.
        m.topics.push(MetadataResponseTopic {
            name: Some("other".into()),
            ..Default::default()
        });
        metadata(
            &mut m,
            &[
                (Some(("ok".into(), 0)), Lie::PartitionIndex(-3)),
                (Some(("ok".into(), 0)), Lie::ExtraPartitionIndex(7)),
            ],
        );
        let indexes: Vec<i32> = m.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(indexes, [-3, 7]);
        assert!(m.topics[2].partitions.is_empty());
        metadata(&mut m, &[(None, Lie::PartitionsBelow(0))]);
        let indexes: Vec<i32> = m.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(indexes, [-3], "only the indexes below 0 stay");

        let mut p = ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "t".into(),
                partition_responses: vec![
                    PartitionProduceResponse {
                        index: 0,
                        base_offset: 7,
                        ..Default::default()
                    },
                    PartitionProduceResponse {
                        index: 1,
                        error_code: 6,
                        base_offset: -1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        p.responses[0]
            .partition_responses
            .push(PartitionProduceResponse {
                index: 2,
                base_offset: 9,
                ..Default::default()
            });
        produce(&mut p, 10, &[(None, Lie::BaseOffset(i64::MAX))]);
        produce(&mut p, 10, &[(Some(("t".into(), 2)), Lie::BaseOffset(5))]);
        let offsets: Vec<i64> = p.responses[0]
            .partition_responses
            .iter()
            .map(|r| r.base_offset)
            .collect();
        assert_eq!(offsets, vec![i64::MAX, -1, 5]);
    }

    #[test]
    fn stale_leaders_and_moved_brokers() {
        let partition = |i| MetadataResponsePartition {
            partition_index: i,
            leader_id: 1,
            leader_epoch: 3,
            ..Default::default()
        };
        let mut m = MetadataResponse {
            brokers: vec![
                MetadataResponseBroker {
                    node_id: 1,
                    host: "a".into(),
                    port: 1,
                    ..Default::default()
                },
                MetadataResponseBroker {
                    node_id: 2,
                    host: "b".into(),
                    port: 2,
                    ..Default::default()
                },
            ],
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: vec![partition(0), partition(1)],
                ..Default::default()
            }],
            ..Default::default()
        };
        metadata(
            &mut m,
            &[
                (
                    None,
                    Lie::PartitionLeader {
                        partition: 1,
                        leader_id: 2,
                        leader_epoch: 2,
                    },
                ),
                (
                    None,
                    Lie::BrokerAddress {
                        node_id: 2,
                        host: "moved".into(),
                        port: 9,
                    },
                ),
            ],
        );
        let leaders: Vec<(i32, i32)> = m.topics[0]
            .partitions
            .iter()
            .map(|p| (p.leader_id, p.leader_epoch))
            .collect();
        assert_eq!(leaders, [(1, 3), (2, 2)], "only partition 1 rewritten");
        let brokers: Vec<(&str, i32)> = m.brokers.iter().map(|b| (&*b.host, b.port)).collect();
        assert_eq!(brokers, [("a", 1), ("moved", 9)], "only broker 2 moved");
    }
}

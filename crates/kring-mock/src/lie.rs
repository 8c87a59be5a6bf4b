//! Lies a fault can tell: a response field rewritten after the broker built
//! its honest answer, to test that a client survives a hostile or broken
//! broker (absurd partition indexes, impossible offsets).

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
    /// Produce: every partition answered without an error reports this
    /// base offset (`i64::MAX`: the batch's offsets cannot be computed).
    BaseOffset(i64),
}

/// Applies the metadata lies.
pub(crate) fn metadata(resp: &mut MetadataResponse, lies: &[Lie]) {
    let leader = resp.brokers.first().map_or(-1, |b| b.node_id);
    for lie in lies {
        if let Lie::ExtraPartitionIndex(index) = *lie {
            for t in &mut resp.topics {
                if t.error_code == 0 {
                    t.partitions.push(MetadataResponsePartition {
                        partition_index: index,
                        leader_id: leader,
                        replica_nodes: vec![leader],
                        isr_nodes: vec![leader],
                        ..Default::default()
                    });
                }
            }
        }
    }
}

/// Applies the produce lies.
pub(crate) fn produce(resp: &mut ProduceResponse, lies: &[Lie]) {
    for lie in lies {
        if let Lie::BaseOffset(offset) = *lie {
            for p in resp
                .responses
                .iter_mut()
                .flat_map(|t| t.partition_responses.iter_mut())
                .filter(|p| p.error_code == 0)
            {
                p.base_offset = offset;
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
            &[Lie::ExtraPartitionIndex(i32::MAX), Lie::BaseOffset(1)],
        );
        assert_eq!(m.topics[0].partitions.len(), 1);
        assert_eq!(m.topics[0].partitions[0].partition_index, i32::MAX);
        assert_eq!(m.topics[0].partitions[0].leader_id, 4);
        assert!(m.topics[1].partitions.is_empty());

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
        produce(&mut p, &[Lie::BaseOffset(i64::MAX)]);
        let offsets: Vec<i64> = p.responses[0]
            .partition_responses
            .iter()
            .map(|r| r.base_offset)
            .collect();
        assert_eq!(offsets, vec![i64::MAX, -1]);
    }
}

//! The topics and partitions the core knows, by id, and the set of
//! partitions with an open batch.
//!
//! Why its own owner: a topic's id is its index here and in the shared
//! topic table (`crate::topics`), and a [`PartKey`] is `(topic id,
//! partition)`, so the table's *shape* must only ever grow in the shared
//! table's order. **Invariants:** topics are only appended, in id order,
//! from the shared table ([`PartTable::extend_to`]), and the name index
//! always names the topic at that id; the open set holds each partition at
//! most once, and a partition's [`OpenPos`] is its position in it (flush
//! and close seal exactly the partitions in the set; the linger queue is
//! compacted against its size). The fields and `OpenPos` are private to
//! this module.
//!
//! The table derefs to its topics as a slice: what a topic and its
//! partitions hold (leaders, queues, timers, counters) is the rest of the
//! core's to change; which topics exist, their names and the open set are
//! this module's.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::topics::TopicMap;

use super::partition::TopicCore;
use super::PartKey;

/// A partition's position in the open set, if it is in it. Only this
/// module reads or sets it.
#[derive(Debug, Default)]
pub(crate) struct OpenPos(Option<usize>);

/// Topics by id, their name index and the open set.
#[derive(Debug, Default)]
pub(crate) struct PartTable {
    topics: Vec<TopicCore>,
    ids: HashMap<Arc<str>, u32>,
    /// Partitions whose open batch the core knows of (for flush/close).
    open_parts: Vec<PartKey>,
}

impl PartTable {
    /// Adds the topics the shared table `map` registered, up to id `id`.
    pub(crate) fn extend_to(&mut self, id: u32, map: &TopicMap) {
        while self.topics.len() <= id as usize {
            let i = self.topics.len();
            let Some(st) = map.by_id.get(i) else { break };
            self.ids.insert(st.name.clone(), i as u32);
            self.topics.push(TopicCore {
                name: st.name.clone(),
                partitions: Vec::new(),
                count: 0,
                status: st.status,
                wanted_at: None,
                first_wanted: None,
                request_mark: 0,
                last_used: None,
                idle: false,
                topic_id: [0; 16],
            });
        }
    }

    /// The id of topic `name`, if known.
    pub(crate) fn id_of(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Adds `pk` to the open set (once).
    pub(crate) fn mark_open(&mut self, pk: PartKey) {
        let p = &mut self.topics[pk.0 as usize].partitions[pk.1 as usize];
        if p.open_pos.0.is_none() {
            p.open_pos = OpenPos(Some(self.open_parts.len()));
            self.open_parts.push(pk);
        }
    }

    /// Takes `pk` out of the open set, if it is there.
    pub(crate) fn unmark_open(&mut self, pk: PartKey) {
        let p = &mut self.topics[pk.0 as usize].partitions[pk.1 as usize];
        if let Some(pos) = p.open_pos.0.take() {
            let last = self.open_parts.len() - 1;
            self.open_parts.swap_remove(pos);
            if pos < last {
                let moved = self.open_parts[pos];
                self.topics[moved.0 as usize].partitions[moved.1 as usize].open_pos =
                    OpenPos(Some(pos));
            }
        }
    }

    /// The partition added to the open set last.
    pub(crate) fn last_open(&self) -> Option<PartKey> {
        self.open_parts.last().copied()
    }

    /// Partitions in the open set.
    pub(crate) fn open_len(&self) -> usize {
        self.open_parts.len()
    }
}

impl Deref for PartTable {
    type Target = [TopicCore];
    fn deref(&self) -> &[TopicCore] {
        &self.topics
    }
}

impl DerefMut for PartTable {
    fn deref_mut(&mut self) -> &mut [TopicCore] {
        &mut self.topics
    }
}

impl<'a> IntoIterator for &'a PartTable {
    type Item = &'a TopicCore;
    type IntoIter = std::slice::Iter<'a, TopicCore>;
    fn into_iter(self) -> Self::IntoIter {
        self.topics.iter()
    }
}

impl<'a> IntoIterator for &'a mut PartTable {
    type Item = &'a mut TopicCore;
    type IntoIter = std::slice::IterMut<'a, TopicCore>;
    fn into_iter(self) -> Self::IntoIter {
        self.topics.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::partition::PartCore;
    use crate::topics::{PartitionSlot, TopicState, TopicStatus};

    fn table(topics: &[(&str, u32)]) -> (PartTable, TopicMap) {
        let mut map = TopicMap {
            by_name: HashMap::new(),
            by_id: Vec::new(),
        };
        for (i, &(name, _)) in topics.iter().enumerate() {
            let st = Arc::new(TopicState {
                id: i as u32,
                had: 0,
                name: Arc::from(name),
                partitions: Arc::from(Vec::new()),
                available: Arc::from(Vec::new()),
                status: TopicStatus::Pending { last_error: None },
            });
            map.by_name.insert(st.name.clone(), st.clone());
            map.by_id.push(st);
        }
        let mut t = PartTable::default();
        t.extend_to(topics.len() as u32 - 1, &map);
        for (i, &(_, parts)) in topics.iter().enumerate() {
            for _ in 0..parts {
                t[i].partitions
                    .push(PartCore::new(Arc::new(PartitionSlot::default())));
            }
        }
        (t, map)
    }

    #[test]
    fn topics_are_appended_in_id_order_with_their_names() {
        let (mut t, map) = table(&[("a", 0), ("b", 0)]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.id_of("b"), Some(1));
        t.extend_to(5, &map); // the shared table has no more: stops
        assert_eq!(t.len(), 2);
        assert_eq!(t.id_of("c"), None);
    }

    #[test]
    fn the_open_set_holds_each_partition_once() {
        let (mut t, _) = table(&[("a", 3)]);
        t.mark_open((0, 0));
        t.mark_open((0, 1));
        t.mark_open((0, 0));
        t.mark_open((0, 2));
        assert_eq!(t.open_len(), 3);
        t.unmark_open((0, 0)); // the last one moves into its place
        t.unmark_open((0, 0));
        assert_eq!(t.open_len(), 2);
        t.unmark_open((0, 2));
        assert_eq!(t.last_open(), Some((0, 1)));
        t.unmark_open((0, 1));
        assert_eq!(t.last_open(), None);
    }
}

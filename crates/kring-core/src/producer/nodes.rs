//! The broker nodes the core knows of and the work list: nodes whose
//! ready queue may be drainable now.
//!
//! **Invariant:** a node is on the work list at most once, and its
//! `in_work` flag says whether it is — both change only here
//! ([`Nodes::add_work`], [`Nodes::pop_work`], [`Nodes::clear_work`]), so
//! a sender cycle never drains a node twice and never skips one that was
//! asked for. Nodes are only added (from metadata and KIP-951 leader
//! hints), never removed, so a `Target::Node` and a partition's leader id
//! keep resolving. The fields are private to this module.

use std::collections::{HashMap, VecDeque};
use std::ops::Index;

use super::conn::{ConnId, Reconnect};
use super::stats::BrokerCounters;
use super::{IdHash, PartKey};

/// A broker node.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) addr: String,
    pub(crate) conn: Option<ConnId>,
    /// Ready partitions led by this node, each at most once.
    pub(crate) ready: VecDeque<PartKey>,
    /// On the work list (see the module invariant).
    in_work: bool,
    pub(crate) reconnect: Reconnect,
    /// Statistics counters, kept across connections.
    pub(crate) stats: BrokerCounters,
    /// Whether it takes requests (`stall.rs`).
    pub(crate) stall: super::stall::NodeStall,
}

impl Node {
    fn new(addr: String) -> Self {
        Node {
            addr,
            conn: None,
            ready: Default::default(),
            in_work: false,
            reconnect: Default::default(),
            stats: Default::default(),
            stall: Default::default(),
        }
    }
}

/// Known broker nodes and the work list.
#[derive(Debug, Default)]
pub(crate) struct Nodes {
    map: HashMap<i32, Node, IdHash>,
    /// Nodes whose ready queue may be drainable.
    work: VecDeque<i32>,
}

impl Nodes {
    pub(crate) fn get(&self, n: &i32) -> Option<&Node> {
        self.map.get(n)
    }

    pub(crate) fn get_mut(&mut self, n: &i32) -> Option<&mut Node> {
        self.map.get_mut(n)
    }

    pub(crate) fn contains_key(&self, n: &i32) -> bool {
        self.map.contains_key(n)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &i32> {
        self.map.keys()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&i32, &Node)> {
        self.map.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds node `n` at `addr` unless known; returns it.
    pub(crate) fn add(&mut self, n: i32, addr: String) -> &mut Node {
        self.map.entry(n).or_insert_with(|| Node::new(addr))
    }

    /// Puts `n` on the work list (once). Unknown nodes are ignored.
    pub(crate) fn add_work(&mut self, n: i32) {
        let Some(node) = self.map.get_mut(&n) else {
            return;
        };
        if !node.in_work {
            node.in_work = true;
            self.work.push_back(n);
        }
    }

    /// Takes the next node off the work list.
    /// Appends `pk` to node `n`'s ready queue and puts `n` on the work
    /// list (once), with one look-up of `n`. False if `n` is unknown.
    pub(crate) fn push_ready(&mut self, n: i32, pk: PartKey) -> bool {
        let Some(node) = self.map.get_mut(&n) else {
            return false;
        };
        node.ready.push_back(pk);
        if !node.in_work {
            node.in_work = true;
            self.work.push_back(n);
        }
        true
    }

    pub(crate) fn pop_work(&mut self) -> Option<i32> {
        while let Some(n) = self.work.pop_front() {
            if let Some(node) = self.map.get_mut(&n) {
                node.in_work = false;
                return Some(n);
            }
        }
        None
    }

    /// Empties the work list (the core finished).
    pub(crate) fn clear_work(&mut self) {
        self.work.clear();
    }
}

impl Index<&i32> for Nodes {
    type Output = Node;
    fn index(&self, n: &i32) -> &Node {
        &self.map[n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_on_the_work_list_at_most_once() {
        let mut nodes = Nodes::default();
        nodes.add(1, "a:1".into());
        nodes.add(2, "b:2".into());
        nodes.add_work(1);
        nodes.add_work(2);
        nodes.add_work(1);
        nodes.add_work(7); // unknown: ignored
        assert_eq!(nodes.pop_work(), Some(1));
        nodes.add_work(1); // off the list again: may rejoin
        assert_eq!(nodes.pop_work(), Some(2));
        assert_eq!(nodes.pop_work(), Some(1));
        assert_eq!(nodes.pop_work(), None);
    }

    #[test]
    fn adding_a_known_node_keeps_it() {
        let mut nodes = Nodes::default();
        nodes.add(1, "a:1".into()).ready.push_back((0, 0));
        nodes.add(1, "other:1".into());
        assert_eq!(nodes[&1].addr, "a:1");
        assert_eq!(nodes[&1].ready.len(), 1);
    }
}

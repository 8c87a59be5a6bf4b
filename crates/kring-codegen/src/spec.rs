//! kring's distilled message spec: the subset of Apache Kafka's JSON message
//! spec that decides the wire format, and nothing else (no prose, no entity
//! types, no map keys). `protocol-specs/*.json` holds these; `distill` writes
//! them and `generate` reads them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One message (request, response or header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Spec {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: SpecKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api_key: Option<i16>,
    pub(crate) valid_versions: String,
    pub(crate) flexible_versions: String,
    pub(crate) fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) common_structs: Vec<CommonStruct>,
}

/// What a spec describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SpecKind {
    Request,
    Response,
    Header,
}

/// A field; struct-typed fields carry their struct's fields inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Field {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) versions: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nullable_versions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) flexible_versions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tag: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tagged_versions: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) ignorable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) fields: Vec<Field>,
}

/// A struct shared by several fields of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CommonStruct {
    pub(crate) name: String,
    pub(crate) versions: String,
    pub(crate) fields: Vec<Field>,
}

/// An inclusive version range; `None` is the empty range ("none").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions(pub Option<(i16, i16)>);

impl Versions {
    /// No version.
    pub(crate) const NONE: Versions = Versions(None);

    /// Parses Kafka's version syntax: `none`, `N`, `N+`, `N-M`.
    pub(crate) fn parse(s: &str) -> Result<Versions, String> {
        let s = s.trim();
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|_| format!("bad version number {t:?} in {s:?}"))
        };
        if s == "none" {
            return Ok(Versions::NONE);
        }
        let range = if let Some(lo) = s.strip_suffix('+') {
            (num(lo)?, i16::MAX)
        } else if let Some((lo, hi)) = s.split_once('-') {
            (num(lo)?, num(hi)?)
        } else {
            let v = num(s)?;
            (v, v)
        };
        if range.0 < 0 || range.0 > range.1 {
            return Err(format!("bad version range {s:?}"));
        }
        Ok(Versions(Some(range)))
    }

    /// The overlap of two ranges.
    pub(crate) fn intersect(self, other: Versions) -> Versions {
        match (self.0, other.0) {
            (Some((a, b)), Some((c, d))) if a.max(c) <= b.min(d) => {
                Versions(Some((a.max(c), b.min(d))))
            }
            _ => Versions::NONE,
        }
    }

    pub(crate) fn contains(self, v: i16) -> bool {
        self.0.is_some_and(|(lo, hi)| lo <= v && v <= hi)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0.is_none()
    }

    /// Every version in the range (empty for none).
    pub(crate) fn iter(self) -> impl Iterator<Item = i16> {
        let (lo, hi) = self.0.unwrap_or((1, 0));
        lo..=hi
    }

    /// The lowest version, if any.
    pub(crate) fn lowest(self) -> Option<i16> {
        self.0.map(|(lo, _)| lo)
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => write!(f, "none"),
            Some((lo, i16::MAX)) => write!(f, "{lo}+"),
            Some((lo, hi)) if lo == hi => write!(f, "{lo}"),
            Some((lo, hi)) => write!(f, "{lo}-{hi}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_version_syntax() {
        assert_eq!(Versions::parse("none").unwrap(), Versions::NONE);
        assert_eq!(
            Versions::parse("3+").unwrap(),
            Versions(Some((3, i16::MAX)))
        );
        assert_eq!(Versions::parse("8-10").unwrap(), Versions(Some((8, 10))));
        assert_eq!(Versions::parse("0").unwrap(), Versions(Some((0, 0))));
        assert!(Versions::parse("5-3").is_err());
        assert!(Versions::parse("x+").is_err());
        assert_eq!(Versions::parse("3+").unwrap().to_string(), "3+");
    }

    #[test]
    fn intersects() {
        let a = Versions::parse("3+").unwrap();
        let b = Versions::parse("0-4").unwrap();
        assert_eq!(a.intersect(b), Versions(Some((3, 4))));
        assert!(Versions::parse("0-2").unwrap().intersect(a).is_empty());
        assert!(!a.contains(2) && a.contains(3) && a.contains(100));
    }
}

//! The one-line `key=value` format in which a `kring perf --client X
//! --result-line` child process reports its result to the orchestrating
//! parent (and in which `kring perf matrix` logs every run).
//!
//! Why not JSON: serde/serde_json are reserved for the code generator, and
//! the parent reads back exactly the structs the child wrote, so a format
//! with one rule is enough:
//!
//! - a line is a tag (which struct it holds) followed by fields, all
//!   separated by single spaces: `kring-perf-run client=kring records=10 …`;
//! - a field is `key=value`, split at the first `=`; keys are
//!   `[a-z0-9_]+`; a key may repeat only where the struct holds a list;
//! - values are escaped so that they hold no space and no line break:
//!   `\\` for a backslash, `\s` for a space, `\n`, `\r`, `\t`;
//! - numbers are written with Rust's `Display`, which for `f64` is the
//!   shortest text that parses back to the same value, so a round trip is
//!   exact; an absent optional value is an absent field.
//!
//! Reading is strict: an unknown, repeated or missing field, a value that
//! does not parse, or a bad escape is a [`LineError`] naming the field, so a
//! child that printed something else fails the run with a clear message.

use std::fmt::Display;
use std::str::FromStr;

/// Why a result line cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// No line of the output starts with the expected tag.
    #[error("no `{tag}` result line in the output (last line: {last:?})")]
    Missing {
        /// The tag looked for.
        tag: &'static str,
        /// The last non-empty line of the output, for the message.
        last: String,
    },
    /// A field is not of the form `key=value`.
    #[error("`{0}` is not a key=value field")]
    NotAField(String),
    /// A field the struct does not have.
    #[error("unknown field `{0}`")]
    Unknown(String),
    /// A field that may appear once appears again.
    #[error("field `{0}` appears more than once")]
    Repeated(String),
    /// A required field is absent.
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    /// A value that does not parse as its field's type.
    #[error("field `{key}`: {value:?} is not {expected}")]
    BadValue {
        /// The field.
        key: String,
        /// The value as written (unescaped).
        value: String,
        /// What the field holds.
        expected: &'static str,
    },
    /// A backslash not followed by one of `\ s n r t`.
    #[error("field `{key}`: bad escape in {raw:?}")]
    BadEscape {
        /// The field.
        key: String,
        /// The value as written (escaped).
        raw: String,
    },
}

/// Escapes `s` so that it contains no space and no line break.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' => out.push_str("\\s"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`]; `None` on a bad escape.
pub fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            's' => ' ',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            _ => return None,
        });
    }
    Some(out)
}

/// Builds one line: the tag, then fields in the order pushed.
#[derive(Debug)]
pub struct LineWriter {
    line: String,
}

impl LineWriter {
    /// A line holding a `tag` struct.
    pub fn new(tag: &str) -> Self {
        LineWriter {
            line: tag.to_string(),
        }
    }

    /// Adds `key=value` (the value's `Display`, escaped).
    pub fn field(&mut self, key: &str, value: impl Display) -> &mut Self {
        debug_assert!(valid_key(key), "bad key {key:?}");
        self.line.push(' ');
        self.line.push_str(key);
        self.line.push('=');
        self.line.push_str(&escape(&value.to_string()));
        self
    }

    /// Adds `key=value` if `value` is `Some`.
    pub fn opt(&mut self, key: &str, value: Option<impl Display>) -> &mut Self {
        if let Some(v) = value {
            self.field(key, v);
        }
        self
    }

    /// The finished line (no newline).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.line)
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The fields of one line, taken out one by one; [`Fields::finish`]
/// rejects any left over.
#[derive(Debug)]
pub struct Fields {
    /// `(key, unescaped value)`, `None` once taken.
    fields: Vec<Option<(String, String)>>,
}

impl Fields {
    /// Splits `line` (which must start with `tag` and a space, or be just
    /// the tag) into fields.
    pub fn parse(tag: &'static str, line: &str) -> Result<Fields, LineError> {
        let line = line.trim_end_matches(['\n', '\r']);
        let rest = match line.strip_prefix(tag) {
            Some("") => "",
            Some(r) if r.starts_with(' ') => &r[1..],
            _ => {
                return Err(LineError::Missing {
                    tag,
                    last: line.to_string(),
                })
            }
        };
        let mut fields = Vec::new();
        for f in rest.split(' ').filter(|f| !f.is_empty()) {
            let Some((k, raw)) = f.split_once('=') else {
                return Err(LineError::NotAField(f.to_string()));
            };
            if !valid_key(k) {
                return Err(LineError::NotAField(f.to_string()));
            }
            let v = unescape(raw).ok_or_else(|| LineError::BadEscape {
                key: k.to_string(),
                raw: raw.to_string(),
            })?;
            fields.push(Some((k.to_string(), v)));
        }
        Ok(Fields { fields })
    }

    /// Finds the last line of `output` that starts with `tag` and splits
    /// it (other lines, e.g. log output, are skipped).
    pub fn find(tag: &'static str, output: &str) -> Result<Fields, LineError> {
        let line = output
            .lines()
            .rev()
            .find(|l| *l == tag || l.starts_with(&format!("{tag} ")));
        match line {
            Some(l) => Fields::parse(tag, l),
            None => Err(LineError::Missing {
                tag,
                last: output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string(),
            }),
        }
    }

    /// Takes every occurrence of `key`, in order.
    pub fn take_all(&mut self, key: &str) -> Vec<String> {
        self.fields
            .iter_mut()
            .filter(|f| f.as_ref().is_some_and(|(k, _)| k == key))
            .filter_map(|f| f.take().map(|(_, v)| v))
            .collect()
    }

    /// Takes `key` if present (at most once).
    pub fn take_raw(&mut self, key: &'static str) -> Result<Option<String>, LineError> {
        let mut all = self.take_all(key);
        match all.len() {
            0 => Ok(None),
            1 => Ok(all.pop()),
            _ => Err(LineError::Repeated(key.to_string())),
        }
    }

    /// Takes optional `key`, parsed as `T` (`expected` names `T` in
    /// errors).
    pub fn opt<T: FromStr>(
        &mut self,
        key: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, LineError> {
        match self.take_raw(key)? {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| LineError::BadValue {
                key: key.to_string(),
                value: v,
                expected,
            }),
        }
    }

    /// Takes required `key`, parsed as `T`.
    pub fn req<T: FromStr>(
        &mut self,
        key: &'static str,
        expected: &'static str,
    ) -> Result<T, LineError> {
        self.opt(key, expected)?.ok_or(LineError::MissingField(key))
    }

    /// Fails on the first field nobody took.
    pub fn finish(self) -> Result<(), LineError> {
        match self.fields.into_iter().flatten().next() {
            Some((k, _)) => Err(LineError::Unknown(k)),
            None => Ok(()),
        }
    }
}

/// Names for [`Fields::req`] and [`Fields::opt`] errors.
pub const UINT: &str = "an unsigned integer";
/// See [`UINT`].
pub const FLOAT: &str = "a number";
/// See [`UINT`].
pub const TEXT: &str = "text";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for s in [
            "",
            "plain",
            "a b",
            "tab\there",
            "x\\s",
            "line\nbreak\r",
            "k=v=w",
            "é ü",
        ] {
            let e = escape(s);
            assert!(!e.contains([' ', '\n', '\r', '\t']), "{e:?}");
            assert_eq!(unescape(&e).as_deref(), Some(s));
        }
        assert_eq!(unescape("bad\\q"), None);
        assert_eq!(unescape("trailing\\"), None);
    }

    #[test]
    fn fields_are_taken_strictly() {
        let line = LineWriter::new("t")
            .field("a", 1)
            .field("s", "x y=z")
            .opt("none", None::<u8>)
            .field("l", "p")
            .field("l", "q")
            .finish();
        assert_eq!(line, "t a=1 s=x\\sy=z l=p l=q");
        let mut f = Fields::parse("t", &line).unwrap();
        assert_eq!(f.req::<u32>("a", UINT).unwrap(), 1);
        assert_eq!(f.req::<String>("s", TEXT).unwrap(), "x y=z");
        assert_eq!(f.opt::<u8>("none", UINT).unwrap(), None);
        assert_eq!(f.take_all("l"), ["p", "q"]);
        f.finish().unwrap();
    }

    #[test]
    fn malformed_lines_are_named() {
        let err = |line: &str| {
            let mut f = Fields::parse("t", line)?;
            f.req::<u32>("a", UINT)?;
            f.finish()
        };
        assert_eq!(
            err("u a=1"),
            Err(LineError::Missing {
                tag: "t",
                last: "u a=1".into()
            })
        );
        assert_eq!(err("t a"), Err(LineError::NotAField("a".into())));
        assert_eq!(err("t A=1"), Err(LineError::NotAField("A=1".into())));
        assert_eq!(err("t"), Err(LineError::MissingField("a")));
        assert_eq!(err("t a=1 a=2"), Err(LineError::Repeated("a".into())));
        assert_eq!(err("t a=1 b=2"), Err(LineError::Unknown("b".into())));
        assert_eq!(
            err("t a=-1"),
            Err(LineError::BadValue {
                key: "a".into(),
                value: "-1".into(),
                expected: UINT
            })
        );
        assert_eq!(
            err("t a=\\x"),
            Err(LineError::BadEscape {
                key: "a".into(),
                raw: "\\x".into()
            })
        );
    }

    #[test]
    fn find_skips_other_lines() {
        let out = "log line\nt a=1\nmore log\n";
        let mut f = Fields::find("t", out).unwrap();
        assert_eq!(f.req::<u32>("a", UINT).unwrap(), 1);
        let e = Fields::find("t", "tx a=1\nsomething else\n\n").unwrap_err();
        assert_eq!(
            e,
            LineError::Missing {
                tag: "t",
                last: "something else".into()
            }
        );
    }
}

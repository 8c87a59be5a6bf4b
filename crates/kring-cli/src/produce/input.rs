//! Turning `kring produce`'s input into records, the way kcat does: the
//! input is split on a record delimiter (`-D`, newline by default), and
//! each record on its first key delimiter (`-K`) into key and value.
//! Delimiters accept the escapes `\n`, `\r`, `\t`, `\0`, `\\` and `\xHH`.

use std::io::BufRead;

use crate::error::CliError;

/// Decodes the escapes of a delimiter argument into bytes.
pub fn unescape(s: &str) -> Result<Vec<u8>, CliError> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let bad = |why: &str| CliError::invalid("delimiter", s, why);
        let c = *b
            .get(i + 1)
            .ok_or_else(|| bad("ends with a lone backslash"))?;
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0' => out.push(0),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = s
                    .get(i..i + 2)
                    .ok_or_else(|| bad("\\x needs two hex digits"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad("\\x needs two hex digits"))?);
                i += 2;
            }
            other => return Err(bad(&format!("unknown escape \\{}", other as char))),
        }
    }
    if out.is_empty() {
        return Err(CliError::invalid("delimiter", s, "must not be empty"));
    }
    Ok(out)
}

/// Reads records from a stream, split on a delimiter of one or more bytes.
pub struct RecordReader<R> {
    inner: R,
    delim: Vec<u8>,
    done: bool,
}

impl<R: BufRead> RecordReader<R> {
    /// Splits `inner` on `delim` (non-empty).
    pub fn new(inner: R, delim: Vec<u8>) -> Self {
        assert!(!delim.is_empty(), "delimiter must not be empty");
        RecordReader {
            inner,
            delim,
            done: false,
        }
    }

    /// The next record without its delimiter; `None` at the end. Text after
    /// the last delimiter is a record if it is not empty.
    pub fn next_record(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let last = *self.delim.last().expect("non-empty delimiter");
        let mut buf = Vec::new();
        loop {
            let n = self.inner.read_until(last, &mut buf)?;
            if n == 0 {
                self.done = true;
                return Ok(if buf.is_empty() { None } else { Some(buf) });
            }
            if buf.ends_with(&self.delim) {
                buf.truncate(buf.len() - self.delim.len());
                return Ok(Some(buf));
            }
        }
    }
}

/// Splits a record into (key, value) on the first `key_delim`; without a
/// delimiter in the record the whole record is the value and the key is null.
pub fn split_key<'a>(record: &'a [u8], key_delim: &[u8]) -> (Option<&'a [u8]>, &'a [u8]) {
    match record.windows(key_delim.len()).position(|w| w == key_delim) {
        Some(at) => (Some(&record[..at]), &record[at + key_delim.len()..]),
        None => (None, record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &str, delim: &str) -> Vec<String> {
        let mut r = RecordReader::new(input.as_bytes(), unescape(delim).unwrap());
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            v.push(String::from_utf8(rec).unwrap());
        }
        v
    }

    #[test]
    fn newline_records() {
        assert_eq!(all("a\nb\n", "\\n"), vec!["a", "b"]);
        assert_eq!(all("a\nb", "\\n"), vec!["a", "b"]);
        assert_eq!(all("a\n\nb\n", "\\n"), vec!["a", "", "b"]);
        assert_eq!(all("", "\\n"), Vec::<String>::new());
    }

    #[test]
    fn multi_byte_delimiter() {
        assert_eq!(all("one;;two;three;;", ";;"), vec!["one", "two;three"]);
        assert_eq!(all("x\r\ny\r\n", "\\r\\n"), vec!["x", "y"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("\\t").unwrap(), b"\t");
        assert_eq!(unescape("\\x1f").unwrap(), vec![0x1f]);
        assert_eq!(unescape("a\\\\b").unwrap(), b"a\\b");
        assert!(unescape("").is_err());
        assert!(unescape("\\").is_err());
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
    }

    #[test]
    fn keys() {
        assert_eq!(split_key(b"k:v:w", b":"), (Some(&b"k"[..]), &b"v:w"[..]));
        assert_eq!(split_key(b"novalue", b":"), (None, &b"novalue"[..]));
        assert_eq!(split_key(b":v", b":"), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split_key(b"k::v", b"::"), (Some(&b"k"[..]), &b"v"[..]));
    }
}

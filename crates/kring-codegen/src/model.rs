//! The generator's view of a spec: version ranges resolved against the
//! message's valid versions, types parsed, defaults checked, structs
//! collected. Every inconsistency the generator cannot honour is an error
//! here, before any code is written.

use crate::spec::{CommonStruct, Field, Spec, SpecKind, Versions};

/// A message ready for code generation.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The spec file name (`ProduceRequest.json`).
    pub(crate) file: String,
    pub(crate) name: String,
    pub(crate) kind: SpecKind,
    pub(crate) api_key: Option<i16>,
    pub(crate) valid: Versions,
    pub(crate) flexible: Versions,
    /// The message struct first, then nested and common structs.
    pub(crate) structs: Vec<Struct>,
}

/// A generated struct.
#[derive(Debug, Clone)]
pub(crate) struct Struct {
    pub(crate) name: String,
    pub(crate) fields: Vec<FieldInfo>,
    /// True for the message itself (it checks the version range).
    pub(crate) top: bool,
}

/// A field's wire type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Bool,
    I8,
    I16,
    U16,
    I32,
    I64,
    F64,
    Uuid,
    String,
    Bytes,
    Records,
    Struct(String),
    Array(Box<Ty>),
}

/// A field's default value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DefaultValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `null` (nullable fields only).
    Null,
    Str(String),
    /// Empty bytes, empty array, or a struct's own default.
    Empty,
    Uuid,
}

/// A resolved field.
#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    pub(crate) name: String,
    pub(crate) rust_name: String,
    pub(crate) ty: Ty,
    /// Versions the field is on the wire (within the valid range).
    pub(crate) versions: Versions,
    /// Versions in which it may be null (within `versions`).
    pub(crate) nullable: Versions,
    /// Whether the Rust type is an `Option` (nullable in some version, or records).
    pub(crate) optional: bool,
    /// Tag, when the field is a tagged field (tagged in all its versions).
    pub(crate) tag: Option<u32>,
    pub(crate) ignorable: bool,
    /// Versions using the compact (flexible) encoding for this field.
    pub(crate) compact: Versions,
    pub(crate) default: DefaultValue,
    /// Position among the struct's fields (varies sample values).
    pub(crate) index: usize,
}

impl Ty {
    fn parse(s: &str) -> Result<Ty, String> {
        Ok(match s {
            "bool" => Ty::Bool,
            "int8" => Ty::I8,
            "int16" => Ty::I16,
            "uint16" => Ty::U16,
            "int32" => Ty::I32,
            "int64" => Ty::I64,
            "float64" => Ty::F64,
            "uuid" => Ty::Uuid,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            _ => {
                if let Some(inner) = s.strip_prefix("[]") {
                    let inner = Ty::parse(inner)?;
                    if matches!(inner, Ty::Array(_) | Ty::Records) {
                        return Err(format!("unsupported array element type in {s:?}"));
                    }
                    Ty::Array(Box::new(inner))
                } else if s.starts_with(|c: char| c.is_ascii_uppercase())
                    && s.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    Ty::Struct(s.to_owned())
                } else {
                    return Err(format!("unsupported type {s:?}"));
                }
            }
        })
    }

    /// The struct this type names, directly or as array element.
    pub(crate) fn struct_name(&self) -> Option<&str> {
        match self {
            Ty::Struct(n) => Some(n),
            Ty::Array(inner) => inner.struct_name(),
            _ => None,
        }
    }

    /// Fixed wire size of a primitive, if it has one.
    pub(crate) fn fixed_size(&self) -> Option<usize> {
        Some(match self {
            Ty::Bool | Ty::I8 => 1,
            Ty::I16 | Ty::U16 => 2,
            Ty::I32 => 4,
            Ty::I64 | Ty::F64 => 8,
            Ty::Uuid => 16,
            _ => return None,
        })
    }
}

/// Converts a spec name (`ThrottleTimeMs`, `timeoutMs`, `V3AndBelowTopics`)
/// to snake case, escaping Rust keywords.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
        "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
    ];
    if KEYWORDS.contains(&out.as_str()) {
        format!("r#{out}")
    } else {
        out
    }
}

struct Resolver {
    valid: Versions,
    flexible: Versions,
    structs: Vec<Struct>,
    /// Struct names referenced without inline fields (must be common structs).
    referenced: Vec<String>,
}

/// Resolves a distilled spec.
pub(crate) fn resolve(file: &str, spec: &Spec) -> Result<Message, String> {
    let valid = Versions::parse(&spec.valid_versions)?;
    if valid.is_empty() {
        return Err(format!("{file}: no valid versions"));
    }
    let flexible = Versions::parse(&spec.flexible_versions)?.intersect(valid);
    match (spec.kind, spec.api_key) {
        (SpecKind::Header, None) | (SpecKind::Request | SpecKind::Response, Some(_)) => {}
        _ => {
            return Err(format!(
                "{file}: requests and responses need an apiKey, headers none"
            ))
        }
    }
    let mut r = Resolver {
        valid,
        flexible,
        structs: Vec::new(),
        referenced: Vec::new(),
    };
    r.add_struct(&spec.name, &spec.fields, true)
        .map_err(|e| format!("{file}: {e}"))?;
    for cs in &spec.common_structs {
        r.add_common(cs).map_err(|e| format!("{file}: {e}"))?;
    }
    for name in &r.referenced {
        if !r.structs.iter().any(|s| &s.name == name) {
            return Err(format!("{file}: struct {name} is used but never defined"));
        }
    }
    let msg = Message {
        file: file.to_owned(),
        name: spec.name.clone(),
        kind: spec.kind,
        api_key: spec.api_key,
        valid,
        flexible,
        structs: r.structs,
    };
    check_array_elements(&msg).map_err(|e| format!("{file}: {e}"))?;
    Ok(msg)
}

impl Resolver {
    fn add_common(&mut self, cs: &CommonStruct) -> Result<(), String> {
        self.add_struct(&cs.name, &cs.fields, false)
    }

    fn add_struct(&mut self, name: &str, fields: &[Field], top: bool) -> Result<(), String> {
        if self.structs.iter().any(|s| s.name == name) {
            return Err(format!("struct {name} is defined twice"));
        }
        // Reserve the slot so the message struct stays first.
        let slot = self.structs.len();
        self.structs.push(Struct {
            name: name.to_owned(),
            fields: Vec::new(),
            top,
        });
        let mut resolved = Vec::new();
        for (index, f) in fields.iter().enumerate() {
            let info = self
                .field(f, index)
                .map_err(|e| format!("{name}.{}: {e}", f.name))?;
            if let Some(s) = info.ty.struct_name() {
                if f.fields.is_empty() {
                    self.referenced.push(s.to_owned());
                } else {
                    self.add_struct(s, &f.fields, false)?;
                }
            } else if !f.fields.is_empty() {
                return Err(format!(
                    "{name}.{}: a {} field cannot have fields",
                    f.name, f.ty
                ));
            }
            resolved.push(info);
        }
        let mut names: Vec<&str> = resolved.iter().map(|f| f.rust_name.as_str()).collect();
        names.push("unknown_tagged_fields");
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("{name}: two fields named {}", w[0]));
        }
        let mut tags: Vec<u32> = resolved.iter().filter_map(|f| f.tag).collect();
        tags.sort_unstable();
        if let Some(w) = tags.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("{name}: tag {} used twice", w[0]));
        }
        self.structs[slot].fields = resolved;
        Ok(())
    }

    fn field(&self, f: &Field, index: usize) -> Result<FieldInfo, String> {
        let ty = Ty::parse(&f.ty)?;
        let versions = Versions::parse(&f.versions)?.intersect(self.valid);
        let nullable_spec = match &f.nullable_versions {
            Some(v) => Versions::parse(v)?,
            None => Versions::NONE,
        };
        let nullable = nullable_spec.intersect(versions);
        if !nullable.is_empty()
            && !matches!(ty, Ty::String | Ty::Bytes | Ty::Records | Ty::Array(_))
        {
            return Err(format!("nullable {} fields are not supported", f.ty));
        }
        let optional = !nullable.is_empty() || ty == Ty::Records;
        let compact = match &f.flexible_versions {
            Some(v) => Versions::parse(v)?.intersect(self.valid),
            None => self.flexible,
        };
        let tag = match (f.tag, &f.tagged_versions) {
            (None, None) => None,
            (Some(tag), Some(tv)) => {
                let tv = Versions::parse(tv)?.intersect(self.valid);
                if tv != versions {
                    return Err(format!(
                        "taggedVersions {tv} differ from versions {versions}; not supported"
                    ));
                }
                if tv.intersect(self.flexible) != tv {
                    return Err(format!("tagged in non-flexible versions ({tv})"));
                }
                Some(tag)
            }
            _ => return Err("tag and taggedVersions must come together".into()),
        };
        let default = default_value(&ty, f.default.as_deref(), optional)?;
        if default == DefaultValue::Null && nullable.is_empty() && ty != Ty::Records {
            return Err("default null on a field that is never nullable".into());
        }
        Ok(FieldInfo {
            name: f.name.clone(),
            rust_name: snake_case(&f.name),
            ty,
            versions,
            nullable,
            optional,
            tag,
            ignorable: f.ignorable,
            compact,
            default,
            index,
        })
    }
}

fn default_value(ty: &Ty, default: Option<&str>, optional: bool) -> Result<DefaultValue, String> {
    let int = |lo: i64, hi: i64| -> Result<DefaultValue, String> {
        let Some(d) = default else {
            return Ok(DefaultValue::Int(0));
        };
        let d = d.trim();
        let (neg, digits) = match d.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, d),
        };
        let magnitude =
            if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
                i64::from_str_radix(hex, 16)
            } else {
                digits.parse::<i64>()
            }
            .map_err(|_| format!("bad integer default {d:?}"))?;
        let v = if neg { -magnitude } else { magnitude };
        if v < lo || v > hi {
            return Err(format!("default {d:?} out of range"));
        }
        Ok(DefaultValue::Int(v))
    };
    match ty {
        Ty::Bool => match default {
            None | Some("false") => Ok(DefaultValue::Bool(false)),
            Some("true") => Ok(DefaultValue::Bool(true)),
            Some(d) => Err(format!("bad bool default {d:?}")),
        },
        Ty::I8 => int(i8::MIN.into(), i8::MAX.into()),
        Ty::I16 => int(i16::MIN.into(), i16::MAX.into()),
        Ty::U16 => int(0, u16::MAX.into()),
        Ty::I32 => int(i32::MIN.into(), i32::MAX.into()),
        Ty::I64 => int(i64::MIN, i64::MAX),
        Ty::F64 => match default {
            None => Ok(DefaultValue::Float(0.0)),
            Some(d) => d
                .trim()
                .parse::<f64>()
                .map(DefaultValue::Float)
                .map_err(|_| format!("bad float default {d:?}")),
        },
        Ty::Uuid => match default {
            None => Ok(DefaultValue::Uuid),
            Some(d) => Err(format!("uuid defaults ({d:?}) are not supported")),
        },
        Ty::String => match default {
            Some("null") => Ok(DefaultValue::Null),
            Some(s) => Ok(DefaultValue::Str(s.to_owned())),
            None => Ok(DefaultValue::Str(String::new())),
        },
        Ty::Records => match default {
            None | Some("null") => Ok(DefaultValue::Null),
            Some(d) => Err(format!("bad records default {d:?}")),
        },
        Ty::Bytes | Ty::Array(_) => match default {
            Some("null") if optional => Ok(DefaultValue::Null),
            None => Ok(DefaultValue::Empty),
            Some(d) => Err(format!("bad default {d:?}")),
        },
        Ty::Struct(_) => match default {
            None => Ok(DefaultValue::Empty),
            Some(d) => Err(format!("struct fields cannot have a default ({d:?})")),
        },
    }
}

/// The smallest number of bytes one value of `ty` can take at `version`.
pub(crate) fn min_wire_len(msg: &Message, ty: &Ty, compact: bool, version: i16) -> usize {
    if let Some(n) = ty.fixed_size() {
        return n;
    }
    match ty {
        Ty::String => {
            if compact {
                1
            } else {
                2
            }
        }
        Ty::Bytes | Ty::Records | Ty::Array(_) => {
            if compact {
                1
            } else {
                4
            }
        }
        Ty::Struct(name) => struct_min_len(msg, name, version),
        _ => unreachable!("fixed-size types handled above"),
    }
}

/// The smallest encoding of struct `name` at `version`.
pub(crate) fn struct_min_len(msg: &Message, name: &str, version: i16) -> usize {
    let s = msg
        .structs
        .iter()
        .find(|s| s.name == name)
        .expect("resolve checked struct references");
    let mut n = usize::from(msg.flexible.contains(version));
    for f in &s.fields {
        if f.versions.contains(version) && f.tag.is_none() {
            n += min_wire_len(msg, &f.ty, f.compact.contains(version), version);
        }
    }
    n
}

/// Arrays of structs must have elements of at least one byte in every
/// version they exist in; otherwise a hostile element count would make the
/// decoder spin without consuming input.
fn check_array_elements(msg: &Message) -> Result<(), String> {
    for s in &msg.structs {
        for f in &s.fields {
            if let Ty::Array(inner) = &f.ty {
                if let Ty::Struct(name) = inner.as_ref() {
                    for v in f.versions.iter() {
                        if struct_min_len(msg, name, v) == 0 {
                            return Err(format!(
                                "{}.{}: element struct {name} can be zero bytes at version {v}",
                                s.name, f.name
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_kafka_names() {
        assert_eq!(snake_case("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake_case("timeoutMs"), "timeout_ms");
        assert_eq!(snake_case("V3AndBelowTopics"), "v3_and_below_topics");
        assert_eq!(
            snake_case("ResultsByTopicV3AndBelow"),
            "results_by_topic_v3_and_below"
        );
        assert_eq!(snake_case("TopicId"), "topic_id");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("Type"), "r#type");
    }

    #[test]
    fn parses_defaults() {
        assert_eq!(
            default_value(&Ty::I32, Some("0x7fffffff"), false).unwrap(),
            DefaultValue::Int(i32::MAX.into())
        );
        assert_eq!(
            default_value(&Ty::I32, Some("-2147483648"), false).unwrap(),
            DefaultValue::Int(i32::MIN.into())
        );
        assert!(default_value(&Ty::I8, Some("300"), false).is_err());
        assert_eq!(
            default_value(&Ty::String, None, true).unwrap(),
            DefaultValue::Str(String::new())
        );
        assert_eq!(
            default_value(&Ty::Records, None, true).unwrap(),
            DefaultValue::Null
        );
        assert!(default_value(&Ty::Array(Box::new(Ty::I32)), Some("null"), false).is_err());
    }

    #[test]
    fn rejects_tags_outside_flexible_versions() {
        let spec: Spec = serde_json::from_str(
            r#"{ "name": "XRequest", "type": "request", "apiKey": 1, "validVersions": "0-3",
                 "flexibleVersions": "2+", "fields": [
                 { "name": "A", "type": "int32", "versions": "1+", "tag": 0, "taggedVersions": "1+" } ] }"#,
        )
        .unwrap();
        let err = resolve("X.json", &spec).unwrap_err();
        assert!(err.contains("non-flexible"), "{err}");
    }
}

//! `distill`: Apache Kafka's JSON message specs → kring's `protocol-specs/`.
//!
//! Kafka's spec files are JSON with `//` comments and a lot of prose. kring
//! keeps only what decides the wire format, so a reviewer sees exactly the
//! surface kring speaks and a spec upgrade shows up as a small diff. Unknown
//! keys are an error, not silently dropped: a new spec feature must be looked
//! at before the generator can be trusted with it.

use crate::spec::{CommonStruct, Field, Spec, SpecKind, Versions};
use serde_json::{Map, Value};

/// The APIs kring speaks; each has a `<Name>Request.json` and `<Name>Response.json`.
pub(crate) const APIS: &[&str] = &[
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "FindCoordinator",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "InitProducerId",
    "AddPartitionsToTxn",
    "EndTxn",
    "AddOffsetsToTxn",
    "TxnOffsetCommit",
    "SaslAuthenticate",
];

/// The header specs.
pub(crate) const HEADERS: &[&str] = &["RequestHeader", "ResponseHeader"];

/// Every spec file name (without `.json`) kring distills.
pub(crate) fn spec_names() -> Vec<String> {
    let mut names: Vec<String> = APIS
        .iter()
        .flat_map(|a| [format!("{a}Request"), format!("{a}Response")])
        .collect();
    names.extend(HEADERS.iter().map(|h| h.to_string()));
    names
}

/// Keys that only carry documentation or broker-side metadata.
const IGNORED_TOP: &[&str] = &["listeners", "deprecatedVersions", "latestVersionUnstable"];
const IGNORED_FIELD: &[&str] = &["about", "entityType", "mapKey", "zeroCopy"];

/// Removes `//` line comments that are outside JSON strings.
pub(crate) fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            // Skip to the end of the line, keeping the newline.
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Distills one Kafka spec file's text.
pub(crate) fn distill(file: &str, src: &str) -> Result<Spec, String> {
    let value: Value = serde_json::from_str(&strip_comments(src))
        .map_err(|e| format!("{file}: invalid JSON after stripping comments: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{file}: top level is not an object"))?;
    let ctx = |msg: String| format!("{file}: {msg}");
    check_keys(
        obj,
        &[
            "name",
            "type",
            "apiKey",
            "validVersions",
            "flexibleVersions",
            "fields",
            "commonStructs",
        ],
        IGNORED_TOP,
    )
    .map_err(ctx)?;
    let kind = match str_key(obj, "type").map_err(ctx)?.as_str() {
        "request" => SpecKind::Request,
        "response" => SpecKind::Response,
        "header" => SpecKind::Header,
        other => return Err(ctx(format!("unsupported spec type {other:?}"))),
    };
    let api_key = match obj.get("apiKey") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .and_then(|k| i16::try_from(k).ok())
                .ok_or_else(|| ctx(format!("bad apiKey {v}")))?,
        ),
    };
    let spec = Spec {
        name: str_key(obj, "name").map_err(ctx)?,
        kind,
        api_key,
        valid_versions: versions_key(obj, "validVersions").map_err(ctx)?,
        flexible_versions: versions_key(obj, "flexibleVersions").map_err(ctx)?,
        fields: fields(obj.get("fields")).map_err(ctx)?,
        common_structs: match obj.get("commonStructs") {
            None => Vec::new(),
            Some(v) => v
                .as_array()
                .ok_or_else(|| ctx("commonStructs is not an array".into()))?
                .iter()
                .map(common_struct)
                .collect::<Result<_, _>>()
                .map_err(ctx)?,
        },
    };
    Ok(spec)
}

fn check_keys(obj: &Map<String, Value>, known: &[&str], ignored: &[&str]) -> Result<(), String> {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) && !ignored.contains(&key.as_str()) {
            return Err(format!(
                "unknown key {key:?} (in {}); teach kring-codegen about it",
                obj.get("name").map(Value::to_string).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

fn str_key(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("missing or non-string {key:?}"))
}

fn opt_versions_key(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            Versions::parse(s)?;
            Ok(Some(s.trim().to_owned()))
        }
        Some(v) => Err(format!("{key} is not a string: {v}")),
    }
}

fn versions_key(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    opt_versions_key(obj, key)?.ok_or_else(|| format!("missing {key:?}"))
}

fn fields(v: Option<&Value>) -> Result<Vec<Field>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(field).collect(),
        Some(other) => Err(format!("fields is not an array: {other}")),
    }
}

fn field(v: &Value) -> Result<Field, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("field is not an object: {v}"))?;
    check_keys(
        obj,
        &[
            "name",
            "type",
            "versions",
            "nullableVersions",
            "flexibleVersions",
            "default",
            "tag",
            "taggedVersions",
            "ignorable",
            "fields",
        ],
        IGNORED_FIELD,
    )?;
    let name = str_key(obj, "name")?;
    let at = |msg: String| format!("field {name}: {msg}");
    let default = match obj.get("default") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => return Err(at(format!("unsupported default {other}"))),
    };
    let tag = match obj.get("tag") {
        None => None,
        Some(t) => Some(
            t.as_u64()
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| at(format!("bad tag {t}")))?,
        ),
    };
    let ignorable = match obj.get("ignorable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(at(format!("ignorable is not a bool: {other}"))),
    };
    Ok(Field {
        ty: str_key(obj, "type").map_err(at)?.trim().to_owned(),
        versions: versions_key(obj, "versions").map_err(at)?,
        nullable_versions: opt_versions_key(obj, "nullableVersions").map_err(at)?,
        flexible_versions: opt_versions_key(obj, "flexibleVersions").map_err(at)?,
        default,
        tag,
        tagged_versions: opt_versions_key(obj, "taggedVersions").map_err(at)?,
        ignorable,
        fields: fields(obj.get("fields")).map_err(at)?,
        name,
    })
}

fn common_struct(v: &Value) -> Result<CommonStruct, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("common struct is not an object: {v}"))?;
    check_keys(obj, &["name", "versions", "fields"], IGNORED_FIELD)?;
    Ok(CommonStruct {
        name: str_key(obj, "name")?,
        versions: versions_key(obj, "versions")?,
        fields: fields(obj.get("fields"))?,
    })
}

/// Writes a distilled spec as JSON: one line per field, nested fields
/// indented under their parent, so diffs read like the upstream files.
pub(crate) fn to_json(spec: &Spec) -> String {
    let mut out = String::from("{\n");
    let mut top: Vec<(&str, String)> = vec![
        ("name", json_str(&spec.name)),
        (
            "type",
            json_str(match spec.kind {
                SpecKind::Request => "request",
                SpecKind::Response => "response",
                SpecKind::Header => "header",
            }),
        ),
    ];
    if let Some(k) = spec.api_key {
        top.push(("apiKey", k.to_string()));
    }
    top.push(("validVersions", json_str(&spec.valid_versions)));
    top.push(("flexibleVersions", json_str(&spec.flexible_versions)));
    for (k, v) in &top {
        out.push_str(&format!("  \"{k}\": {v},\n"));
    }
    out.push_str("  \"fields\": ");
    write_fields(&mut out, &spec.fields, 1);
    if !spec.common_structs.is_empty() {
        out.push_str(",\n  \"commonStructs\": [\n");
        for (i, cs) in spec.common_structs.iter().enumerate() {
            out.push_str(&format!(
                "    {{ \"name\": {}, \"versions\": {}, \"fields\": ",
                json_str(&cs.name),
                json_str(&cs.versions)
            ));
            write_fields(&mut out, &cs.fields, 2);
            out.push_str(" }");
            if i + 1 < spec.common_structs.len() {
                out.push(',');
            }
            out.push('\n');
        }
        out.push_str("  ]");
    }
    out.push_str("\n}\n");
    out
}

fn write_fields(out: &mut String, fields: &[Field], depth: usize) {
    let indent = "  ".repeat(depth);
    out.push_str("[\n");
    for (i, f) in fields.iter().enumerate() {
        out.push_str(&indent);
        out.push_str("  { ");
        let mut attrs = vec![
            format!("\"name\": {}", json_str(&f.name)),
            format!("\"type\": {}", json_str(&f.ty)),
            format!("\"versions\": {}", json_str(&f.versions)),
        ];
        if let Some(v) = &f.nullable_versions {
            attrs.push(format!("\"nullableVersions\": {}", json_str(v)));
        }
        if let Some(v) = &f.flexible_versions {
            attrs.push(format!("\"flexibleVersions\": {}", json_str(v)));
        }
        if let Some(v) = &f.default {
            attrs.push(format!("\"default\": {}", json_str(v)));
        }
        if let Some(t) = f.tag {
            attrs.push(format!("\"tag\": {t}"));
        }
        if let Some(v) = &f.tagged_versions {
            attrs.push(format!("\"taggedVersions\": {}", json_str(v)));
        }
        if f.ignorable {
            attrs.push("\"ignorable\": true".into());
        }
        out.push_str(&attrs.join(", "));
        if f.fields.is_empty() {
            out.push_str(" }");
        } else {
            out.push_str(", \"fields\": ");
            write_fields(out, &f.fields, depth + 1);
            out.push_str(" }");
        }
        if i + 1 < fields.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&indent);
    out.push(']');
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_comments_but_not_slashes_in_strings() {
        let src = "// header\n{ \"a\": \"http://x//y\", // trailing\n \"b\": \"q\\\"//\" }\n";
        let v: Value = serde_json::from_str(&strip_comments(src)).unwrap();
        assert_eq!(v["a"], "http://x//y");
        assert_eq!(v["b"], "q\"//");
    }

    #[test]
    fn distills_and_round_trips_through_json() {
        let src = r#"
        // License
        {
          "apiKey": 99, "type": "request", "listeners": ["broker"], "name": "DemoRequest",
          // comment with "quotes"
          "validVersions": "0-3", "flexibleVersions": "2+",
          "fields": [
            { "name": "A", "type": "int32", "versions": "0+", "default": -1, "about": "x // y" },
            { "name": "B", "type": "[]Thing", "versions": "1+", "nullableVersions": "2+", "fields": [
              { "name": "C", "type": "bool", "versions": "1+", "default": false, "mapKey": true }
            ]},
            { "name": "T", "type": "string", "versions": "2+", "tag": 0, "taggedVersions": "2+",
              "ignorable": true, "nullableVersions": "2+", "default": "null" }
          ]
        }"#;
        let spec = distill("Demo.json", src).unwrap();
        assert_eq!(spec.fields[0].default.as_deref(), Some("-1"));
        assert_eq!(spec.fields[1].fields[0].default.as_deref(), Some("false"));
        let json = to_json(&spec);
        assert!(!json.contains("about") && !json.contains("mapKey"));
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let src = r#"{ "name": "X", "type": "request", "apiKey": 1, "validVersions": "0",
            "flexibleVersions": "none", "fields": [ { "name": "A", "type": "int8", "versions": "0+", "shiny": 1 } ] }"#;
        let err = distill("X.json", src).unwrap_err();
        assert!(err.contains("shiny"), "{err}");
    }
}

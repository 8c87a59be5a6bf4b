//! kring-codegen: keeps kring's protocol code in step with Kafka's message specs.
//!
//! Two steps, both checked in and both checkable in CI:
//!
//! - `distill --specs DIR`: Apache Kafka's JSON message specs (with `//`
//!   comments and prose) → `protocol-specs/*.json`, kring's distilled specs of
//!   the APIs it speaks (wire-relevant attributes only).
//! - `generate`: `protocol-specs/*.json` → `crates/kring-protocol/src/messages/*.rs`
//!   (one module per API plus `header.rs` and `mod.rs`), formatted by rustfmt.
//!
//! With `--check`, nothing is written: the tool exits non-zero and names the
//! files whose checked-in content differs from what it would write.
//! `cargo codegen generate --check` is the CI step.

mod distill;
mod emit;
mod emit_mod;
mod model;
mod spec;

use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

#[derive(Parser)]
#[command(about = "Distills Kafka message specs and generates kring-protocol's messages")]
struct Cli {
    /// The workspace root (default: found from the current directory).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Kafka's JSON specs → protocol-specs/*.json.
    Distill {
        /// Directory of Apache Kafka's `clients/src/main/resources/common/message`
        /// JSON files (default: `../shared/kafka-message-specs` next to the
        /// workspace, or `$KRING_KAFKA_SPECS`).
        #[arg(long)]
        specs: Option<PathBuf>,
        /// Fail instead of writing when protocol-specs/ is stale.
        #[arg(long)]
        check: bool,
    },
    /// protocol-specs/*.json → crates/kring-protocol/src/messages/*.rs.
    Generate {
        /// Fail instead of writing when the generated code is stale.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = find_root(cli.root.as_deref()).and_then(|root| match cli.command {
        Cmd::Distill { specs, check } => run_distill(&root, specs, check),
        Cmd::Generate { check } => run_generate(&root, check),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kring-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: `--root`, else the nearest ancestor of the current
/// directory (then of this crate's source) holding `protocol-specs/` or
/// `crates/kring-protocol/` next to a workspace `Cargo.toml`.
fn find_root(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(root) = explicit {
        return Ok(root.to_path_buf());
    }
    let is_root = |dir: &Path| {
        dir.join("crates/kring-protocol").is_dir()
            && std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
    };
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for start in [cwd.as_path(), manifest.as_path()] {
        if let Some(dir) = start.ancestors().find(|d| is_root(d)) {
            return Ok(dir.to_path_buf());
        }
    }
    Err("cannot find the kring workspace root; pass --root".into())
}

/// Files the tool would write, by path relative to the root.
type Outputs = BTreeMap<PathBuf, String>;

fn run_distill(root: &Path, specs: Option<PathBuf>, check: bool) -> Result<(), String> {
    let explicit = specs.is_some() || std::env::var_os("KRING_KAFKA_SPECS").is_some();
    let dir = specs
        .or_else(|| std::env::var_os("KRING_KAFKA_SPECS").map(PathBuf::from))
        .unwrap_or_else(|| root.join("../shared/kafka-message-specs"));
    if !dir.is_dir() {
        if check && !explicit {
            println!(
                "distill --check: skipped, no Kafka specs at {} (pass --specs)",
                dir.display()
            );
            return Ok(());
        }
        return Err(format!("Kafka specs directory {} not found", dir.display()));
    }
    let out = distill_all(&dir)?;
    apply(
        root,
        &out,
        Path::new("protocol-specs"),
        "json",
        check,
        "distill",
    )
}

fn distill_all(dir: &Path) -> Result<Outputs, String> {
    let mut out = Outputs::new();
    for name in distill::spec_names() {
        let path = dir.join(format!("{name}.json"));
        let src = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let spec = distill::distill(&format!("{name}.json"), &src)?;
        if spec.name != name {
            return Err(format!("{}: names itself {}", path.display(), spec.name));
        }
        // Make sure the generator accepts what we distilled before writing it.
        model::resolve(&format!("{name}.json"), &spec)?;
        out.insert(
            PathBuf::from(format!("protocol-specs/{name}.json")),
            distill::to_json(&spec),
        );
    }
    Ok(out)
}

fn run_generate(root: &Path, check: bool) -> Result<(), String> {
    let out = generate_all(root)?;
    apply(
        root,
        &out,
        Path::new("crates/kring-protocol/src/messages"),
        "rs",
        check,
        "generate",
    )
}

fn generate_all(root: &Path) -> Result<Outputs, String> {
    let dir = root.join("protocol-specs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut messages = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let spec: spec::Spec =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if format!("{}.json", spec.name) != file {
            return Err(format!(
                "{}: file name must be {}.json",
                path.display(),
                spec.name
            ));
        }
        messages.push(model::resolve(&file, &spec)?);
    }

    let mut apis = Vec::new();
    let mut headers = Vec::new();
    for m in &messages {
        match m.kind {
            spec::SpecKind::Header => headers.push(m),
            spec::SpecKind::Response => {}
            spec::SpecKind::Request => {
                let api = m
                    .name
                    .strip_suffix("Request")
                    .ok_or_else(|| format!("{}: request names end in Request", m.file))?;
                let response = messages
                    .iter()
                    .find(|r| {
                        r.kind == spec::SpecKind::Response && r.name == format!("{api}Response")
                    })
                    .ok_or_else(|| format!("{}: no {api}Response.json", m.file))?;
                if response.api_key != m.api_key {
                    return Err(format!("{api}: request and response api keys differ"));
                }
                apis.push(emit_mod::Api {
                    name: api.to_owned(),
                    module: model::snake_case(api),
                    request: m,
                    response,
                });
            }
        }
    }
    for r in messages
        .iter()
        .filter(|m| m.kind == spec::SpecKind::Response)
    {
        if !apis.iter().any(|a| std::ptr::eq(a.response, r)) {
            return Err(format!("{}: no matching request", r.file));
        }
    }

    let base = PathBuf::from("crates/kring-protocol/src/messages");
    let mut out = Outputs::new();
    for a in &apis {
        let doc = format!(
            "The `{}` API (key {}): request and response.",
            a.name,
            a.request.api_key.unwrap()
        );
        let code = emit::module(&doc, &[a.request.clone(), a.response.clone()])?;
        out.insert(base.join(format!("{}.rs", a.module)), rustfmt(root, &code)?);
    }
    let header_msgs: Vec<model::Message> = headers.iter().map(|m| (*m).clone()).collect();
    let code = emit::module("The request and response headers.", &header_msgs)?;
    out.insert(base.join("header.rs"), rustfmt(root, &code)?);
    out.insert(
        base.join("mod.rs"),
        rustfmt(root, &emit_mod::mod_rs(&apis, "header", &headers))?,
    );
    Ok(out)
}

/// Formats Rust source with rustfmt (run from the workspace root, so a
/// `rustfmt.toml` there applies exactly as for `cargo fmt`).
fn rustfmt(root: &Path, code: &str) -> Result<String, String> {
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = code.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("running rustfmt: {e}"))?;
    writer
        .join()
        .expect("writer thread")
        .map_err(|e| format!("writing to rustfmt: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt rejected the generated code:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "rustfmt output is not UTF-8".into())
}

/// Writes `out`, or in check mode compares it with what is on disk. Files
/// with extension `ext` in `dir` that the tool would not write are stale.
fn apply(
    root: &Path,
    out: &Outputs,
    dir: &Path,
    ext: &str,
    check: bool,
    cmd: &str,
) -> Result<(), String> {
    let mut stale = Vec::new();
    for (rel, content) in out {
        let path = root.join(rel);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() != Some(content.as_str()) {
            stale.push(rel.display().to_string());
            if !check {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("creating {}: {e}", parent.display()))?;
                }
                std::fs::write(&path, content)
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
            }
        }
    }
    let mut extra = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
        for e in entries.flatten() {
            let p = e.path();
            let rel = dir.join(e.file_name());
            if p.extension().is_some_and(|x| x == ext) && !out.contains_key(&rel) {
                extra.push(rel);
            }
        }
    }
    extra.sort();
    for rel in &extra {
        if !check {
            std::fs::remove_file(root.join(rel))
                .map_err(|e| format!("removing {}: {e}", rel.display()))?;
        }
        stale.push(format!("{} (no longer generated)", rel.display()));
    }
    if check {
        if stale.is_empty() {
            println!("{cmd} --check: {} files up to date", out.len());
            Ok(())
        } else {
            Err(format!(
                "{cmd} --check: {} file(s) differ from what `cargo codegen {cmd}` would write:\n  {}\nrun `cargo codegen {cmd}` and commit the result",
                stale.len(),
                stale.join("\n  ")
            ))
        }
    } else {
        println!("{cmd}: {} files, {} changed", out.len(), stale.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        find_root(Some(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../.."
        ))))
        .unwrap()
    }

    /// The checked-in messages are what the generator writes today (the same
    /// check as `cargo codegen generate --check`).
    #[test]
    fn checked_in_messages_are_fresh() {
        let root = root();
        let out = generate_all(&root).unwrap();
        for (rel, content) in &out {
            let on_disk = std::fs::read_to_string(root.join(rel)).unwrap_or_default();
            assert!(
                on_disk == *content,
                "{} is stale: run `cargo codegen generate`",
                rel.display()
            );
        }
    }

    /// Every generated file starts with the @generated marker.
    #[test]
    fn generated_files_are_marked() {
        for (rel, content) in generate_all(&root()).unwrap() {
            let first = content.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("// @generated by kring-codegen from protocol-specs/")
                    && first.ends_with("— do not edit."),
                "{}: {first}",
                rel.display()
            );
        }
    }

    /// The distilled specs match the shared Kafka specs, when those are here.
    #[test]
    fn distilled_specs_are_fresh_when_kafka_specs_exist() {
        let root = root();
        let dir = root.join("../shared/kafka-message-specs");
        if !dir.is_dir() {
            return;
        }
        for (rel, content) in distill_all(&dir).unwrap() {
            let on_disk = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
            assert!(
                on_disk == content,
                "{} is stale: run `cargo codegen distill`",
                rel.display()
            );
        }
    }
}

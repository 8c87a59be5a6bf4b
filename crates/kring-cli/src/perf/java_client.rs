//! The Java side of the benchmark: the Apache Kafka Java producer
//! (kafka-clients, version pinned in `crates/kring-cli/java/pom.xml`),
//! running the same workload in a JVM of its own and reporting the same
//! `kring-perf-run` line (see `java/src/main/java/kring/perf/JavaPerf.java`
//! for how it mirrors [`super::workload::SendLoop`] and the warm-up).
//!
//! The JVM *is* the measured child process: the orchestrator starts it
//! directly (not through `kring perf --client java`), so its CPU figures
//! are the Java client's alone, JIT compiler and garbage collector included.
//!
//! Unlike the other clients, the JVM runs the workload for a few seconds
//! before its measured window ([`warm_up_ms`]): the window then measures
//! the JIT-compiled steady state, not the compiler.
//!
//! The peer is built with Maven on first use into
//! `~/.cache/kring/java-perf/<digest of its sources>` (or
//! `$KRING_JAVA_PERF_DIR`) and rebuilt when its sources are newer than the
//! jar. The digest keeps binaries of different commits, whose peers print
//! different result lines, from running one another's jar.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use super::result::RunResult;
use super::workload::{Stop, Workload};
use crate::error::CliError;

/// The main class of the peer.
const MAIN_CLASS: &str = "kring.perf.JavaPerf";

/// JVM options unless `$KRING_JAVA_OPTS` replaces them: a heap cap well
/// above what the client needs (`buffer.memory` is 32 MB by default), and
/// the client's own logging at warnings and above, on stderr.
const DEFAULT_JVM_OPTS: &[&str] = &["-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"];

/// How long the JVM runs the workload unmeasured before its window opens:
/// `$KRING_JAVA_WARMUP_MS`, default [`DEFAULT_WARM_UP_MS`].
pub fn warm_up_ms() -> u64 {
    std::env::var("KRING_JAVA_WARMUP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_WARM_UP_MS)
}

/// The default JIT warm-up: a few seconds of the workload, so the measured
/// window sees compiled code (kring and librdkafka have nothing to warm up
/// beyond the one record per partition every client sends first).
pub const DEFAULT_WARM_UP_MS: u64 = 3000;

/// Where the built peer lives: `$KRING_JAVA_PERF_DIR`, else
/// `~/.cache/kring/java-perf/<digest>`, the digest of the peer's sources
/// (`~/.cache/kring/java-perf` itself when they are not found).
pub fn out_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KRING_JAVA_PERF_DIR") {
        return d.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    let base = PathBuf::from(home).join(".cache/kring/java-perf");
    match pom().as_deref().and_then(sources_digest) {
        Some(h) => base.join(format!("{h:016x}")),
        None => base,
    }
}

/// FNV-1a (64 bits) over the pom and every file under `src/`: each one's
/// path relative to the project and its content, in path order.
fn sources_digest(pom: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let root = pom.parent()?;
    let mut files = vec![pom.to_path_buf()];
    let mut dirs = vec![root.join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0u8]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in &files {
        feed(f.strip_prefix(root).unwrap_or(f).as_os_str().as_bytes());
        feed(&std::fs::read(f).ok()?);
    }
    Some(h)
}

/// The peer's Maven project: `$KRING_JAVA_PERF_POM`, else the one in this
/// crate's source tree, if it is still there.
fn pom() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KRING_JAVA_PERF_POM") {
        return Some(p.into());
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/pom.xml");
    p.is_file().then_some(p)
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time among the pom and the Java sources.
fn sources_mtime(pom: &Path) -> Option<SystemTime> {
    let mut newest = mtime(pom)?;
    let mut dirs = vec![pom.parent()?.join("src")];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Some(t) = mtime(&p) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

/// Makes sure the peer is built and returns its directory (the jar and
/// `lib/` with kafka-clients and its dependencies). Builds it with Maven
/// when the jar is missing or older than its sources.
pub fn ensure_built() -> Result<PathBuf, CliError> {
    let dir = out_dir();
    let jar = dir.join("kring-perf-java.jar");
    let pom = pom();
    let fresh = match (mtime(&jar), pom.as_deref().and_then(sources_mtime)) {
        (Some(built), Some(src)) => built >= src,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if fresh {
        return Ok(dir);
    }
    let Some(pom) = pom else {
        return Err(CliError::Child(format!(
            "the Java peer is not built ({} is missing) and its Maven project was not found; \
             set KRING_JAVA_PERF_POM to crates/kring-cli/java/pom.xml",
            jar.display()
        )));
    };
    eprintln!(
        "building the Java peer with Maven ({} -> {})",
        pom.display(),
        dir.display()
    );
    let status = Command::new(std::env::var_os("MVN").unwrap_or_else(|| "mvn".into()))
        .arg("-q")
        .arg("-B")
        .arg("-f")
        .arg(&pom)
        .arg(format!("-Dkring.java.out={}", dir.display()))
        .args(["package", "dependency:copy-dependencies"])
        .stdin(Stdio::null())
        // Maven's output must not mix with a result line on stdout.
        .stdout(Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| CliError::io("redirecting Maven's output", e))?,
        ))
        .status()
        .map_err(|e| CliError::io("running mvn (is Maven installed?)", e))?;
    if !status.success() || mtime(&jar).is_none() {
        return Err(CliError::Child(format!(
            "building the Java peer with Maven failed ({status})"
        )));
    }
    Ok(dir)
}

/// The `java` command line of one run of `w` against `bootstrap`, with the
/// peer in `dir`.
pub fn command(dir: &Path, w: &Workload, bootstrap: &str) -> Command {
    let java = std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .filter(|j| j.is_file())
        .unwrap_or_else(|| "java".into());
    let mut cmd = Command::new(java);
    match std::env::var("KRING_JAVA_OPTS") {
        Ok(opts) => {
            cmd.args(opts.split_whitespace());
        }
        Err(_) => {
            cmd.args(DEFAULT_JVM_OPTS);
        }
    }
    let classpath = format!(
        "{}:{}",
        dir.join("kring-perf-java.jar").display(),
        dir.join("lib/*").display()
    );
    cmd.arg("-cp").arg(classpath).arg(MAIN_CLASS);
    cmd.args(peer_args(w, bootstrap));
    cmd
}

/// The peer's arguments: the workload resolved (receiving partitions, stop
/// condition, every producer property).
fn peer_args(w: &Workload, bootstrap: &str) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--bootstrap".into(),
        bootstrap.into(),
        "--topic".into(),
        w.topic.clone(),
        "--value-sizes".into(),
        w.value_mix()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(","),
        "--partitions".into(),
        w.active_partition_ids()
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    ];
    match w.stop() {
        Stop::Records(n) => a.extend(["--records".into(), n.to_string()]),
        Stop::Duration(d) => a.extend(["--duration-ms".into(), d.as_millis().to_string()]),
    }
    if let Some(r) = w.rate {
        a.extend(["--rate".into(), r.to_string()]);
    }
    if w.keys > 0 {
        a.extend(["--keys".into(), w.keys.to_string()]);
    }
    a.extend(["--warm-up-ms".into(), warm_up_ms().to_string()]);
    for (k, v) in w.properties() {
        a.extend(["-X".into(), format!("{k}={v}")]);
    }
    a
}

/// One measured run through the Java producer, in a fresh JVM.
pub fn run(w: &Workload, bootstrap: &str) -> Result<RunResult, CliError> {
    if w.threads > 1 {
        return Err(CliError::invalid(
            "--threads",
            w.threads.to_string(),
            "the Java peer sends from one thread only",
        ));
    }
    let dir = ensure_built()?;
    let mut child = command(&dir, w, bootstrap)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::io("starting the Java client (is `java` installed?)", e))?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .map_err(|e| CliError::io("reading the Java client's result", e))?;
    let status = child
        .wait()
        .map_err(|e| CliError::io("waiting for the Java client", e))?;
    if !status.success() {
        return Err(CliError::Child(format!(
            "the java client process failed ({status})"
        )));
    }
    RunResult::from_output(&out)
        .map_err(|e| CliError::Child(format!("the java client printed no readable result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        w: Workload,
    }

    #[test]
    fn args_carry_the_resolved_workload() {
        let w = W::try_parse_from([
            "t",
            "--duration",
            "4s",
            "--partitions",
            "8",
            "--active-partitions",
            "4",
            "--acks",
            "all",
            "--rate",
            "1000",
            "-X",
            "linger.ms=9",
        ])
        .unwrap()
        .w;
        let a = peer_args(&w, "h:1").join(" ");
        assert!(a.starts_with("--bootstrap h:1 --topic kring-perf --value-sizes 100:1 --partitions 0,2,4,6 --duration-ms 4000 --rate 1000 --warm-up-ms"), "{a}");
        assert!(a.contains("-X acks=all"), "{a}");
        assert!(a.contains("-X enable.idempotence=true"), "{a}");
        assert!(a.contains("-X linger.ms=9"), "{a}");
        assert!(!a.contains("linger.ms=5"), "{a}");
    }

    #[test]
    fn keyed_mixed_args_name_keys_sizes_and_every_partition() {
        let w = W::try_parse_from([
            "t",
            "--records",
            "10",
            "--partitions",
            "4",
            "--keys",
            "1000",
            "--value-sizes",
            "64:8,512",
        ])
        .unwrap()
        .w;
        let a = peer_args(&w, "h:1").join(" ");
        assert!(
            a.starts_with("--bootstrap h:1 --topic kring-perf --value-sizes 64:8,512:1 --partitions 0,1,2,3 --records 10 --keys 1000 --warm-up-ms"),
            "{a}"
        );
    }

    #[test]
    fn the_build_directory_follows_the_sources() {
        let dir = std::env::temp_dir().join(format!("kring-java-digest-{}", std::process::id()));
        let src = dir.join("src/main/java");
        std::fs::create_dir_all(&src).unwrap();
        let pom = dir.join("pom.xml");
        std::fs::write(&pom, "<project/>").unwrap();
        std::fs::write(src.join("A.java"), "class A {}").unwrap();
        let a = sources_digest(&pom).unwrap();
        assert_eq!(sources_digest(&pom), Some(a), "deterministic");
        std::fs::write(src.join("A.java"), "class A { }").unwrap();
        let b = sources_digest(&pom).unwrap();
        assert_ne!(a, b, "a changed source changes the digest");
        std::fs::write(src.join("B.java"), "").unwrap();
        assert_ne!(sources_digest(&pom), Some(b), "a new file changes it");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

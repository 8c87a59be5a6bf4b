//! One node's JVM under a `sh` watchdog, and a janitor per cluster.
//!
//! The test process never owns a JVM directly: it starts `sh`, which starts
//! `java` in the background, prints java's pid on its stdout, and keeps a
//! reader on its stdin, a pipe whose only writer is the test process. When
//! the test process goes away by any means (returns from `main` with the
//! cluster in a `static`, panics, is SIGKILLed), the kernel closes that
//! pipe, the reader sees end-of-file and SIGKILLs java. No thread, no
//! polling, no `Drop` needed. When java ends first (a signal from the
//! harness, a crash), `sh` reaps it, stops the reader and exits with java's
//! status, so waiting on the `sh` child is waiting on java. The shells
//! ignore SIGINT/SIGTERM/SIGHUP (java does not), so a signal to the whole
//! process group still ends in this cleanup.
//!
//! The janitor is the same idea for files: it waits on its own pipe, then
//! removes the cluster's directory once the JVMs are gone.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ClusterError;

/// `$1`: log file for java's stdout and stderr; the rest: the java command.
/// The trap comes after java starts so that java keeps the default SIGTERM
/// disposition (a JVM leaves an ignored SIGTERM ignored).
const WATCHDOG: &str = r#"
log=$1; shift
exec 3<&0
"$@" </dev/null >>"$log" 2>&1 &
jpid=$!
trap '' INT TERM HUP
echo "$jpid"
( read -r _ <&3; kill -9 "$jpid" 2>/dev/null ) &
wpid=$!
exec 3<&-
wait "$jpid"
st=$?
kill -9 "$wpid" 2>/dev/null
exit "$st"
"#;

/// `$1`: the directory to remove once the pipe on stdin closes. The node
/// watchdogs SIGKILL their JVMs at the same moment; a JVM that still writes
/// while the first removal runs makes it fail, so it is retried.
const JANITOR: &str = r#"
trap '' INT TERM HUP
read -r _
sleep 1
i=0
while [ -e "$1" ] && [ $i -lt 10 ]; do rm -rf "$1" 2>/dev/null || sleep 1; i=$((i+1)); done
"#;

/// Removes a directory when the test process is gone (or this is dropped).
pub(crate) struct Janitor {
    _lifeline: ChildStdin,
    // Not waited for: it outlives the test process by design.
    _child: Child,
}

impl Janitor {
    /// Starts the janitor for `dir`.
    pub(crate) fn spawn(dir: &Path) -> Result<Janitor, ClusterError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(JANITOR)
            .arg("kring-kafka-janitor")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ClusterError::Io {
                context: "starting sh".into(),
                source,
            })?;
        let lifeline = child.stdin.take().expect("stdin is piped");
        Ok(Janitor {
            _lifeline: lifeline,
            _child: child,
        })
    }
}

/// A running JVM and its watchdog.
pub(crate) struct Jvm {
    watchdog: Child,
    /// Held open for the watchdog; closing it (here or by the kernel) kills
    /// java.
    _lifeline: ChildStdin,
    pid: u32,
}

impl Jvm {
    /// Starts `java args...` under the watchdog.
    pub(crate) fn spawn(java: &Path, args: &[String], log: &Path) -> Result<Jvm, ClusterError> {
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("kring-kafka-node")
            .arg(log)
            .arg(java)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ClusterError::Io {
                context: format!("starting sh to run {}", java.display()),
                source,
            })?;
        let lifeline = watchdog.stdin.take().expect("stdin is piped");
        let stdout = watchdog.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let pid = match (read, line.trim().parse::<u32>()) {
            (Ok(_), Ok(pid)) => pid,
            (r, _) => {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
                return Err(ClusterError::Protocol(format!(
                    "the node watchdog did not report java's pid (read {r:?}, line {line:?})"
                )));
            }
        };
        Ok(Jvm {
            watchdog,
            _lifeline: lifeline,
            pid,
        })
    }

    /// Java's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether java has exited (its watchdog has).
    pub(crate) fn exited(&mut self) -> bool {
        !matches!(self.watchdog.try_wait(), Ok(None))
    }

    /// Sends `signal` (a name: KILL, TERM, STOP, CONT) to java, unless it
    /// has already exited.
    pub(crate) fn signal(&mut self, signal: &str) {
        if self.exited() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", signal, &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Waits up to `timeout` for java to exit; true if it did.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.exited() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs java and waits until it is gone.
    pub(crate) fn kill(&mut self) {
        self.signal("KILL");
        // SIGKILL cannot be ignored; the watchdog exits right after reaping.
        if !self.wait_exit(Duration::from_secs(30)) {
            let _ = self.watchdog.kill();
        }
        let _ = self.watchdog.wait();
    }
}

impl Drop for Jvm {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The automatic fallback to epoll where io_uring is refused, shown under
//! the same kind of seccomp filter Docker's default profile installs: a
//! child process (this test binary, re-run on its ignored `child` test)
//! denies `io_uring_setup` with `EPERM` for itself, then builds producers
//! against an in-process kring-mock broker and prints what happened; the
//! parent checks it. A filter cannot be removed once installed, hence the
//! separate process.

#![cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]

use std::process::Command;
use std::time::Duration;

use kring::{BuildError, IoBackend, Producer, Record};
use kring_mock::MockCluster;

const CHILD_ENV: &str = "KRING_SECCOMP_CHILD";
const RECORDS: usize = 2_000;
const PARTITIONS: i32 = 8;

/// Install a seccomp filter on every thread of this process (and those it
/// starts later) that makes `io_uring_setup` fail with `EPERM` and allows
/// everything else, as Docker's default profile does.
fn deny_io_uring_setup() {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
                                   // Offsets in struct seccomp_data.
    const NR: u32 = 0;
    const ARCH_OFFSET: u32 = 4;
    const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let filter = [
        // Another architecture's syscall numbers mean other things: allow.
        insn(BPF_LD_W_ABS, 0, 0, ARCH_OFFSET),
        insn(BPF_JEQ_K, 0, 3, ARCH),
        insn(BPF_LD_W_ABS, 0, 0, NR),
        insn(BPF_JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        insn(
            BPF_RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "PR_SET_NO_NEW_PRIVS: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `prog` points to `filter`, both live for the call (the kernel
    // copies the program).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
}

/// Runs only when the parent re-runs this binary with [`CHILD_ENV`] set.
#[test]
#[ignore = "run by `auto_falls_back_to_epoll_when_seccomp_denies_io_uring` in a child process"]
fn child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    deny_io_uring_setup();
    // SAFETY: io_uring_setup with a null params pointer only returns an
    // error; the filter answers before the kernel reads anything.
    let rc = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null_mut::<u8>()) };
    let err = std::io::Error::last_os_error();
    println!(
        "SETUP={}",
        if rc < 0 {
            err.raw_os_error().unwrap_or(0)
        } else {
            0
        }
    );

    let cluster = MockCluster::builder()
        .brokers(1)
        .topic("t", PARTITIONS)
        .build()
        .expect("mock cluster");
    let p = Producer::builder()
        .bootstrap(&cluster.bootstrap_servers())
        .io_backend(IoBackend::Auto)
        .build()
        .expect("io.backend=auto builds a producer under the filter");
    println!("BACKEND={}", p.io_backend());
    let handles: Vec<_> = (0..RECORDS)
        .map(|i| {
            let v = format!("record-{i}");
            p.send(Record::new("t", v.as_bytes())).expect("send")
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for h in handles {
        match h.wait() {
            Ok(_) => ok += 1,
            Err(e) => {
                failed += 1;
                eprintln!("delivery failed: {e}");
            }
        }
    }
    assert!(p.close_timeout(Duration::from_secs(30)));
    let stored: usize = (0..PARTITIONS)
        .map(|part| cluster.records("t", part).expect("partition").len())
        .sum();
    println!("DELIVERED={ok} FAILED={failed} STORED={stored}");

    match Producer::builder()
        .bootstrap(&cluster.bootstrap_servers())
        .io_backend(IoBackend::IoUring)
        .build()
    {
        Ok(p) => println!("URING=built on {}", p.io_backend()),
        Err(BuildError::Driver(e)) => println!("URING_ERROR={e}"),
        Err(e) => println!("URING_OTHER_ERROR={e}"),
    }
}

#[test]
fn auto_falls_back_to_epoll_when_seccomp_denies_io_uring() {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("child stdout:\n{stdout}\nchild stderr:\n{stderr}");
    assert!(out.status.success(), "the child failed: {}", out.status);
    let field = |name: &str| {
        stdout
            .lines()
            // libtest may print "test child ... " on the first line.
            .find_map(|l| l.split_once(&format!("{name}=")).map(|(_, v)| v))
            .unwrap_or_else(|| panic!("no {name}= line"))
            .to_owned()
    };
    assert_eq!(
        field("SETUP"),
        libc::EPERM.to_string(),
        "the filter refuses io_uring_setup with EPERM"
    );
    assert_eq!(field("BACKEND"), "epoll");
    assert_eq!(
        field("DELIVERED"),
        format!("{RECORDS} FAILED=0 STORED={RECORDS}"),
        "every record delivered, once"
    );
    let uring = field("URING_ERROR");
    for needle in [
        "io_uring is unavailable",
        "seccomp",
        "Operation not permitted",
    ] {
        assert!(uring.contains(needle), "{uring}");
    }
}

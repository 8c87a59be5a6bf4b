//! The eventfd through which producer threads wake the parked I/O thread.
//!
//! The I/O thread keeps a read of this eventfd armed on the ring, so a write
//! completes that read and ends the kernel wait. Producers write only when
//! the core says the I/O thread is parked and the work is new, so a busy
//! producer does not pay a syscall per record.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// A cloneable handle that wakes the I/O thread.
#[derive(Debug, Clone)]
pub struct IoWaker {
    fd: Arc<OwnedFd>,
}

impl IoWaker {
    pub(crate) fn new() -> io::Result<IoWaker> {
        // SAFETY: eventfd takes no pointers; the flags are valid constants.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd, is valid and owned by
        // nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(IoWaker { fd: Arc::new(fd) })
    }

    /// Wake the I/O thread. Cheap but a syscall: call it only when the core
    /// says the I/O thread is parked.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: the fd is a live eventfd owned by `self.fd`; the buffer is
        // a valid 8-byte u64 that outlives the call.
        let n = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
        // EAGAIN means the counter is saturated: a wake-up is pending anyway.
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EAGAIN) {
                tracing::error!(error = %err, "failed to wake the kring I/O thread");
            }
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

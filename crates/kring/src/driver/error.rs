//! Errors of the driver's start-up and of the ring itself.

use std::io;

/// Why the I/O thread could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// `io_uring_setup` was refused: the kernel has no io_uring, or a
    /// seccomp profile or sysctl forbids it.
    #[error(
        "io_uring is unavailable on this system ({source}). kring needs Linux >= 5.19 with \
         io_uring enabled: check `sysctl kernel.io_uring_disabled` is 0, and in a container \
         allow the io_uring_setup, io_uring_enter and io_uring_register syscalls in the \
         seccomp profile (Docker and Podman default profiles block them; e.g. run with \
         `--security-opt seccomp=<profile allowing io_uring>`)"
    )]
    Unavailable {
        /// The error returned by `io_uring_setup`.
        #[source]
        source: io::Error,
    },
    /// The kernel's io_uring lacks an operation or feature kring uses.
    #[error("this kernel's io_uring lacks {0}, which kring needs; upgrade to Linux >= 5.19")]
    MissingFeature(&'static str),
    /// The eventfd or the I/O thread could not be created.
    #[error("failed to start the kring I/O thread: {0}")]
    Start(#[source] io::Error),
    /// `io_uring_enter` failed with an unexpected error.
    #[error("io_uring_enter failed: {0}")]
    Ring(#[source] io::Error),
    /// `epoll_wait` failed with an unexpected error (epoll backend).
    #[error("epoll_wait failed: {0}")]
    Poll(#[source] io::Error),
    /// The I/O thread panicked (a bug); it failed every pending record and
    /// closed its sockets before exiting.
    #[error("the kring I/O thread panicked: {0}")]
    Panicked(String),
}

impl DriverError {
    /// Classify an `io_uring_setup` failure.
    pub(crate) fn from_setup(err: io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM | libc::EACCES) => {
                DriverError::Unavailable { source: err }
            }
            _ => DriverError::Start(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_setup_says_why_and_how_to_fix_it() {
        for errno in [libc::ENOSYS, libc::EPERM, libc::EACCES] {
            let err = DriverError::from_setup(io::Error::from_raw_os_error(errno));
            assert!(matches!(err, DriverError::Unavailable { .. }));
            let msg = err.to_string();
            for needle in [
                "io_uring is unavailable",
                "5.19",
                "kernel.io_uring_disabled",
                "seccomp",
            ] {
                assert!(msg.contains(needle), "{msg}");
            }
        }
        let other = DriverError::from_setup(io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(matches!(other, DriverError::Start(_)));
    }
}

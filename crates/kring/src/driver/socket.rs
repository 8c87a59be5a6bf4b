//! Socket creation and address conversion for `IORING_OP_CONNECT`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

/// A socket address in the C layout the kernel reads. Boxed in the connect
/// operation so it stays put until the connect completes.
pub(crate) struct RawSockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawSockAddr {
    pub(crate) fn new(addr: SocketAddr) -> RawSockAddr {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and suitably aligned
                // for sockaddr_in; we write one value into it.
                unsafe {
                    std::ptr::write(
                        (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(),
                        sin,
                    )
                };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and suitably aligned
                // for sockaddr_in6; we write one value into it.
                unsafe {
                    std::ptr::write(
                        (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>(),
                        sin6,
                    )
                };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawSockAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub(crate) fn len(&self) -> libc::socklen_t {
        self.len
    }
}

/// Socket options of every broker connection. The buffer sizes
/// (`send.buffer.bytes`, `receive.buffer.bytes`): zero, the default, leaves
/// a buffer to the kernel, which grows it with the connection's bandwidth
/// and latency; a fixed size turns that tuning off for that buffer. Linux
/// doubles the value asked for (the extra half is its bookkeeping) and
/// caps it at `net.core.wmem_max` / `net.core.rmem_max`, as it does for
/// every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SO_SNDBUF` in bytes; 0 for the kernel's own.
    pub send: u32,
    /// `SO_RCVBUF` in bytes; 0 for the kernel's own.
    pub receive: u32,
    /// `SO_KEEPALIVE` (`socket.keepalive.enable`): TCP keepalive probes
    /// on idle connections, so a broker that vanished without a word (a
    /// host gone, a NAT entry dropped) is noticed. On by default, as the
    /// Java client always sets it.
    pub keepalive: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            send: 0,
            receive: 0,
            keepalive: true,
        }
    }
}

/// A non-blocking, close-on-exec TCP socket with `TCP_NODELAY` (Kafka
/// requests are complete messages; Nagle would only add latency) and the
/// `options` asked for, set before the connect (the receive buffer bounds
/// the window the handshake offers).
pub(crate) fn tcp_socket(addr: &SocketAddr, options: SocketOptions) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket takes no pointers; the arguments are valid constants.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::IPPROTO_TCP,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_option(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    if options.keepalive {
        set_int_option(&fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    }
    for (option, size) in [
        (libc::SO_SNDBUF, options.send),
        (libc::SO_RCVBUF, options.receive),
    ] {
        if size > 0 {
            // Sizes above i32::MAX are refused by the configuration; the
            // kernel caps what it grants anyway.
            let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
            set_int_option(&fd, libc::SOL_SOCKET, option, size)?;
        }
    }
    Ok(fd)
}

/// `setsockopt` of an `int` option.
fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the fd is a live socket; the option value points to a c_int
    // that outlives the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Abort the socket's TCP connection (a reset), dropping whatever it still
/// queues in the kernel, without closing the fd: `connect` with an
/// `AF_UNSPEC` address disconnects a connected TCP socket.
pub(crate) fn abort_connection(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: sockaddr is plain old data; all-zero is a valid value (and
    // AF_UNSPEC is 0, set explicitly below anyway).
    let mut unspec: libc::sockaddr = unsafe { std::mem::zeroed() };
    unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: the fd is a live socket; the address points to a sockaddr
    // that outlives the call, with its size (the kernel copies it).
    let rc = unsafe {
        libc::connect(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            &unspec,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt` of an `int` option: what the kernel holds for `fd`.
#[cfg(test)]
pub(crate) fn int_option(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    option: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt only reads the fd number (any value is safe to
    // pass: a closed or non-socket fd is an error); the value and length
    // point to locals that outlive the call, the length giving the
    // value's size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn option_of(fd: &OwnedFd, level: libc::c_int, option: libc::c_int) -> libc::c_int {
        int_option(fd.as_raw_fd(), level, option).expect("getsockopt")
    }

    #[test]
    fn sockaddr_lengths() {
        assert_eq!(
            RawSockAddr::new("1.2.3.4:5".parse().unwrap()).len() as usize,
            std::mem::size_of::<libc::sockaddr_in>()
        );
        assert_eq!(
            RawSockAddr::new("[::1]:5".parse().unwrap()).len() as usize,
            std::mem::size_of::<libc::sockaddr_in6>()
        );
    }

    /// Sockets are non-blocking (the epoll loop must never wait in a
    /// call), close on exec (a child process of the application must not
    /// inherit broker connections), send small requests at once, and
    /// probe idle connections unless asked not to.
    /// Sizes asked for are set (Linux reports twice the size, its
    /// bookkeeping included); zero leaves the kernel's defaults.
    #[test]
    fn buffer_sizes_asked_for_are_set_and_zero_leaves_the_kernels() {
        let addr = "127.0.0.1:9".parse().unwrap();
        let default = tcp_socket(&addr, SocketOptions::default()).unwrap();
        let kernel_send = option_of(&default, libc::SOL_SOCKET, libc::SO_SNDBUF);
        let kernel_receive = option_of(&default, libc::SOL_SOCKET, libc::SO_RCVBUF);
        for (send, receive) in [(8192, 0), (0, 12288), (24576, 20480)] {
            let options = SocketOptions {
                send,
                receive,
                ..SocketOptions::default()
            };
            let fd = tcp_socket(&addr, options).unwrap();
            let got_send = option_of(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF);
            let got_receive = option_of(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF);
            let want = |asked: u32, kernel| if asked == 0 { kernel } else { 2 * asked as i32 };
            assert_eq!(got_send, want(send, kernel_send), "send {send}");
            assert_eq!(
                got_receive,
                want(receive, kernel_receive),
                "receive {receive}"
            );
        }
        // Above the system's cap the kernel grants the cap, without error.
        let huge = SocketOptions {
            send: u32::MAX,
            receive: u32::MAX,
            keepalive: true,
        };
        assert!(tcp_socket(&addr, huge).is_ok());
    }

    #[test]
    fn sockets_are_nonblocking_close_on_exec_and_nodelay() {
        let addr = "127.0.0.1:9";
        let fd = tcp_socket(&addr.parse().unwrap(), SocketOptions::default()).expect("a socket");
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on a live fd owned by `fd`; no pointers.
        let (fl, fd_flags) = unsafe {
            (
                libc::fcntl(raw, libc::F_GETFL),
                libc::fcntl(raw, libc::F_GETFD),
            )
        };
        assert!(fl >= 0 && fd_flags >= 0);
        assert_ne!(fl & libc::O_NONBLOCK, 0, "{addr}: non-blocking");
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "{addr}: close on exec");
        let nodelay = option_of(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
        assert_ne!(nodelay, 0, "{addr}: TCP_NODELAY");
        let keepalive = option_of(&fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE);
        assert_ne!(keepalive, 0, "{addr}: SO_KEEPALIVE, on by default");
        let off = SocketOptions {
            keepalive: false,
            ..SocketOptions::default()
        };
        let fd = tcp_socket(&addr.parse().unwrap(), off).unwrap();
        assert_eq!(option_of(&fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
    }
}

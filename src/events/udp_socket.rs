//! A UDP socket that asks the kernel for a large receive buffer and reads, with every datagram,
//! how many the kernel has dropped on it so far (SO_RXQ_OVFL): the one place where a UDP event
//! stream's losses are visible to the receiver. The kernel stamps its count on each datagram as
//! it queues it, so drops show when the next datagram after them is read.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

pub struct DropCountingSocket {
    socket: UdpSocket,
    recv_buffer: usize,
    /// The kernel's count, as of the last datagram (it is cumulative for the socket).
    kernel_dropped: u32,
}

pub enum Received {
    Datagram {
        len: usize,
        /// The datagram was longer than the buffer; its tail is lost.
        truncated: bool,
    },
    /// Nothing arrived within the poll time (or, not waiting, nothing was queued).
    Nothing,
}

fn set_int(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid socket descriptor and a pointer to an int of the size given.
    let rc =
        unsafe { libc::setsockopt(fd, level, name, (&value as *const i32).cast(), std::mem::size_of::<i32>() as u32) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn get_int(fd: i32, level: i32, name: i32) -> io::Result<i32> {
    let mut value = 0i32;
    let mut len = std::mem::size_of::<i32>() as u32;
    // SAFETY: as above; the kernel writes at most `len` bytes.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

impl DropCountingSocket {
    /// Binds `addr`, asks for `recv_buffer` bytes of receive buffer (beyond net.core.rmem_max
    /// only with CAP_NET_ADMIN) and turns on the drop counter; reads wait up to `poll`.
    pub fn bind(addr: &str, recv_buffer: usize, poll: Duration) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        let fd = socket.as_raw_fd();
        // The kernel doubles what it is given (bookkeeping), so ask for half.
        let ask = (recv_buffer / 2).min(i32::MAX as usize) as i32;
        if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, ask).is_err() {
            set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, ask)?;
        }
        set_int(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)?;
        socket.set_read_timeout(Some(poll))?;
        let recv_buffer = get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?.max(0) as usize;
        Ok(DropCountingSocket { socket, recv_buffer, kernel_dropped: 0 })
    }

    /// The receive buffer the kernel granted, bytes.
    pub fn recv_buffer(&self) -> usize {
        self.recv_buffer
    }

    pub fn kernel_dropped(&self) -> u64 {
        self.kernel_dropped as u64
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// One datagram into `buf`: waiting up to the poll time when `wait`, else only what is queued.
    pub fn recv(&mut self, buf: &mut [u8], wait: bool) -> io::Result<Received> {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // Room for one SO_RXQ_OVFL message (a u32), aligned as cmsghdr needs.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; every pointer set below outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        loop {
            // SAFETY: a valid descriptor and a msghdr whose buffers are live and sized.
            let n = unsafe { libc::recvmsg(self.socket.as_raw_fd(), &mut msg, flags) };
            if n >= 0 {
                self.read_drop_count(&msg);
                return Ok(Received::Datagram { len: n as usize, truncated: msg.msg_flags & libc::MSG_TRUNC != 0 });
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Ok(Received::Nothing),
                _ => return Err(err),
            }
        }
    }

    fn read_drop_count(&mut self, msg: &libc::msghdr) {
        // SAFETY: walking the control messages the kernel wrote into `msg`'s buffer, with the
        // libc macros that bound every step by msg_controllen.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                    self.kernel_dropped = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>());
                }
                cmsg = libc::CMSG_NXTHDR(msg, cmsg);
            }
        }
    }
}

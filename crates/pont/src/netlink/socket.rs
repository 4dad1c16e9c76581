//! The raw `NETLINK_ROUTE` socket: open, send one message, receive one datagram.

use std::{io, thread, time::Duration};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::NetlinkError;

/// How often a send that failed with `ENOBUFS` (the kernel could not allocate the message) is
/// tried again, and how long to wait in between. A failed send was never processed, so
/// repeating it cannot apply a change twice.
const SEND_ATTEMPTS: u32 = 5;
const SEND_RETRY_PAUSE: Duration = Duration::from_millis(2);

/// A synchronous rtnetlink socket in one network namespace.
pub struct Netlink {
    socket: Socket,
    /// Port id the kernel gave this socket; replies to our requests carry it.
    pub(super) port: u32,
    /// Sequence number of the last request sent.
    seq: u32,
    /// Receive buffer, reused for every datagram.
    pub(super) buf: Vec<u8>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("port", &self.port)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Netlink {
    /// Socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let socket_err = |source| NetlinkError::Socket { source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(socket_err)?;
        let addr = socket.bind_auto().map_err(socket_err)?;
        // Connected to the kernel (port 0): nothing but the kernel's replies can arrive.
        socket.connect(&SocketAddr::new(0, 0)).map_err(socket_err)?;
        // Extended acks carry the kernel's reason text (Linux 4.12); capped acks stop the
        // kernel from copying each failed request back into its error reply (Linux 4.3).
        // Both are conveniences, so a kernel that lacks them is no reason to fail.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        Ok(Netlink {
            socket,
            port: addr.port_number(),
            seq: 0,
            buf: Vec::with_capacity(32 * 1024),
        })
    }

    /// Send `message` with `flags` (NLM_F_*) under a fresh sequence number, and return it.
    pub(super) fn send(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.send_bytes(&bytes)?;
        Ok(self.seq)
    }

    fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut attempt = 1;
        loop {
            match self.socket.send(bytes, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && attempt < SEND_ATTEMPTS => {
                    attempt += 1;
                    thread::sleep(SEND_RETRY_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Receive one whole datagram (one or more netlink messages) into `self.buf`.
    ///
    /// The size is peeked first so that no datagram is ever truncated, however large.
    /// `ENOBUFS` here means the kernel dropped replies meant for us; it is returned as is
    /// (see the `exchange` module for why it is not retried).
    pub(super) fn recv_datagram(&mut self) -> io::Result<()> {
        self.buf.clear();
        let size = retry_eintr(|| {
            self.socket
                .recv(&mut self.buf, libc::MSG_PEEK | libc::MSG_TRUNC)
        })?;
        self.buf.clear();
        self.buf.reserve(size);
        let got = retry_eintr(|| self.socket.recv(&mut self.buf, 0))?;
        debug_assert_eq!(got, self.buf.len());
        Ok(())
    }
}

fn retry_eintr(mut call: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

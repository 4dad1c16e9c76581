//! nfnetlink (a `NETLINK_NETFILTER` socket) without the `nft` or `conntrack`
//! processes: nf_tables transactions (batches) of set-element changes and the
//! few reads the presence check needs, and plain ctnetlink requests (dumps and
//! deletions of connection-tracking entries, [`Subsystem::Conntrack`]).
//!
//! A batch is NFNL_MSG_BATCH_BEGIN, the nf_tables messages, NFNL_MSG_BATCH_END
//! in one datagram; the kernel applies all of it or none (nfnetlink_rcv_batch,
//! net/netfilter/nfnetlink.c). Every message asks for an ack, so success is
//! known and not inferred from silence, and an error names its message; with
//! extended acks it also carries the offset of the attribute (the element) that
//! failed. The kernel handles a batch inside the `send` call, so all of its
//! answers are queued when `send` returns. ctnetlink takes no batches: each of
//! its requests is a message of its own, acked or answered the same way.
//!
//! Only what pont needs is here: message bodies are written by callers with
//! [`attr::Writer`], replies are read with [`attr`]'s finders.

pub mod attr;
mod keeper;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use attr::Writer;

/// Address families of nf_tables tables (NFPROTO_*, include/uapi/linux/netfilter.h).
pub const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_BRIDGE: u8 = 7;

/// nf_tables message types (enum nf_tables_msg_types,
/// include/uapi/linux/netfilter/nf_tables.h).
pub mod msg {
    pub const NEWCHAIN: u8 = 3;
    pub const GETCHAIN: u8 = 4;
    pub const DELCHAIN: u8 = 5;
    pub const NEWRULE: u8 = 6;
    pub const GETRULE: u8 = 7;
    pub const DELRULE: u8 = 8;
    pub const GETSET: u8 = 10;
    pub const NEWSETELEM: u8 = 12;
    pub const GETSETELEM: u8 = 13;
    pub const DELSETELEM: u8 = 14;
    pub const GETGEN: u8 = 16;
}

/// NFTA_GEN_ID, the ruleset generation in a GETGEN answer (enum nft_gen_attributes).
pub const NFTA_GEN_ID: u16 = 1;

/// The nfnetlink subsystems a request can be for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subsystem {
    /// Connection tracking (ctnetlink): plain requests, no batches.
    Conntrack,
    NfTables,
}

impl Subsystem {
    fn id(self) -> u16 {
        match self {
            Subsystem::Conntrack => NFNL_SUBSYS_CTNETLINK,
            Subsystem::NfTables => NFNL_SUBSYS_NFTABLES,
        }
    }
}

/// include/uapi/linux/netfilter/nfnetlink.h.
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
/// NFNL_BATCH_GENID: the generation a batch was computed against (enum
/// nfnl_batch_attributes); the kernel refuses the batch with ERESTART if the
/// ruleset changed since (Linux 5.5).
const NFNL_BATCH_GENID: u16 = 1;
/// `sizeof(struct nlmsghdr)` and `sizeof(struct nfgenmsg)`.
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
/// NLMSGERR_ATTR_MSG and NLMSGERR_ATTR_OFFS, include/uapi/linux/netlink.h.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;

/// A dump that the kernel flags as interrupted (what it lists changed while it
/// was read) is read again, this many times at most.
const DUMP_ATTEMPTS: u32 = 4;
/// A guard, not a wait: the kernel answers within the `send`, so a read that
/// blocks this long means an answer was lost.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The kernel's default socket buffers (net.core.[rw]mem_default, 208 KiB):
/// a batch or its acks beyond that need a larger buffer.
const DEFAULT_BUFFER: usize = 212_992;
/// What one queued ack costs the receive buffer (its skb's truesize, with room).
const ACK_TRUESIZE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum NfnlError {
    #[error("cannot {op} a netfilter netlink socket: {source}")]
    Socket { op: &'static str, source: io::Error },
    #[error("cannot send {bytes} bytes to netfilter: {source}")]
    Send { bytes: usize, source: io::Error },
    #[error("cannot read netfilter's answer: {source}")]
    Receive { source: io::Error },
    /// The kernel refused a request. In a batch, `message` is the index of the
    /// message it refused (none: the batch as a whole, say at commit) and
    /// `item` the index of the marked attribute in it (see [`Batch::mark`]).
    #[error("netfilter refused {}{}: {source}", refused_what(*.message, *.item), detail_suffix(.detail))]
    Refused {
        message: Option<usize>,
        item: Option<usize>,
        detail: Option<String>,
        source: io::Error,
    },
    #[error("unexpected answer from netfilter: {reason}")]
    Protocol { reason: String },
}

impl NfnlError {
    /// The errno of a refusal, to tell "no such object" (ENOENT) from other failures.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NfnlError::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn refused_what(message: Option<usize>, item: Option<usize>) -> String {
    match (message, item) {
        (None, _) => "the request".into(),
        (Some(m), None) => format!("message {m}"),
        (Some(m), Some(i)) => format!("item {i} of message {m}"),
    }
}

pub(crate) fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

thread_local! {
    /// The thread's socket, and the process and network namespace it belongs to.
    static SOCKET: RefCell<Option<(Owner, Nfnl)>> = const { RefCell::new(None) };
}

/// Who may use a kept socket: the process that opened it (a child forked
/// without exec inherits the thread's copy; sharing one socket between two
/// processes would mix their answers), in the namespace it was opened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    netns: (u64, u64),
}

/// Run `f` with this thread's socket for its current network namespace,
/// opened on first use and kept for the life of the thread.
///
/// Why it is kept: the kernel frees deleted set elements (and rules) after an
/// RCU grace period, in a worker (nf_tables_trans_destroy_work), and the
/// release of any NETLINK_NETFILTER socket in that namespace first waits for
/// that worker (nft_rcv_nl_event calls nf_tables_trans_destroy_flush_work,
/// net/netfilter/nf_tables_api.c; it does so because the release may have to
/// destroy tables the socket owns). Closing right after a deletion therefore
/// waits out the rest of a grace period: 6-15 ms here, most of a teardown's
/// firewall time, and it waits holding the namespace's commit mutex, so any
/// other process's commit waits too. Kept open, the socket is closed when the
/// thread ends, by which time the grace period has run alongside the
/// caller's other work; a process that exits hands it to the keeper
/// ([`close_in_background`]). A socket that failed to send or read is not
/// kept: what it holds is unknown.
pub fn with_socket<T>(f: impl FnOnce(&mut Nfnl) -> Result<T, NfnlError>) -> Result<T, NfnlError> {
    let netns = current_netns().map_err(|source| NfnlError::Socket {
        op: "find the namespace of",
        source,
    })?;
    let owner = Owner {
        pid: std::process::id(),
        netns,
    };
    SOCKET.with(|slot| {
        let mut slot = slot.borrow_mut();
        if !matches!(&*slot, Some((o, _)) if *o == owner) {
            // An inherited copy is closed here, in this process only: the
            // socket lives on in the process that opened it.
            *slot = Some((owner, Nfnl::open()?));
        }
        let (_, nl) = slot.as_mut().expect("opened above");
        let result = f(nl);
        if matches!(
            result,
            Err(NfnlError::Send { .. } | NfnlError::Receive { .. } | NfnlError::Protocol { .. })
        ) {
            *slot = None;
        }
        result
    })
}

/// For a process about to exit: let go of this thread's kept socket without
/// making anyone wait. Its last close would take the namespace's commit
/// mutex and wait for the destroy worker (see [`with_socket`]); the keeper
/// ([`keeper`]) takes it over instead and closes it when the namespace is
/// quiet. A keeper is started only if this socket deleted something; one
/// that already runs takes any socket, since its release would wait for
/// the deletions of others just the same.
pub fn close_in_background() {
    let Some((owner, nl)) = SOCKET.with(|slot| slot.borrow_mut().take()) else {
        return;
    };
    if owner.pid == std::process::id() {
        keeper::hand_over(nl.socket.as_raw_fd(), nl.deleted);
    }
    // Dropping closes our copy: the last one unless the keeper took it.
}

/// The calling thread's network namespace, as the device and inode of its file.
fn current_netns() -> io::Result<(u64, u64)> {
    let meta = std::fs::metadata("/proc/thread-self/ns/net")?;
    Ok((meta.dev(), meta.ino()))
}

/// A synchronous nfnetlink socket in the calling thread's network namespace.
pub struct Nfnl {
    socket: Socket,
    /// Port id the kernel gave this socket; answers to us carry it.
    port: u32,
    seq: u32,
    buf: Vec<u8>,
    /// The send and receive buffer sizes asked for so far.
    sndbuf: usize,
    rcvbuf: usize,
    /// A committed batch deleted something: closing may wait (see [`with_socket`]).
    deleted: bool,
}

impl std::fmt::Debug for Nfnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nfnl").field("port", &self.port).finish()
    }
}

impl Nfnl {
    pub fn open() -> Result<Nfnl, NfnlError> {
        let err = |op| move |source| NfnlError::Socket { op, source };
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(err("open"))?;
        let addr = socket.bind_auto().map_err(err("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(err("connect"))?;
        // Extended acks name the attribute that failed (Linux 4.12), capped
        // acks spare the kernel copying each request back (Linux 4.3): both
        // conveniences, so a kernel without them is no reason to fail.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        set_receive_timeout(&socket, RECEIVE_TIMEOUT).map_err(err("configure"))?;
        Ok(Nfnl {
            socket,
            port: addr.port_number(),
            seq: 0,
            buf: Vec::with_capacity(16 * 1024),
            sndbuf: DEFAULT_BUFFER,
            rcvbuf: DEFAULT_BUFFER,
            deleted: false,
        })
    }

    /// Apply `batch` as one transaction and wait for every message's ack.
    pub fn commit(&mut self, mut batch: Batch) -> Result<(), NfnlError> {
        if batch.messages.is_empty() {
            return Ok(());
        }
        self.deleted |= batch.deletes;
        let first = self.seq.wrapping_add(1);
        let bytes = batch.finish(first);
        self.seq = first.wrapping_add(batch.messages.len() as u32 + 1);
        self.make_room(bytes.len(), batch.messages.len())?;
        self.send(&bytes)?;
        self.read_acks(first, &batch.messages)
    }

    /// A request to nf_tables for one object (`NLM_F_ACK`): the attributes of
    /// its answers.
    pub fn get(&mut self, kind: u8, family: u8, body: &[u8]) -> Result<Vec<Vec<u8>>, NfnlError> {
        self.request(Subsystem::NfTables, kind, family, body)
    }

    /// One request outside any batch, acked (`NLM_F_ACK`): the attributes of
    /// its answers (none for a change). Done when the kernel has acked it.
    pub fn request(
        &mut self,
        subsystem: Subsystem,
        kind: u8,
        family: u8,
        body: &[u8],
    ) -> Result<Vec<Vec<u8>>, NfnlError> {
        let seq = self.send_request(msg_type(subsystem, kind), family, NLM_F_ACK, body)?;
        Ok(self.read_answers(seq)?.0)
    }

    /// A dump of nf_tables objects (`NLM_F_DUMP`) filtered by `body`: each
    /// one's attributes.
    pub fn dump(&mut self, kind: u8, family: u8, body: &[u8]) -> Result<Vec<Vec<u8>>, NfnlError> {
        self.dump_in(Subsystem::NfTables, kind, family, body)
    }

    /// A dump of `subsystem`'s objects (`NLM_F_DUMP`) filtered by `body`:
    /// each one's attributes.
    pub fn dump_in(
        &mut self,
        subsystem: Subsystem,
        kind: u8,
        family: u8,
        body: &[u8],
    ) -> Result<Vec<Vec<u8>>, NfnlError> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.send_request(msg_type(subsystem, kind), family, NLM_F_DUMP, body)?;
            let (answers, interrupted) = self.read_answers(seq)?;
            if !interrupted {
                return Ok(answers);
            }
        }
        Err(NfnlError::Protocol {
            reason: format!("what was dumped kept changing ({DUMP_ATTEMPTS} tries)"),
        })
    }

    fn send_request(
        &mut self,
        kind: u16,
        family: u8,
        flags: u16,
        body: &[u8],
    ) -> Result<u32, NfnlError> {
        self.seq = self.seq.wrapping_add(1);
        let mut w = Writer::new(Vec::with_capacity(NLMSG_HDRLEN + NFGENMSG_LEN + body.len()));
        let at = begin_message(&mut w, kind, NLM_F_REQUEST | flags, self.seq, family, 0);
        w.bytes_mut().extend_from_slice(body);
        end_message(&mut w, at);
        self.send(&w.into_inner())?;
        Ok(self.seq)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), NfnlError> {
        let err = |source| NfnlError::Send {
            bytes: bytes.len(),
            source,
        };
        loop {
            match self.socket.send(bytes, 0) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => {
                    let reason = format!("short send: {n} of {} bytes", bytes.len());
                    return Err(err(io::Error::other(reason)));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(err(e)),
            }
        }
    }

    /// A batch must fit the send buffer whole (netlink_sendmsg refuses larger
    /// datagrams with EMSGSIZE), and the acks of all its messages must fit the
    /// receive buffer, or some are dropped and the outcome is unknown.
    fn make_room(&mut self, bytes: usize, messages: usize) -> Result<(), NfnlError> {
        let err = |source| NfnlError::Socket {
            op: "size the buffers of",
            source,
        };
        let send_needed = bytes + 64 * 1024;
        if send_needed > self.sndbuf {
            set_buffer(
                &self.socket,
                libc::SO_SNDBUFFORCE,
                libc::SO_SNDBUF,
                send_needed,
            )
            .map_err(err)?;
            self.sndbuf = send_needed;
        }
        let receive_needed = (messages + 2) * ACK_TRUESIZE + 64 * 1024;
        if receive_needed > self.rcvbuf {
            set_buffer(
                &self.socket,
                libc::SO_RCVBUFFORCE,
                libc::SO_RCVBUF,
                receive_needed,
            )
            .map_err(err)?;
            self.rcvbuf = receive_needed;
        }
        Ok(())
    }

    /// Read until every message of the batch that starts at `first` is acked.
    /// An error on the batch itself (its first sequence number) ends the batch:
    /// the kernel then sends no further acks, or ones that no longer count.
    fn read_acks(&mut self, first: u32, messages: &[Message]) -> Result<(), NfnlError> {
        let mut pending = messages.len();
        let mut failure = None;
        while pending > 0 {
            self.receive()?;
            let mut rest = &self.buf[..];
            while let Some((header, body, next)) = split_message(rest)? {
                rest = next;
                let (seq, port) = (header.sequence_number(), header.port_number());
                let index = seq.wrapping_sub(first);
                if port != self.port || index as usize > messages.len() {
                    continue; // left over from an earlier exchange
                }
                if header.message_type() != NLMSG_ERROR {
                    continue;
                }
                let ack = read_ack(header.flags(), body)?;
                if index == 0 {
                    match ack.into_error(None, None) {
                        Some(error) => return Err(error),
                        None => continue,
                    }
                }
                pending -= 1;
                let message = index as usize - 1;
                let item = ack.offset.and_then(|o| messages[message].item_at(o));
                if failure.is_none() {
                    failure = ack.into_error(Some(message), item);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Read the answers to request `seq` up to its ack or end of dump.
    fn read_answers(&mut self, seq: u32) -> Result<(Vec<Vec<u8>>, bool), NfnlError> {
        let mut answers = Vec::new();
        let mut interrupted = false;
        loop {
            self.receive()?;
            let mut rest = &self.buf[..];
            while let Some((header, body, next)) = split_message(rest)? {
                rest = next;
                if header.sequence_number() != seq || header.port_number() != self.port {
                    continue;
                }
                interrupted |= header.flags() & NLM_F_DUMP_INTR != 0;
                match header.message_type() {
                    NLMSG_ERROR => {
                        let ack = read_ack(header.flags(), body)?;
                        return match ack.into_error(None, None) {
                            Some(error) => Err(error),
                            None => Ok((answers, interrupted)),
                        };
                    }
                    NLMSG_DONE => return done(body).map(|()| (answers, interrupted)),
                    _ => answers.push(body.get(NFGENMSG_LEN..).unwrap_or_default().to_vec()),
                }
            }
        }
    }

    /// One whole datagram into `self.buf`, however large (its size is peeked first).
    fn receive(&mut self) -> Result<(), NfnlError> {
        let err = |source| NfnlError::Receive { source };
        self.buf.clear();
        let size = retry_eintr(|| {
            self.socket
                .recv(&mut self.buf, libc::MSG_PEEK | libc::MSG_TRUNC)
        })
        .map_err(err)?;
        self.buf.clear();
        self.buf.reserve(size);
        retry_eintr(|| self.socket.recv(&mut self.buf, 0)).map_err(err)?;
        Ok(())
    }
}

/// The message at the start of `bytes`: its header, its payload and what follows.
#[allow(clippy::type_complexity)]
fn split_message(bytes: &[u8]) -> Result<Option<(NetlinkBuffer<&[u8]>, &[u8], &[u8])>, NfnlError> {
    if bytes.len() < NLMSG_HDRLEN {
        return Ok(None);
    }
    let header = NetlinkBuffer::new_checked(bytes).map_err(|e| NfnlError::Protocol {
        reason: format!("undecodable message: {e}"),
    })?;
    let len = header.length() as usize;
    let body = &bytes[NLMSG_HDRLEN..len];
    let next = bytes.get(len.next_multiple_of(4)..).unwrap_or_default();
    Ok(Some((header, body, next)))
}

/// An NLMSG_ERROR message: an errno (0 for an ack) and the extended ack's parts.
struct Ack {
    errno: i32,
    detail: Option<String>,
    /// Offset of the offending attribute from the start of the refused message.
    offset: Option<u32>,
}

impl Ack {
    fn into_error(self, message: Option<usize>, item: Option<usize>) -> Option<NfnlError> {
        (self.errno != 0).then(|| NfnlError::Refused {
            message,
            item,
            detail: self.detail,
            source: io::Error::from_raw_os_error(self.errno),
        })
    }
}

fn read_ack(flags: u16, body: &[u8]) -> Result<Ack, NfnlError> {
    let error = ErrorBuffer::new_checked(body).map_err(|e| NfnlError::Protocol {
        reason: format!("undecodable ack: {e}"),
    })?;
    let errno = error.code().map_or(0, |c| -c.get());
    // struct nlmsgerr: the error, then the refused message's header (only its
    // header: acks are capped), then the extended ack's attributes.
    let tlvs = match flags & NLM_F_ACK_TLVS {
        0 => &[][..],
        _ => {
            let copied = 4 + original_len(body, flags);
            body.get(copied..).unwrap_or_default()
        }
    };
    let detail = attr::find_str(tlvs, NLMSGERR_ATTR_MSG)
        .filter(|m| !m.is_empty())
        .map(|m| String::from_utf8_lossy(m).into_owned());
    let offset = attr::find(tlvs, NLMSGERR_ATTR_OFFS)
        .and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)));
    Ok(Ack {
        errno,
        detail,
        offset,
    })
}

/// How much of the refused message an NLMSG_ERROR copies: its header when capped
/// (NLM_F_CAPPED), else all of it.
fn original_len(body: &[u8], flags: u16) -> usize {
    const NLM_F_CAPPED: u16 = 0x100;
    if flags & NLM_F_CAPPED != 0 {
        return NLMSG_HDRLEN;
    }
    body.get(4..8)
        .and_then(|b| Some(u32::from_ne_bytes(b.try_into().ok()?) as usize))
        .map_or(NLMSG_HDRLEN, |len| len.next_multiple_of(4))
}

/// NLMSG_DONE carries the dump's final status (negative errno on failure).
fn done(body: &[u8]) -> Result<(), NfnlError> {
    let status = body
        .get(..4)
        .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
    match status {
        0.. => Ok(()),
        errno => Err(NfnlError::Refused {
            message: None,
            item: None,
            detail: None,
            source: io::Error::from_raw_os_error(-errno),
        }),
    }
}

/// A message type: the subsystem in the high byte, its message kind in the low.
fn msg_type(subsystem: Subsystem, kind: u8) -> u16 {
    (subsystem.id() << 8) | u16::from(kind)
}

fn nft_type(kind: u8) -> u16 {
    msg_type(Subsystem::NfTables, kind)
}

/// Write a netlink header (length filled in by [`end_message`]) and an nfgenmsg.
fn begin_message(
    w: &mut Writer,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
) -> usize {
    let at = w.position();
    let bytes = w.bytes_mut();
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&seq.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // port 0: to the kernel
    bytes.extend_from_slice(&[family, 0]); // NFNETLINK_V0
    bytes.extend_from_slice(&res_id.to_be_bytes());
    at
}

fn end_message(w: &mut Writer, at: usize) {
    let len = (w.position() - at) as u32;
    w.bytes_mut()[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

/// One transaction under construction: nf_tables messages between a batch
/// begin and end. Sequence numbers are given when it is committed.
#[derive(Debug)]
pub struct Batch {
    w: Writer,
    messages: Vec<Message>,
    open: Option<usize>,
    /// Some message deletes something (see [`close_in_background`]).
    deletes: bool,
}

/// Where one message of a batch starts, and the offsets (from that start) of
/// the attributes marked as items, to name the item an error points at.
#[derive(Debug)]
struct Message {
    start: usize,
    marks: Vec<u32>,
}

impl Message {
    /// The item whose attribute holds `offset`: the last one marked before it.
    fn item_at(&self, offset: u32) -> Option<usize> {
        self.marks.partition_point(|m| *m <= offset).checked_sub(1)
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch::begun(None)
    }

    /// A batch the kernel applies only if the ruleset is still at generation
    /// `generation` (what a GETGEN answered before the reads it was computed
    /// from), as iptables-nft sends its own; else it refuses it with ERESTART.
    pub fn for_generation(generation: u32) -> Batch {
        Batch::begun(Some(generation))
    }

    fn begun(generation: Option<u32>) -> Batch {
        let mut w = Writer::new(Vec::with_capacity(4096));
        let at = begin_message(
            &mut w,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        if let Some(generation) = generation {
            w.put_u32_be(NFNL_BATCH_GENID, generation);
        }
        end_message(&mut w, at);
        Batch {
            w,
            messages: Vec::new(),
            open: None,
            deletes: false,
        }
    }

    /// Start a message of `kind` for a table of `family`; `flags` are added to
    /// NLM_F_REQUEST and NLM_F_ACK. Write its attributes with [`Batch::writer`].
    pub fn begin(&mut self, kind: u8, family: u8, flags: u16) {
        debug_assert!(self.open.is_none(), "a message is still open");
        let flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        self.deletes |= matches!(kind, msg::DELSETELEM | msg::DELRULE | msg::DELCHAIN);
        let at = begin_message(&mut self.w, nft_type(kind), flags, 0, family, 0);
        self.open = Some(at);
        self.messages.push(Message {
            start: at,
            marks: Vec::new(),
        });
    }

    pub fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }

    /// The attribute written next starts a new item of the open message.
    pub fn mark(&mut self) {
        let message = self.messages.last_mut().expect("a message is open");
        message
            .marks
            .push((self.w.position() - message.start) as u32);
    }

    /// Bytes written so far, the whole batch.
    pub fn written(&self) -> usize {
        self.w.position()
    }

    pub fn end(&mut self) {
        let at = self.open.take().expect("a message is open");
        end_message(&mut self.w, at);
    }

    /// Number the messages from `first` (the batch begin) on, append the batch
    /// end, and return the datagram.
    fn finish(&mut self, first: u32) -> Vec<u8> {
        debug_assert!(self.open.is_none(), "a message is still open");
        let seq_at = |start: usize| start + 8..start + 12;
        let mut bytes = std::mem::take(&mut self.w).into_inner();
        bytes[seq_at(0)].copy_from_slice(&first.to_ne_bytes());
        for (i, m) in self.messages.iter().enumerate() {
            let seq = first.wrapping_add(i as u32 + 1);
            bytes[seq_at(m.start)].copy_from_slice(&seq.to_ne_bytes());
        }
        let mut w = Writer::new(bytes);
        let end = first.wrapping_add(self.messages.len() as u32 + 1);
        let at = begin_message(
            &mut w,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            end,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        end_message(&mut w, at);
        w.into_inner()
    }

    /// The datagram as it would be sent with sequence numbers from 0 on (tests).
    #[cfg(test)]
    pub(crate) fn bytes_for_test(mut self) -> Vec<u8> {
        self.finish(0)
    }
}

fn set_receive_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    setsockopt(socket, libc::SO_RCVTIMEO, &tv)
}

/// Raise a buffer with the privileged option (past net.core.[rw]mem_max), or
/// with the plain one where the privilege is missing.
fn set_buffer(
    socket: &Socket,
    forced: libc::c_int,
    plain: libc::c_int,
    size: usize,
) -> io::Result<()> {
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    setsockopt(socket, forced, &size).or_else(|_| setsockopt(socket, plain, &size))
}

fn setsockopt<T>(socket: &Socket, option: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live, initialised T of the size passed, which
    // is what the SOL_SOCKET options used here (int, struct timeval) read.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn retry_eintr(mut call: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

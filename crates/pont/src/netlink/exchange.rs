//! Request/ack and dump exchanges: sequence numbers, multi-part replies, kernel errors.
//!
//! Every request carries a fresh sequence number and the kernel's replies echo it. Replies
//! with another number are left over from an earlier exchange that ended early (an error
//! returned before the rest of its dump was read) and are skipped, so one failed exchange
//! cannot confuse the next.
//!
//! `ENOBUFS` from a receive means the kernel dropped replies (it could not allocate them; with
//! no multicast groups joined, nothing else fills the queue). It is returned, never retried:
//! a lost ack leaves unknown whether a change was made. A dump that lost part of itself stays
//! open in the kernel, so the next dump on this socket may fail with `EBUSY`; opening a new
//! [`Netlink`] is the way out. Reading the rest to resynchronise is not attempted, because
//! the kernel may never send it and the read would block.

use std::io;

use netlink_packet_core::{
    parse_string, NetlinkBuffer, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Netlink, NetlinkError, Op};

/// How often a dump is started over when the kernel flags it as interrupted: the objects
/// changed while it was being read (`NLM_F_DUMP_INTR`), so it may have missed or repeated one.
const DUMP_ATTEMPTS: u32 = 4;

/// `sizeof(struct nlmsghdr)`, include/uapi/linux/netlink.h.
const NLMSG_HDRLEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`, include/uapi/linux/netlink.h: the text of an extended ack.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// What a request does and to what; it becomes the error's message if the request fails.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    pub op: Op,
    pub target: String,
}

impl Ctx {
    pub fn new(op: Op, target: impl Into<String>) -> Ctx {
        Ctx {
            op,
            target: target.into(),
        }
    }

    pub fn protocol(self, reason: impl Into<String>) -> NetlinkError {
        NetlinkError::Protocol {
            op: self.op,
            target: self.target,
            reason: reason.into(),
        }
    }

    pub fn invalid(self, reason: &'static str) -> NetlinkError {
        NetlinkError::Invalid {
            op: self.op,
            target: self.target,
            reason,
        }
    }
}

/// Why an exchange failed, before the request's context is attached.
#[derive(Debug)]
pub(super) enum Failure {
    Io(io::Error),
    Kernel { errno: i32, detail: Option<String> },
    Protocol(String),
}

impl Failure {
    fn into_error(self, ctx: Ctx) -> NetlinkError {
        let (source, detail) = match self {
            Failure::Io(source) => (source, None),
            Failure::Kernel { errno, detail } => (io::Error::from_raw_os_error(errno), detail),
            Failure::Protocol(reason) => return ctx.protocol(reason),
        };
        NetlinkError::Request {
            op: ctx.op,
            target: ctx.target,
            detail,
            source,
        }
    }
}

/// The messages of one finished exchange.
#[derive(Debug, Default)]
pub(super) struct Replies {
    pub messages: Vec<RouteNetlinkMessage>,
    /// The kernel flagged the dump as inconsistent.
    pub interrupted: bool,
    /// Why the first reply that could not be decoded failed.
    pub undecodable: Option<String>,
}

impl Netlink {
    /// Send a request that creates, changes or gets one object and wait for its ack.
    /// Returns what the kernel sent before the ack (a GET's answer, an ECHO's copy).
    pub(super) fn request(
        &mut self,
        ctx: Ctx,
        message: RouteNetlinkMessage,
        extra_flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let flags = NLM_F_REQUEST | NLM_F_ACK | extra_flags;
        let result = self.send(message, flags).map_err(Failure::Io);
        match result.and_then(|seq| self.collect(seq)) {
            Ok(replies) => Ok(replies.messages),
            Err(failure) => Err(failure.into_error(ctx)),
        }
    }

    /// Dump all objects of one kind, reading the multi-part reply up to NLMSG_DONE.
    pub(super) fn dump(
        &mut self,
        ctx: Ctx,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = match self.send(message.clone(), NLM_F_REQUEST | NLM_F_DUMP) {
                Ok(seq) => seq,
                Err(e) => return Err(Failure::Io(e).into_error(ctx)),
            };
            match self.collect(seq) {
                Ok(replies) if !replies.interrupted => return Ok(replies.messages),
                Ok(_) => {}
                Err(failure) => return Err(failure.into_error(ctx)),
            }
        }
        Err(ctx.protocol(format!(
            "objects kept changing during the dump, gave up after {DUMP_ATTEMPTS} attempts"
        )))
    }

    /// Read replies to `seq` until its final message: the ack or error of a request, or the
    /// NLMSG_DONE of a dump.
    fn collect(&mut self, seq: u32) -> Result<Replies, Failure> {
        let mut replies = Replies::default();
        loop {
            self.recv_datagram().map_err(Failure::Io)?;
            if read_datagram(&self.buf, self.port, seq, &mut replies)? {
                return match replies.undecodable {
                    Some(error) => Err(Failure::Protocol(format!("undecodable reply: {error}"))),
                    None => Ok(replies),
                };
            }
        }
    }
}

/// Add the messages of one datagram that answer `seq` to `replies`. True once the final
/// message was seen.
pub(super) fn read_datagram(
    buf: &[u8],
    port: u32,
    seq: u32,
    replies: &mut Replies,
) -> Result<bool, Failure> {
    let mut rest = buf;
    while !rest.is_empty() {
        let header = NetlinkBuffer::new_checked(rest).map_err(decode_failure)?;
        let len = header.length() as usize;
        let ours = header.sequence_number() == seq && header.port_number() == port;
        if ours && read_message(&rest[..len], replies)? {
            return Ok(true);
        }
        // Messages are padded to 4 bytes (NLMSG_ALIGN); the last one may not be.
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(false)
}

fn read_message(bytes: &[u8], replies: &mut Replies) -> Result<bool, Failure> {
    let message = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
        Ok(message) => message,
        // An object the packet crate cannot decode must not end the exchange early: the
        // rest of a dump would stay queued and the kernel would refuse the next dump
        // (EBUSY). Note the failure, read on to the end, then report it.
        Err(error) if !is_control(bytes) => {
            replies.undecodable.get_or_insert(error.to_string());
            return Ok(false);
        }
        Err(error) => return Err(decode_failure(error)),
    };
    let flags = message.header.flags;
    replies.interrupted |= flags & NLM_F_DUMP_INTR != 0;
    match message.payload {
        NetlinkPayload::InnerMessage(inner) => {
            replies.messages.push(inner);
            Ok(false)
        }
        NetlinkPayload::Error(error) => match error.code {
            None => Ok(true),
            Some(code) => Err(Failure::Kernel {
                errno: code.get().abs(),
                detail: error_ack_text(flags, &error.header),
            }),
        },
        NetlinkPayload::Done(done) if done.code < 0 => Err(Failure::Kernel {
            errno: done.code.abs(),
            detail: tlv_text(&done.extended_ack),
        }),
        NetlinkPayload::Done(_) => Ok(true),
        NetlinkPayload::Noop => Ok(false),
        NetlinkPayload::Overrun(_) => {
            Err(Failure::Protocol("the kernel reported an overrun".into()))
        }
        _ => Err(Failure::Protocol("unexpected message type in reply".into())),
    }
}

/// Whether a message is one of netlink's own (NOOP, ERROR, DONE, OVERRUN: types below
/// NLMSG_MIN_TYPE, include/uapi/linux/netlink.h) rather than an rtnetlink object.
fn is_control(bytes: &[u8]) -> bool {
    const NLMSG_MIN_TYPE: u16 = 0x10;
    NetlinkBuffer::new(bytes).message_type() < NLMSG_MIN_TYPE
}

fn decode_failure(error: netlink_packet_core::DecodeError) -> Failure {
    Failure::Protocol(format!("undecodable reply: {error}"))
}

/// The text of an NLMSG_ERROR's extended ack. Its payload (after the error code) starts with
/// the failed request: only its header when capped (NLM_F_CAPPED), all of it otherwise. The
/// attributes follow when NLM_F_ACK_TLVS says there are any.
pub(super) fn error_ack_text(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        NetlinkBuffer::new_checked(payload).ok()?.length() as usize
    };
    tlv_text(payload.get(echoed.next_multiple_of(4)..)?)
}

fn tlv_text(tlvs: &[u8]) -> Option<String> {
    let nla = NlasIterator::new(tlvs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)?;
    parse_string(nla.value())
        .ok()
        .filter(|text| !text.is_empty())
}

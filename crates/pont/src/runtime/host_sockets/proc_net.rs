//! The fallback where sock_diag cannot answer: the /proc/net socket tables.
//!
//! They are read under /proc/thread-self, which shows the calling thread's network namespace
//! like a sock_diag socket does (/proc/net is /proc/self/net: the namespace of the process's
//! main thread). Each read of these files walks every bucket of the kernel's established
//! table, shared by all namespaces, and returns at most a page: a buffer large enough for
//! the whole file keeps them to one read and the read that finds the end.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{HostSocketsError, Socket};
use crate::model::Protocol;

/// Enough for the whole file on a host with a few hundred sockets (150 bytes a line).
const READ_BUF_LEN: usize = 64 * 1024;
/// `TCP_LISTEN` as these files show it, include/net/tcp_states.h.
const TCP_LISTEN_HEX: &str = "0A";

/// The files of one protocol, IPv4 then IPv6 (none for SCTP, which pont never looked for).
fn files(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::Tcp => &["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"],
        Protocol::Udp => &["/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"],
        Protocol::Sctp => &[],
    }
}

/// Append to `out` the TCP sockets in LISTEN, or every UDP socket, of `protocol`'s files.
pub(super) fn read(protocol: Protocol, out: &mut Vec<Socket>) -> Result<(), HostSocketsError> {
    let listen_only = protocol == Protocol::Tcp;
    for &path in files(protocol) {
        match read_file(path) {
            Ok(text) => out.extend(parse(&text, protocol, listen_only)),
            // A kernel without IPv6 has no tcp6/udp6: nothing listens there.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(HostSocketsError::Read { path, source }),
        }
    }
    Ok(())
}

fn read_file(path: &str) -> io::Result<String> {
    // A String with room to spare: with none, std probes with 32-byte reads first.
    let mut text = String::with_capacity(READ_BUF_LEN);
    File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Lines look like `  0: 0100007F:0035 00000000:0000 0A ...`: local address and port in
/// hex, then the state. The address is printed as 32-bit words in the CPU's byte order, whose
/// bytes in memory are the address in network order.
pub(super) fn parse(text: &str, protocol: Protocol, listen_only: bool) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if listen_only && state != TCP_LISTEN_HEX {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some(Socket {
                protocol,
                addr: parse_addr(addr)?,
                port,
            })
        })
        .collect()
}

fn parse_addr(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(hex, 16).ok()?.to_ne_bytes(),
        ))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

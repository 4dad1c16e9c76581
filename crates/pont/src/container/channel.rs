//! Messages on the control socket between the caller and a cloned container process.
//!
//! One `SOCK_SEQPACKET` pair per process; each message is one fixed-size packet of four
//! native-endian 32-bit words `[kind, a, b, c]`, encoded on the stack so that the child
//! can send without allocating. The child's end is close-on-exec and is also held by the
//! command until it execs, so the caller's end-of-file means "the command has exec'd (or
//! every container process is gone)".

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::error::{Failure, SetupStep};
use super::sys;

const WORDS: usize = 4;
const SIZE: usize = WORDS * 4;

const GO: u32 = 1;
const READY: u32 = 2;
const FAILED: u32 = 3;
const CHILD: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Record {
    /// Caller → init: start the setup.
    Go,
    /// Init → caller: setup done, command forked.
    Ready,
    /// Container process → caller: a setup step failed; the process exits 125.
    Failed(Failure),
    /// Exec helper → caller: the PID (in the caller's namespace) of the command process.
    Child(Pid),
}

impl Record {
    fn encode(self) -> [u8; SIZE] {
        let words: [u32; WORDS] = match self {
            Record::Go => [GO, 0, 0, 0],
            Record::Ready => [READY, 0, 0, 0],
            Record::Failed(failure) => [
                FAILED,
                failure.step.to_wire(),
                failure.index,
                u32::from_ne_bytes((failure.errno as i32).to_ne_bytes()),
            ],
            Record::Child(pid) => [CHILD, u32::from_ne_bytes(pid.as_raw().to_ne_bytes()), 0, 0],
        };
        let mut bytes = [0u8; SIZE];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        bytes
    }

    fn decode(bytes: &[u8; SIZE]) -> Option<Record> {
        let mut words = [0u32; WORDS];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_ne_bytes(chunk.try_into().ok()?);
        }
        let signed = |word: u32| i32::from_ne_bytes(word.to_ne_bytes());
        match words {
            [GO, ..] => Some(Record::Go),
            [READY, ..] => Some(Record::Ready),
            [FAILED, step, index, errno] => Some(Record::Failed(Failure {
                step: SetupStep::from_wire(step)?,
                index,
                errno: Errno::from_raw(signed(errno)),
            })),
            [CHILD, pid, ..] => Some(Record::Child(Pid::from_raw(signed(pid)))),
            _ => None,
        }
    }
}

pub(super) fn send(fd: BorrowedFd<'_>, record: Record) -> Result<(), Errno> {
    sys::send_packet(fd, &record.encode())
}

/// The next record, `Ok(None)` at end-of-file, `Err(EBADMSG)` for a malformed packet.
pub(super) fn recv(fd: BorrowedFd<'_>) -> Result<Option<Record>, Errno> {
    let mut bytes = [0u8; SIZE];
    match sys::recv_packet(fd, &mut bytes)? {
        0 => Ok(None),
        SIZE => Record::decode(&bytes).map(Some).ok_or(Errno::EBADMSG),
        _ => Err(Errno::EBADMSG),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn records_round_trip_through_a_socket_pair() {
        let (a, b) = sys::seqpacket_pair().unwrap();
        let records = [
            Record::Go,
            Record::Ready,
            Record::Failed(Failure::at(SetupStep::BindFile, 3, Errno::ENOENT)),
            Record::Child(Pid::from_raw(4242)),
        ];
        for record in records {
            send(a.as_fd(), record).unwrap();
            assert_eq!(recv(b.as_fd()).unwrap(), Some(record));
        }
        drop(a);
        assert_eq!(recv(b.as_fd()).unwrap(), None);
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(Record::decode(&[0xff; SIZE]), None);
        let mut bad_step = Record::Failed(Failure::new(SetupStep::ChangeDir, Errno::EIO)).encode();
        bad_step[4..8].copy_from_slice(&999u32.to_ne_bytes());
        assert_eq!(Record::decode(&bad_step), None);
    }
}

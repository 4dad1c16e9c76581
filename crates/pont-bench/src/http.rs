//! The smallest HTTP/1.1 server that is honest: it reads the request head,
//! answers 200 with a two-byte body and closes, so every request of a client
//! that sends `Connection: close` costs one new TCP connection.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;

use anyhow::{Context, Result};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

pub fn serve(port: u16, threads: usize) -> Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .with_context(|| format!("listen on port {port}"))?;
    thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                if let Ok((stream, _)) = listener.accept() {
                    // A client that goes away mid-request is its own problem.
                    let _ = answer(stream);
                }
            });
        }
    });
    Ok(())
}

fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut seen = 0;
    while seen < buf.len() {
        let n = stream.read(&mut buf[seen..])?;
        if n == 0 {
            return Ok(());
        }
        seen += n;
        if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    stream.write_all(RESPONSE)
}

//! A small TCP proxy the fault scenarios put in front of one LXD member, to make it slow or
//! broken on demand. std::net only: one listener thread, two pump threads per connection.
//!
//! The mode is read when a connection is accepted, so a change applies to the next connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Accept, read and discard, never answer, never close.
    BlackHole,
    /// Forward until the client has sent `up` bytes or the server `down` bytes (whichever comes
    /// first), then close both sides: a connection dropped mid-handshake, mid-request or
    /// mid-answer.
    Cut { up: usize, down: usize },
    /// Forward until the server has sent `down` bytes, then stop forwarding its answer while
    /// keeping the connection open: an answer that stalls half-way.
    Stall { down: usize },
}

/// What one connection carried.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    pub mode: Option<Mode>,
    pub up: usize,
    pub down: usize,
    /// Sizes of what was read, in order: positive client→server, negative server→client.
    pub chunks: Vec<i64>,
}

#[derive(Default)]
struct Shared {
    mode: Option<Mode>,
    conns: Vec<Conn>,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    closed: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy on 127.0.0.1 (a free port) in front of `upstream`, passing through.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared { mode: Some(Mode::Pass), conns: Vec::new() }));
        let closed = Arc::new(AtomicBool::new(false));
        let (s, c) = (shared.clone(), closed.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                if c.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(sock) = sock else { continue };
                let shared = s.clone();
                std::thread::spawn(move || serve(sock, upstream, &shared));
            }
        });
        Ok(Proxy { addr, shared, closed })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = Some(mode);
    }

    /// Every connection so far.
    pub fn conns(&self) -> Vec<Conn> {
        self.lock().conns.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(client: TcpStream, upstream: SocketAddr, shared: &Arc<Mutex<Shared>>) {
    let index;
    let mode;
    {
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        mode = s.mode.unwrap_or(Mode::Pass);
        index = s.conns.len();
        s.conns.push(Conn { mode: Some(mode), ..Conn::default() });
    }
    if mode == Mode::BlackHole {
        let mut client = client;
        let mut buf = [0u8; 4096];
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            record(shared, index, n as i64);
        }
        return;
    }
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(3)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (up_limit, down_limit, stall) = match mode {
        Mode::Cut { up, down } => (Some(up), Some(down), false),
        Mode::Stall { down } => (None, Some(down), true),
        _ => (None, None, false),
    };
    let (c2, s2) = (client.try_clone(), server.try_clone());
    let (Ok(c2), Ok(s2)) = (c2, s2) else { return };
    let sh = shared.clone();
    let up = std::thread::spawn(move || pump(c2, s2, up_limit, false, 1, &sh, index));
    pump(server, client, down_limit, stall, -1, shared, index);
    let _ = up.join();
}

/// Copies `from` to `to`; at `limit` bytes either closes both sockets or (stall) keeps reading
/// and dropping what arrives.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<usize>,
    stall: bool,
    sign: i64,
    shared: &Mutex<Shared>,
    index: usize,
) {
    let mut sent = 0usize;
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        record(shared, index, sign * n as i64);
        let allowed = limit.map_or(n, |l| n.min(l.saturating_sub(sent)));
        if allowed > 0 && to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        sent += allowed;
        if limit.is_some_and(|l| sent >= l) {
            if stall {
                // Keep the connection open; swallow the rest until the peer gives up.
                while matches!(from.read(&mut buf), Ok(n) if n > 0) {}
                break;
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    // One side ended: pass the end on, so the other pump ends too.
    let _ = to.shutdown(Shutdown::Write);
    if stall {
        let _ = to.shutdown(Shutdown::Both);
    }
}

fn record(shared: &Mutex<Shared>, index: usize, n: i64) {
    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
    let c = &mut s.conns[index];
    if n > 0 {
        c.up += n as usize;
    } else {
        c.down += (-n) as usize;
    }
    c.chunks.push(n);
}

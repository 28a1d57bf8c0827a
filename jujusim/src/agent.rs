//! The unit agent's end of the hook tools: a unix socket the driver serves while a hook or
//! action runs, and the tools' client for it.
//!
//! Juju's hook tools are thin clients: `jujuc` sends its argv, working directory and context
//! id to the unit agent over `JUJU_AGENT_SOCKET_ADDRESS`, and the agent runs the command
//! against the hook context it holds in memory, one command at a time (its jujuc server
//! serves each call under one mutex). The simulator does the same: the driver lends the
//! model and the hook's context to [`Agent`] for the life of the charm process, each tool
//! call is served from that copy, and the driver takes both back when the process has ended.
//! A call costs its own work, not a parse of the whole model, so a model of a thousand units
//! is as cheap to ask about as one of a single unit.
//!
//! The socket is an abstract one (no file, no `sun_path` length limit on the root directory),
//! named after the marker file `JUJU_AGENT_SOCKET_ADDRESS` names, so that variable keeps the
//! value it always had.
//!
//! The wire is a few frames, each a tag byte, a little-endian u64 length and that many bytes:
//! the client sends `T` tool, `A` each argument, `W` working directory, `X` context id, `S`
//! its start (ns since the epoch, so the recorded duration includes the wait for the agent,
//! as before), then `R`. The agent answers `O` stdout, `E` stderr, `C` exit code (i32). A tool
//! that reads stdin (`--file -`) makes the agent send `I`; the client answers `i` with all of
//! its stdin, or `e` with why it could not read it. Stdin is read only when asked for, as the
//! tool itself did.

use std::ffi::OsString;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::{HookContext, Model, Paths};

/// One hook-tool call as the client sends it.
#[derive(Debug, Default)]
pub struct Request {
    pub tool: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub context_id: String,
    /// When the tool process started handling the call.
    pub started: Duration,
}

/// What a call printed and how it exited.
#[derive(Debug, Default)]
pub struct Reply {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: i32,
}

/// What the driver lends the agent while a charm process runs.
pub struct Lease {
    pub model: Model,
    pub ctx: HookContext,
    /// A tool made an immediate change to the model (`status-set`, a secret's consumer...).
    pub model_changed: bool,
}

/// The time since the epoch, as the client stamps its start and the agent its end.
pub fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The abstract socket of the agent whose marker file is `marker`: two 64-bit FNV-1a hashes of
/// the path, so any root directory fits and two simulators never share one.
fn address(marker: &Path) -> io::Result<SocketAddr> {
    let fnv = |seed: u64| {
        marker.as_os_str().as_bytes().iter().fold(seed, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
    };
    let name = format!("jujusim-agent-{:016x}{:016x}", fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
    SocketAddr::from_abstract_name(name.as_bytes())
}

fn write_frame(w: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&[tag])?;
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(payload)
}

fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head)?;
    let len = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
    let mut payload = Vec::new();
    r.take(len).read_to_end(&mut payload)?;
    if payload.len() as u64 != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "frame cut short"));
    }
    Ok((head[0], payload))
}

fn text(payload: Vec<u8>) -> io::Result<String> {
    String::from_utf8(payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn bad_frame(tag: u8) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected frame {:?}", tag as char))
}

// ---------------------------------------------------------------------------------------
// the client (the `jujusim` binary)

/// Sends `req` to the agent behind `marker` and returns what the tool printed. `stdin` is
/// read only if the tool asks for it.
pub fn call(marker: &Path, req: &Request, stdin: &mut dyn Read) -> io::Result<Reply> {
    let conn = UnixStream::connect_addr(&address(marker)?)?;
    let mut out = BufWriter::new(conn.try_clone()?);
    write_frame(&mut out, b'T', req.tool.as_bytes())?;
    for a in &req.args {
        write_frame(&mut out, b'A', a.as_bytes())?;
    }
    write_frame(&mut out, b'W', req.cwd.as_os_str().as_bytes())?;
    write_frame(&mut out, b'X', req.context_id.as_bytes())?;
    write_frame(&mut out, b'S', &(req.started.as_nanos() as u64).to_le_bytes())?;
    write_frame(&mut out, b'R', &[])?;
    out.flush()?;
    let mut input = BufReader::new(conn);
    let mut reply = Reply::default();
    loop {
        match read_frame(&mut input)? {
            (b'I', _) => {
                let mut buf = Vec::new();
                match stdin.read_to_end(&mut buf) {
                    Ok(_) => write_frame(&mut out, b'i', &buf)?,
                    Err(e) => write_frame(&mut out, b'e', e.to_string().as_bytes())?,
                }
                out.flush()?;
            }
            (b'O', b) => reply.stdout = b,
            (b'E', b) => reply.stderr = b,
            (b'C', b) => {
                let code: [u8; 4] = b.try_into().map_err(|_| bad_frame(b'C'))?;
                reply.code = i32::from_le_bytes(code);
                return Ok(reply);
            }
            (tag, _) => return Err(bad_frame(tag)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// the agent (inside the driver)

/// Serves the hook tools of one simulator from a thread of the driver's process.
pub struct Agent {
    lease: Arc<Mutex<Option<Lease>>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

/// Runs one call against a lease (see `tools::serve`).
pub type Serve = fn(&Paths, &mut Lease, &Request, Box<dyn Read>) -> Reply;

impl Agent {
    /// Listens on the socket named after `paths.socket()`; `serve` runs each call.
    pub fn start(paths: Paths, serve: Serve) -> io::Result<Agent> {
        let addr = address(&paths.socket())?;
        let listener = UnixListener::bind_addr(&addr)?;
        let lease: Arc<Mutex<Option<Lease>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (lease.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("jujusim-agent".into()).spawn(move || {
            // One call at a time, as Juju's jujuc server: the next client waits to be accepted.
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    // A client that went away mid-call has nobody left to answer.
                    let _ = serve_one(conn, &paths, &l, serve);
                }
            }
        })?;
        Ok(Agent { lease, stop, addr, thread: Some(thread) })
    }

    fn locked(&self) -> MutexGuard<'_, Option<Lease>> {
        self.lease.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the model and a hook's context to the agent until [`Agent::take_back`].
    pub fn lend(&self, lease: Lease) {
        *self.locked() = Some(lease);
    }

    /// Takes back what [`Agent::lend`] gave, with every change the tools made to it.
    pub fn take_back(&self) -> Option<Lease> {
        self.locked().take()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = UnixStream::connect_addr(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(input: &mut impl Read) -> io::Result<Request> {
    let mut req = Request::default();
    loop {
        match read_frame(input)? {
            (b'T', b) => req.tool = text(b)?,
            (b'A', b) => req.args.push(text(b)?),
            (b'W', b) => req.cwd = PathBuf::from(OsString::from_vec(b)),
            (b'X', b) => req.context_id = text(b)?,
            (b'S', b) => {
                let ns: [u8; 8] = b.try_into().map_err(|_| bad_frame(b'S'))?;
                req.started = Duration::from_nanos(u64::from_le_bytes(ns));
            }
            (b'R', _) => return Ok(req),
            (tag, _) => return Err(bad_frame(tag)),
        }
    }
}

fn serve_one(conn: UnixStream, paths: &Paths, lease: &Mutex<Option<Lease>>, serve: Serve) -> io::Result<()> {
    let mut input = BufReader::new(conn.try_clone()?);
    let req = read_request(&mut input)?;
    let stdin = Box::new(RemoteStdin { input, output: conn.try_clone()?, got: None });
    let reply = {
        let mut held = lease.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut().filter(|l| l.ctx.id == req.context_id) {
            Some(l) => serve(paths, l, &req, stdin),
            None => Reply {
                stdout: Vec::new(),
                stderr: format!("ERROR bad request: unknown context {}\n", crate::flags::go_quote(&req.context_id))
                    .into_bytes(),
                code: 1,
            },
        }
    };
    let mut out = BufWriter::new(conn);
    write_frame(&mut out, b'O', &reply.stdout)?;
    write_frame(&mut out, b'E', &reply.stderr)?;
    write_frame(&mut out, b'C', &reply.code.to_le_bytes())?;
    out.flush()
}

/// The client's stdin, fetched the first time the tool reads it.
struct RemoteStdin {
    input: BufReader<UnixStream>,
    output: UnixStream,
    got: Option<io::Cursor<Vec<u8>>>,
}

impl RemoteStdin {
    fn fetch(&mut self) -> io::Result<io::Cursor<Vec<u8>>> {
        write_frame(&mut self.output, b'I', &[])?;
        match read_frame(&mut self.input)? {
            (b'i', b) => Ok(io::Cursor::new(b)),
            // The client's own error, word for word, for the tool's `read /dev/stdin: ...`.
            (b'e', b) => Err(io::Error::other(String::from_utf8_lossy(&b).into_owned())),
            (tag, _) => Err(bad_frame(tag)),
        }
    }
}

impl Read for RemoteStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.got.is_none() {
            self.got = Some(self.fetch()?);
        }
        self.got.as_mut().expect("fetched").read(buf)
    }
}

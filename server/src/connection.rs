//! One client connection: buffered framing over the socket, pipelining with replies in order.
//!
//! Requests are taken from the input buffer as long as whole ones are there. A write is queued in
//! the store at once and its reply waits in line; a run of pipelined writes is therefore in the
//! store's queue together and shares group commits. A request that reads the keyspace first
//! waits for this connection's earlier writes, so it sees them (and only durable data); FLUSHDB
//! is waited for before the next request runs, since it may take several transactions. Replies
//! are written in request order once all buffered requests are taken, or sooner: the output is
//! written whenever it passes [`OUTPUT_FLUSH_BYTES`], and the line of waiting replies is settled
//! and written whenever what they may carry (their keys' value lengths, estimated when queued)
//! would take the output past it. So a client that pipelines requests and does not read holds
//! at most about that bound in the server, plus one request's reply.
//!
//! Between reads the input buffer is cut back to what it holds when it is far larger
//! ([`INPUT_SLACK_FACTOR`]): a connection that sent one large request keeps no large buffer
//! while it idles, even with a few bytes of its next request pending.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::db::Kill;
use crate::outbox::OutboxReader;
use crate::protocol::{Limits, Parser};
use crate::reply::Reply;
use crate::server::Meters;
use crate::session::{Outcome, Pending, Session};

/// Output past this is written before more requests are run (bounds a client's reply buffer).
const OUTPUT_FLUSH_BYTES: usize = 1 << 20;
/// An idle connection's input buffer is shrunk back to this, plus the bytes pending in it.
const INPUT_IDLE_BYTES: usize = 16 << 10;
/// What a blocked client's input buffer may hold before the connection stops reading it until
/// the client is served.
const INPUT_WHILE_BLOCKED_BYTES: usize = 1 << 20;
/// An input buffer more than this many times larger than its pending bytes plus
/// [`INPUT_IDLE_BYTES`] is reallocated between reads. Growing back costs a copy of at most a
/// quarter of what was read meanwhile, so trimming never makes reading quadratic.
const INPUT_SLACK_FACTOR: usize = 4;

/// A reply in line: ready, or waiting for its write; with the protocol version to encode it in.
enum Slot {
    Ready(Reply, u8),
    Waiting(Pending, u8),
}

/// The stream (TCP, TLS over TCP, or a Unix socket: one code path for all) and its two buffers.
pub(crate) struct Connection<S> {
    stream: S,
    input: BytesMut,
    /// The size of `input`'s allocation, as the server's gauge has it.
    input_gauge: InputGauge,
    /// Kept across reads, so a request trickling in is scanned once, not once per read.
    parser: Parser,
    output: BytesMut,
    line: VecDeque<Slot>,
    /// The bytes of values the replies waiting in `line` may carry (see `Session::schedule`).
    line_charge: usize,
    /// Once MONITOR or SUBSCRIBE made it: the frames other connections queue for this one
    /// (MONITOR lines, pub/sub messages), written as they come.
    outbox: Option<OutboxReader>,
    /// How another connection closes this one: a write to a client that does not read waits
    /// for it too, so an outbox past its bound closes even a connection stuck writing.
    kill: Arc<Kill>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub(crate) fn new(stream: S, meters: Arc<Meters>) -> Connection<S> {
        let input = BytesMut::with_capacity(INPUT_IDLE_BYTES);
        Connection {
            stream,
            input_gauge: InputGauge::new(meters, &input),
            input,
            parser: Parser::default(),
            output: BytesMut::with_capacity(INPUT_IDLE_BYTES),
            line: VecDeque::new(),
            line_charge: 0,
            outbox: None,
            kill: Arc::default(),
        }
    }

    /// Serves the client until it quits, breaks the protocol, idles out, is killed (CLIENT
    /// KILL, or a MONITOR that fell behind), or the server shuts down.
    pub(crate) async fn run(
        &mut self,
        session: &mut Session,
        limits: &Limits,
        shutdown: &mut broadcast::Receiver<()>,
        kill: &Arc<Kill>,
    ) -> io::Result<()> {
        self.kill = kill.clone();
        loop {
            if !self.run_buffered(session, limits, kill, shutdown).await? {
                return Ok(());
            }
            if let Some(outbox) = session.outbox_reader.take() {
                self.outbox = Some(outbox);
            }
            self.settle().await?;
            self.flush().await?;
            self.trim_input();
            let idle_secs = session.db.idle_timeout_secs.load(Ordering::Relaxed);
            let idle = async {
                match idle_secs {
                    0 => std::future::pending().await,
                    secs => tokio::time::sleep(Duration::from_secs(secs)).await,
                }
            };
            self.input.reserve(INPUT_IDLE_BYTES);
            tokio::select! {
                read = self.stream.read_buf(&mut self.input) => {
                    if read? == 0 {
                        return Ok(());
                    }
                    self.input_gauge.saw(&self.input);
                }
                _ = shutdown.recv() => return Ok(()),
                () = kill.wake.notified() => {
                    tracing::debug!("killed (CLIENT KILL or output buffer limit); closing the connection");
                    return Ok(());
                }
                frame = next_frame(&mut self.outbox) => self.take_frames(frame),
                () = idle => {
                    tracing::debug!(idle_secs, "idle timeout; closing the connection");
                    return Ok(());
                }
            }
        }
    }

    /// Adds a frame of the outbox to the output, and whatever others are queued up to the
    /// output's bound; the loop writes them.
    fn take_frames(&mut self, first: bytes::Bytes) {
        self.output.extend_from_slice(&first);
        while self.output.len() < OUTPUT_FLUSH_BYTES {
            match self.outbox.as_mut().and_then(OutboxReader::try_next) {
                Some(frame) => self.output.extend_from_slice(&frame),
                None => break,
            }
        }
    }

    /// Runs every whole request in the input buffer; `false` if the connection is to close
    /// (after the replies so far are written).
    async fn run_buffered(
        &mut self,
        session: &mut Session,
        limits: &Limits,
        kill: &Kill,
        shutdown: &mut broadcast::Receiver<()>,
    ) -> io::Result<bool> {
        loop {
            if kill.is_killed() {
                tracing::debug!("killed (CLIENT KILL or output buffer limit); closing the connection");
                self.settle().await?;
                self.flush().await?;
                return Ok(false);
            }
            // Chosen per request: an AUTH earlier in the same pipeline lifts the bounds for the
            // requests after it, as in Redis.
            let args = match self.parser.next_request(&mut self.input, limits, session.authenticated) {
                Ok(None) => return Ok(true),
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => args,
                Err(e) => {
                    // `?`: the text may quote the client's bytes; escaped, they cannot forge a
                    // log line. The client's address is on the span.
                    tracing::info!(error = ?String::from_utf8_lossy(e.0.as_bytes()), "protocol error; closing the connection");
                    self.push(Reply::Error(e.0), session.resp);
                    self.settle().await?;
                    self.flush().await?;
                    return Ok(false);
                }
            };
            if session.db.pause.is_active() && !self.wait_unpaused(session, &args, kill, shutdown).await? {
                return Ok(false);
            }
            let schedule = session.schedule(&args);
            if schedule.wait_for_writes {
                self.settle().await?;
            }
            let mut waits = false;
            match session.handle(args) {
                Outcome::Now(reply) => self.push(reply, session.resp),
                Outcome::Several(replies) => {
                    for reply in replies {
                        self.push(reply, session.resp);
                    }
                }
                Outcome::Later(pending) => {
                    self.line.push_back(Slot::Waiting(pending, session.resp));
                    self.line_charge += schedule.reply_charge;
                    waits = true;
                }
                Outcome::Values(keys) => self.stream_values(session, keys).await?,
                Outcome::Close(reply) => {
                    self.push(reply, session.resp);
                    self.settle().await?;
                    self.flush().await?;
                    return Ok(false);
                }
                Outcome::Hangup => {
                    self.settle().await?;
                    self.flush().await?;
                    return Ok(false);
                }
            }
            // A blocking pop refused at once (its timeout) answered `Now`: nothing to wait for.
            if schedule.blocks && waits && !self.wait_blocked(kill, shutdown).await? {
                return Ok(false);
            }
            if schedule.barrier || self.output.len() + self.line_charge > OUTPUT_FLUSH_BYTES {
                self.settle().await?;
            }
            if self.output.len() > OUTPUT_FLUSH_BYTES {
                self.flush().await?;
            }
        }
    }

    /// Waits while CLIENT PAUSE holds `args` back, after writing the replies before it (as a
    /// Redis client blocked by a pause has had them); `false` if the connection is to close
    /// meanwhile (killed, or the server shuts down).
    async fn wait_unpaused(
        &mut self,
        session: &Session,
        args: &[bytes::Bytes],
        kill: &Kill,
        shutdown: &mut broadcast::Receiver<()>,
    ) -> io::Result<bool> {
        let writes = session.writes_for_pause(args);
        if session.db.pause.holds(writes).is_none() {
            return Ok(true);
        }
        self.settle().await?;
        self.flush().await?;
        tokio::select! {
            () = session.db.pause.wait(writes) => Ok(true),
            () = until_killed(kill) => Ok(false),
            _ = shutdown.recv() => Ok(false),
        }
    }

    /// Waits for a blocking pop's reply (the last in line), as Redis serves nothing else of a
    /// blocked client: the replies before it are written first, and the socket is read
    /// meanwhile (up to [`INPUT_WHILE_BLOCKED_BYTES`] buffered) so that a client that closes,
    /// is killed, or a server that shuts down ends the wait; `false` then (the connection is to
    /// close; dropping the reply's future takes the client out of the registry, having popped
    /// nothing).
    async fn wait_blocked(&mut self, kill: &Kill, shutdown: &mut broadcast::Receiver<()>) -> io::Result<bool> {
        let (mut pending, resp) = match self.line.pop_back() {
            Some(Slot::Waiting(pending, resp)) => (pending, resp),
            other => {
                debug_assert!(false, "a blocking pop's reply waits last in line");
                self.line.extend(other);
                return Ok(true);
            }
        };
        self.settle().await?;
        self.flush().await?;
        loop {
            let reading = self.input.len() < INPUT_WHILE_BLOCKED_BYTES;
            self.input.reserve(INPUT_IDLE_BYTES);
            let read = async {
                if reading {
                    self.stream.read_buf(&mut self.input).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                reply = &mut pending => {
                    reply.encode(resp, &mut self.output);
                    return Ok(true);
                }
                read = read => {
                    if read? == 0 {
                        return Ok(false);
                    }
                    self.input_gauge.saw(&self.input);
                }
                () = until_killed(kill) => return Ok(false),
                _ = shutdown.recv() => return Ok(false),
            }
        }
    }

    /// MGET's reply read and written one value at a time (the line is empty: MGET waited for
    /// this connection's writes), so it holds one value and the output bound, whatever it asks.
    async fn stream_values(&mut self, session: &Session, keys: Vec<bytes::Bytes>) -> io::Result<()> {
        debug_assert!(self.line.is_empty(), "a read settles the line first");
        self.output.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
        for key in keys {
            let value = crate::db::Read::get(&session.db.view(), &key).map(|(v, _)| v);
            Reply::bulk_or_nil(value).encode(session.resp, &mut self.output);
            if self.output.len() > OUTPUT_FLUSH_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Moves the pending bytes to a buffer of their size (plus [`INPUT_IDLE_BYTES`]) when the one
    /// they sit in is far larger, as after a large request. The parser's progress stays valid:
    /// the bytes keep their offsets.
    fn trim_input(&mut self) {
        let wanted = self.input.len() + INPUT_IDLE_BYTES;
        if self.input_gauge.held > INPUT_SLACK_FACTOR * wanted {
            let mut smaller = BytesMut::with_capacity(wanted);
            smaller.extend_from_slice(&self.input);
            self.input = smaller;
            self.input_gauge.replaced(&self.input);
        }
    }

    /// Adds a ready reply: encoded now if nothing waits before it.
    fn push(&mut self, reply: Reply, resp: u8) {
        if self.line.is_empty() {
            reply.encode(resp, &mut self.output);
        } else {
            self.line.push_back(Slot::Ready(reply, resp));
        }
    }

    /// Waits for every reply in line, encoding them in order, and writes the output whenever it
    /// passes its bound.
    async fn settle(&mut self) -> io::Result<()> {
        while let Some(slot) = self.line.pop_front() {
            match slot {
                Slot::Ready(reply, resp) => reply.encode(resp, &mut self.output),
                Slot::Waiting(pending, resp) => pending.await.encode(resp, &mut self.output),
            }
            if self.output.len() > OUTPUT_FLUSH_BYTES {
                self.flush().await?;
            }
        }
        self.line_charge = 0;
        Ok(())
    }

    /// Writes the output; fails if the connection is killed meanwhile (a client that does not
    /// read would otherwise hold it here for ever, and its outbox's bound would close nothing).
    async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            let write = async {
                self.stream.write_all(&self.output).await?;
                // A TLS stream holds the last record until flushed; TCP and Unix write through.
                self.stream.flush().await
            };
            tokio::select! {
                // A write that completes at once goes out first, killed or not (CLIENT KILL's
                // own reply to the client it kills).
                biased;
                written = write => written?,
                () = until_killed(&self.kill) => {
                    tracing::debug!("killed while writing (CLIENT KILL or output buffer limit); closing the connection");
                    return Err(io::Error::other("killed"));
                }
            }
            self.output.clear();
            if self.output.capacity() > 4 * OUTPUT_FLUSH_BYTES {
                self.output = BytesMut::with_capacity(INPUT_IDLE_BYTES);
            }
        }
        Ok(())
    }
}

/// The next frame of the outbox; never, for a connection without one.
async fn next_frame(outbox: &mut Option<OutboxReader>) -> bytes::Bytes {
    match outbox {
        Some(frames) => frames.next().await,
        None => std::future::pending().await,
    }
}

/// Resolves once `kill` is set. The flag is checked before each wait: a wake-up taken by an
/// earlier wait (the idle loop's) is not lost.
async fn until_killed(kill: &Kill) {
    while !kill.is_killed() {
        kill.wake.notified().await;
    }
}

/// One connection's share of [`Meters::input_buffer_bytes`]: the largest its input buffer has been
/// since it was allocated (bytes split off the front for requests are out of view but still part
/// of the allocation, so the largest view is the best lower bound). Taken off the gauge on drop.
struct InputGauge {
    meters: Arc<Meters>,
    held: usize,
}

impl InputGauge {
    fn new(meters: Arc<Meters>, buf: &BytesMut) -> InputGauge {
        let held = buf.len() + buf.capacity();
        meters.input_buffer_bytes.fetch_add(held, Ordering::Relaxed);
        InputGauge { meters, held }
    }

    /// After a read: the buffer may have grown.
    fn saw(&mut self, buf: &BytesMut) {
        let now = buf.len() + buf.capacity();
        if now > self.held {
            self.meters.input_buffer_bytes.fetch_add(now - self.held, Ordering::Relaxed);
            self.held = now;
        }
    }

    /// The buffer was replaced by `buf`.
    fn replaced(&mut self, buf: &BytesMut) {
        self.meters.input_buffer_bytes.fetch_sub(self.held, Ordering::Relaxed);
        self.held = 0;
        self.saw(buf);
    }
}

impl Drop for InputGauge {
    fn drop(&mut self) {
        self.meters.input_buffer_bytes.fetch_sub(self.held, Ordering::Relaxed);
    }
}

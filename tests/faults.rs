//! Faults: connections cut at every frame boundary and in the middle of every frame, transports
//! whose reads or writes fail, slow transports, and a graceful shutdown under load.
//!
//! Whatever happens to the transport, a call ends with its real outcome or `Unavailable` —
//! never another code, never a hang, never a panic — its handler is dropped, and neither side
//! keeps a stream, a handler or a buffered byte. Outcomes and counts are asserted, never elapsed
//! times; the timeouts below only turn a hang into a failure.

mod common;
mod fault;

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use common::{Blob, Lab, LabClient, LabImpl, LabServer, Transport};
use fault::{At, Dir, Faulty, Flow, GOAWAY, Plan, Tap};
use futures::StreamExt;
use futures::channel::mpsc;
use micro::{Client, Code, ConnectionStats, Context, Server, ServerSnapshot, Status, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};

/// Long enough to mean "hung" on a loaded machine; a passing test never comes near it.
const HANG: Duration = Duration::from_secs(20);

// ----- a harness that survives a stuck runtime ---------------------------------------------

/// Runs `test` on a runtime of its own (two workers, as on CI) on a thread of its own, and
/// fails if it does not finish within `limit`.
///
/// `#[tokio::test]` cannot report a task that never yields: dropping its runtime waits for every
/// worker, so the test hangs instead of failing. Here the runtime is let go without waiting
/// (`shutdown_background`), and a watchdog fails the test even if every worker is stuck and no
/// timer can fire.
fn hang_proof<F>(limit: Duration, test: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    count_panics();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let workers = format!("{WORKERS}{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let (done, finished) = std::sync::mpsc::channel();
    let name = workers.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap();
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(test)));
        runtime.shutdown_background();
        let _ = done.send(result);
    });
    match finished.recv_timeout(limit) {
        Ok(Ok(())) => assert_no_panics(&workers),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the test did not finish within {limit:?}: a task never yields"),
    }
}

/// Limit of a whole test, through [`hang_proof`].
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Runs each named `async fn(Transport)` once over TCP and once over the in-memory transport,
/// each through [`hang_proof`].
macro_rules! hang_proof_on_both_transports {
    ($($name:ident),* $(,)?) => {
        mod tcp {
            $(
                #[test]
                fn $name() {
                    super::hang_proof(super::TEST_LIMIT, super::$name(super::Transport::Tcp));
                }
            )*
        }
        mod memory {
            $(
                #[test]
                fn $name() {
                    super::hang_proof(super::TEST_LIMIT, super::$name(super::Transport::Memory));
                }
            )*
        }
    };
}

// ----- panics anywhere ---------------------------------------------------------------------

/// The prefix of the names of the runtime workers [`hang_proof`] starts; each test's workers add
/// a number of their own.
const WORKERS: &str = "faults-worker-";

/// The names of runtime workers that panicked: micro's own tasks (handlers, readers, writers)
/// run there, and tokio swallows a panic in a spawned task, so a test would not otherwise see it.
static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name()
                && name.starts_with(WORKERS)
            {
                let mut panicked = PANICKED.lock().unwrap_or_else(|e| e.into_inner());
                panicked.push(name.to_string());
            }
            default(info);
        }));
    });
}

/// Fails if a task panicked on the runtime workers named `workers`.
fn assert_no_panics(workers: &str) {
    let panicked = PANICKED.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        !panicked.iter().any(|name| name == workers),
        "a task panicked on a runtime worker (see stderr)"
    );
}

// ----- the service, counting its handlers --------------------------------------------------

/// Handlers started and dropped, whether they finished or were cancelled.
#[derive(Debug, Default)]
struct Handlers {
    started: AtomicU64,
    dropped: AtomicU64,
}

impl Handlers {
    fn counts(&self) -> (u64, u64) {
        (
            self.started.load(Ordering::SeqCst),
            self.dropped.load(Ordering::SeqCst),
        )
    }
}

/// Held by a running handler, or by the reply stream it returned (which the handler drains).
struct Alive(Arc<Handlers>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// `Lab`, counting every handler in and out: one left behind shows as `started > dropped`.
#[derive(Debug, Default)]
struct Tracked {
    lab: LabImpl,
    handlers: Arc<Handlers>,
}

impl Tracked {
    fn alive(&self) -> Alive {
        self.handlers.started.fetch_add(1, Ordering::SeqCst);
        Alive(self.handlers.clone())
    }
}

/// `items`, keeping `alive` until the stream is dropped.
fn holding<S: Stream>(alive: Alive, items: S) -> impl Stream<Item = S::Item> {
    items.map(move |item| {
        let _alive = &alive;
        item
    })
}

impl Lab for Tracked {
    async fn echo(&self, msg: String) -> Result<String, Status> {
        let _alive = self.alive();
        self.lab.echo(msg).await
    }

    async fn add(&self, a: i64, b: i64) -> Result<i64, Status> {
        let _alive = self.alive();
        self.lab.add(a, b).await
    }

    async fn header(&self, ctx: &Context, key: String) -> Result<Option<String>, Status> {
        let _alive = self.alive();
        self.lab.header(ctx, key).await
    }

    async fn range(
        &self,
        n: u64,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        let alive = self.alive();
        Ok(holding(alive, self.lab.range(n).await?))
    }

    async fn range_then_fail(
        &self,
        n: u64,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        let alive = self.alive();
        Ok(holding(alive, self.lab.range_then_fail(n).await?))
    }

    async fn total(
        &self,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<(u64, u64), Status> {
        let _alive = self.alive();
        self.lab.total(items).await
    }

    async fn echo_stream(
        &self,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        let alive = self.alive();
        Ok(holding(alive, self.lab.echo_stream(items).await?))
    }

    async fn take_one(
        &self,
        n: u64,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        let alive = self.alive();
        Ok(holding(alive, self.lab.take_one(n, items).await?))
    }

    async fn explode(&self) -> Result<(), Status> {
        let _alive = self.alive();
        self.lab.explode().await
    }

    async fn hold(&self) -> Result<(), Status> {
        let _alive = self.alive();
        self.lab.hold().await
    }

    async fn flood(
        &self,
        size: u32,
    ) -> Result<impl Stream<Item = Result<Blob, Status>> + Send + 'static, Status> {
        let alive = self.alive();
        Ok(holding(alive, self.lab.flood(size).await?))
    }

    async fn sink(
        &self,
        items: impl Stream<Item = Blob> + Send + Unpin + 'static,
    ) -> Result<u64, Status> {
        let _alive = self.alive();
        self.lab.sink(items).await
    }

    async fn blob(&self, size: u32) -> Result<Blob, Status> {
        let _alive = self.alive();
        self.lab.blob(size).await
    }

    async fn echo_blob(&self, blob: Blob) -> Result<Blob, Status> {
        let _alive = self.alive();
        self.lab.echo_blob(blob).await
    }

    async fn nap(&self, ms: u64) -> Result<u64, Status> {
        let _alive = self.alive();
        self.lab.nap(ms).await
    }

    async fn bomb(&self) -> Result<(), Status> {
        let _alive = self.alive();
        self.lab.bomb().await
    }

    async fn until_end(
        &self,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send, Status> {
        let alive = self.alive();
        Ok(holding(alive, self.lab.until_end(items).await?))
    }
}

// ----- one call over a faulty connection ---------------------------------------------------

/// The call a run makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `echo`: one OPEN up, one CLOSE down.
    Unary,
    /// `range(RANGE)` into a small window: DATA down, CREDIT up.
    ServerStreaming,
    /// `echo_stream`, one item at a time, each waiting for its echo: the frames each way are
    /// the same in every run.
    Bidirectional,
    /// Two of each at once on one connection.
    Mixed,
}

impl Shape {
    /// Whether every clean run sends the same frames each way, the last one needed to complete
    /// last (END_STREAM up, CLOSE down): then any fault before the end fails the call.
    fn deterministic(self) -> bool {
        matches!(self, Shape::Unary | Shape::Bidirectional)
    }
}

const SHAPES: [Shape; 4] = [
    Shape::Unary,
    Shape::ServerStreaming,
    Shape::Bidirectional,
    Shape::Mixed,
];

/// Items the bidirectional call sends.
const ITEMS: u64 = 4;
/// Replies of the server-streaming call: about 3.8 KB of messages.
const RANGE: u64 = 600;
/// The client's stream window (the minimum): the replies of `range(RANGE)` need several
/// grants of credit.
const WINDOW: u32 = 1024;

/// The next reply of a call that must have one.
async fn next<T>(
    replies: &mut (impl Stream<Item = Result<T, Status>> + Unpin),
) -> Result<T, Status> {
    replies
        .next()
        .await
        .expect("the call ended cleanly before its last reply")
}

/// The end of a reply stream: clean, or the call's error.
async fn end<T: Debug>(
    replies: &mut (impl Stream<Item = Result<T, Status>> + Unpin),
) -> Result<(), Status> {
    match replies.next().await {
        None => Ok(()),
        Some(Err(status)) => Err(status),
        Some(Ok(extra)) => panic!("a reply after the last one: {extra:?}"),
    }
}

/// Reads `0..n` and the clean end.
async fn expect_range(
    replies: &mut (impl Stream<Item = Result<u64, Status>> + Unpin),
    n: u64,
) -> Result<(), Status> {
    for expected in 0..n {
        assert_eq!(next(replies).await?, expected);
    }
    end(replies).await
}

/// Makes the call; `Ok` means it returned its full, correct result (anything wrong panics).
async fn call(shape: Shape, lab: &LabClient) -> Result<(), Status> {
    match shape {
        Shape::Unary => {
            assert_eq!(lab.echo("over the wire".into()).await?, "over the wire");
        }
        Shape::ServerStreaming => {
            let mut replies = lab.range(RANGE).await?;
            expect_range(&mut replies, RANGE).await?;
        }
        Shape::Bidirectional => {
            let (items, requests) = mpsc::unbounded::<u64>();
            let mut replies = lab.echo_stream(requests).await?;
            for item in 0..ITEMS {
                // Fails only once the call has ended, which its replies then say.
                let _ = items.unbounded_send(item);
                assert_eq!(next(&mut replies).await?, item);
            }
            drop(items);
            end(&mut replies).await?;
        }
        Shape::Mixed => {
            let calls = [Shape::Unary, Shape::ServerStreaming, Shape::Bidirectional]
                .repeat(2)
                .into_iter()
                .map(|shape| Box::pin(call(shape, lab)));
            futures::future::try_join_all(calls).await?;
        }
    }
    Ok(())
}

/// Any byte stream, boxed, so either end can be wrapped.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Both ends of a fresh connection: (client, server).
async fn pipe(transport: Transport) -> (Box<dyn Io>, Box<dyn Io>) {
    match transport {
        Transport::Memory => {
            let (client, server) = tokio::io::duplex(64 * 1024);
            (Box::new(client), Box::new(server))
        }
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
            let (client, (server, _)) = (client.unwrap(), accepted.unwrap());
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            (Box::new(client), Box::new(server))
        }
    }
}

/// Waits (at most [`HANG`]) until `check` passes, and fails with its last complaint if it
/// never does.
async fn settle(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + HANG;
    loop {
        match check() {
            Ok(()) => return,
            Err(why) if Instant::now() >= deadline => panic!("{what}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// What the faulty transports at each end of a connection do.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    client: Plan,
    server: Plan,
}

/// An end of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

impl Side {
    /// `plan` at this end, a clean transport at the other.
    fn with(self, plan: Plan) -> Faults {
        match self {
            Side::Client => Faults {
                client: plan,
                server: Plan::clean(),
            },
            Side::Server => Faults {
                client: Plan::clean(),
                server: plan,
            },
        }
    }

    /// Whether direction `dir` at this end carries the client's frames to the server.
    fn upstream(self, dir: Dir) -> bool {
        matches!(
            (self, dir),
            (Side::Client, Dir::Write) | (Side::Server, Dir::Read)
        )
    }
}

/// How a run went.
#[derive(Debug)]
struct Ran {
    /// The call returned its full, correct result (otherwise it failed with `Unavailable`).
    completed: bool,
    client: Tap,
    server: Tap,
}

impl Ran {
    fn faulted(&self) -> bool {
        self.client.faulted() || self.server.faulted()
    }
}

/// The client's side of a run: connect, call, and check that the connection holds nothing.
async fn client_side(what: &str, shape: Shape, io: impl Io) -> Result<(), Status> {
    let client = Client::builder()
        .stream_window(WINDOW)
        .connect_io(io)
        .await?;
    let lab = LabClient::new(client);
    let outcome = call(shape, &lab).await;
    settle(&format!("{what}: the client"), || {
        match lab.client().stats() {
            Some(stats) if stats == ConnectionStats::default() => Ok(()),
            stats => Err(format!("left behind {stats:?} after {outcome:?}")),
        }
    })
    .await;
    outcome
}

/// Serves one connection and makes one call over it, through faulty transports at both ends,
/// then checks what every run must satisfy: the call completed or failed with `Unavailable`,
/// nothing hung, every handler started was dropped, and neither side holds anything.
async fn run(shape: Shape, transport: Transport, faults: Faults) -> Ran {
    let what = format!("{shape:?} over {transport:?}, {faults:?}");
    let (client_io, server_io) = pipe(transport).await;
    let (client_io, client_tap) = Faulty::new(client_io, faults.client);
    let (server_io, server_tap) = Faulty::new(server_io, faults.server);
    let service = Tracked::default();
    let handlers = service.handlers.clone();
    let builder = Server::builder().add_service(LabServer::new(service));
    let stats = builder.stats();
    let server = tokio::spawn(builder.serve_connection(server_io));

    let outcome = timeout(HANG, client_side(&what, shape, client_io))
        .await
        .unwrap_or_else(|_| panic!("{what}: the call hung"));
    if let Err(status) = &outcome {
        assert_eq!(status.code(), Code::Unavailable, "{what}: {status}");
    }
    assert!(
        client_tap.faulted() || server_tap.faulted() || outcome.is_ok(),
        "{what}: no fault fired, yet {outcome:?}"
    );

    // The client is gone; the server's connection ends, and every handler with it.
    timeout(HANG, server)
        .await
        .unwrap_or_else(|_| panic!("{what}: the server's connection never ended"))
        .expect("the server task panicked")
        .expect("serve_connection failed");
    // Until micro-core's take_connection_credit stops spinning on a closed window, a handler
    // caught sending as the connection closes is never dropped here, under CPU contention:
    // see `a_send_racing_the_close_of_its_connection_ends`.
    settle(&format!("{what}: the server"), || {
        let snapshot = stats.snapshot();
        let (started, dropped) = handlers.counts();
        if snapshot == ServerSnapshot::default() && started == dropped {
            Ok(())
        } else {
            Err(format!(
                "left behind {snapshot:?}; handlers started {started}, dropped {dropped}"
            ))
        }
    })
    .await;
    Ran {
        completed: outcome.is_ok(),
        client: client_tap,
        server: server_tap,
    }
}

// ----- sweeps --------------------------------------------------------------------------------

/// What the call sends each way in a clean run: (client → server, server → client).
async fn clean_flows(shape: Shape, transport: Transport) -> (Flow, Flow) {
    let ran = run(shape, transport, Faults::default()).await;
    assert!(ran.completed && !ran.faulted(), "{ran:?}");
    let (up, down) = (ran.client.sent(), ran.client.received());
    // Both ends counted the same frames.
    assert_eq!(ran.server.received().kinds, up.kinds);
    assert_eq!(ran.server.sent().kinds, down.kinds);
    eprintln!(
        "{shape:?} over {transport:?}: client → server {} frames {:?}, server → client {} frames {:?}",
        up.frames(),
        up.names(),
        down.frames(),
        down.names()
    );
    (up, down)
}

/// What a sweep does at each point.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Cut the connection.
    Cut,
    /// Fail every read or write from there on.
    Fail,
}

/// How the runs of a sweep ended.
#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    /// A fault fired (a point past the end of a run's traffic never fires).
    faulted: usize,
    completed: usize,
    unavailable: usize,
}

impl Tally {
    fn add(&mut self, ran: &Ran) {
        self.runs += 1;
        self.faulted += usize::from(ran.faulted());
        if ran.completed {
            self.completed += 1;
        } else {
            self.unavailable += 1;
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.runs += other.runs;
        self.faulted += other.faulted;
        self.completed += other.completed;
        self.unavailable += other.unavailable;
    }
}

/// Runs `shape` with `fault` in each of `dirs`, at each end of the connection, at `points`
/// (given the frames and bytes that direction carries in a clean run).
async fn sweep(
    shape: Shape,
    transport: Transport,
    fault: Fault,
    dirs: &[Dir],
    points: fn(u64, u64) -> Vec<At>,
) -> Tally {
    let (up, down) = clean_flows(shape, transport).await;
    let mut tally = Tally::default();
    for side in [Side::Client, Side::Server] {
        for &dir in dirs {
            let flow = if side.upstream(dir) { &up } else { &down };
            for at in points(flow.frames(), flow.bytes()) {
                let plan = match fault {
                    Fault::Cut => Plan::cut(dir, at),
                    Fault::Fail => Plan::fail(dir, at),
                };
                let ran = run(shape, transport, side.with(plan)).await;
                // Before the first whole frame one way, no call can end well; for a call whose
                // frames are the same in every run, nor before the last one.
                let before_end = match at {
                    At::Frames(n) => n < flow.frames(),
                    At::MidFrame(_) => true,
                    At::Bytes(n) => n < flow.bytes(),
                };
                if before_first_frame(at) || (shape.deterministic() && before_end) {
                    assert!(!ran.completed, "{shape:?}: {fault:?} at {at:?}: {ran:?}");
                }
                tally.add(&ran);
            }
        }
    }
    eprintln!("{shape:?} over {transport:?}, {fault:?} in {dirs:?}: {tally:?}");
    assert!(tally.unavailable > 0, "{tally:?}");
    tally
}

/// Every frame boundary (after 0 ..= all frames) and the middle of every frame.
fn every_frame(frames: u64, _bytes: u64) -> Vec<At> {
    (0..=frames)
        .map(At::Frames)
        .chain((0..frames).map(At::MidFrame))
        .collect()
}

/// Every byte offset, 0 ..= all bytes (the preface included).
fn every_byte(_frames: u64, bytes: u64) -> Vec<At> {
    (0..=bytes).map(At::Bytes).collect()
}

/// Whether `at` comes before the first frame is whole (the shortest frame is 10 bytes).
fn before_first_frame(at: At) -> bool {
    match at {
        At::Frames(n) | At::MidFrame(n) => n == 0,
        At::Bytes(n) => n < fault::PREFACE_LEN + 10,
    }
}

// ----- the tests -------------------------------------------------------------------------------

/// Learns how many frames each call sends each way, then cuts its connection after every whole
/// frame and in the middle of every frame, in both directions, with the cut at the sending end
/// and at the receiving end.
async fn a_call_cut_at_every_frame_ends_in_its_result_or_unavailable(transport: Transport) {
    let mut all = Tally::default();
    for shape in SHAPES {
        let tally = sweep(
            shape,
            transport,
            Fault::Cut,
            &[Dir::Write, Dir::Read],
            every_frame,
        )
        .await;
        all.merge(&tally);
    }
    eprintln!("cuts over {transport:?}: {all:?}");
}

/// Writes fail (the transport returns an error, and stays open) from every frame boundary and
/// from the middle of every frame, at either end.
async fn failing_writes_at_every_frame_end_calls_cleanly(transport: Transport) {
    for shape in SHAPES {
        sweep(shape, transport, Fault::Fail, &[Dir::Write], every_frame).await;
    }
}

/// Reads fail with an error (not end-of-file) from every frame boundary and from the middle of
/// every frame, at either end.
async fn failing_reads_at_every_frame_end_calls_cleanly(transport: Transport) {
    for shape in SHAPES {
        sweep(shape, transport, Fault::Fail, &[Dir::Read], every_frame).await;
    }
}

/// A slow transport (every read and write waits) at both ends: every call completes.
async fn a_slow_transport_still_completes_every_call(transport: Transport) {
    let slow = Plan::delay(Duration::from_millis(1));
    for shape in SHAPES {
        let ran = run(
            shape,
            transport,
            Faults {
                client: slow,
                server: slow,
            },
        )
        .await;
        assert!(ran.completed, "{shape:?}: {ran:?}");
        assert!(
            ran.client.delays() > 0 && ran.server.delays() > 0,
            "{ran:?}"
        );
    }
}

/// A unary call with its connection cut, or its reads or writes failing, at every byte: in the
/// handshake, in a frame header, in the payload, between frames.
#[test]
fn a_unary_call_cut_or_failed_at_every_byte_ends_in_its_result_or_unavailable() {
    hang_proof(TEST_LIMIT, unary_call_at_every_byte());
}

async fn unary_call_at_every_byte() {
    let transport = Transport::Memory;
    let mut all = Tally::default();
    for fault in [Fault::Cut, Fault::Fail] {
        let tally = sweep(
            Shape::Unary,
            transport,
            fault,
            &[Dir::Write, Dir::Read],
            every_byte,
        )
        .await;
        all.merge(&tally);
    }
    eprintln!("unary, every byte: {all:?}");
}

/// Attempts of [`a_send_racing_the_close_of_its_connection_ends`].
const RACES: u64 = 1500;

/// Threads that keep the CPUs busy while they live, so the OS preempts the runtime's workers at
/// arbitrary instructions, as a loaded machine does.
struct CpuLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    fn start(threads: usize) -> CpuLoad {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The connection closes while a sender is between taking stream credit and taking connection
/// credit: the send must fail with `Unavailable`, not spin.
///
/// A 3 MiB argument to a server that takes 1 KiB frames goes out as about 3000 DATA frames in
/// one synchronous loop (`send_data`); the server cuts the connection while that loop runs, so
/// the client's `close()` lands inside it, and busy threads make the OS preempt the sender at
/// arbitrary points of it. Each attempt gives the call 5 s to end.
#[test]
// Once a bug (a sender spinning on a closed connection window, now fixed and covered
// deterministically by micro-core's `taking_credit_on_a_closed_connection_fails_at_once`);
// kept as a stress test, ~25 s under load: `cargo test --test faults -- --ignored`.
#[ignore = "stress test, ~25 s with three busy threads"]
fn a_send_racing_the_close_of_its_connection_ends() {
    let _load = CpuLoad::start(3);
    hang_proof(TEST_LIMIT, send_racing_the_close());
}

async fn send_racing_the_close() {
    for attempt in 0..RACES {
        let (client_io, server_io) = pipe(Transport::Memory).await;
        // Somewhere in the first 256 KiB of the argument.
        let cut = At::Bytes(200 + attempt * 1_237 % (256 * 1024));
        let (server_io, _tap) = Faulty::new(server_io, Plan::cut(Dir::Read, cut));
        let server = Server::builder()
            .max_frame_size(1024)
            .stream_window(8 << 20)
            .connection_window(16 << 20)
            .add_service(LabServer::new(LabImpl::default()));
        tokio::spawn(server.serve_connection(server_io));
        let Ok(client) = Client::builder().connect_io(client_io).await else {
            continue;
        };
        let lab = LabClient::new(client);
        // Spawned: a sender that spins takes a worker, not this task, and the timeout still fires.
        let call = tokio::spawn(async move {
            lab.echo_blob(Blob {
                data: vec![7; 3 << 20],
            })
            .await
        });
        let outcome = timeout(Duration::from_secs(5), call)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "attempt {attempt} (cut at {cut:?}): the call never ended; its sender spins in take_connection_credit"
                )
            })
            .unwrap();
        assert_eq!(outcome.unwrap_err().code(), Code::Unavailable);
    }
}

// ----- graceful shutdown under load ----------------------------------------------------------

/// Calls running when the shutdown starts: a quarter of each kind.
const IN_FLIGHT: u64 = 200;
/// Calls started while the GOAWAY is on its way: served in full or refused.
const RACING: u64 = 20;
/// Calls started once the client has the GOAWAY: all refused.
const LATE: u64 = 40;
/// How long the naps in flight sleep.
const NAP_MS: u64 = 300;
/// Replies of each server-streaming call in flight: about 20 KB, five times the client's
/// window, so the handler is still sending when the shutdown starts.
const LONG_RANGE: u64 = 3000;

/// Wraps each connection the client opens in a counting transport, keeping its [`Tap`].
fn tapped<IO>(taps: &Mutex<Vec<Tap>>, io: IO) -> Faulty<IO> {
    let (io, tap) = Faulty::new(io, Plan::clean());
    taps.lock().unwrap().push(tap);
    io
}

/// A call that runs until `gate` opens (a nap just sleeps); `Ok` once it got its full, correct
/// result.
async fn in_flight_call(
    i: u64,
    lab: &LabClient,
    mut gate: watch::Receiver<bool>,
) -> Result<(), Status> {
    match i % 4 {
        0 => assert_eq!(lab.nap(NAP_MS).await?, NAP_MS),
        1 => {
            let mut replies = lab.range(LONG_RANGE).await?;
            gate.wait_for(|open| *open).await.unwrap();
            expect_range(&mut replies, LONG_RANGE).await?;
        }
        2 => {
            let (items, requests) = mpsc::unbounded();
            for item in 1..=5 {
                items.unbounded_send(item).unwrap();
            }
            let rest = async move {
                gate.wait_for(|open| *open).await.unwrap();
                for item in 6..=10 {
                    let _ = items.unbounded_send(item);
                }
            };
            let (reply, ()) = tokio::join!(lab.total(requests).into_future(), rest);
            assert_eq!(reply?, (10, 55));
        }
        _ => {
            let (items, requests) = mpsc::unbounded();
            let mut replies = lab.echo_stream(requests).await?;
            for item in 0..10 {
                if item == 5 {
                    gate.wait_for(|open| *open).await.unwrap();
                }
                let _ = items.unbounded_send(item);
                assert_eq!(next(&mut replies).await?, item);
            }
            drop(items);
            end(&mut replies).await?;
        }
    }
    Ok(())
}

/// A short call of kind `i % 4`; `Ok` once it got its full, correct result.
async fn quick_call(i: u64, lab: &LabClient) -> Result<(), Status> {
    match i % 4 {
        0 => assert_eq!(lab.nap(1).await?, 1),
        1 => expect_range(&mut lab.range(10).await?, 10).await?,
        2 => assert_eq!(lab.total(futures::stream::iter(1..=4u64)).await?, (4, 10)),
        _ => {
            let mut replies = lab.echo_stream(futures::stream::iter(0..3u64)).await?;
            for item in 0..3 {
                assert_eq!(next(&mut replies).await?, item);
            }
            end(&mut replies).await?;
        }
    }
    Ok(())
}

/// Waits for every task of `calls`, returning their results.
async fn join_all(what: &str, mut calls: JoinSet<Result<(), Status>>) -> Vec<Result<(), Status>> {
    let mut results = Vec::new();
    while let Some(joined) = timeout(HANG, calls.join_next())
        .await
        .unwrap_or_else(|_| panic!("{what}: a call hung"))
    {
        results.push(joined.unwrap_or_else(|err| panic!("{what}: a call panicked: {err}")));
    }
    results
}

/// 200 calls of four kinds in flight; then a graceful shutdown. Every call in flight completes
/// with its full result; a call racing the GOAWAY is served in full or refused; every call
/// started after the client has the GOAWAY is refused with `Unavailable`; the server returns
/// `Ok`, and every handler that started was dropped.
async fn graceful_shutdown_under_load_loses_nothing(transport: Transport) {
    let service = Tracked::default();
    let handlers = service.handlers.clone();
    let builder = Server::builder().add_service(LabServer::new(service));
    let stats = builder.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let signal = async move {
        let _ = stopped.await;
    };
    let taps = Arc::new(Mutex::new(Vec::new()));
    // A small window keeps the server-streaming handlers waiting for their reader.
    let client = Client::builder().stream_window(4 * 1024);
    let (server, client) = match transport {
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(builder.serve_listener_with_shutdown(listener, signal));
            let taps = taps.clone();
            let client = client.connect_with(move || {
                let taps = taps.clone();
                async move {
                    let socket = TcpStream::connect(addr).await?;
                    socket.set_nodelay(true)?;
                    Ok(tapped(&taps, socket))
                }
            });
            (server, client.await.unwrap())
        }
        Transport::Memory => {
            let (listener, connector) = micro::transport::memory();
            let server = tokio::spawn(builder.serve_incoming(listener, signal));
            let taps = taps.clone();
            let client = client.connect_with(move || {
                std::future::ready(connector.connect().map(|io| tapped(&taps, io)))
            });
            (server, client.await.unwrap())
        }
    };
    let lab = LabClient::new(client);

    // 1. Every call is running on the server.
    let (open_gate, gate) = watch::channel(false);
    let mut in_flight = JoinSet::new();
    for i in 0..IN_FLIGHT {
        let (lab, gate) = (lab.clone(), gate.clone());
        in_flight.spawn(async move { in_flight_call(i, &lab, gate).await });
    }
    settle("the calls in flight", || match handlers.counts() {
        (IN_FLIGHT, _) => Ok(()),
        counts => Err(format!("handlers (started, dropped): {counts:?}")),
    })
    .await;

    // 2. The shutdown starts; calls race the GOAWAY.
    stop.send(()).unwrap();
    let mut racing = JoinSet::new();
    for i in 0..RACING {
        let lab = lab.clone();
        racing.spawn(async move { quick_call(i, &lab).await });
    }
    let first = taps.lock().unwrap()[0].clone();
    settle("the GOAWAY", || match first.received().count(GOAWAY) {
        1 => Ok(()),
        n => Err(format!("{n} GOAWAY frames reached the client")),
    })
    .await;

    // 3. The client has the GOAWAY: every new call is refused.
    let mut late = JoinSet::new();
    for i in 0..LATE {
        let lab = lab.clone();
        late.spawn(async move { quick_call(i, &lab).await });
    }
    for result in join_all("late", late).await {
        let err = result.expect_err("a call started after the GOAWAY was served");
        assert_eq!(err.code(), Code::Unavailable, "{err}");
    }

    // 4. The calls in flight finish, each with its full result. (Until the server lingers after
    // its last frame, a range call still granting credit as the server closes can, rarely, lose
    // its end with "connection lost: broken pipe": see
    // `a_call_completed_during_a_shutdown_reaches_a_slow_reader`.)
    open_gate.send(true).unwrap();
    let results = join_all("in flight", in_flight).await;
    let completed = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(completed as u64, IN_FLIGHT, "{results:?}");
    let mut served = 0;
    for result in join_all("racing", racing).await {
        match result {
            Ok(()) => served += 1,
            Err(err) => assert_eq!(err.code(), Code::Unavailable, "{err}"),
        }
    }

    // 5. The server returns, and nothing was lost or left behind.
    timeout(HANG, server)
        .await
        .expect("the server never finished shutting down")
        .expect("the server task panicked")
        .expect("the server failed");
    eprintln!(
        "shutdown over {transport:?}: {IN_FLIGHT} in flight completed, {served} of {RACING} racing served, {LATE} late refused"
    );
    let expected = IN_FLIGHT + served;
    settle("the handlers", || match handlers.counts() {
        counts if counts == (expected, expected) => Ok(()),
        counts => Err(format!(
            "handlers (started, dropped) {counts:?}, expected {expected} of each: every call served, and no other"
        )),
    })
    .await;
    assert_eq!(stats.snapshot(), ServerSnapshot::default());
}

/// Replies of the call [`a_call_completed_during_a_shutdown_reaches_a_slow_reader`] reads:
/// about 1.7 KB, more than one and a half windows of the client's, so reading the last of them
/// grants credit once more.
const SLOW_RANGE: u64 = 300;

/// A call in flight when a graceful shutdown starts, whose client reads its last replies slowly
/// (64 bytes per read, 5 ms apart): the server completes it, and the client gets all of it.
///
/// The server drops the connection the moment its last call has ended. The client, still
/// reading the replies that call sent before its CLOSE, grants credit for them; writing that
/// CREDIT fails (broken pipe: the server is gone), and the failed write closes the whole
/// connection, so the CLOSE still unread in the transport is lost and the completed call fails
/// with `Unavailable`.
#[test]
fn a_call_completed_during_a_shutdown_reaches_a_slow_reader() {
    hang_proof(TEST_LIMIT, completed_call_reaches_a_slow_reader());
}

async fn completed_call_reaches_a_slow_reader() {
    let (listener, connector) = micro::transport::memory();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::builder()
        .add_service(LabServer::new(LabImpl::default()))
        .serve_incoming(listener, async move {
            let _ = stopped.await;
        });
    let server = tokio::spawn(server);
    let slow = Plan::slow_reads(Duration::from_millis(5), 64);
    let client = Client::builder()
        .stream_window(WINDOW)
        .connect_with(move || {
            std::future::ready(connector.connect().map(|io| Faulty::new(io, slow).0))
        })
        .await
        .unwrap();
    let lab = LabClient::new(client);
    // Accepted: the call is in flight when the shutdown starts.
    let mut replies = lab.range(SLOW_RANGE).await.unwrap();
    stop.send(()).unwrap();
    let outcome = timeout(HANG, expect_range(&mut replies, SLOW_RANGE))
        .await
        .expect("the call hung");
    assert!(
        outcome.is_ok(),
        "the server completed the call, yet the client lost it: {outcome:?}"
    );
    timeout(HANG, server)
        .await
        .expect("the server never finished shutting down")
        .unwrap()
        .unwrap();
}

hang_proof_on_both_transports!(
    a_call_cut_at_every_frame_ends_in_its_result_or_unavailable,
    failing_writes_at_every_frame_end_calls_cleanly,
    failing_reads_at_every_frame_end_calls_cleanly,
    a_slow_transport_still_completes_every_call,
    graceful_shutdown_under_load_loses_nothing,
);

//! The work queue, one suite against both backends, plus what only Redis
//! does: reclaiming the entries of dead consumers, and living through a
//! Redis restart.
//!
//! The Redis tests use the Redis at `NOVA_TEST_REDIS_URL` (default
//! redis://127.0.0.1:6379), each under a fresh key prefix that is deleted at
//! the end. They fail, never skip, when it is not running. The restart test
//! runs a private redis-server of its own, so it never disturbs that one.

use std::collections::HashSet;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nova::queue::{Delivery, Queue, RunId};

const LONG_LEASE: Duration = Duration::from_secs(30);

fn redis_url() -> String {
    std::env::var("NOVA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique(what: &str) -> String {
    format!("novatest-{what}-{}", uuid::Uuid::now_v7().simple())
}

/// Where the consumers of one test meet.
enum Backend {
    Memory(Queue),
    Redis { prefix: String, _keys: Keys },
}

impl Backend {
    fn memory() -> Backend {
        Backend::Memory(Queue::memory())
    }

    async fn redis() -> Backend {
        let prefix = unique("queue");
        // The first connection proves Redis is there, or says how to start it.
        let probe = Queue::redis(&redis_url(), &prefix, "probe", LONG_LEASE).await;
        if let Err(e) = probe {
            panic!(
                "Redis is not reachable at {} ({e}). These tests need it: start it with \
                 `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" \
                 --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log` \
                 or set NOVA_TEST_REDIS_URL",
                redis_url()
            );
        }
        Backend::Redis {
            _keys: Keys {
                url: redis_url(),
                pattern: format!("{prefix}:*"),
            },
            prefix,
        }
    }

    /// A consumer: the shared in-process queue, or a Redis consumer of its
    /// own name in the test's group.
    async fn consumer(&self, name: &str, lease: Duration) -> Queue {
        match self {
            Backend::Memory(q) => q.clone(),
            Backend::Redis { prefix, .. } => Queue::redis(&redis_url(), prefix, name, lease)
                .await
                .expect("connect to redis"),
        }
    }
}

/// Deletes a test's keys when the test ends, passed or not.
struct Keys {
    url: String,
    pattern: String,
}

impl Drop for Keys {
    fn drop(&mut self) {
        let script = format!(
            "redis-cli -u '{url}' --scan --pattern '{pattern}' | xargs -r redis-cli -u '{url}' del",
            url = self.url,
            pattern = self.pattern
        );
        let _ = Command::new("sh").args(["-c", &script]).output();
    }
}

fn ids(n: usize) -> Vec<RunId> {
    (0..n).map(|_| uuid::Uuid::now_v7()).collect()
}

async fn fifo(b: &Backend) {
    let q = b.consumer("c1", LONG_LEASE).await;
    let runs = ids(5);
    for run in &runs {
        q.enqueue(*run).await.unwrap();
    }
    for run in &runs {
        let d = q
            .next(Duration::from_secs(2))
            .await
            .unwrap()
            .expect("a delivery");
        assert_eq!(d.run_id, *run);
        assert_eq!(d.deliveries, 1);
        q.ack(&d).await.unwrap();
    }
    assert_eq!(q.depth().await.unwrap(), 0);
}

async fn next_times_out(b: &Backend) {
    let q = b.consumer("c1", LONG_LEASE).await;
    let start = Instant::now();
    assert_eq!(q.next(Duration::from_millis(300)).await.unwrap(), None);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "waited too long: {took:?}");
    // A zero wait only looks.
    let start = Instant::now();
    assert_eq!(q.next(Duration::ZERO).await.unwrap(), None);
    assert!(start.elapsed() < Duration::from_secs(1));
}

async fn waiting_consumer_wakes_on_enqueue(b: &Backend) {
    let q = b.consumer("c1", LONG_LEASE).await;
    let producer = b.consumer("producer", LONG_LEASE).await;
    let run = uuid::Uuid::now_v7();
    let waiter = tokio::spawn(async move {
        let start = Instant::now();
        let d = q.next(Duration::from_secs(10)).await.unwrap();
        (d, start.elapsed(), q)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    producer.enqueue(run).await.unwrap();
    let (d, took, q) = waiter.await.unwrap();
    let d = d.expect("woken with the entry");
    assert_eq!(d.run_id, run);
    assert!(took < Duration::from_secs(2), "woke late: {took:?}");
    q.ack(&d).await.unwrap();
}

async fn ack_removes(b: &Backend) {
    let q = b.consumer("c1", LONG_LEASE).await;
    let run = uuid::Uuid::now_v7();
    q.enqueue(run).await.unwrap();
    let d = q.next(Duration::from_secs(2)).await.unwrap().unwrap();
    assert_eq!(q.depth().await.unwrap(), 1, "in flight still counts");
    q.ack(&d).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 0);
    assert_eq!(q.next(Duration::from_millis(200)).await.unwrap(), None);
    // Acking twice is harmless.
    q.ack(&d).await.unwrap();
}

async fn depth_counts_waiting_and_in_flight(b: &Backend) {
    let q = b.consumer("c1", LONG_LEASE).await;
    assert_eq!(q.depth().await.unwrap(), 0);
    for run in ids(3) {
        q.enqueue(run).await.unwrap();
    }
    assert_eq!(q.depth().await.unwrap(), 3);
    let d = q.next(Duration::from_secs(2)).await.unwrap().unwrap();
    assert_eq!(q.depth().await.unwrap(), 3);
    q.ack(&d).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 2);
}

async fn consumers_never_share_an_entry(b: &Backend) {
    let runs = ids(60);
    let producer = b.consumer("producer", LONG_LEASE).await;
    for run in &runs {
        producer.enqueue(*run).await.unwrap();
    }
    let mut tasks = Vec::new();
    for name in ["c1", "c2", "c3"] {
        let q = b.consumer(name, LONG_LEASE).await;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(d) = q.next(Duration::from_millis(300)).await.unwrap() {
                got.push(d.run_id);
                // Hold it a little, as a worker would, before acking.
                tokio::time::sleep(Duration::from_millis(2)).await;
                q.ack(&d).await.unwrap();
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for run in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(run), "{run} delivered twice");
        }
    }
    assert_eq!(total, runs.len());
    assert_eq!(seen, runs.into_iter().collect());
    assert_eq!(producer.depth().await.unwrap(), 0);
}

async fn foreign_delivery_is_refused(b: &Backend) {
    let q = b.consumer("c1", LONG_LEASE).await;
    // Kept to the end: dropping it deletes its keys.
    let redis = Backend::redis().await;
    let other = match q.backend() {
        "redis" => Queue::memory(),
        _ => redis.consumer("c1", LONG_LEASE).await,
    };
    other.enqueue(uuid::Uuid::now_v7()).await.unwrap();
    let d = other.next(Duration::from_secs(2)).await.unwrap().unwrap();
    assert!(q.ack(&d).await.is_err());
    assert!(q.extend(&d).await.is_err());
    other.ack(&d).await.unwrap();
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::Backend::memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::Backend::redis().await).await;
                }
            )*
        }
    };
}

suite!(
    fifo,
    next_times_out,
    waiting_consumer_wakes_on_enqueue,
    ack_removes,
    depth_counts_waiting_and_in_flight,
    consumers_never_share_an_entry,
    foreign_delivery_is_refused,
);

#[test]
fn backends_are_named() {
    assert_eq!(Queue::memory().backend(), "in-process");
}

const SHORT_LEASE: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reclaims_the_entries_of_a_dead_consumer() {
    let b = Backend::redis().await;
    let dead = b.consumer("dead", SHORT_LEASE).await;
    let alive = b.consumer("alive", SHORT_LEASE).await;
    assert_eq!(alive.backend(), "redis");
    let run = uuid::Uuid::now_v7();
    dead.enqueue(run).await.unwrap();
    let first = dead.next(Duration::from_secs(2)).await.unwrap().unwrap();
    assert_eq!(first.run_id, run);
    let taken = Instant::now();
    // "dead" never acks nor extends. Within the lease nobody else gets it.
    assert_eq!(alive.next(Duration::from_millis(100)).await.unwrap(), None);
    let again = alive
        .next(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("reclaimed after the lease");
    assert!(taken.elapsed() >= SHORT_LEASE, "reclaimed before the lease");
    assert_eq!(again.run_id, run);
    assert_eq!(again.deliveries, 2);
    // The dead consumer lost it: renewing says so and takes nothing back.
    assert!(!dead.renew(&first).await.unwrap());
    dead.extend(&first).await.unwrap();
    assert!(alive.renew(&again).await.unwrap());
    alive.ack(&again).await.unwrap();
    assert_eq!(alive.depth().await.unwrap(), 0);
    assert_eq!(alive.next(Duration::from_millis(500)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_prunes_the_consumers_of_processes_that_ended() {
    let b = Backend::redis().await;
    let ended = b.consumer("ended", LONG_LEASE).await;
    let holder = b.consumer("holder", LONG_LEASE).await;
    let me = b.consumer("me", LONG_LEASE).await;
    // "ended" took an entry and acked it: listed, holding nothing.
    ended.enqueue(uuid::Uuid::now_v7()).await.unwrap();
    let done = ended.next(Duration::from_secs(2)).await.unwrap().unwrap();
    ended.ack(&done).await.unwrap();
    // "holder" holds one.
    holder.enqueue(uuid::Uuid::now_v7()).await.unwrap();
    let held = holder.next(Duration::from_secs(2)).await.unwrap().unwrap();
    assert_eq!(me.next(Duration::from_millis(10)).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Only "ended": "holder" has a pending entry, "me" is the caller, and
    // none is idle for an hour.
    assert_eq!(
        me.prune_consumers(Duration::from_secs(3600)).await.unwrap(),
        0
    );
    assert_eq!(
        me.prune_consumers(Duration::from_millis(200))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        me.prune_consumers(Duration::from_millis(200))
            .await
            .unwrap(),
        0
    );
    // The holder's entry is still its own.
    assert!(holder.renew(&held).await.unwrap());
    holder.ack(&held).await.unwrap();
    // The in-process queue has no consumers to prune.
    assert_eq!(
        Queue::memory()
            .prune_consumers(Duration::ZERO)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_extend_prevents_reclaim() {
    let b = Backend::redis().await;
    let slow = b.consumer("slow", SHORT_LEASE).await;
    let other = b.consumer("other", SHORT_LEASE).await;
    let run = uuid::Uuid::now_v7();
    slow.enqueue(run).await.unwrap();
    let d = slow.next(Duration::from_secs(2)).await.unwrap().unwrap();

    // A long run: renewed every 100 ms for four leases.
    let keeper = {
        let (slow, d) = (slow.clone(), d.clone());
        tokio::spawn(async move {
            let until = Instant::now() + 4 * SHORT_LEASE;
            while Instant::now() < until {
                assert!(slow.renew(&d).await.unwrap(), "lost while renewing");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let watched = Instant::now();
    while watched.elapsed() < 4 * SHORT_LEASE {
        let stolen = other.next(Duration::from_millis(200)).await.unwrap();
        assert_eq!(stolen, None, "reclaimed while its consumer renewed it");
    }
    keeper.await.unwrap();

    // Renewals stop: after the lease it goes to the other consumer.
    let again: Delivery = other
        .next(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("reclaimed once renewals stopped");
    assert_eq!(again.run_id, run);
    other.ack(&again).await.unwrap();
}

/// A redis-server of this test's own on a free port, killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (apt-get install redis-server)");
        let redis = PrivateRedis { port, child };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "private redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: everything in it is gone, as with a crash without
    /// persistence.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_queue_lives_through_a_redis_restart() {
    let port = free_port();
    let mut server = PrivateRedis::start(port);
    let url = server.url();
    let worker = Queue::redis(&url, "restart", "worker", Duration::from_secs(1))
        .await
        .unwrap();
    let api = Queue::redis(&url, "restart", "api", Duration::from_secs(1))
        .await
        .unwrap();

    for run in ids(3) {
        api.enqueue(run).await.unwrap();
    }
    let held = worker.next(Duration::from_secs(2)).await.unwrap().unwrap();

    server.kill();
    // While it is down: errors, not panics nor hangs, and no hot loop.
    let start = Instant::now();
    let (down, enqueued, pinged) = tokio::join!(
        worker.next(Duration::from_millis(300)),
        api.enqueue(uuid::Uuid::now_v7()),
        api.ping(),
    );
    let took = start.elapsed();
    assert!(down.is_err(), "next while Redis is down: {down:?}");
    assert!(
        took >= Duration::from_millis(250),
        "next failed without waiting: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "calls hung: {took:?}");
    assert!(enqueued.is_err());
    assert!(pinged.is_err());

    let _server = PrivateRedis::start(port);
    // The clients reconnect by themselves, within a second or so.
    let until = Instant::now() + Duration::from_secs(15);
    let after = uuid::Uuid::now_v7();
    while let Err(e) = api.enqueue(after).await {
        assert!(Instant::now() < until, "enqueue never recovered: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.ping().await.unwrap();

    // The stream and the group were lost; the group is recreated on the
    // worker's first read and the new entry delivered.
    let mut got = None;
    while got.is_none() {
        assert!(Instant::now() < until, "next never recovered");
        got = worker
            .next(Duration::from_secs(1))
            .await
            .unwrap_or_else(|e| {
                eprintln!("next after restart: {e}");
                None
            });
    }
    let got = got.unwrap();
    assert_eq!(got.run_id, after);
    worker.ack(&got).await.unwrap();
    // The entry held across the restart is gone with it: renewing says so,
    // acking it is harmless.
    assert!(!worker.renew(&held).await.unwrap());
    worker.ack(&held).await.unwrap();

    // Business as usual, for a consumer that never saw NOGROUP too.
    let more = ids(5);
    for run in &more {
        worker.enqueue(*run).await.unwrap();
    }
    for run in &more {
        let d = api.next(Duration::from_secs(2)).await.unwrap().unwrap();
        assert_eq!(d.run_id, *run);
        api.ack(&d).await.unwrap();
    }
    assert_eq!(api.depth().await.unwrap(), 0);
    worker.close().await;
    api.close().await;
}

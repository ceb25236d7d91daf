//! The plugins' kv store on Redis: namespacing, TTL, isolation and limits.
//!
//! Uses the Redis at `NOVA_TEST_REDIS_URL` (default redis://127.0.0.1:6379)
//! under a fresh key prefix per test, deleted at the end; fails, never
//! skips, when it is not running.

use std::process::Command;
use std::time::Duration;

use fred::prelude::{KeysInterface, Value};
use nova::kv::{Kv, KvError, KvQuota, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use nova::redis::Connection;

/// A quota no test but the quota test comes near.
const Q: KvQuota = KvQuota {
    keys: 100_000,
    bytes: 1 << 30,
};

fn redis_url() -> String {
    std::env::var("NOVA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A kv store under a fresh prefix, a raw client to look behind it, and the
/// cleanup of the prefix.
struct Fixture {
    kv: Kv,
    raw: Connection,
    prefix: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let prefix = format!("novatest-kv-{}", uuid::Uuid::now_v7().simple());
        let kv = match Kv::redis(&redis_url(), &prefix).await {
            Ok(kv) => kv,
            Err(e) => panic!(
                "Redis is not reachable at {} ({e}). These tests need it: start it with \
                 `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" \
                 --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log` \
                 or set NOVA_TEST_REDIS_URL",
                redis_url()
            ),
        };
        let raw = Connection::open(&redis_url())
            .await
            .expect("raw connection");
        Fixture { kv, raw, prefix }
    }

    async fn raw_get(&self, key: &str) -> Option<Vec<u8>> {
        self.raw.client().get(key).await.unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let script = format!(
            "redis-cli -u '{url}' --scan --pattern '{prefix}:*' | xargs -r redis-cli -u '{url}' del",
            url = redis_url(),
            prefix = self.prefix
        );
        let _ = Command::new("sh").args(["-c", &script]).output();
    }
}

#[tokio::test]
async fn get_set_delete_under_the_plugins_namespace() {
    let f = Fixture::new().await;
    let kv = &f.kv;
    assert_eq!(kv.backend(), "redis");
    assert_eq!(kv.get("alpha", "k").await.unwrap(), None);
    kv.set("alpha", "k", b"one".to_vec(), None, Q)
        .await
        .unwrap();
    assert_eq!(kv.get("alpha", "k").await.unwrap(), Some(b"one".to_vec()));
    // Stored where the design says, and nowhere else.
    let key = format!("{}:kv:alpha:k", f.prefix);
    assert_eq!(f.raw_get(&key).await, Some(b"one".to_vec()));
    // Overwriting replaces; binary values survive intact.
    let binary: Vec<u8> = (0..=255).collect();
    kv.set("alpha", "k", binary.clone(), None, Q).await.unwrap();
    assert_eq!(kv.get("alpha", "k").await.unwrap(), Some(binary));
    assert!(kv.delete("alpha", "k").await.unwrap());
    assert!(!kv.delete("alpha", "k").await.unwrap());
    assert_eq!(kv.get("alpha", "k").await.unwrap(), None);
    assert_eq!(f.raw_get(&key).await, None);
    // Keys may contain the separator without escaping their namespace.
    kv.set("alpha", "a:b:c", b"x".to_vec(), None, Q)
        .await
        .unwrap();
    assert_eq!(kv.get("alpha", "a:b:c").await.unwrap(), Some(b"x".to_vec()));
    // An empty value is a value.
    kv.set("alpha", "empty", Vec::new(), None, Q).await.unwrap();
    assert_eq!(kv.get("alpha", "empty").await.unwrap(), Some(Vec::new()));
}

#[tokio::test]
async fn ttl_expires() {
    let f = Fixture::new().await;
    let kv = &f.kv;
    kv.set(
        "alpha",
        "t",
        b"x".to_vec(),
        Some(Duration::from_millis(300)),
        Q,
    )
    .await
    .unwrap();
    kv.set("alpha", "forever", b"y".to_vec(), None, Q)
        .await
        .unwrap();
    assert_eq!(kv.get("alpha", "t").await.unwrap(), Some(b"x".to_vec()));
    let ttl: Value = f
        .raw
        .client()
        .pttl(format!("{}:kv:alpha:t", f.prefix))
        .await
        .unwrap();
    let ttl = ttl.as_i64().unwrap();
    assert!(ttl > 0 && ttl <= 300, "pttl {ttl}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(kv.get("alpha", "t").await.unwrap(), None);
    assert!(
        !kv.delete("alpha", "t").await.unwrap(),
        "expired keys are gone"
    );
    assert_eq!(
        kv.get("alpha", "forever").await.unwrap(),
        Some(b"y".to_vec())
    );

    // Setting again without a TTL makes the key permanent.
    kv.set(
        "alpha",
        "t",
        b"x".to_vec(),
        Some(Duration::from_millis(200)),
        Q,
    )
    .await
    .unwrap();
    kv.set("alpha", "t", b"z".to_vec(), None, Q).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kv.get("alpha", "t").await.unwrap(), Some(b"z".to_vec()));

    // A zero TTL stores nothing (and removes what was there).
    kv.set("alpha", "t", b"w".to_vec(), Some(Duration::ZERO), Q)
        .await
        .unwrap();
    assert_eq!(kv.get("alpha", "t").await.unwrap(), None);
}

#[tokio::test]
async fn plugins_are_isolated() {
    let f = Fixture::new().await;
    let kv = &f.kv;
    kv.set("alpha", "k", b"a".to_vec(), None, Q).await.unwrap();
    kv.set("beta", "k", b"b".to_vec(), None, Q).await.unwrap();
    assert_eq!(kv.get("alpha", "k").await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(kv.get("beta", "k").await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(kv.get("gamma", "k").await.unwrap(), None);
    assert!(!kv.delete("gamma", "k").await.unwrap());
    assert!(kv.delete("beta", "k").await.unwrap());
    assert_eq!(kv.get("alpha", "k").await.unwrap(), Some(b"a".to_vec()));

    // Two deployments (prefixes) on one Redis do not see each other.
    let other = Fixture::new().await;
    assert_eq!(other.kv.get("alpha", "k").await.unwrap(), None);

    // Clones share the store.
    let clone = kv.clone();
    assert_eq!(clone.get("alpha", "k").await.unwrap(), Some(b"a".to_vec()));
}

#[tokio::test]
async fn limits_hold() {
    let f = Fixture::new().await;
    let kv = &f.kv;
    assert_eq!(kv.get("alpha", "").await, Err(KvError::BadKey));
    assert_eq!(
        kv.set("alpha", "", b"x".to_vec(), None, Q).await,
        Err(KvError::BadKey)
    );
    assert_eq!(kv.delete("alpha", "").await, Err(KvError::BadKey));
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert_eq!(
        kv.set("alpha", &long, b"x".to_vec(), None, Q).await,
        Err(KvError::BadKey)
    );
    let longest = "k".repeat(MAX_KEY_BYTES);
    kv.set("alpha", &longest, b"x".to_vec(), None, Q)
        .await
        .unwrap();
    assert_eq!(
        kv.set("alpha", "big", vec![0; MAX_VALUE_BYTES + 1], None, Q)
            .await,
        Err(KvError::ValueTooLarge(MAX_VALUE_BYTES + 1))
    );
    assert_eq!(kv.get("alpha", "big").await.unwrap(), None);
    let largest = vec![7u8; MAX_VALUE_BYTES];
    kv.set("alpha", "big", largest.clone(), None, Q)
        .await
        .unwrap();
    assert_eq!(kv.get("alpha", "big").await.unwrap(), Some(largest));
}

#[tokio::test]
async fn unreachable_redis_is_an_error() {
    // Nothing listens on a port the OS just handed out and took back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    match Kv::redis(&format!("redis://127.0.0.1:{port}"), "x").await {
        Err(KvError::Redis(message)) => assert!(!message.is_empty()),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
    assert!(matches!(
        Kv::redis("not a url", "x").await,
        Err(KvError::Redis(_))
    ));
}

/// Each plugin's quota of keys and bytes holds on Redis too: recorded in
/// the usage hash by the script that writes, freed by deletes and by
/// expiry, and other plugins are untouched.
#[tokio::test]
async fn quotas_hold_per_plugin() {
    let f = Fixture::new().await;
    let kv = &f.kv;
    let quota = KvQuota {
        keys: 3,
        bytes: 100,
    };
    for i in 0..3 {
        kv.set("alpha", &format!("k{i}"), vec![1; 10], None, quota)
            .await
            .unwrap();
    }
    assert_eq!(
        kv.set("alpha", "k3", vec![1; 10], None, quota).await,
        Err(KvError::Full(quota))
    );
    assert_eq!(f.raw_get(&format!("{}:kv:alpha:k3", f.prefix)).await, None);
    // Replacing a key adds no key; growing past the bytes is refused.
    kv.set("alpha", "k0", vec![2; 10], None, quota)
        .await
        .unwrap();
    assert_eq!(
        kv.set("alpha", "k1", vec![1; 90], None, quota).await,
        Err(KvError::Full(quota))
    );
    // Another plugin is unaffected.
    kv.set("beta", "k3", vec![1; 10], None, quota)
        .await
        .unwrap();
    // A delete frees room.
    assert!(kv.delete("alpha", "k1").await.unwrap());
    kv.set("alpha", "k3", vec![1; 10], None, quota)
        .await
        .unwrap();
    // An expired key frees room (swept when the quota is reached).
    kv.set(
        "gamma",
        "t",
        vec![1; 90],
        Some(Duration::from_millis(50)),
        quota,
    )
    .await
    .unwrap();
    assert_eq!(
        kv.set("gamma", "u", vec![1; 90], None, quota).await,
        Err(KvError::Full(quota))
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    kv.set("gamma", "u", vec![1; 90], None, quota)
        .await
        .unwrap();
    // A key deleted behind the store's back (eviction) frees room too.
    let _: i64 = f
        .raw
        .client()
        .del(format!("{}:kv:gamma:u", f.prefix))
        .await
        .unwrap();
    kv.set("gamma", "v", vec![1; 90], None, quota)
        .await
        .unwrap();
}

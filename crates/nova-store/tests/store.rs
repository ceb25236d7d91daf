//! The store's one suite, run against both backends.
//!
//! Each check is written once, as `async fn check_xxx(store: &Store)`, and
//! `suite!` runs it on a fresh SQLite file, on a fresh Postgres database
//! (CREATE DATABASE per test, dropped at the end) and on in-memory SQLite,
//! so tests never see each other's rows and the backends are held to the
//! same behaviour.
//!
//! Postgres comes from `NOVA_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the tests fail, not skip,
//! when it is not reachable.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nova_store::{
    Doc, DocQuota, ListRuns, NewRun, RawJson, Run, RunId, RunStatus, RunSummary, SecretRow,
    StepOutcome, StepSpec, StepStatus, Store, StoreError,
};
use serde_json::{Value, json};

/// No quota: the documents tests that are not about quotas.
const NO_QUOTA: DocQuota = DocQuota::UNLIMITED;

/// A JSON value as the store takes it.
fn raw(value: Value) -> RawJson {
    RawJson::from_value(&value)
}

use sqlx::Connection;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const LONG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Harness

/// Where a test's store lives, so that it can be opened again.
#[derive(Clone)]
enum Location {
    Sqlite(PathBuf),
    Postgres(String),
    /// `sqlite::memory:`: one connection does reads and writes, so a call
    /// that waited for itself would hang here.
    Memory,
}

impl Location {
    async fn open(&self) -> Store {
        match self {
            Location::Sqlite(dir) => Store::open_default(dir).await.expect("open SQLite store"),
            Location::Postgres(url) => Store::connect(url).await.expect("connect Postgres store"),
            Location::Memory => Store::connect("sqlite::memory:")
                .await
                .expect("in-memory SQLite store"),
        }
    }
}

/// A fresh database for one test; `finish` removes it.
struct TestDb {
    location: Location,
    cleanup: Cleanup,
}

enum Cleanup {
    None,
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

fn pg_base_url() -> String {
    std::env::var("NOVA_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG.to_owned())
}

/// The base URL with its database replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (base, None),
    };
    let server = match main
        .strip_prefix("postgres://")
        .or(main.strip_prefix("postgresql://"))
    {
        Some(rest) => match rest.split_once('/') {
            Some((server, _)) => server,
            None => rest,
        },
        None => panic!("NOVA_TEST_DATABASE_URL must be a postgres:// URL, not {base:?}"),
    };
    match query {
        Some(q) => format!("postgres://{server}/{name}?{q}"),
        None => format!("postgres://{server}/{name}"),
    }
}

async fn admin_connection(admin_url: &str) -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(admin_url).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "cannot reach Postgres at {admin_url}: {e}\n\
             These tests need a running PostgreSQL (trust auth, database `test`). Start it with\n\
             \n    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             \nand check with `pg_isready -h 127.0.0.1`, or point NOVA_TEST_DATABASE_URL at another server."
        ),
    }
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb {
            location: Location::Sqlite(dir.path().to_owned()),
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    async fn memory() -> TestDb {
        TestDb {
            location: Location::Memory,
            cleanup: Cleanup::None,
        }
    }

    async fn postgres() -> TestDb {
        let admin_url = pg_base_url();
        let name = format!("nova_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = admin_connection(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        TestDb {
            location: Location::Postgres(with_database(&admin_url, &name)),
            cleanup: Cleanup::Postgres { admin_url, name },
        }
    }

    async fn finish(self) {
        if let Cleanup::Postgres { admin_url, name } = self.cleanup {
            let mut conn = admin_connection(&admin_url).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .expect("DROP DATABASE");
            let _ = conn.close().await;
        }
    }
}

/// Runs `check` on a store at a fresh location, then removes the database
/// even if the check panicked (the panic is passed on).
async fn run_check<F, Fut>(db: TestDb, check: F)
where
    F: FnOnce(Location) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(check(db.location.clone())).await;
    db.finish().await;
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("check did not finish: {e}"),
        }
    }
}

/// One test per backend for each `check_xxx(store: &Store)`: an SQLite
/// file, Postgres, and in-memory SQLite.
macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run_check(super::TestDb::sqlite().await, |at| async move {
                        let store = at.open().await;
                        assert_eq!(store.backend(), "sqlite");
                        super::$check(&store).await;
                        store.close().await;
                    })
                    .await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run_check(super::TestDb::memory().await, |at| async move {
                        let store = at.open().await;
                        assert_eq!(store.backend(), "sqlite");
                        super::$check(&store).await;
                        store.close().await;
                    })
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run_check(super::TestDb::postgres().await, |at| async move {
                        let store = at.open().await;
                        assert_eq!(store.backend(), "postgres");
                        super::$check(&store).await;
                        store.close().await;
                    })
                    .await;
                }
            )*
        }
    };
}

suite!(
    check_create_and_get,
    check_idempotency,
    check_concurrent_idempotency,
    check_list_and_pages,
    check_list_by_bytes,
    check_docs_quota,
    check_doc_pages,
    check_claim_exclusive,
    check_claim_takeover_after_lease,
    check_concurrent_claims,
    check_step_checkpoints,
    check_step_guards,
    check_finish_run_once,
    check_complete_run,
    check_claim_and_start,
    check_finished_among,
    check_cancel_queued,
    check_cancel_running,
    check_stale_runs,
    check_unfinished_runs,
    check_count_by_status,
    check_delete_finished,
    check_docs_versions,
    check_docs_conflicts,
    check_docs_concurrent_conditional,
    check_docs_concurrent_unconditional,
    check_docs_list_by_prefix,
    check_docs_namespaces,
    check_invalid_input,
    check_secrets,
    check_definitions_versioned,
    check_schedules_advance_once,
    check_sleep_and_park,
    check_retry_run,
    check_plan_and_skipped_steps,
);

// Restart and migration checks need the location, not only a store.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_restart_keeps_everything() {
    run_check(TestDb::sqlite().await, check_restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_reconnect_keeps_everything() {
    run_check(TestDb::postgres().await, check_restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_migrations_all_applied() {
    run_check(TestDb::sqlite().await, check_migrations).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migrations_all_applied() {
    run_check(TestDb::postgres().await, check_migrations).await;
}

#[tokio::test]
async fn urls_pick_the_backend() {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory SQLite");
    assert_eq!(store.backend(), "sqlite");
    store.ping().await.expect("ping");
    // One connection holds the in-memory database: it keeps what is written.
    let (run, _) = store.create_run(new_run(2, None)).await.expect("create");
    assert!(store.get_run(run.id).await.expect("get").is_some());
    store.close().await;

    assert!(matches!(
        Store::connect("mysql://localhost/x").await,
        Err(StoreError::UnsupportedUrl)
    ));

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("by-url.db").display());
    let store = Store::connect(&url).await.expect("SQLite file by URL");
    store.ping().await.expect("ping");
    store.close().await;
    assert!(dir.path().join("by-url.db").exists());
}

// ---------------------------------------------------------------------------
// Helpers

fn step(plugin: &str) -> StepSpec {
    StepSpec {
        id: None,
        plugin: plugin.to_owned(),
        config: raw(json!({"plugin": plugin})),
        timeout_ms: None,
        retries: None,
    }
}

fn new_run(steps: usize, key: Option<&str>) -> NewRun {
    NewRun {
        steps: (0..steps).map(|i| step(&format!("step-{i}"))).collect(),
        input: raw(json!({"n": steps})),
        idempotency_key: key.map(str::to_owned),
        request_id: None,
        definition: None,
        plan: None,
        scheduled_for: None,
    }
}

async fn create(store: &Store, steps: usize) -> Run {
    let (run, created) = store
        .create_run(new_run(steps, None))
        .await
        .expect("create_run");
    assert!(created);
    run
}

async fn get(store: &Store, id: RunId) -> Run {
    store
        .get_run(id)
        .await
        .expect("get_run")
        .expect("run exists")
}

/// Creates a run and leases it to `worker`.
async fn running(store: &Store, steps: usize, worker: &str) -> Run {
    let run = create(store, steps).await;
    store
        .claim_run(run.id, worker, LONG)
        .await
        .expect("claim_run")
        .expect("a queued run can be claimed")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

fn ids(runs: &[RunSummary]) -> Vec<RunId> {
    runs.iter().map(|r| r.id).collect()
}

/// What a listing shows of a run is what the run is.
fn assert_summarises(summary: &RunSummary, run: &Run) {
    assert_eq!(summary.id, run.id);
    assert_eq!(summary.status, run.status);
    assert_eq!(summary.error, run.error);
    assert_eq!(summary.idempotency_key, run.idempotency_key);
    assert_eq!(summary.cancel_requested, run.cancel_requested);
    assert_eq!(summary.created_at, run.created_at);
    assert_eq!(summary.started_at, run.started_at);
    assert_eq!(summary.finished_at, run.finished_at);
    assert_eq!(summary.step_count as usize, run.steps.len());
}

// ---------------------------------------------------------------------------
// Runs

async fn check_create_and_get(store: &Store) {
    store.ping().await.expect("ping");
    let before = now_ms();
    let new = NewRun {
        steps: vec![
            StepSpec {
                id: None,
                plugin: "fetch".into(),
                config: raw(
                    json!({"url": "https://example.com", "headers": {"b": 1, "a": [1, 2.5, null]}}),
                ),
                timeout_ms: Some(1500),
                retries: Some(3),
            },
            StepSpec {
                id: None,
                plugin: "json-transform".into(),
                config: raw(json!({})),
                timeout_ms: None,
                retries: Some(0),
            },
            StepSpec {
                id: None,
                plugin: "notify".into(),
                config: RawJson::null(),
                timeout_ms: Some(u64::from(u32::MAX) * 4),
                retries: None,
            },
        ],
        input: raw(
            json!({"text": "héllo ✓ \"quoted\" \\ back", "list": [1, 2, 3], "deep": {"x": {"y": true}}}),
        ),
        idempotency_key: None,
        request_id: Some("req-0123 abc".into()),
        definition: None,
        plan: None,
        scheduled_for: None,
    };
    let (run, created) = store.create_run(new.clone()).await.expect("create_run");
    assert_eq!(run.request_id.as_deref(), Some("req-0123 abc"));
    assert!(created);
    assert_eq!(
        store.status_of(run.id).await.expect("status_of"),
        Some(RunStatus::Queued)
    );
    assert_eq!(
        store.status_of(RunId::now_v7()).await.expect("status_of"),
        None
    );
    assert_eq!(run.id.get_version_num(), 7, "run ids are UUID v7");
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.input, new.input);
    assert_eq!(run.output, None);
    assert_eq!(run.error, None);
    assert!(!run.cancel_requested);
    assert!(run.created_at >= before && run.created_at <= now_ms());
    assert_eq!((run.started_at, run.finished_at), (None, None));
    assert_eq!(run.steps.len(), 3);
    for (i, (step, spec)) in run.steps.iter().zip(&new.steps).enumerate() {
        assert_eq!(step.index, i as u32);
        assert_eq!(step.plugin, spec.plugin);
        assert_eq!(step.config, spec.config);
        assert_eq!(step.timeout_ms, spec.timeout_ms);
        assert_eq!(step.retries, spec.retries);
        assert_eq!(step.status, StepStatus::Pending);
        assert_eq!(step.attempts, 0);
        assert_eq!(step.plugin_version, None);
        assert_eq!(
            (
                &step.output,
                &step.error,
                step.started_at,
                step.finished_at,
                step.duration_ms
            ),
            (&None, &None, None, None, None)
        );
    }

    // What create_run returns is what the store holds.
    let stored = get(store, run.id).await;
    assert_eq!(stored, run);

    // Serialises as the API shows it.
    let shown = serde_json::to_value(&stored).expect("serialise");
    assert_eq!(shown["status"], "queued");
    assert_eq!(shown["steps"][0]["status"], "pending");
    assert_eq!(shown["id"], run.id.to_string());

    assert_eq!(store.get_run(RunId::now_v7()).await.expect("get_run"), None);
}

async fn check_idempotency(store: &Store) {
    let (first, created) = store
        .create_run(new_run(2, Some("order-42")))
        .await
        .expect("create_run");
    assert!(created);
    assert_eq!(first.idempotency_key.as_deref(), Some("order-42"));

    // The same key returns the first run, whatever the second submission
    // said.
    let mut again = new_run(5, Some("order-42"));
    again.input = raw(json!("different"));
    let (second, created) = store.create_run(again).await.expect("create_run");
    assert!(!created);
    assert_eq!(second, get(store, first.id).await);
    assert_eq!(second.steps.len(), 2);

    // The returned run is the current one, not the one first created.
    store
        .claim_run(first.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    let (third, created) = store
        .create_run(new_run(1, Some("order-42")))
        .await
        .expect("create_run");
    assert!(!created);
    assert_eq!(third.status, RunStatus::Running);

    let (other, created) = store
        .create_run(new_run(1, Some("order-43")))
        .await
        .expect("create_run");
    assert!(created);
    assert_ne!(other.id, first.id);

    // Without a key, every submission is a new run.
    let a = create(store, 1).await;
    let b = create(store, 1).await;
    assert_ne!(a.id, b.id);
    let counts = store.count_by_status().await.expect("count");
    assert_eq!(counts[&RunStatus::Queued] + counts[&RunStatus::Running], 4);
}

async fn check_concurrent_idempotency(store: &Store) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut new = new_run(3, Some("same-key"));
                new.input = raw(json!({"task": i}));
                store.create_run(new).await.expect("create_run")
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    let created = results.iter().filter(|(_, created)| *created).count();
    assert_eq!(created, 1, "exactly one submission creates the run");
    let ids: BTreeSet<RunId> = results.iter().map(|(run, _)| run.id).collect();
    assert_eq!(ids.len(), 1, "every submission gets the same run");
    let page = store
        .list_runs(ListRuns {
            status: None,
            limit: 100,
            cursor: None,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(page.runs.len(), 1);
    assert_eq!(page.runs[0].step_count, 3, "the steps were stored once");
}

async fn check_list_and_pages(store: &Store) {
    // Seven runs, oldest first: q q r s q f c
    let mut all = Vec::new();
    for i in 0..7 {
        all.push(create(store, i % 3 + 1).await);
    }
    let w = "lister";
    store
        .claim_run(all[2].id, w, LONG)
        .await
        .expect("claim")
        .expect("claimed");
    store
        .claim_run(all[3].id, w, LONG)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        store
            .finish_run(
                all[3].id,
                RunStatus::Succeeded,
                Some(raw(json!(1))),
                None,
                Some(w)
            )
            .await
            .expect("finish")
    );
    store
        .claim_run(all[5].id, w, LONG)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        store
            .finish_run(
                all[5].id,
                RunStatus::Failed,
                None,
                Some("boom".into()),
                Some(w)
            )
            .await
            .expect("finish")
    );
    store.request_cancel(all[6].id).await.expect("cancel");

    let newest_first: Vec<RunId> = all.iter().rev().map(|r| r.id).collect();

    // One page with everything.
    let page = store
        .list_runs(ListRuns {
            status: None,
            limit: 100,
            cursor: None,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(ids(&page.runs), newest_first);
    assert_eq!(page.next_cursor, None);
    for run in &page.runs {
        assert_summarises(run, &get(store, run.id).await);
        assert_eq!(
            (&run.input, &run.output),
            (&None, &None),
            "JSON only on request"
        );
    }

    // Pages of two, following the cursor.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_runs(ListRuns {
                status: None,
                limit: 2,
                cursor,
                ..ListRuns::default()
            })
            .await
            .expect("list");
        pages += 1;
        assert!(page.runs.len() <= 2);
        seen.extend(ids(&page.runs));
        for run in &page.runs {
            assert!(run.step_count > 0);
        }
        match page.next_cursor {
            Some(next) => {
                assert_eq!(Some(&next), seen.last());
                cursor = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 4);

    // A page that ends exactly at the last run has no next cursor.
    let page = store
        .list_runs(ListRuns {
            status: None,
            limit: 7,
            cursor: None,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(page.runs.len(), 7);
    assert_eq!(page.next_cursor, None);

    // By status.
    let queued = store
        .list_runs(ListRuns {
            status: Some(RunStatus::Queued),
            limit: 100,
            cursor: None,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(ids(&queued.runs), vec![all[4].id, all[1].id, all[0].id]);
    assert!(queued.runs.iter().all(|r| r.status == RunStatus::Queued));
    for run in &queued.runs {
        assert_summarises(run, &get(store, run.id).await);
    }

    // By status, paged.
    let first = store
        .list_runs(ListRuns {
            status: Some(RunStatus::Queued),
            limit: 2,
            cursor: None,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(ids(&first.runs), vec![all[4].id, all[1].id]);
    assert_eq!(first.next_cursor, Some(all[1].id));
    let second = store
        .list_runs(ListRuns {
            status: Some(RunStatus::Queued),
            limit: 2,
            cursor: first.next_cursor,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(ids(&second.runs), vec![all[0].id]);
    assert_eq!(second.next_cursor, None);

    for (status, expected) in [
        (RunStatus::Running, vec![all[2].id]),
        (RunStatus::Succeeded, vec![all[3].id]),
        (RunStatus::Failed, vec![all[5].id]),
        (RunStatus::Cancelled, vec![all[6].id]),
    ] {
        let page = store
            .list_runs(ListRuns {
                status: Some(status),
                limit: 10,
                cursor: None,
                ..ListRuns::default()
            })
            .await
            .expect("list");
        assert_eq!(ids(&page.runs), expected, "{status}");
    }

    // A cursor older than every run: an empty page.
    let page = store
        .list_runs(ListRuns {
            status: None,
            limit: 10,
            cursor: Some(all[0].id),
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert!(page.runs.is_empty());
    assert_eq!(page.next_cursor, None);
}

/// Inputs and outputs on request: measured first, the page cut before the
/// run that would pass the byte limit, then read; and what reading a whole
/// run costs.
async fn check_list_by_bytes(store: &Store) {
    let mut runs = Vec::new();
    for i in 0..4 {
        let mut new = new_run(1, None);
        new.input = raw(json!({"n": i, "pad": "x".repeat(1000)}));
        let (run, _) = store.create_run(new).await.expect("create");
        runs.push(run);
    }
    let input_bytes = runs[0].input.len() as u64;
    // Room for two inputs and a half.
    let page = store
        .list_runs(ListRuns {
            limit: 10,
            input: true,
            max_bytes: input_bytes * 5 / 2,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(ids(&page.runs), vec![runs[3].id, runs[2].id]);
    assert_eq!(page.next_cursor, Some(runs[2].id));
    assert_eq!(page.json_bytes(), 2 * input_bytes);
    assert!(
        page.runs.iter().all(|r| r.input.is_none()),
        "measured, not read"
    );
    let mut page = page;
    store.fill_page(&mut page, true, false).await.expect("fill");
    assert_eq!(page.runs[0].input.as_ref(), Some(&runs[3].input));
    assert_eq!(page.runs[1].input.as_ref(), Some(&runs[2].input));
    // The first run is listed whatever its size.
    let page = store
        .list_runs(ListRuns {
            limit: 10,
            input: true,
            output: true,
            max_bytes: 1,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(page.runs.len(), 1);
    assert_eq!(page.runs[0].output_bytes, None, "no output yet");
    // Without JSON asked for, the byte limit changes nothing.
    let page = store
        .list_runs(ListRuns {
            limit: 10,
            max_bytes: 1,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert!(page.runs.len() >= 4);

    // A run's size: input, configs, outputs and errors.
    let run = get(store, runs[0].id).await;
    assert_eq!(
        store.run_size(run.id).await.expect("size"),
        Some(run.stored_bytes())
    );
    assert_eq!(store.run_size(RunId::now_v7()).await.expect("size"), None);
}

async fn check_claim_exclusive(store: &Store) {
    let run = create(store, 2).await;
    let before = now_ms();
    let claimed = store
        .claim_run(run.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("a queued run is claimed");
    assert_eq!(claimed.status, RunStatus::Running);
    let started = claimed.started_at.expect("started_at");
    assert!(started >= before);
    assert_eq!(
        claimed.steps.len(),
        2,
        "the claimed run comes with its steps"
    );

    // Held by a live worker: nobody else gets it.
    assert_eq!(
        store.claim_run(run.id, "w2", LONG).await.expect("claim"),
        None
    );
    assert!(!store.renew_lease(run.id, "w2", LONG).await.expect("renew"));
    // The holder may claim again (a redelivery) and renew.
    let again = store
        .claim_run(run.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("the holder claims again");
    assert_eq!(again.started_at, Some(started), "started_at is set once");
    assert!(store.renew_lease(run.id, "w1", LONG).await.expect("renew"));

    // Unknown and finished runs cannot be claimed or renewed.
    assert_eq!(
        store
            .claim_run(RunId::now_v7(), "w1", LONG)
            .await
            .expect("claim"),
        None
    );
    assert!(
        !store
            .renew_lease(RunId::now_v7(), "w1", LONG)
            .await
            .expect("renew")
    );
    assert!(
        store
            .finish_run(run.id, RunStatus::Succeeded, None, None, Some("w1"))
            .await
            .expect("finish")
    );
    assert_eq!(
        store.claim_run(run.id, "w1", LONG).await.expect("claim"),
        None
    );
    assert_eq!(
        store.claim_run(run.id, "w2", LONG).await.expect("claim"),
        None
    );
    assert!(!store.renew_lease(run.id, "w1", LONG).await.expect("renew"));
}

async fn check_claim_takeover_after_lease(store: &Store) {
    let run = create(store, 2).await;
    let first = store
        .claim_run(run.id, "w1", Duration::from_secs(1))
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        store
            .start_step(run.id, 0, "1.0.0", "w1", None)
            .await
            .expect("start")
            == 1
    );
    assert!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: raw(json!("zero"))
                },
                5.0,
                "w1"
            )
            .await
            .expect("finish")
    );
    assert_eq!(
        store
            .start_step(run.id, 1, "1.0.0", "w1", None)
            .await
            .expect("start"),
        1
    );
    assert_eq!(
        store.claim_run(run.id, "w2", LONG).await.expect("claim"),
        None
    );

    tokio::time::sleep(Duration::from_millis(1300)).await;

    // The lease ran out: another worker takes the run over, and resumes at
    // the first unfinished step.
    let taken = store
        .claim_run(run.id, "w2", LONG)
        .await
        .expect("claim")
        .expect("an expired lease is taken over");
    assert_eq!(taken.started_at, first.started_at);
    assert_eq!(taken.steps[0].status, StepStatus::Succeeded);
    assert_eq!(taken.steps[0].output, Some(raw(json!("zero"))));
    assert_eq!(taken.steps[1].status, StepStatus::Running);
    assert_eq!(taken.steps[1].attempts, 1);

    // The old worker has lost it, for everything.
    assert!(!store.renew_lease(run.id, "w1", LONG).await.expect("renew"));
    assert!(matches!(
        store.start_step(run.id, 1, "1.0.0", "w1", None).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store
            .finish_step(
                run.id,
                1,
                StepOutcome::Succeeded {
                    output: raw(json!(1))
                },
                1.0,
                "w1"
            )
            .await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store
            .finish_run(run.id, RunStatus::Succeeded, None, None, Some("w1"))
            .await,
        Err(StoreError::LeaseLost)
    ));
    assert_eq!(
        store.claim_run(run.id, "w1", LONG).await.expect("claim"),
        None
    );

    // The new one carries on.
    assert_eq!(
        store
            .start_step(run.id, 1, "1.0.0", "w2", None)
            .await
            .expect("start"),
        2
    );
    assert!(store.renew_lease(run.id, "w2", LONG).await.expect("renew"));

    // A lease that expired but was not taken over still belongs to its
    // worker.
    let other = create(store, 1).await;
    store
        .claim_run(other.id, "w3", Duration::from_millis(1))
        .await
        .expect("claim")
        .expect("claimed");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .renew_lease(other.id, "w3", LONG)
            .await
            .expect("renew")
    );
    assert_eq!(
        store.claim_run(other.id, "w4", LONG).await.expect("claim"),
        None
    );
}

async fn check_concurrent_claims(store: &Store) {
    let run = create(store, 1).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_run(run.id, &format!("worker-{i}"), LONG)
                    .await
                    .expect("claim_run")
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("task").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one worker holds the run");
}

async fn check_step_checkpoints(store: &Store) {
    let run = running(store, 3, "w1").await;

    let before = now_ms();
    assert_eq!(
        store
            .start_step(run.id, 0, "1.0.0", "w1", None)
            .await
            .expect("start"),
        1
    );
    let step = get(store, run.id).await.steps[0].clone();
    assert_eq!(step.status, StepStatus::Running);
    assert_eq!(step.plugin_version.as_deref(), Some("1.0.0"));
    let first_start = step.started_at.expect("started_at");
    assert!(first_start >= before);

    // A retry: a new attempt, with the version that runs it now.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store
            .start_step(run.id, 0, "1.1.0", "w1", None)
            .await
            .expect("start"),
        2
    );
    let output = raw(json!({"rows": [1, 2, 3], "note": "ok"}));
    assert!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: output.clone()
                },
                12.5,
                "w1"
            )
            .await
            .expect("finish")
    );
    let step = get(store, run.id).await.steps[0].clone();
    assert_eq!(step.status, StepStatus::Succeeded);
    assert_eq!(step.attempts, 2);
    assert_eq!(step.plugin_version.as_deref(), Some("1.1.0"));
    assert_eq!(
        step.started_at,
        Some(first_start),
        "started_at is the first attempt's"
    );
    assert!(step.finished_at.expect("finished_at") >= first_start);
    assert_eq!(step.duration_ms, Some(12.5));
    assert_eq!(step.output, Some(output.clone()));
    assert_eq!(step.error, None);

    // Checkpoints are recorded once: finishing again changes nothing.
    assert!(
        !store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: raw(json!("other"))
                },
                1.0,
                "w1"
            )
            .await
            .expect("finish again")
    );
    assert!(
        !store
            .finish_step(
                run.id,
                0,
                StepOutcome::Failed {
                    error: "late".into()
                },
                1.0,
                "w1"
            )
            .await
            .expect("finish again")
    );
    let again = get(store, run.id).await.steps[0].clone();
    assert_eq!(again, step);
    assert!(matches!(
        store.start_step(run.id, 0, "1.1.0", "w1", None).await,
        Err(StoreError::StepFinished {
            index: 0,
            status: StepStatus::Succeeded,
            ..
        })
    ));

    // A failure keeps its error; a step that never started can be
    // cancelled.
    assert_eq!(
        store
            .start_step(run.id, 1, "2.0.0", "w1", None)
            .await
            .expect("start"),
        1
    );
    assert!(
        store
            .finish_step(
                run.id,
                1,
                StepOutcome::Failed {
                    error: "bad\0input".into()
                },
                3.0,
                "w1"
            )
            .await
            .expect("finish")
    );
    assert!(
        store
            .finish_step(run.id, 2, StepOutcome::Cancelled, 0.0, "w1")
            .await
            .expect("finish")
    );
    let steps = get(store, run.id).await.steps;
    assert_eq!(steps[1].status, StepStatus::Failed);
    assert_eq!(steps[1].error.as_deref(), Some("bad\u{FFFD}input"));
    assert_eq!(steps[1].output, None);
    assert_eq!(steps[2].status, StepStatus::Cancelled);
    assert_eq!(steps[2].attempts, 0);
    assert_eq!(steps[2].started_at, None);

    // Outputs with NUL characters are kept, with the NULs replaced.
    let run = running(store, 1, "w1").await;
    store
        .start_step(run.id, 0, "1", "w1", None)
        .await
        .expect("start");
    assert!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: raw(json!({"t": "a\u{0}b"}))
                },
                1.0,
                "w1"
            )
            .await
            .expect("finish")
    );
    assert_eq!(
        get(store, run.id).await.steps[0]
            .output
            .as_ref()
            .map(RawJson::to_value),
        Some(json!({"t": "a\u{FFFD}b"}))
    );
}

async fn check_step_guards(store: &Store) {
    let run = running(store, 2, "holder").await;

    // Only the holder checkpoints.
    assert!(matches!(
        store.start_step(run.id, 0, "1.0.0", "intruder", None).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: raw(json!(1))
                },
                1.0,
                "intruder"
            )
            .await,
        Err(StoreError::LeaseLost)
    ));
    let steps = get(store, run.id).await.steps;
    assert_eq!(steps[0].status, StepStatus::Pending);
    assert_eq!(steps[0].attempts, 0);

    // Unknown steps and runs.
    assert!(matches!(
        store.start_step(run.id, 2, "1.0.0", "holder", None).await,
        Err(StoreError::StepNotFound { index: 2, .. })
    ));
    assert!(matches!(
        store
            .start_step(run.id, u32::MAX, "1.0.0", "holder", None)
            .await,
        Err(StoreError::StepNotFound { .. })
    ));
    assert!(matches!(
        store
            .finish_step(run.id, 7, StepOutcome::Cancelled, 1.0, "holder")
            .await,
        Err(StoreError::StepNotFound { index: 7, .. })
    ));
    let unknown = RunId::now_v7();
    assert!(matches!(
        store.start_step(unknown, 0, "1.0.0", "holder", None).await,
        Err(StoreError::RunNotFound(id)) if id == unknown
    ));

    // A queued run is held by nobody.
    let queued = create(store, 1).await;
    assert!(matches!(
        store
            .start_step(queued.id, 0, "1.0.0", "holder", None)
            .await,
        Err(StoreError::LeaseLost)
    ));

    // Once the run finished, its worker holds nothing.
    assert!(
        store
            .finish_run(
                run.id,
                RunStatus::Failed,
                None,
                Some("stop".into()),
                Some("holder")
            )
            .await
            .expect("finish")
    );
    assert!(matches!(
        store.start_step(run.id, 0, "1.0.0", "holder", None).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        store
            .finish_step(run.id, 0, StepOutcome::Cancelled, 1.0, "holder")
            .await,
        Err(StoreError::LeaseLost)
    ));
}

async fn check_finish_run_once(store: &Store) {
    let run = running(store, 2, "w1").await;
    assert!(matches!(
        store
            .finish_run(run.id, RunStatus::Running, None, None, Some("w1"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .finish_run(run.id, RunStatus::Succeeded, None, None, Some("w2"))
            .await,
        Err(StoreError::LeaseLost)
    ));
    let output = raw(json!({"result": [1, "two", {"three": 3}]}));
    assert!(
        store
            .finish_run(
                run.id,
                RunStatus::Succeeded,
                Some(output.clone()),
                None,
                Some("w1")
            )
            .await
            .expect("finish")
    );
    let done = get(store, run.id).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(output.clone()));
    assert_eq!(done.error, None);
    assert!(done.finished_at.expect("finished_at") >= done.started_at.expect("started_at"));
    // A succeeded run's steps are what the worker recorded: untouched here.
    assert!(done.steps.iter().all(|s| s.status == StepStatus::Pending));

    // Only once, whoever asks.
    for worker in [Some("w1"), Some("w2"), None] {
        assert!(
            !store
                .finish_run(
                    run.id,
                    RunStatus::Failed,
                    None,
                    Some("again".into()),
                    worker
                )
                .await
                .expect("finish again")
        );
    }
    let still = get(store, run.id).await;
    assert_eq!(still, done);

    // Failed, with its error.
    let failed = running(store, 1, "w1").await;
    assert!(
        store
            .finish_run(
                failed.id,
                RunStatus::Failed,
                None,
                Some("step 0: boom".into()),
                Some("w1")
            )
            .await
            .expect("finish")
    );
    let failed = get(store, failed.id).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("step 0: boom"));
    assert_eq!(failed.output, None);

    // Without a worker (the API side): a queued run, cancelled with its
    // steps.
    let queued = create(store, 3).await;
    assert!(
        store
            .finish_run(queued.id, RunStatus::Cancelled, None, None, None)
            .await
            .expect("finish")
    );
    let cancelled = get(store, queued.id).await;
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(
        cancelled
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Cancelled)
    );
    assert_eq!(
        store.claim_run(queued.id, "w1", LONG).await.expect("claim"),
        None
    );

    assert!(matches!(
        store
            .finish_run(RunId::now_v7(), RunStatus::Succeeded, None, None, None)
            .await,
        Err(StoreError::RunNotFound(_))
    ));
}

async fn check_complete_run(store: &Store) {
    let run = running(store, 2, "w1").await;
    let first = raw(json!({"n": 1}));
    store
        .start_step(run.id, 0, "1.0.0", "w1", None)
        .await
        .expect("start 0");
    assert!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: first.clone()
                },
                1.0,
                "w1"
            )
            .await
            .expect("step 0")
    );
    store
        .start_step(run.id, 1, "1.0.0", "w1", None)
        .await
        .expect("start 1");

    // Only the lease holder.
    assert!(matches!(
        store
            .complete_run(run.id, 1, raw(json!({"n": 2})), 2.0, "w2")
            .await,
        Err(StoreError::LeaseLost)
    ));
    let untouched = get(store, run.id).await;
    assert_eq!(untouched.status, RunStatus::Running);
    assert_eq!(untouched.steps[1].status, StepStatus::Running);

    let output = raw(json!({"n": 2, "list": [1, "two", null]}));
    let returned = store
        .complete_run(run.id, 1, output.clone(), 2.5, "w1")
        .await
        .expect("complete")
        .expect("this call ended the run");
    let done = get(store, run.id).await;
    // What it hands back is what the store now holds.
    assert_eq!(returned, done);
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.output, Some(output.clone()));
    assert_eq!(done.error, None);
    assert!(done.finished_at.is_some());
    assert_eq!(done.steps[0].output, Some(first));
    let last = &done.steps[1];
    assert_eq!(last.status, StepStatus::Succeeded);
    assert_eq!(last.output, Some(output));
    assert_eq!(last.duration_ms, Some(2.5));
    assert_eq!(last.finished_at, done.finished_at);
    // The lease is cleared: nobody can claim a finished run.
    assert_eq!(
        store.claim_run(run.id, "w1", LONG).await.expect("claim"),
        None
    );

    // Again: the run already ended, nothing changes.
    assert_eq!(
        store
            .complete_run(run.id, 1, raw(json!("again")), 1.0, "w1")
            .await
            .expect("complete again"),
        None
    );
    assert_eq!(get(store, run.id).await, done);

    // A run cancelled while its last step ran stays cancelled.
    let cancelled = running(store, 1, "w1").await;
    store
        .start_step(cancelled.id, 0, "1.0.0", "w1", None)
        .await
        .expect("start");
    store.request_cancel(cancelled.id).await.expect("cancel");
    assert!(
        store
            .finish_run(cancelled.id, RunStatus::Cancelled, None, None, Some("w1"))
            .await
            .expect("cancelled")
    );
    assert_eq!(
        store
            .complete_run(cancelled.id, 0, raw(json!(1)), 1.0, "w1")
            .await
            .expect("complete after cancel"),
        None
    );
    let still = get(store, cancelled.id).await;
    assert_eq!(still.status, RunStatus::Cancelled);
    assert_eq!(still.output, None);

    assert!(matches!(
        store
            .complete_run(RunId::now_v7(), 0, raw(json!(1)), 1.0, "w1")
            .await,
        Err(StoreError::RunNotFound(_))
    ));
}

async fn check_claim_and_start(store: &Store) {
    let versions = [("step-0", "1.0.0"), ("step-1", "2.0.0")];

    // A fresh run: claimed, its first step started at its plugin's version.
    let run = create(store, 3).await;
    let claim = store
        .claim_and_start(run.id, "w1", LONG, &versions)
        .await
        .expect("claim")
        .expect("a queued run can be claimed");
    assert_eq!(claim.started, Some(0));
    assert_eq!(claim.run.status, RunStatus::Running);
    let first = &claim.run.steps[0];
    assert_eq!(first.status, StepStatus::Running);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.plugin_version.as_deref(), Some("1.0.0"));
    assert!(first.started_at.is_some());
    assert_eq!(claim.run.steps[1].status, StepStatus::Pending);
    // What it hands back is what the store holds.
    assert_eq!(claim.run, get(store, run.id).await);
    // Another worker cannot take it, nor start anything.
    assert_eq!(
        store
            .claim_and_start(run.id, "w2", LONG, &versions)
            .await
            .expect("claim"),
        None
    );
    assert_eq!(get(store, run.id).await.steps[0].attempts, 1);

    // Resumed after step 0 succeeded: step 1 starts. Its version is the
    // one given now.
    assert!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: raw(json!(0))
                },
                1.0,
                "w1"
            )
            .await
            .expect("step 0")
    );
    let again = store
        .claim_and_start(run.id, "w1", LONG, &versions)
        .await
        .expect("claim again")
        .expect("the holder claims again");
    assert_eq!(again.started, Some(1));
    assert_eq!(again.run.steps[1].attempts, 1);
    assert_eq!(again.run.steps[1].plugin_version.as_deref(), Some("2.0.0"));
    assert_eq!(again.run.steps[0].status, StepStatus::Succeeded);

    // A step already running (its worker died) counts another attempt.
    let resumed = store
        .claim_and_start(run.id, "w1", LONG, &versions)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(resumed.started, Some(1));
    assert_eq!(resumed.run.steps[1].attempts, 2);

    // Step 2's plugin is not among the versions: claimed, nothing started.
    assert!(
        store
            .finish_step(
                run.id,
                1,
                StepOutcome::Succeeded {
                    output: raw(json!(1))
                },
                1.0,
                "w1"
            )
            .await
            .expect("step 1")
    );
    let unknown = store
        .claim_and_start(run.id, "w1", LONG, &versions)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(unknown.started, None);
    assert_eq!(unknown.run.steps[2].status, StepStatus::Pending);
    assert_eq!(unknown.run.steps[2].attempts, 0);

    // A failed step ends the run instead: nothing after it starts.
    let failed = running(store, 2, "w1").await;
    store
        .start_step(failed.id, 0, "1.0.0", "w1", None)
        .await
        .expect("start");
    store
        .finish_step(
            failed.id,
            0,
            StepOutcome::Failed { error: "x".into() },
            1.0,
            "w1",
        )
        .await
        .expect("fail");
    let claim = store
        .claim_and_start(failed.id, "w1", LONG, &versions)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claim.started, None);
    assert_eq!(claim.run.steps[1].attempts, 0);

    // A run whose cancellation was requested starts nothing.
    let cancelling = running(store, 1, "w1").await;
    store
        .request_cancel(cancelling.id)
        .await
        .expect("cancel request");
    let claim = store
        .claim_and_start(cancelling.id, "w1", LONG, &versions)
        .await
        .expect("claim")
        .expect("a cancelling run is handed out");
    assert!(claim.run.cancel_requested);
    assert_eq!(claim.started, None);
    assert_eq!(claim.run.steps[0].attempts, 0);

    // Unknown run.
    assert_eq!(
        store
            .claim_and_start(RunId::now_v7(), "w1", LONG, &versions)
            .await
            .expect("claim unknown"),
        None
    );
}

async fn check_finished_among(store: &Store) {
    assert!(store.finished_among(&[]).await.expect("none").is_empty());
    let queued = create(store, 1).await;
    let live = running(store, 1, "w").await;
    let done = running(store, 1, "w").await;
    assert!(
        store
            .finish_run(
                done.id,
                RunStatus::Failed,
                None,
                Some("x".into()),
                Some("w")
            )
            .await
            .expect("finish")
    );
    let cancelled = create(store, 1).await;
    store.request_cancel(cancelled.id).await.expect("cancel");
    let unknown = RunId::now_v7();
    let asked = [queued.id, live.id, done.id, cancelled.id, unknown];
    let found: BTreeSet<RunId> = store
        .finished_among(&asked)
        .await
        .expect("finished_among")
        .into_iter()
        .collect();
    assert_eq!(found, BTreeSet::from([done.id, cancelled.id]));

    // More ids than one statement takes on SQLite.
    let mut many: Vec<RunId> = (0..1200).map(|_| RunId::now_v7()).collect();
    many.push(done.id);
    assert_eq!(
        store.finished_among(&many).await.expect("many"),
        vec![done.id]
    );
}

async fn check_cancel_queued(store: &Store) {
    let run = create(store, 3).await;
    let status = store
        .request_cancel(run.id)
        .await
        .expect("cancel")
        .expect("known run");
    assert_eq!(status, RunStatus::Cancelled);
    let cancelled = get(store, run.id).await;
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(cancelled.cancel_requested);
    assert!(cancelled.finished_at.is_some());
    assert_eq!(cancelled.started_at, None);
    assert!(
        cancelled
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Cancelled)
    );
    assert!(
        store
            .cancel_requested(run.id)
            .await
            .expect("cancel_requested")
    );

    // Nobody runs it now.
    assert_eq!(
        store.claim_run(run.id, "w1", LONG).await.expect("claim"),
        None
    );
    assert!(
        !store
            .unfinished_runs()
            .await
            .expect("unfinished")
            .contains(&run.id)
    );

    // Cancelling again leaves it unchanged.
    let again = store
        .request_cancel(run.id)
        .await
        .expect("cancel")
        .expect("known");
    assert_eq!(again, RunStatus::Cancelled);
    assert_eq!(get(store, run.id).await, cancelled);

    // A finished run is returned unchanged.
    let done = running(store, 1, "w1").await;
    assert!(
        store
            .finish_run(
                done.id,
                RunStatus::Succeeded,
                Some(raw(json!(1))),
                None,
                Some("w1")
            )
            .await
            .expect("finish")
    );
    let before = get(store, done.id).await;
    let status = store
        .request_cancel(done.id)
        .await
        .expect("cancel")
        .expect("known");
    assert_eq!(status, RunStatus::Succeeded);
    let after = get(store, done.id).await;
    assert_eq!(after, before);
    assert!(!after.cancel_requested);
    assert!(
        !store
            .cancel_requested(done.id)
            .await
            .expect("cancel_requested")
    );

    assert_eq!(
        store.request_cancel(RunId::now_v7()).await.expect("cancel"),
        None
    );
    assert!(
        !store
            .cancel_requested(RunId::now_v7())
            .await
            .expect("cancel_requested")
    );
}

async fn check_cancel_running(store: &Store) {
    let run = running(store, 3, "w1").await;
    store
        .start_step(run.id, 0, "1.0.0", "w1", None)
        .await
        .expect("start");
    assert!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: raw(json!(0))
                },
                1.0,
                "w1"
            )
            .await
            .expect("finish")
    );
    store
        .start_step(run.id, 1, "1.0.0", "w1", None)
        .await
        .expect("start");
    assert!(
        !store
            .cancel_requested(run.id)
            .await
            .expect("cancel_requested")
    );

    // Running: only the request is recorded; the worker stops the run.
    let status = store
        .request_cancel(run.id)
        .await
        .expect("cancel")
        .expect("known");
    assert_eq!(status, RunStatus::Running);
    let requested = get(store, run.id).await;
    assert!(requested.cancel_requested);
    assert_eq!(requested.finished_at, None);
    assert_eq!(requested.steps[1].status, StepStatus::Running);
    assert!(
        store
            .cancel_requested(run.id)
            .await
            .expect("cancel_requested")
    );
    // The worker still holds the run until it stops it.
    assert!(store.renew_lease(run.id, "w1", LONG).await.expect("renew"));

    // A worker that takes the run over sees the request.
    let reclaimed = store
        .claim_run(run.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("the holder claims again");
    assert!(reclaimed.cancel_requested);

    // The worker interrupts the running step and cancels the run: the
    // steps that never ran are cancelled with it, the finished one keeps
    // its outcome.
    assert!(
        store
            .finish_step(run.id, 1, StepOutcome::Cancelled, 4.0, "w1")
            .await
            .expect("finish")
    );
    assert!(
        store
            .finish_run(run.id, RunStatus::Cancelled, None, None, Some("w1"))
            .await
            .expect("finish")
    );
    let done = get(store, run.id).await;
    assert_eq!(done.status, RunStatus::Cancelled);
    assert!(done.finished_at.is_some());
    let statuses: Vec<StepStatus> = done.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![
            StepStatus::Succeeded,
            StepStatus::Cancelled,
            StepStatus::Cancelled
        ]
    );
    assert_eq!(done.steps[1].duration_ms, Some(4.0));
    assert!(
        store
            .cancel_requested(run.id)
            .await
            .expect("cancel_requested")
    );
}

async fn check_stale_runs(store: &Store) {
    let queued = create(store, 1).await;
    let short = create(store, 1).await;
    let long = create(store, 1).await;
    let done = create(store, 1).await;
    let cancelled = create(store, 1).await;
    store
        .claim_run(short.id, "w1", Duration::from_secs(1))
        .await
        .expect("claim")
        .expect("claimed");
    store
        .claim_run(long.id, "w2", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    store
        .claim_run(done.id, "w3", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        store
            .finish_run(done.id, RunStatus::Succeeded, None, None, Some("w3"))
            .await
            .expect("finish")
    );
    store.request_cancel(cancelled.id).await.expect("cancel");

    // Young queued runs are the queue's business; live leases are held.
    assert_eq!(
        store.stale_runs(LONG, 10).await.expect("stale"),
        Vec::<RunId>::new()
    );
    assert_eq!(
        store.stale_runs(Duration::ZERO, 10).await.expect("stale"),
        vec![queued.id]
    );

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        store
            .stale_runs(Duration::from_millis(100), 10)
            .await
            .expect("stale"),
        vec![queued.id, short.id],
        "oldest first: the queued run, then the expired lease"
    );
    assert_eq!(
        store.stale_runs(LONG, 10).await.expect("stale"),
        vec![short.id]
    );
    assert_eq!(
        store.stale_runs(Duration::ZERO, 1).await.expect("stale"),
        vec![queued.id]
    );

    // Taken over, it is no longer stale.
    store
        .claim_run(short.id, "w4", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(
        store.stale_runs(LONG, 10).await.expect("stale"),
        Vec::<RunId>::new()
    );
}

async fn check_unfinished_runs(store: &Store) {
    assert_eq!(
        store.unfinished_runs().await.expect("unfinished"),
        Vec::<RunId>::new()
    );
    let a = create(store, 1).await;
    let b = running(store, 1, "w1").await;
    let c = running(store, 1, "w1").await;
    let d = create(store, 1).await;
    let e = create(store, 1).await;
    assert!(
        store
            .finish_run(c.id, RunStatus::Succeeded, None, None, Some("w1"))
            .await
            .expect("finish")
    );
    store.request_cancel(d.id).await.expect("cancel");
    // A running run with a cancellation request still needs its worker.
    store.request_cancel(b.id).await.expect("cancel");
    assert_eq!(
        store.unfinished_runs().await.expect("unfinished"),
        vec![a.id, b.id, e.id]
    );
}

async fn check_count_by_status(store: &Store) {
    let counts = store.count_by_status().await.expect("count");
    assert_eq!(counts.len(), 5, "every status is counted");
    assert!(counts.values().all(|&n| n == 0));
    let unfinished = store.count_unfinished().await.expect("count unfinished");
    assert_eq!(unfinished.len(), 2, "queued and running are counted");
    assert!(unfinished.values().all(|&n| n == 0));

    for _ in 0..3 {
        create(store, 1).await;
    }
    let r = running(store, 1, "w").await;
    running(store, 1, "w").await;
    assert!(
        store
            .finish_run(r.id, RunStatus::Failed, None, Some("x".into()), Some("w"))
            .await
            .expect("finish")
    );
    let s = running(store, 1, "w").await;
    assert!(
        store
            .finish_run(s.id, RunStatus::Succeeded, None, None, Some("w"))
            .await
            .expect("finish")
    );
    let c = create(store, 1).await;
    store.request_cancel(c.id).await.expect("cancel");

    let counts = store.count_by_status().await.expect("count");
    let expected = [
        (RunStatus::Queued, 3),
        (RunStatus::Running, 1),
        (RunStatus::Succeeded, 1),
        (RunStatus::Failed, 1),
        (RunStatus::Cancelled, 1),
    ];
    assert_eq!(counts, expected.into_iter().collect());
    let unfinished = store.count_unfinished().await.expect("count unfinished");
    assert_eq!(
        unfinished,
        [(RunStatus::Queued, 3), (RunStatus::Running, 1)]
            .into_iter()
            .collect()
    );
}

async fn check_delete_finished(store: &Store) {
    let queued = create(store, 2).await;
    let live = running(store, 2, "w").await;
    let mut finished = Vec::new();
    for status in [RunStatus::Succeeded, RunStatus::Failed] {
        let r = running(store, 2, "w").await;
        assert!(
            store
                .finish_run(r.id, status, None, None, Some("w"))
                .await
                .expect("finish")
        );
        finished.push(r.id);
    }
    let c = create(store, 1).await;
    store.request_cancel(c.id).await.expect("cancel");
    finished.push(c.id);

    // Nothing finished before a moment long past.
    assert_eq!(store.delete_finished(0, 100).await.expect("delete"), 0);
    // Everything finished by now, oldest first, `limit` at a time.
    let later = now_ms() + 60_000;
    assert_eq!(store.delete_finished(later, 2).await.expect("delete"), 2);
    assert_eq!(store.delete_finished(later, 2).await.expect("delete"), 1);
    assert_eq!(store.delete_finished(later, 2).await.expect("delete"), 0);
    for id in finished {
        assert!(store.get_run(id).await.expect("get").is_none(), "{id} kept");
    }
    // Unfinished runs stay, with their steps.
    for id in [queued.id, live.id] {
        let run = store.get_run(id).await.expect("get").expect("kept");
        assert_eq!(run.steps.len(), 2);
    }
}

// ---------------------------------------------------------------------------
// Documents

async fn check_docs_versions(store: &Store) {
    let ns = "invoices";
    assert_eq!(store.doc_get(ns, "inv-1").await.expect("get"), None);

    let v1 = raw(json!({"total": 12.5, "lines": [{"sku": "a", "qty": 2}], "paid": false}));
    assert_eq!(
        store
            .doc_put(ns, "inv-1", &v1, None, NO_QUOTA)
            .await
            .expect("put"),
        1
    );
    assert_eq!(
        store.doc_get(ns, "inv-1").await.expect("get"),
        Some(Doc {
            key: "inv-1".into(),
            value: v1.clone(),
            version: 1
        })
    );

    let v2 = raw(json!({"total": 12.5, "paid": true}));
    assert_eq!(
        store
            .doc_put(ns, "inv-1", &v2, None, NO_QUOTA)
            .await
            .expect("put"),
        2
    );
    assert_eq!(
        store
            .doc_put(ns, "inv-1", &raw(json!("v3")), Some(2), NO_QUOTA)
            .await
            .expect("put"),
        3
    );
    let doc = store.doc_get(ns, "inv-1").await.expect("get").expect("doc");
    assert_eq!((doc.value, doc.version), (raw(json!("v3")), 3));

    // Any JSON value.
    for (i, value) in [
        json!(null),
        json!(0),
        json!([1, [2]]),
        json!("s"),
        json!(true),
    ]
    .into_iter()
    .map(raw)
    .enumerate()
    {
        let key = format!("scalar-{i}");
        assert_eq!(
            store
                .doc_put(ns, &key, &value, Some(0), NO_QUOTA)
                .await
                .expect("put"),
            1
        );
        assert_eq!(
            store
                .doc_get(ns, &key)
                .await
                .expect("get")
                .expect("doc")
                .value,
            value
        );
    }

    // Delete, and the key starts over.
    assert!(store.doc_delete(ns, "inv-1").await.expect("delete"));
    assert!(!store.doc_delete(ns, "inv-1").await.expect("delete"));
    assert_eq!(store.doc_get(ns, "inv-1").await.expect("get"), None);
    assert_eq!(
        store
            .doc_put(ns, "inv-1", &v1, Some(0), NO_QUOTA)
            .await
            .expect("put"),
        1
    );
}

async fn check_docs_conflicts(store: &Store) {
    let ns = "p";
    assert_eq!(
        store
            .doc_put(ns, "k", &raw(json!(1)), Some(0), NO_QUOTA)
            .await
            .expect("put"),
        1
    );
    assert_eq!(
        store
            .doc_put(ns, "k", &raw(json!(2)), Some(1), NO_QUOTA)
            .await
            .expect("put"),
        2
    );

    // Must not exist yet, but does.
    match store
        .doc_put(ns, "k", &raw(json!("x")), Some(0), NO_QUOTA)
        .await
    {
        Err(StoreError::Conflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!(key, "k");
            assert_eq!(expected, Some(0));
            assert_eq!(actual, Some(2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A stale version.
    match store
        .doc_put(ns, "k", &raw(json!("x")), Some(1), NO_QUOTA)
        .await
    {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (Some(1), Some(2))),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A version from the future.
    assert!(matches!(
        store
            .doc_put(ns, "k", &raw(json!("x")), Some(9), NO_QUOTA)
            .await,
        Err(StoreError::Conflict {
            expected: Some(9),
            actual: Some(2),
            ..
        })
    ));
    // A version of a document that does not exist.
    assert!(matches!(
        store
            .doc_put(ns, "missing", &raw(json!("x")), Some(1), NO_QUOTA)
            .await,
        Err(StoreError::Conflict {
            expected: Some(1),
            actual: None,
            ..
        })
    ));
    assert_eq!(store.doc_get(ns, "missing").await.expect("get"), None);

    // Nothing changed.
    let doc = store.doc_get(ns, "k").await.expect("get").expect("doc");
    assert_eq!((doc.value, doc.version), (raw(json!(2)), 2));

    // The error says what happened.
    let message = store
        .doc_put(ns, "k", &raw(json!(0)), Some(1), NO_QUOTA)
        .await
        .expect_err("conflict")
        .to_string();
    assert!(
        message.contains("\"k\"") && message.contains('2'),
        "{message}"
    );
}

async fn check_docs_concurrent_conditional(store: &Store) {
    let ns = "race";
    assert_eq!(
        store
            .doc_put(ns, "counter", &raw(json!(0)), None, NO_QUOTA)
            .await
            .expect("put"),
        1
    );

    // Eight writers read version 1 and all try to write on top of it.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                (
                    i,
                    store
                        .doc_put("race", "counter", &raw(json!(i + 100)), Some(1), NO_QUOTA)
                        .await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (i, Ok(version)) => {
                assert_eq!(version, 2);
                winners.push(i);
            }
            (_, Err(StoreError::Conflict { actual, .. })) => assert_eq!(actual, Some(2)),
            (_, Err(e)) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one conditional write wins");
    let doc = store
        .doc_get(ns, "counter")
        .await
        .expect("get")
        .expect("doc");
    assert_eq!(doc.version, 2);
    assert_eq!(doc.value, raw(json!(winners[0] + 100)));

    // The same for creation.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .doc_put("race", "fresh", &raw(json!(i)), Some(0), NO_QUOTA)
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(1) => created += 1,
            Ok(v) => panic!("created at version {v}"),
            Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, Some(1)),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created, 1, "exactly one creation wins");
}

async fn check_docs_concurrent_unconditional(store: &Store) {
    // Unconditional writes never conflict, and none is lost: each gets its
    // own version.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .doc_put("race", "log", &raw(json!(i)), None, NO_QUOTA)
                    .await
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.insert(task.await.expect("task").expect("put"));
    }
    assert_eq!(versions, (1..=8).collect());
    let doc = store
        .doc_get("race", "log")
        .await
        .expect("get")
        .expect("doc");
    assert_eq!(doc.version, 8);
}

async fn check_docs_list_by_prefix(store: &Store) {
    let ns = "lists";
    let keys = [
        "a",
        "a%",
        "a%b",
        "a_c",
        "abc",
        "ab",
        "aXc",
        "a\\",
        "a\\b",
        "B",
        "b",
        "a/é",
        "a/z",
        "a/\u{10FFFF}",
        "é",
        "z",
    ];
    for (i, key) in keys.iter().enumerate() {
        store
            .doc_put(ns, key, &raw(json!(i)), None, NO_QUOTA)
            .await
            .expect("put");
    }
    // Keys another plugin has must not show.
    store
        .doc_put("elsewhere", "a%", &raw(json!(0)), None, NO_QUOTA)
        .await
        .expect("put");

    let listed = |prefix: &'static str, limit: u32| {
        let store = store.clone();
        async move {
            store
                .doc_page(ns, prefix, None, limit, u64::MAX)
                .await
                .expect("doc_page")
                .docs
                .into_iter()
                .map(|d| d.key)
                .collect::<Vec<_>>()
        }
    };
    // The expected answer: bytewise order, literal prefix.
    let expected = |prefix: &str, limit: usize| {
        let mut keys: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with(prefix))
            .map(|k| k.to_string())
            .collect();
        keys.sort();
        keys.truncate(limit);
        keys
    };

    for prefix in [
        "a%", "a_", "a", "a\\", "a/", "", "B", "b", "é", "zz", "a%b", "%", "_",
    ] {
        assert_eq!(
            listed(prefix, 1000).await,
            expected(prefix, 1000),
            "prefix {prefix:?}"
        );
    }
    // `%` and `_` are literal.
    assert_eq!(listed("a%", 1000).await, vec!["a%", "a%b"]);
    assert_eq!(listed("a_", 1000).await, vec!["a_c"]);
    assert!(listed("%", 1000).await.is_empty());
    // Bytewise, whatever the database's locale: upper case first.
    assert_eq!(listed("", 2).await, vec!["B", "a"]);
    assert_eq!(listed("a", 3).await, expected("a", 3));

    let docs = store
        .doc_page(ns, "a%", None, 10, u64::MAX)
        .await
        .expect("doc_page")
        .docs;
    assert_eq!(docs[0].value, raw(json!(1)));
    assert_eq!(docs[0].version, 1);
}

/// A namespace's quota of documents and bytes holds exactly, is measured
/// on the values as stored, frees room on delete, lets a write that does
/// not grow through, and leaves other namespaces alone.
async fn check_docs_quota(store: &Store) {
    let value = raw(json!("x".repeat(98))); // 100 bytes as JSON
    let quota = DocQuota {
        docs: 3,
        bytes: 350,
    };
    for i in 0..3 {
        store
            .doc_put("q", &format!("k{i}"), &value, None, quota)
            .await
            .expect("within the quota");
    }
    assert_eq!(store.doc_usage("q").await.expect("usage"), (3, 300));
    let over = store.doc_put("q", "k3", &value, None, quota).await;
    assert!(matches!(over, Err(StoreError::Quota(_))), "{over:?}");
    assert!(store.doc_get("q", "k3").await.expect("get").is_none());
    // Replacing a document adds none; growing past the bytes is refused.
    store
        .doc_put("q", "k0", &raw(json!("y".repeat(98))), None, quota)
        .await
        .expect("replace");
    let bigger = raw(json!("z".repeat(200)));
    let over = store.doc_put("q", "k1", &bigger, None, quota).await;
    assert!(matches!(over, Err(StoreError::Quota(m)) if m.contains("350 bytes")));
    assert_eq!(store.doc_usage("q").await.expect("usage"), (3, 300));
    // Shrinking is always allowed, even over a lowered quota.
    let tighter = DocQuota { docs: 1, bytes: 10 };
    store
        .doc_put("q", "k1", &raw(json!(1)), None, tighter)
        .await
        .expect("shrinks");
    assert_eq!(store.doc_usage("q").await.expect("usage"), (3, 201));
    // A delete frees room; other namespaces never saw any of it.
    assert!(store.doc_delete("q", "k2").await.expect("delete"));
    assert_eq!(store.doc_usage("q").await.expect("usage"), (2, 101));
    store
        .doc_put("q", "k3", &value, None, quota)
        .await
        .expect("room again");
    store
        .doc_put("other", "k", &value, None, tighter)
        .await
        .expect_err("its own quota");
    assert_eq!(store.doc_usage("other").await.expect("usage"), (0, 0));
    // Many writers at once cannot pass the quota together.
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let value = value.clone();
            tokio::spawn(async move {
                store
                    .doc_put("race", &format!("r{i:02}"), &value, None, quota)
                    .await
            })
        })
        .collect();
    let mut written = 0;
    for w in writes {
        if w.await.expect("join").is_ok() {
            written += 1;
        }
    }
    assert_eq!(written, 3);
    assert_eq!(store.doc_usage("race").await.expect("usage"), (3, 300));
}

/// Listing measures first and reads only what fits: pages end by count or
/// by bytes, the first document always comes, and `next` goes on exactly
/// where the page stopped.
async fn check_doc_pages(store: &Store) {
    let unlimited = DocQuota::UNLIMITED;
    for i in 0..10 {
        let value = raw(json!("v".repeat(98))); // 100 bytes
        store
            .doc_put("pages", &format!("p/{i:02}"), &value, None, unlimited)
            .await
            .expect("put");
    }
    store
        .doc_put("pages", "q/other", &raw(json!(1)), None, unlimited)
        .await
        .expect("put");
    let mut keys = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .doc_page("pages", "p/", after.as_deref(), 4, 250)
            .await
            .expect("page");
        pages += 1;
        assert!(page.docs.len() <= 2, "250 bytes hold two documents of 100");
        keys.extend(page.docs.iter().map(|d| d.key.clone()));
        match page.next {
            Some(next) => {
                assert_eq!(Some(&next), keys.last());
                after = Some(next);
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("p/{i:02}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(pages, 5);
    // The first document comes whatever its size; the count limit holds.
    let page = store
        .doc_page("pages", "p/", None, 3, 1)
        .await
        .expect("page");
    assert_eq!(page.docs.len(), 1);
    assert_eq!(page.next.as_deref(), Some("p/00"));
    let page = store
        .doc_page("pages", "p/", None, 3, u64::MAX)
        .await
        .expect("page");
    assert_eq!(page.docs.len(), 3);
    assert_eq!(page.docs[2].value, raw(json!("v".repeat(98))));
    // After the last one: an empty page, no next.
    let page = store
        .doc_page("pages", "p/", Some("p/09"), 3, u64::MAX)
        .await
        .expect("page");
    assert_eq!(page, nova_store::DocPage::default());
}

async fn check_docs_namespaces(store: &Store) {
    assert_eq!(
        store
            .doc_put("one", "k", &raw(json!("one's")), None, NO_QUOTA)
            .await
            .expect("put"),
        1
    );
    assert_eq!(store.doc_get("two", "k").await.expect("get"), None);
    // The same key in another namespace is another document.
    assert_eq!(
        store
            .doc_put("two", "k", &raw(json!("two's")), Some(0), NO_QUOTA)
            .await
            .expect("put"),
        1
    );
    assert_eq!(
        store
            .doc_put("two", "k", &raw(json!("two's 2")), None, NO_QUOTA)
            .await
            .expect("put"),
        2
    );
    assert_eq!(
        store.doc_get("one", "k").await.expect("get").expect("doc"),
        Doc {
            key: "k".into(),
            value: raw(json!("one's")),
            version: 1
        }
    );
    assert!(store.doc_delete("two", "k").await.expect("delete"));
    assert!(store.doc_get("one", "k").await.expect("get").is_some());
    let list = |ns: &'static str| store.doc_page(ns, "", None, 10, u64::MAX);
    assert_eq!(list("two").await.expect("list").docs, vec![]);
    assert_eq!(list("one").await.expect("list").docs.len(), 1);
}

async fn check_invalid_input(store: &Store) {
    for limit in [0, 101] {
        assert!(matches!(
            store
                .list_runs(ListRuns {
                    limit,
                    ..ListRuns::default()
                })
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
    for limit in [0, 1001] {
        assert!(matches!(
            store.doc_page("ns", "", None, limit, u64::MAX).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let long_key = "k".repeat(513);
    for key in ["", "nul\0key", long_key.as_str()] {
        assert!(matches!(
            store
                .doc_put("ns", key, &raw(json!(1)), None, NO_QUOTA)
                .await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.doc_get("ns", key).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(matches!(
        store
            .doc_put("ns", "k", &raw(json!({"a": "nul\u{0}"})), None, NO_QUOTA)
            .await,
        Err(StoreError::Invalid(_))
    ));
    let too_big = raw(json!("x".repeat(1 << 20)));
    assert!(matches!(
        store.doc_put("ns", "k", &too_big, None, NO_QUOTA).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .doc_put("ns", "k", &raw(json!(1)), Some(u64::MAX), NO_QUOTA)
            .await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = new_run(1, None);
    bad.input = raw(json!(["\u{0}"]));
    assert!(matches!(
        store.create_run(bad).await,
        Err(StoreError::Invalid(_))
    ));
    let mut bad = new_run(1, None);
    bad.steps[0].timeout_ms = Some(u64::MAX);
    assert!(matches!(
        store.create_run(bad).await,
        Err(StoreError::Invalid(_))
    ));
    // Nothing was stored.
    assert_eq!(
        store.unfinished_runs().await.expect("unfinished"),
        Vec::<RunId>::new()
    );
    assert_eq!(store.doc_get("ns", "k").await.expect("get"), None);
}

// ---------------------------------------------------------------------------
// Restart and migrations

async fn check_restart(at: Location) {
    let store = at.open().await;
    let (run, _) = store
        .create_run(new_run(2, Some("survives")))
        .await
        .expect("create");
    store
        .claim_run(run.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    store
        .start_step(run.id, 0, "1.0.0", "w1", None)
        .await
        .expect("start");
    assert!(
        store
            .finish_step(
                run.id,
                0,
                StepOutcome::Succeeded {
                    output: raw(json!({"done": 0}))
                },
                2.0,
                "w1"
            )
            .await
            .expect("finish")
    );
    let queued = create(&store, 1).await;
    assert_eq!(
        store
            .doc_put("ns", "state", &raw(json!({"seen": [1]})), None, NO_QUOTA)
            .await
            .expect("put"),
        1
    );
    let before = get(&store, run.id).await;
    store.close().await;
    drop(store);

    // Opened again (migrations find nothing to do), everything is there.
    let store = at.open().await;
    assert_eq!(get(&store, run.id).await, before);
    assert_eq!(get(&store, queued.id).await, queued);
    assert_eq!(
        store.unfinished_runs().await.expect("unfinished"),
        vec![run.id, queued.id]
    );
    let doc = store
        .doc_get("ns", "state")
        .await
        .expect("get")
        .expect("doc");
    assert_eq!((doc.value, doc.version), (raw(json!({"seen": [1]})), 1));
    let (same, created) = store
        .create_run(new_run(1, Some("survives")))
        .await
        .expect("create");
    assert!(!created);
    assert_eq!(same.id, run.id);

    // The worker picks up where it was.
    let resumed = store
        .claim_run(run.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("the holder claims again");
    assert_eq!(resumed.steps[0].status, StepStatus::Succeeded);
    assert_eq!(
        store
            .start_step(run.id, 1, "1.0.0", "w1", None)
            .await
            .expect("start"),
        1
    );
    assert_eq!(
        store
            .doc_put("ns", "state", &raw(json!(2)), Some(1), NO_QUOTA)
            .await
            .expect("put"),
        2
    );
    store.close().await;
}

/// Every file under `crates/nova-store/migrations/<backend>/` was applied, in order: a
/// migration added to the directory but not to the embedded list fails
/// here.
async fn check_migrations(at: Location) {
    let store = at.open().await;
    store.close().await;
    let (dir, applied): (&str, Vec<i64>) = match &at {
        Location::Sqlite(dir) => {
            let url = format!("sqlite://{}", dir.join("nova.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut conn)
                .await
                .expect("journal_mode");
            assert_eq!(mode, "wal", "the embedded store runs in WAL mode");
            let applied = sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&mut conn)
            .await
            .expect("migrations table");
            ("migrations/sqlite", applied)
        }
        Location::Memory => unreachable!("checked on files and Postgres"),
        Location::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            let applied = sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&mut conn)
            .await
            .expect("migrations table");
            let _ = conn.close().await;
            ("migrations/postgres", applied)
        }
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut on_disk: Vec<i64> = std::fs::read_dir(&dir)
        .expect("migrations directory")
        .map(|entry| {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            let version = name
                .split_once('_')
                .and_then(|(v, _)| v.parse().ok())
                .unwrap_or_else(|| panic!("{name}: not VERSION_description.sql"));
            assert!(name.ends_with(".sql"), "{name}");
            version
        })
        .collect();
    on_disk.sort();
    assert!(!on_disk.is_empty());
    assert_eq!(
        applied,
        on_disk,
        "every migration in {} is embedded",
        dir.display()
    );
}

async fn check_secrets(store: &Store) {
    let row = |name: &str, byte: u8, at: i64| SecretRow {
        name: name.to_owned(),
        nonce: vec![byte; 24],
        ciphertext: vec![byte; 40],
        updated_at: at,
    };
    assert!(store.secret_list().await.expect("list").is_empty());
    store.secret_put(&row("b_key", 1, 10)).await.expect("put");
    store.secret_put(&row("a_key", 2, 20)).await.expect("put");
    // A second write replaces the first (rotation).
    store
        .secret_put(&row("b_key", 3, 30))
        .await
        .expect("replace");
    assert_eq!(
        store.secret_list().await.expect("list"),
        vec![("a_key".to_owned(), 20), ("b_key".to_owned(), 30)]
    );
    let mut got = store
        .secret_get_many(&["b_key".into(), "missing".into(), "a_key".into()])
        .await
        .expect("get");
    got.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got, vec![row("a_key", 2, 20), row("b_key", 3, 30)]);
    assert!(store.secret_get_many(&[]).await.expect("none").is_empty());
    assert!(store.secret_delete("a_key").await.expect("delete"));
    assert!(!store.secret_delete("a_key").await.expect("again"));
    assert_eq!(store.secret_list().await.expect("list").len(), 1);
}

async fn check_definitions_versioned(store: &Store) {
    let body = |n: u32| raw(json!({"steps": [{"plugin": "p"}], "description": format!("v{n}")}));
    assert_eq!(
        store.definition_put("flow", &body(1)).await.expect("put"),
        1
    );
    assert_eq!(
        store.definition_put("flow", &body(2)).await.expect("put"),
        2
    );
    assert_eq!(
        store.definition_put("other", &body(1)).await.expect("put"),
        1
    );
    let latest = store
        .definition_get("flow", None)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(
        (latest.version, latest.body.to_value()),
        (2, body(2).to_value())
    );
    let first = store
        .definition_get("flow", Some(1))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(first.body.to_value()["description"], "v1");
    assert!(
        store
            .definition_get("flow", Some(3))
            .await
            .expect("get")
            .is_none()
    );
    let names: Vec<(String, u32)> = store
        .definition_list()
        .await
        .expect("list")
        .into_iter()
        .map(|d| (d.name, d.version))
        .collect();
    assert_eq!(names, [("flow".to_owned(), 2), ("other".to_owned(), 1)]);
    // Concurrent saves each get their own version, however many there are
    // (with optimistic retries alone, 8 at once on Postgres could exhaust
    // them).
    let saves: Vec<_> = (0..32)
        .map(|_| {
            let (store, body) = (store.clone(), body(0));
            tokio::spawn(async move { store.definition_put("busy", &body).await })
        })
        .collect();
    let mut versions = Vec::new();
    for save in saves {
        versions.push(save.await.expect("task").expect("put"));
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=32).collect::<Vec<_>>());
    // Deleted: gone from reads, numbering goes on.
    assert!(store.definition_delete("flow").await.expect("delete"));
    assert!(!store.definition_delete("flow").await.expect("delete again"));
    assert!(
        store
            .definition_get("flow", None)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .definition_get("flow", Some(1))
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(
        store.definition_put("flow", &body(3)).await.expect("put"),
        3
    );
}

async fn check_schedules_advance_once(store: &Store) {
    store.schedule_set("tick", 1_000).await.expect("set");
    store.schedule_set("later", 9_000).await.expect("set");
    assert_eq!(
        store.schedules_due(5_000, 10).await.expect("due"),
        [("tick".to_owned(), 1_000)]
    );
    // Two hosts race to move tick 1000 on: one wins.
    assert!(
        store
            .schedule_advance("tick", 1_000, 2_000)
            .await
            .expect("advance")
    );
    assert!(
        !store
            .schedule_advance("tick", 1_000, 2_000)
            .await
            .expect("advance again")
    );
    assert_eq!(
        store.schedules_due(10_000, 10).await.expect("due"),
        [("tick".to_owned(), 2_000), ("later".to_owned(), 9_000)]
    );
    store.schedule_set("tick", 50).await.expect("reset");
    assert_eq!(store.schedules_due(100, 10).await.expect("due").len(), 1);
    store.schedule_delete("tick").await.expect("delete");
    assert!(store.schedules_due(100, 10).await.expect("due").is_empty());
    // Deleting a definition forgets its schedule.
    store
        .definition_put("later", &raw(json!({"steps": []})))
        .await
        .expect("put");
    store.definition_delete("later").await.expect("delete");
    assert!(
        store
            .schedules_due(i64::MAX, 10)
            .await
            .expect("due")
            .is_empty()
    );
}

async fn check_sleep_and_park(store: &Store) {
    let run = create(store, 2).await;
    store
        .claim_run(run.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    let input = raw(json!({"carry": 1}));
    let wake = now_ms() + 60_000;
    assert_eq!(
        store
            .start_sleep(run.id, 0, wake, &input, "w1")
            .await
            .expect("sleep"),
        wake
    );
    // Started again (resumed on another claim): the first wake stays.
    assert_eq!(
        store
            .start_sleep(run.id, 0, wake + 5, &raw(json!(0)), "w1")
            .await
            .expect("again"),
        wake
    );
    let step = &store
        .get_run(run.id)
        .await
        .expect("get")
        .expect("run")
        .steps[0];
    assert_eq!(
        (step.status, step.attempts, step.wake_at),
        (StepStatus::Running, 1, Some(wake))
    );
    assert_eq!(
        step.input.as_ref().map(RawJson::to_value),
        Some(json!({"carry": 1}))
    );
    assert!(matches!(
        store.start_sleep(run.id, 0, wake, &input, "intruder").await,
        Err(StoreError::LeaseLost)
    ));
    // Parked: nobody holds it, and nobody can claim it before the wake.
    assert!(store.park_run(run.id, "w1", wake).await.expect("park"));
    assert!(!store.park_run(run.id, "w1", wake).await.expect("not held"));
    assert!(
        store
            .claim_run(run.id, "w2", LONG)
            .await
            .expect("claim")
            .is_none()
    );
    assert!(
        !store
            .stale_runs(Duration::ZERO, 10)
            .await
            .expect("stale")
            .contains(&run.id)
    );
    // Cancelling it makes it due at once, for a worker to end it.
    store.request_cancel(run.id).await.expect("cancel");
    assert!(
        store
            .stale_runs(Duration::ZERO, 10)
            .await
            .expect("stale")
            .contains(&run.id)
    );
    let claimed = store
        .claim_run(run.id, "w2", LONG)
        .await
        .expect("claim")
        .expect("due");
    assert!(claimed.cancel_requested);
    // A park until a past time is due at once.
    let other = create(store, 1).await;
    store
        .claim_run(other.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    assert!(
        store
            .park_run(other.id, "w1", now_ms() - 1)
            .await
            .expect("park")
    );
    assert!(
        store
            .claim_run(other.id, "w3", LONG)
            .await
            .expect("claim")
            .is_some()
    );
}

async fn check_retry_run(store: &Store) {
    let run = create(store, 3).await;
    store
        .claim_run(run.id, "w1", LONG)
        .await
        .expect("claim")
        .expect("claimed");
    store
        .start_step(run.id, 0, "1", "w1", None)
        .await
        .expect("start");
    let done = StepOutcome::Succeeded {
        output: raw(json!({"kept": true})),
    };
    store
        .finish_step(run.id, 0, done, 1.0, "w1")
        .await
        .expect("finish");
    store
        .start_step(run.id, 1, "1", "w1", None)
        .await
        .expect("start");
    store
        .start_step(run.id, 1, "1", "w1", None)
        .await
        .expect("retry");
    let failed = StepOutcome::Failed {
        error: "boom".into(),
    };
    store
        .finish_step(run.id, 1, failed, 1.0, "w1")
        .await
        .expect("fail");
    store
        .finish_run(
            run.id,
            RunStatus::Failed,
            None,
            Some("boom".into()),
            Some("w1"),
        )
        .await
        .expect("finish run");
    // Only a failed or cancelled run is retried, once.
    let queued = create(store, 1).await;
    assert!(!store.retry_run(queued.id).await.expect("queued"));
    assert!(store.retry_run(run.id).await.expect("retry"));
    assert!(!store.retry_run(run.id).await.expect("already queued"));
    let again = store.get_run(run.id).await.expect("get").expect("run");
    assert_eq!(again.status, RunStatus::Queued);
    assert_eq!((again.error.as_deref(), again.finished_at), (None, None));
    assert_eq!(
        again.started_at, None,
        "a run timeout counts from the retry"
    );
    assert_eq!(again.steps[0].status, StepStatus::Succeeded);
    assert_eq!(
        again.steps[0].output.as_ref().map(RawJson::to_value),
        Some(json!({"kept": true}))
    );
    assert_eq!(
        (
            again.steps[1].status,
            again.steps[1].attempts,
            again.steps[1].error.as_deref()
        ),
        (StepStatus::Pending, 0, None)
    );
    assert_eq!(again.steps[2].status, StepStatus::Pending);
    assert!(
        store
            .claim_run(run.id, "w2", LONG)
            .await
            .expect("claim")
            .is_some()
    );
}

async fn check_plan_and_skipped_steps(store: &Store) {
    let plan = raw(json!({"steps": [{"id": "a"}, {"id": "b", "if": "$.input.go"}]}));
    let mut new = new_run(2, None);
    new.steps[0].id = Some("a".into());
    new.steps[1].id = Some("b".into());
    new.plan = Some(plan.clone());
    new.definition = Some(("flow".into(), 4));
    new.scheduled_for = Some(1_234);
    let (run, _) = store.create_run(new).await.expect("create");
    let read = store.get_run(run.id).await.expect("get").expect("run");
    assert_eq!(
        read.plan.as_ref().map(RawJson::to_value),
        Some(plan.to_value())
    );
    assert_eq!(
        (read.definition.as_deref(), read.definition_version),
        (Some("flow"), Some(4))
    );
    assert_eq!(read.scheduled_for, Some(1_234));
    assert_eq!(read.steps[1].id.as_deref(), Some("b"));
    // A planned run's claim starts nothing: the engine picks its steps.
    let claim = store
        .claim_and_start(run.id, "w1", LONG, &[("step-0", "1"), ("step-1", "1")])
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claim.started, None);
    store
        .finish_step(run.id, 1, StepOutcome::Skipped, 0.0, "w1")
        .await
        .expect("skip");
    let items = raw(json!([{"status": "succeeded", "attempts": 1}]));
    store
        .start_step(run.id, 0, "1", "w1", Some(&raw(json!([1]))))
        .await
        .expect("start");
    assert!(
        store
            .record_items(run.id, 0, &items, "w1")
            .await
            .expect("items")
    );
    let read = store.get_run(run.id).await.expect("get").expect("run");
    assert_eq!(read.steps[1].status, StepStatus::Skipped);
    assert!(read.steps[1].status.is_terminal());
    assert_eq!(
        read.steps[0].items.as_ref().map(RawJson::to_value),
        Some(items.to_value())
    );
    assert_eq!(
        read.steps[0].input.as_ref().map(RawJson::to_value),
        Some(json!([1]))
    );
    let page = store
        .list_runs(ListRuns {
            definition: Some("flow".into()),
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(page.runs.len(), 1);
    assert_eq!(page.runs[0].definition_version, Some(4));
    let none = store
        .list_runs(ListRuns {
            definition: Some("nope".into()),
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert!(none.runs.is_empty());
}

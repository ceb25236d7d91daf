//! The SQLite backend: the embedded default, one file under the data
//! directory.
//!
//! SQLite has one writer at a time. Writes go through a pool of one
//! connection, so in this process they queue in the pool instead of failing
//! with SQLITE_BUSY; reads use a pool of their own and, in WAL mode, never
//! wait for the writer. Transactions that write begin IMMEDIATE: they take
//! the write lock up front, so another process on the same file (a second
//! worker) makes them wait out the busy timeout, rather than fail when a
//! read lock cannot be upgraded.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use async_trait::async_trait;

use super::backend::Backend;
use super::{
    ApiKeyRow, Claim, DefinitionRow, Doc, GUARDED_TRIES, ListRuns, NewRun, RawJson, Run, RunId,
    RunRefusal, RunStatus, Step, StepOutcome, StepRefusal, StepState, StoreError, duration_ms,
    migrations, now_ms, outcome_columns, run_refusal, run_status, step_status, step_to_start,
    to_i64, to_u32, to_u64,
};
use super::{
    DocWrite, KeyRange, RunSummary, SecretRow, check_version, over_quota, secret_row, usage_after,
};

/// How long a statement waits for another process' write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits for the one writing connection. Writes are short;
/// this only runs out if the disk stalls.
const WRITER_TIMEOUT: Duration = Duration::from_secs(30);
const READERS: u32 = 4;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// `sqlite://PATH` (created if missing) or `sqlite::memory:`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        if url.contains(":memory:") || url.contains("mode=memory") {
            // An in-memory database lives as long as a connection to it:
            // one connection, kept forever, does both reads and writes.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(WRITER_TIMEOUT)
                .connect_with(options)
                .await?;
            migrations::sqlite().run(&pool).await?;
            tracing::info!(backend = "sqlite", "in-memory store ready");
            return Ok(SqliteStore {
                writer: pool.clone(),
                reader: pool,
            });
        }
        Self::open_with(options).await
    }

    /// The database file at `path`, created if missing.
    pub async fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        // NORMAL is durable across crashes of the process in WAL mode; only
        // a power loss can take back the last commits, and every commit
        // does not pay for an fsync.
        let options = options
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        // WAL is a property of the file: the writer sets it (readers then
        // find it), before any reader could hold the file open.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITER_TIMEOUT)
            .connect_with(options.clone().journal_mode(SqliteJournalMode::Wal))
            .await?;
        migrations::sqlite().run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await?;
        tracing::info!(backend = "sqlite", "store ready");
        Ok(SqliteStore { writer, reader })
    }

    async fn steps_of(&self, id: RunId) -> Result<Vec<Step>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE run_id = ?1 ORDER BY idx"
        ))
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| step_from_row(row).map(|(_, step)| step))
            .collect()
    }

    async fn step_state(&self, id: RunId, index: i64) -> Result<Option<StepState>, StoreError> {
        let row = sqlx::query(
            "SELECT r.status, r.lease_owner, s.status AS step_status
             FROM runs r LEFT JOIN steps s ON s.run_id = r.id AND s.idx = ?2
             WHERE r.id = ?1",
        )
        .bind(id)
        .bind(index)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            Ok(StepState {
                run_status: run_status(row.try_get("status")?)?,
                lease_owner: row.try_get("lease_owner")?,
                step_status: row
                    .try_get::<Option<&str>, _>("step_status")?
                    .map(step_status)
                    .transpose()?,
            })
        })
        .transpose()
    }

    /// Starts an attempt of step `index` if `worker` holds the run and the
    /// step is pending or running; the step as it is then. One statement:
    /// the lease check and the update happen under the same write lock.
    async fn try_start(
        &self,
        id: RunId,
        index: u32,
        plugin_version: &str,
        worker: &str,
        input: Option<&RawJson>,
    ) -> Result<Option<Step>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE steps
             SET status = 'running', plugin_version = ?3, attempts = attempts + 1,
                 started_at = COALESCE(started_at, ?5), input = COALESCE(?6, input)
             WHERE run_id = ?1 AND idx = ?2 AND status IN ('pending', 'running')
               AND EXISTS (SELECT 1 FROM runs
                           WHERE id = ?1 AND status = 'running' AND lease_owner = ?4)
             RETURNING ",
            step_columns!()
        ))
        .bind(id)
        .bind(i64::from(index))
        .bind(plugin_version)
        .bind(worker)
        .bind(now_ms())
        .bind(input.map(RawJson::get))
        .fetch_optional(&self.writer)
        .await?;
        row.map(|row| step_from_row(&row).map(|(_, step)| step))
            .transpose()
    }

    async fn run_state(
        &self,
        id: RunId,
    ) -> Result<Option<(RunStatus, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT status, lease_owner FROM runs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| {
            Ok((
                run_status(row.try_get("status")?)?,
                row.try_get("lease_owner")?,
            ))
        })
        .transpose()
    }
}

#[async_trait]
impl Backend for SqliteStore {
    async fn secret_put(&self, row: &SecretRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secrets (name, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE
             SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                 updated_at = excluded.updated_at",
        )
        .bind(&row.name)
        .bind(&row.nonce)
        .bind(&row.ciphertext)
        .bind(row.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn secret_list(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, updated_at FROM secrets ORDER BY name")
                .fetch_all(&self.reader)
                .await?,
        )
    }

    async fn secret_get_many(&self, names: &[String]) -> Result<Vec<SecretRow>, StoreError> {
        // A manifest lists a handful of secrets: one lookup each.
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let row: Option<(String, Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
                "SELECT name, nonce, ciphertext, updated_at FROM secrets WHERE name = ?1",
            )
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
            out.extend(row.map(secret_row));
        }
        Ok(out)
    }

    async fn secret_delete(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = ?1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn create_run(&self, new: NewRun) -> Result<(Run, bool), StoreError> {
        let id = RunId::now_v7();
        let now = now_ms();
        let input = new.input.get();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = sqlx::query(
            "INSERT INTO runs (id, status, input, idempotency_key, cancel_requested, created_at,
                               request_id, definition, definition_version, plan, scheduled_for)
             VALUES (?1, 'queued', ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(id)
        .bind(input)
        .bind(&new.idempotency_key)
        .bind(now)
        .bind(&new.request_id)
        .bind(new.definition.as_ref().map(|d| d.0.as_str()))
        .bind(new.definition.as_ref().map(|d| i64::from(d.1)))
        .bind(new.plan.as_ref().map(RawJson::get))
        .bind(new.scheduled_for)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            for (index, step) in (0i64..).zip(&new.steps) {
                sqlx::query(
                    "INSERT INTO steps
                         (run_id, idx, plugin, config, timeout_ms, retries, status, attempts,
                          step_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7)",
                )
                .bind(id)
                .bind(index)
                .bind(&step.plugin)
                .bind(step.config.get())
                .bind(
                    step.timeout_ms
                        .map(|ms| to_i64(ms, "timeout_ms"))
                        .transpose()?,
                )
                .bind(step.retries.map(i64::from))
                .bind(&step.id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            return Ok((Run::queued(id, now, new), true));
        }
        // The write lock is held since BEGIN: the run that holds the key is
        // committed, and stays.
        let existing: Option<RunId> =
            sqlx::query_scalar("SELECT id FROM runs WHERE idempotency_key = ?1")
                .bind(&new.idempotency_key)
                .fetch_optional(&mut *tx)
                .await?;
        tx.rollback().await?;
        if let Some(existing) = existing
            && let Some(run) = self.get_run(existing).await?
        {
            return Ok((run, false));
        }
        Err(StoreError::Corrupt(
            "an idempotency key conflicted with no run".into(),
        ))
    }

    async fn run_by_idempotency_key(&self, key: &str) -> Result<Option<Run>, StoreError> {
        let id: Option<RunId> =
            sqlx::query_scalar("SELECT id FROM runs WHERE idempotency_key = ?1")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?;
        match id {
            Some(id) => self.get_run(id).await,
            None => Ok(None),
        }
    }

    async fn delete_finished(&self, finished_before: i64, limit: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM runs WHERE id IN (
                 SELECT id FROM runs
                 WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < ?1
                 ORDER BY id LIMIT ?2)",
        )
        .bind(finished_before)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn status_of(&self, id: RunId) -> Result<Option<RunStatus>, StoreError> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        status.as_deref().map(run_status).transpose()
    }

    async fn finished_among(&self, ids: &[RunId]) -> Result<Vec<RunId>, StoreError> {
        let mut finished = Vec::new();
        // Well under SQLite's limit on bound parameters.
        for ids in ids.chunks(500) {
            let marks = vec!["?"; ids.len()].join(", ");
            let sql = format!(
                "SELECT id FROM runs
                 WHERE id IN ({marks}) AND status IN ('succeeded', 'failed', 'cancelled')"
            );
            // Only placeholders are spliced in, never a value.
            let mut query = sqlx::query_scalar::<_, RunId>(sqlx::AssertSqlSafe(sql));
            for id in ids {
                query = query.bind(id);
            }
            finished.extend(query.fetch_all(&self.reader).await?);
        }
        Ok(finished)
    }

    async fn get_run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut run = run_from_row(&row)?;
        run.steps = self.steps_of(id).await?;
        Ok(Some(run))
    }

    /// Up to `limit + 1` summaries (one more tells whether another page
    /// follows), measuring the JSON `q` asks for.
    async fn list_runs(&self, q: &ListRuns) -> Result<Vec<RunSummary>, StoreError> {
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(concat!(
            "SELECT ",
            summary_columns!(),
            ", (SELECT COUNT(*) FROM steps WHERE steps.run_id = runs.id) AS step_count, "
        ));
        query.push(if q.input {
            "octet_length(input)"
        } else {
            "NULL"
        });
        query.push(" AS input_bytes, ");
        query.push(if q.output {
            "octet_length(output)"
        } else {
            "NULL"
        });
        query.push(" AS output_bytes FROM runs");
        let mut sep = " WHERE ";
        if let Some(status) = q.status {
            query.push(sep).push("status = ").push_bind(status.as_str());
            sep = " AND ";
        }
        if let Some(definition) = &q.definition {
            query
                .push(sep)
                .push("definition = ")
                .push_bind(definition.clone());
            sep = " AND ";
        }
        if let Some(cursor) = q.cursor {
            query.push(sep).push("id < ").push_bind(cursor);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(q.limit) + 1);
        let rows = query.build().fetch_all(&self.reader).await?;
        rows.iter().map(summary_from_row).collect()
    }

    /// The input and output (as asked) of runs `ids`.
    async fn run_json(
        &self,
        ids: &[RunId],
        input: bool,
        output: bool,
    ) -> Result<Vec<(RunId, Option<RawJson>, Option<RawJson>)>, StoreError> {
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT id, ");
        query.push(if input { "input" } else { "NULL AS input" });
        query.push(", ");
        query.push(if output { "output" } else { "NULL AS output" });
        query.push(" FROM runs WHERE id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        list.push_unseparated(")");
        let rows = query.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                let json = |column: &str| -> Result<Option<RawJson>, StoreError> {
                    row.try_get::<Option<&str>, _>(column)?
                        .map(|t| from_json(t, column))
                        .transpose()
                };
                Ok((row.try_get("id")?, json("input")?, json("output")?))
            })
            .collect()
    }

    async fn run_size(&self, id: RunId) -> Result<Option<Option<i64>>, StoreError> {
        Ok(
            sqlx::query_scalar(concat!("SELECT ", run_size!(), " FROM runs WHERE id = ?1"))
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn claim_run(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Run>, StoreError> {
        let now = now_ms();
        let row = sqlx::query(concat!(
            "UPDATE runs
             SET status = 'running', lease_owner = ?2, lease_expires_at = ?4,
                 started_at = COALESCE(started_at, ?3)
             WHERE id = ?1
               AND (status = 'queued'
                    OR (status = 'running'
                        AND (lease_owner = ?2 OR lease_expires_at IS NULL
                             OR lease_expires_at <= ?3)))
             RETURNING ",
            run_columns!()
        ))
        .bind(id)
        .bind(worker)
        .bind(now)
        .bind(now.saturating_add(duration_ms(lease)))
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut run = run_from_row(&row)?;
        run.steps = self.steps_of(id).await?;
        Ok(Some(run))
    }

    /// `claim_run`, then the start of the step [`super::step_to_start`]
    /// picks, as the lease holder.
    async fn claim_and_start(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
        versions: &[(&str, &str)],
    ) -> Result<Option<Claim>, StoreError> {
        let Some(mut run) = self.claim_run(id, worker, lease).await? else {
            return Ok(None);
        };
        let Some((index, version)) = step_to_start(&run, versions) else {
            return Ok(Some(Claim { run, started: None }));
        };
        let started = self.try_start(id, index, version, worker, None).await?;
        // Not started: the run changed since the claim (cancelled, taken
        // over); the worker finds out at its next write.
        let Some(step) = started else {
            return Ok(Some(Claim { run, started: None }));
        };
        if let Some(slot) = run.steps.iter_mut().find(|s| s.index == index) {
            *slot = step;
        }
        Ok(Some(Claim {
            run,
            started: Some(index),
        }))
    }

    async fn renew_lease(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let expires = now_ms().saturating_add(duration_ms(lease));
        let done = sqlx::query(
            "UPDATE runs SET lease_expires_at = ?3
             WHERE id = ?1 AND status = 'running' AND lease_owner = ?2",
        )
        .bind(id)
        .bind(worker)
        .bind(expires)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn start_step(
        &self,
        id: RunId,
        index: u32,
        plugin_version: &str,
        worker: &str,
        input: Option<&RawJson>,
    ) -> Result<u32, StoreError> {
        let idx = i64::from(index);
        for _ in 0..GUARDED_TRIES {
            if let Some(step) = self
                .try_start(id, index, plugin_version, worker, input)
                .await?
            {
                return Ok(step.attempts);
            }
            match StepState::refusal(self.step_state(id, idx).await?, worker) {
                StepRefusal::RunNotFound => return Err(StoreError::RunNotFound(id)),
                StepRefusal::LeaseLost => return Err(StoreError::LeaseLost),
                StepRefusal::StepNotFound => {
                    return Err(StoreError::StepNotFound { run: id, index });
                }
                StepRefusal::Finished(status) => {
                    return Err(StoreError::StepFinished {
                        run: id,
                        index,
                        status,
                    });
                }
                StepRefusal::Changed => continue,
            }
        }
        Err(StoreError::LeaseLost)
    }

    async fn start_sleep(
        &self,
        id: RunId,
        index: u32,
        wake_at: i64,
        input: &RawJson,
        worker: &str,
    ) -> Result<i64, StoreError> {
        let idx = i64::from(index);
        let kept: Option<i64> = sqlx::query_scalar(
            "UPDATE steps
             SET status = 'running', started_at = COALESCE(started_at, ?6),
                 attempts = CASE WHEN wake_at IS NULL THEN attempts + 1 ELSE attempts END,
                 input = COALESCE(input, ?4),
                 wake_at = COALESCE(wake_at, ?3)
             WHERE run_id = ?1 AND idx = ?2 AND status IN ('pending', 'running')
               AND EXISTS (SELECT 1 FROM runs
                           WHERE id = ?1 AND status = 'running' AND lease_owner = ?5)
             RETURNING wake_at",
        )
        .bind(id)
        .bind(idx)
        .bind(wake_at)
        .bind(input.get())
        .bind(worker)
        .bind(now_ms())
        .fetch_optional(&self.writer)
        .await?;
        if let Some(kept) = kept {
            return Ok(kept);
        }
        match StepState::refusal(self.step_state(id, idx).await?, worker) {
            StepRefusal::RunNotFound => Err(StoreError::RunNotFound(id)),
            StepRefusal::StepNotFound => Err(StoreError::StepNotFound { run: id, index }),
            StepRefusal::Finished(status) => Err(StoreError::StepFinished {
                run: id,
                index,
                status,
            }),
            StepRefusal::LeaseLost | StepRefusal::Changed => Err(StoreError::LeaseLost),
        }
    }

    async fn park_run(&self, id: RunId, worker: &str, until: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET lease_owner = NULL, lease_expires_at = ?3
             WHERE id = ?1 AND status = 'running' AND lease_owner = ?2",
        )
        .bind(id)
        .bind(worker)
        .bind(until)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_items(
        &self,
        id: RunId,
        index: u32,
        items: &RawJson,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let idx = i64::from(index);
        let done = sqlx::query(
            "UPDATE steps SET items = ?3
             WHERE run_id = ?1 AND idx = ?2 AND status = 'running'
               AND EXISTS (SELECT 1 FROM runs
                           WHERE id = ?1 AND status = 'running' AND lease_owner = ?4)",
        )
        .bind(id)
        .bind(idx)
        .bind(items.get())
        .bind(worker)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        match StepState::refusal(self.step_state(id, idx).await?, worker) {
            StepRefusal::RunNotFound => Err(StoreError::RunNotFound(id)),
            StepRefusal::LeaseLost => Err(StoreError::LeaseLost),
            StepRefusal::StepNotFound => Err(StoreError::StepNotFound { run: id, index }),
            StepRefusal::Finished(_) | StepRefusal::Changed => Ok(false),
        }
    }

    async fn schedule_set(&self, name: &str, next_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workflow_schedules (name, next_at) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET next_at = excluded.next_at",
        )
        .bind(name)
        .bind(next_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn schedule_delete(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM workflow_schedules WHERE name = ?1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn schedules_due(&self, now: i64, limit: u32) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, next_at FROM workflow_schedules WHERE next_at <= ?1
             ORDER BY next_at LIMIT ?2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?)
    }

    async fn schedule_advance(&self, name: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE workflow_schedules SET next_at = ?3 WHERE name = ?1 AND next_at = ?2",
        )
        .bind(name)
        .bind(from)
        .bind(to)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn definition_put(
        &self,
        name: &str,
        body: &RawJson,
        now: i64,
    ) -> Result<Option<u32>, StoreError> {
        // One writer: the next version cannot be taken in between.
        let version: Option<i64> = sqlx::query_scalar(
            "INSERT INTO workflow_definitions (name, version, body, created_at)
             SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3
             FROM workflow_definitions WHERE name = ?1
             ON CONFLICT (name, version) DO NOTHING
             RETURNING version",
        )
        .bind(name)
        .bind(body.get())
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        version.map(|v| to_u32(v, "definition version")).transpose()
    }

    async fn definition_get(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<DefinitionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, version, body, created_at FROM workflow_definitions
             WHERE name = ?1 AND deleted_at IS NULL AND (?2 IS NULL OR version = ?2)
             ORDER BY version DESC LIMIT 1",
        )
        .bind(name)
        .bind(version.map(i64::from))
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(definition_from_row).transpose()
    }

    async fn definition_list(&self) -> Result<Vec<DefinitionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.name, d.version, d.body, d.created_at FROM workflow_definitions d
             WHERE d.deleted_at IS NULL
               AND d.version = (SELECT MAX(version) FROM workflow_definitions
                                WHERE name = d.name AND deleted_at IS NULL)
             ORDER BY d.name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(definition_from_row).collect()
    }

    async fn definition_delete(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE workflow_definitions SET deleted_at = ?2
             WHERE name = ?1 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_step(
        &self,
        id: RunId,
        index: u32,
        outcome: StepOutcome,
        duration_ms: f64,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let idx = i64::from(index);
        let (status, output, error) = outcome_columns(outcome);
        let output = output.as_ref().map(RawJson::get);
        for _ in 0..GUARDED_TRIES {
            let done = sqlx::query(
                "UPDATE steps
                 SET status = ?3, output = ?4, error = ?5, finished_at = ?6, duration_ms = ?8
                 WHERE run_id = ?1 AND idx = ?2 AND status IN ('pending', 'running')
                   AND EXISTS (SELECT 1 FROM runs
                               WHERE id = ?1 AND status = 'running' AND lease_owner = ?7)",
            )
            .bind(id)
            .bind(idx)
            .bind(status.as_str())
            .bind(output)
            .bind(&error)
            .bind(now_ms())
            .bind(worker)
            .bind(duration_ms)
            .execute(&self.writer)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(true);
            }
            match StepState::refusal(self.step_state(id, idx).await?, worker) {
                StepRefusal::RunNotFound => return Err(StoreError::RunNotFound(id)),
                StepRefusal::LeaseLost => return Err(StoreError::LeaseLost),
                StepRefusal::StepNotFound => {
                    return Err(StoreError::StepNotFound { run: id, index });
                }
                StepRefusal::Finished(_) => return Ok(false),
                StepRefusal::Changed => continue,
            }
        }
        Err(StoreError::LeaseLost)
    }

    async fn complete_run(
        &self,
        id: RunId,
        index: u32,
        output: &RawJson,
        duration_ms: f64,
        worker: &str,
    ) -> Result<Option<Run>, StoreError> {
        let output = output.get();
        let now = now_ms();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let step = sqlx::query(
            "UPDATE steps
             SET status = 'succeeded', output = ?3, error = NULL, finished_at = ?4,
                 duration_ms = ?6
             WHERE run_id = ?1 AND idx = ?2 AND status IN ('pending', 'running')
               AND EXISTS (SELECT 1 FROM runs
                           WHERE id = ?1 AND status = 'running' AND lease_owner = ?5)",
        )
        .bind(id)
        .bind(i64::from(index))
        .bind(output)
        .bind(now)
        .bind(worker)
        .bind(duration_ms)
        .execute(&mut *tx)
        .await?;
        if step.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        // The finished run is read back inside the transaction, for
        // whoever waits for it: it ends only if it could be read.
        let row = sqlx::query(concat!(
            "UPDATE runs
             SET status = 'succeeded', output = ?2, error = NULL, finished_at = ?3,
                 lease_owner = NULL, lease_expires_at = NULL
             WHERE id = ?1
             RETURNING ",
            run_columns!()
        ))
        .bind(id)
        .bind(output)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let mut run = run_from_row(&row)?;
        let steps = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE run_id = ?1 ORDER BY idx"
        ))
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        run.steps = steps
            .iter()
            .map(|row| step_from_row(row).map(|(_, step)| step))
            .collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(Some(run))
    }

    async fn finish_run(
        &self,
        id: RunId,
        status: RunStatus,
        output: Option<RawJson>,
        error: Option<String>,
        worker: Option<&str>,
    ) -> Result<bool, StoreError> {
        let output = output.as_ref().map(RawJson::get);
        for _ in 0..GUARDED_TRIES {
            let now = now_ms();
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            let done = sqlx::query(
                "UPDATE runs
                 SET status = ?2, output = ?3, error = ?4, finished_at = ?5,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = ?1 AND status IN ('queued', 'running')
                   AND (?6 IS NULL OR lease_owner = ?6)",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(output)
            .bind(&error)
            .bind(now)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                // A cancelled run's unfinished steps are cancelled with it;
                // a failed one's are left pending: they never ran.
                if status == RunStatus::Cancelled {
                    cancel_steps(&mut tx, id, now).await?;
                }
                tx.commit().await?;
                return Ok(true);
            }
            tx.rollback().await?;
            match run_refusal(self.run_state(id).await?, worker) {
                RunRefusal::NotFound => return Err(StoreError::RunNotFound(id)),
                RunRefusal::Terminal => return Ok(false),
                RunRefusal::LeaseLost => return Err(StoreError::LeaseLost),
                RunRefusal::Changed => continue,
            }
        }
        Err(StoreError::LeaseLost)
    }

    async fn request_cancel(&self, id: RunId) -> Result<Option<RunStatus>, StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // SET expressions read the row as it was, so a queued run becomes
        // cancelled and a running one only gets the request.
        let status: Option<String> = sqlx::query_scalar(
            "UPDATE runs
             SET cancel_requested = 1,
                 status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                 finished_at = CASE WHEN status = 'queued' THEN ?2 ELSE finished_at END,
                 lease_expires_at = CASE WHEN status = 'running' AND lease_owner IS NULL
                                         THEN ?2 ELSE lease_expires_at END
             WHERE id = ?1 AND status IN ('queued', 'running')
             RETURNING status",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if status.as_deref() == Some(RunStatus::Cancelled.as_str()) {
            cancel_steps(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        if let Some(status) = status {
            tracing::info!(run = %id, status, "cancellation requested");
        }
        self.status_of(id).await
    }

    async fn retry_run(&self, id: RunId) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE runs
             SET status = 'queued', output = NULL, error = NULL, finished_at = NULL,
                 started_at = NULL, cancel_requested = 0, lease_owner = NULL,
                 lease_expires_at = NULL
             WHERE id = ?1 AND status IN ('failed', 'cancelled')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE steps
             SET status = 'pending', attempts = 0, output = NULL, error = NULL,
                 started_at = NULL, finished_at = NULL, duration_ms = NULL,
                 input = NULL, items = NULL, wake_at = NULL
             WHERE run_id = ?1 AND status IN ('failed', 'cancelled', 'running')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn cancel_requested(&self, id: RunId) -> Result<bool, StoreError> {
        let requested: Option<bool> = sqlx::query_scalar(
            "SELECT cancel_requested OR status = 'cancelled' FROM runs WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(requested.unwrap_or(false))
    }

    async fn stale_runs(&self, queued_for: Duration, limit: u32) -> Result<Vec<RunId>, StoreError> {
        let now = now_ms();
        Ok(sqlx::query_scalar(
            "SELECT id FROM runs
             WHERE status IN ('queued', 'running')
               AND ((status = 'queued' AND created_at <= ?1)
                    OR (status = 'running'
                        AND (lease_expires_at IS NULL OR lease_expires_at <= ?2)))
             ORDER BY id LIMIT ?3",
        )
        .bind(now.saturating_sub(duration_ms(queued_for)))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?)
    }

    async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM runs WHERE status IN ('queued', 'running') ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?)
    }

    /// (status, count) of every run, or of the unfinished ones only.
    async fn count_by_status(&self, unfinished: bool) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = if unfinished {
            "SELECT status, COUNT(*) FROM runs WHERE status IN ('queued', 'running')
             GROUP BY status"
        } else {
            "SELECT status, COUNT(*) FROM runs GROUP BY status"
        };
        Ok(sqlx::query_as(sql).fetch_all(&self.reader).await?)
    }

    async fn key_insert(&self, key: &ApiKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, prefix, hash, scopes, created_at, last_used_at, collections)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(key.id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(&key.scopes)
        .bind(key.created_at)
        .bind(key.last_used_at)
        .bind(&key.collections)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn key_list(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn key_delete(&self, id: uuid::Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = ?1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE hash = ?1"
        ))
        .bind(hash)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn key_used(&self, id: uuid::Uuid, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")
            .bind(id)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn doc_get(&self, namespace: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let row =
            sqlx::query("SELECT key, value, version FROM docs WHERE namespace = ?1 AND key = ?2")
                .bind(namespace)
                .bind(key)
                .fetch_optional(&self.reader)
                .await?;
        row.as_ref().map(doc_from_row).transpose()
    }

    /// One immediate transaction on the one writing connection: writers
    /// take turns, so the namespace's quota holds exactly.
    async fn doc_put(&self, w: &DocWrite<'_>) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO doc_usage (namespace, docs, bytes) VALUES (?1, 0, 0)
             ON CONFLICT (namespace) DO NOTHING",
        )
        .bind(w.namespace)
        .execute(&mut *tx)
        .await?;
        let before: (i64, i64) =
            sqlx::query_as("SELECT docs, bytes FROM doc_usage WHERE namespace = ?1")
                .bind(w.namespace)
                .fetch_one(&mut *tx)
                .await?;
        let current: Option<(i64, i64)> = sqlx::query_as(
            "SELECT version, size_bytes FROM docs WHERE namespace = ?1 AND key = ?2",
        )
        .bind(w.namespace)
        .bind(w.key)
        .fetch_optional(&mut *tx)
        .await?;
        check_version(w, current.map(|(v, _)| v))?;
        let size = i64::try_from(w.json.len()).unwrap_or(i64::MAX);
        let after = usage_after(before, current.map(|(_, s)| s), size);
        if let Some(e) = over_quota(w.quota, before, after) {
            return Err(e);
        }
        let now = now_ms();
        let sql = if current.is_none() {
            "INSERT INTO docs (namespace, key, value, version, updated_at, size_bytes)
             VALUES (?1, ?2, ?3, 1, ?4, ?5)
             RETURNING version"
        } else {
            "UPDATE docs SET value = ?3, version = version + 1, updated_at = ?4,
                             size_bytes = ?5
             WHERE namespace = ?1 AND key = ?2
             RETURNING version"
        };
        let version: i64 = sqlx::query_scalar(sql)
            .bind(w.namespace)
            .bind(w.key)
            .bind(w.json)
            .bind(now)
            .bind(size)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE doc_usage SET docs = ?2, bytes = ?3 WHERE namespace = ?1")
            .bind(w.namespace)
            .bind(after.0)
            .bind(after.1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        to_u64(version, "version")
    }

    async fn doc_delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let _: Option<i64> = sqlx::query_scalar("SELECT docs FROM doc_usage WHERE namespace = ?1")
            .bind(namespace)
            .fetch_optional(&mut *tx)
            .await?;
        let size: Option<i64> = sqlx::query_scalar(
            "DELETE FROM docs WHERE namespace = ?1 AND key = ?2 RETURNING size_bytes",
        )
        .bind(namespace)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(size) = size {
            sqlx::query(
                "UPDATE doc_usage SET docs = docs - 1, bytes = bytes - ?2 WHERE namespace = ?1",
            )
            .bind(namespace)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(size.is_some())
    }

    async fn doc_usage(&self, namespace: &str) -> Result<(i64, i64), StoreError> {
        let usage: Option<(i64, i64)> =
            sqlx::query_as("SELECT docs, bytes FROM doc_usage WHERE namespace = ?1")
                .bind(namespace)
                .fetch_optional(&self.reader)
                .await?;
        Ok(usage.unwrap_or((0, 0)))
    }

    /// (key, size) of up to `fetch` documents of `range`, by key.
    async fn doc_sizes(
        &self,
        namespace: &str,
        range: &KeyRange<'_>,
        fetch: u32,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT key, size_bytes FROM docs WHERE namespace = ",
        );
        query.push_bind(namespace);
        query.push(" AND key >= ").push_bind(range.prefix);
        if let Some(end) = &range.end {
            query.push(" AND key < ").push_bind(end.as_str());
        }
        if let Some(after) = range.after {
            query.push(" AND key > ").push_bind(after);
        }
        query
            .push(" ORDER BY key LIMIT ")
            .push_bind(i64::from(fetch));
        Ok(query.build_query_as().fetch_all(&self.reader).await?)
    }

    /// The documents of `keys`, by key.
    async fn doc_values(&self, namespace: &str, keys: &[&str]) -> Result<Vec<Doc>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT key, value, version FROM docs WHERE namespace = ",
        );
        query.push_bind(namespace).push(" AND key IN (");
        let mut list = query.separated(", ");
        for key in keys {
            list.push_bind(*key);
        }
        list.push_unseparated(") ORDER BY key");
        let rows = query.build().fetch_all(&self.reader).await?;
        rows.iter().map(doc_from_row).collect()
    }
}

/// Marks a run's unfinished steps cancelled (`finished_at` for those that
/// were running).
async fn cancel_steps(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    id: RunId,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE steps
         SET status = 'cancelled',
             finished_at = CASE WHEN status = 'running' THEN ?2 ELSE finished_at END
         WHERE run_id = ?1 AND status IN ('pending', 'running')",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn from_json(text: &str, what: &str) -> Result<RawJson, StoreError> {
    RawJson::stored(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn run_from_row(row: &SqliteRow) -> Result<Run, StoreError> {
    Ok(Run {
        id: row.try_get("id")?,
        status: run_status(row.try_get("status")?)?,
        input: from_json(row.try_get("input")?, "run input")?,
        output: row
            .try_get::<Option<&str>, _>("output")?
            .map(|t| from_json(t, "run output"))
            .transpose()?,
        error: row.try_get("error")?,
        idempotency_key: row.try_get("idempotency_key")?,
        cancel_requested: row.try_get("cancel_requested")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        request_id: row.try_get("request_id")?,
        definition: row.try_get("definition")?,
        definition_version: row
            .try_get::<Option<i64>, _>("definition_version")?
            .map(|v| to_u32(v, "definition version"))
            .transpose()?,
        plan: row
            .try_get::<Option<&str>, _>("plan")?
            .map(|t| from_json(t, "run plan"))
            .transpose()?,
        scheduled_for: row.try_get("scheduled_for")?,
        steps: Vec::new(),
    })
}

fn summary_from_row(row: &SqliteRow) -> Result<RunSummary, StoreError> {
    let bytes = |column: &str| -> Result<Option<u64>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(|n| u64::try_from(n).unwrap_or(0)))
    };
    Ok(RunSummary {
        id: row.try_get("id")?,
        status: run_status(row.try_get("status")?)?,
        error: row.try_get("error")?,
        idempotency_key: row.try_get("idempotency_key")?,
        cancel_requested: row.try_get("cancel_requested")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        definition: row.try_get("definition")?,
        definition_version: row
            .try_get::<Option<i64>, _>("definition_version")?
            .map(|v| to_u32(v, "definition version"))
            .transpose()?,
        step_count: to_u32(row.try_get("step_count")?, "step count")?,
        input_bytes: bytes("input_bytes")?,
        output_bytes: bytes("output_bytes")?,
        input: None,
        output: None,
    })
}

fn step_from_row(row: &SqliteRow) -> Result<(RunId, Step), StoreError> {
    let timeout_ms: Option<i64> = row.try_get("timeout_ms")?;
    let retries: Option<i64> = row.try_get("retries")?;
    let step = Step {
        index: to_u32(row.try_get("idx")?, "step index")?,
        plugin: row.try_get("plugin")?,
        config: from_json(row.try_get("config")?, "step config")?,
        timeout_ms: timeout_ms.map(|v| to_u64(v, "timeout_ms")).transpose()?,
        retries: retries.map(|v| to_u32(v, "retries")).transpose()?,
        plugin_version: row.try_get("plugin_version")?,
        status: step_status(row.try_get("status")?)?,
        attempts: to_u32(row.try_get("attempts")?, "attempts")?,
        output: row
            .try_get::<Option<&str>, _>("output")?
            .map(|t| from_json(t, "step output"))
            .transpose()?,
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
        id: row.try_get("step_id")?,
        input: row
            .try_get::<Option<&str>, _>("input")?
            .map(|t| from_json(t, "step input"))
            .transpose()?,
        items: row
            .try_get::<Option<&str>, _>("items")?
            .map(|t| from_json(t, "step items"))
            .transpose()?,
        wake_at: row.try_get("wake_at")?,
    };
    Ok((row.try_get("run_id")?, step))
}

fn definition_from_row(row: &SqliteRow) -> Result<DefinitionRow, StoreError> {
    Ok(DefinitionRow {
        name: row.try_get("name")?,
        version: to_u32(row.try_get("version")?, "definition version")?,
        body: from_json(row.try_get("body")?, "definition")?,
        created_at: row.try_get("created_at")?,
    })
}

fn doc_from_row(row: &SqliteRow) -> Result<Doc, StoreError> {
    Ok(Doc {
        key: row.try_get("key")?,
        value: from_json(row.try_get("value")?, "document")?,
        version: to_u64(row.try_get("version")?, "version")?,
    })
}

fn key_from_row(row: &SqliteRow) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        hash: row.try_get("hash")?,
        scopes: row.try_get("scopes")?,
        collections: row.try_get("collections")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

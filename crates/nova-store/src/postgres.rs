//! The Postgres backend, for deployments where several hosts share runs.
//!
//! Every guarded transition is a single statement (data-modifying CTEs where
//! two tables change), so it is atomic without an explicit transaction and
//! costs one round trip. Statements that check a lease lock the run's row
//! (`FOR SHARE`), so a checkpoint cannot interleave with a takeover: under
//! READ COMMITTED the check is re-evaluated on the row the takeover wrote.
//!
//! A run's steps are always addressed by the bound run id (`run_id = $1`),
//! never only through a join on a CTE's output: the primary key then serves
//! them whatever the statistics say. Joined only, a plan made while the
//! table looked small (no ANALYZE yet) scanned every step of every run.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;

use async_trait::async_trait;

use super::backend::Backend;
use super::{
    ApiKeyRow, Claim, DefinitionRow, Doc, GUARDED_TRIES, ListRuns, NewRun, RawJson, Run, RunId,
    RunRefusal, RunStatus, Step, StepOutcome, StepRefusal, StepState, StoreError, duration_ms,
    migrations, now_ms, outcome_columns, run_refusal, run_status, step_status, to_i64, to_u32,
    to_u64,
};
use super::{
    DocWrite, KeyRange, RunSummary, SecretRow, check_version, over_quota, secret_row, usage_after,
};

/// Connections per host. Every call is one or two short statements, so a
/// few connections keep up with many workers; Postgres' own limit (100 by
/// default) is shared by every host.
const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many columns `run_columns!()` names: a `with_steps` row's steps
/// start there.
const RUN_COLUMNS: usize = 15;
/// How many columns `step_columns!()` names.
const STEP_COLUMNS: usize = 18;

/// Reads a run and its steps in one statement: `$1` is the run's id, and
/// `runs` the rows (of `run_columns!()`) the run is taken from, such as a
/// CTE that just updated it.
macro_rules! with_steps {
    ($runs:literal) => {
        concat!(
            "SELECT r.*, s.* FROM ",
            $runs,
            " r LEFT JOIN (SELECT ",
            step_columns!(),
            " FROM steps WHERE run_id = $1) s ON true ORDER BY s.idx"
        )
    };
}

/// Like `with_steps`, in a statement that also updated steps: the rows of
/// CTE `updated` (of `step_columns!()`) stand in for the stored ones, which
/// the statement's snapshot still shows as they were. A last column tells
/// the updated steps.
macro_rules! with_steps_updated {
    ($runs:literal, $updated:literal) => {
        concat!(
            "SELECT r.*, s.* FROM ",
            $runs,
            " r LEFT JOIN (SELECT ",
            step_columns!(),
            ", TRUE AS updated FROM ",
            $updated,
            " UNION ALL SELECT ",
            step_columns!(),
            ", FALSE FROM steps WHERE run_id = $1 AND idx NOT IN (SELECT idx FROM ",
            $updated,
            ")) s ON TRUE ORDER BY s.idx"
        )
    };
}

/// The CTE `claimed`: the run `$1` leased to worker `$2` at `$3` until
/// `$4`, if it is queued, or running with an expired lease (or one of
/// `$2`), and its `run_columns!()`.
macro_rules! claimed {
    () => {
        concat!(
            "WITH claimed AS (
                 UPDATE runs
                 SET status = 'running', lease_owner = $2, lease_expires_at = $4,
                     started_at = COALESCE(started_at, $3)
                 WHERE id = $1
                   AND (status = 'queued'
                        OR (status = 'running'
                            AND (lease_owner = $2 OR lease_expires_at IS NULL
                                 OR lease_expires_at <= $3)))
                 RETURNING ",
            run_columns!(),
            ")"
        )
    };
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("nova");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        // sqlx holds an advisory lock while migrating, so hosts starting
        // together apply each migration once.
        migrations::postgres().run(&pool).await?;
        tracing::info!(backend = "postgres", "store ready");
        Ok(PgStore { pool })
    }

    /// Inserts the run and its steps in one statement; false if the
    /// idempotency key is taken.
    async fn insert_run(&self, id: RunId, now: i64, new: &NewRun) -> Result<bool, StoreError> {
        let mut plugins = Vec::with_capacity(new.steps.len());
        let mut configs = Vec::with_capacity(new.steps.len());
        let mut timeouts = Vec::with_capacity(new.steps.len());
        let mut retries = Vec::with_capacity(new.steps.len());
        let mut ids = Vec::with_capacity(new.steps.len());
        for step in &new.steps {
            ids.push(step.id.as_deref());
            plugins.push(step.plugin.as_str());
            configs.push(step.config.get());
            timeouts.push(
                step.timeout_ms
                    .map(|ms| to_i64(ms, "timeout_ms"))
                    .transpose()?,
            );
            retries.push(step.retries.map(i64::from));
        }
        let inserted: Option<RunId> = sqlx::query_scalar(
            "WITH new_run AS (
                 INSERT INTO runs (id, status, input, idempotency_key, cancel_requested, created_at,
                                   request_id, definition, definition_version, plan, scheduled_for)
                 VALUES ($1, 'queued', $2::json, $3, FALSE, $4, $9, $11, $12, $13::json, $14)
                 ON CONFLICT (idempotency_key) DO NOTHING
                 RETURNING id
             ), new_steps AS (
                 INSERT INTO steps (run_id, idx, plugin, config, timeout_ms, retries, status, attempts,
                                    step_id)
                 SELECT new_run.id, (s.ord - 1)::int, s.plugin, s.config::json, s.timeout_ms, s.retries,
                        'pending', 0, s.step_id
                 FROM new_run,
                      UNNEST($5::text[], $6::text[], $7::int8[], $8::int8[], $10::text[])
                          WITH ORDINALITY AS s (plugin, config, timeout_ms, retries, step_id, ord)
             )
             SELECT id FROM new_run",
        )
        .bind(id)
        .bind(new.input.get())
        .bind(&new.idempotency_key)
        .bind(now)
        .bind(&plugins)
        .bind(&configs)
        .bind(&timeouts)
        .bind(&retries)
        .bind(&new.request_id)
        .bind(&ids)
        .bind(new.definition.as_ref().map(|d| d.0.as_str()))
        .bind(
            new.definition
                .as_ref()
                .map(|d| i32::try_from(d.1))
                .transpose()
                .map_err(|_| StoreError::Invalid("definition version out of range".into()))?,
        )
        .bind(new.plan.as_ref().map(RawJson::get))
        .bind(new.scheduled_for)
        .fetch_optional(&self.pool)
        .await?;
        Ok(inserted.is_some())
    }

    async fn step_state(&self, id: RunId, index: i32) -> Result<Option<StepState>, StoreError> {
        let row = sqlx::query(
            "SELECT r.status, r.lease_owner, s.status AS step_status
             FROM runs r LEFT JOIN steps s ON s.run_id = r.id AND s.idx = $2
             WHERE r.id = $1",
        )
        .bind(id)
        .bind(index)
        .fetch_optional(&self.pool)
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

    async fn run_state(
        &self,
        id: RunId,
    ) -> Result<Option<(RunStatus, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT status, lease_owner FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
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
impl Backend for PgStore {
    async fn secret_put(&self, row: &SecretRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secrets (name, nonce, ciphertext, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE
             SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(&row.name)
        .bind(&row.nonce)
        .bind(&row.ciphertext)
        .bind(row.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn secret_list(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, updated_at FROM secrets ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn secret_get_many(&self, names: &[String]) -> Result<Vec<SecretRow>, StoreError> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT name, nonce, ciphertext, updated_at FROM secrets WHERE name = ANY($1)",
        )
        .bind(names)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(secret_row).collect())
    }

    async fn secret_delete(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    /// The pool, for the parts of the host that share this database
    /// (the fleet's plugin store).
    fn postgres_pool(&self) -> Option<PgPool> {
        Some(self.pool.clone())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn create_run(&self, new: NewRun) -> Result<(Run, bool), StoreError> {
        let id = RunId::now_v7();
        let now = now_ms();
        for _ in 0..GUARDED_TRIES {
            if self.insert_run(id, now, &new).await? {
                return Ok((Run::queued(id, now, new), true));
            }
            // Only the idempotency key can conflict: the run that holds it
            // was committed before the insert gave way.
            let existing: Option<RunId> =
                sqlx::query_scalar("SELECT id FROM runs WHERE idempotency_key = $1")
                    .bind(&new.idempotency_key)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some(existing) = existing
                && let Some(run) = self.get_run(existing).await?
            {
                return Ok((run, false));
            }
        }
        Err(StoreError::Invalid(
            "the idempotency key's run kept disappearing; try again".into(),
        ))
    }

    async fn run_by_idempotency_key(&self, key: &str) -> Result<Option<Run>, StoreError> {
        let id: Option<RunId> =
            sqlx::query_scalar("SELECT id FROM runs WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
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
                 WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < $1
                 ORDER BY id LIMIT $2)",
        )
        .bind(finished_before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn status_of(&self, id: RunId) -> Result<Option<RunStatus>, StoreError> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        status.as_deref().map(run_status).transpose()
    }

    async fn finished_among(&self, ids: &[RunId]) -> Result<Vec<RunId>, StoreError> {
        // One probe of the key per id, forced by the lateral subquery (its
        // LIMIT keeps the planner from flattening it into a join): a
        // plain join let a plan made on stale statistics read every
        // finished run, and `id = ANY($1)` with thousands of ids planned a
        // scan of the whole table.
        Ok(sqlx::query_scalar(
            "SELECT w.id FROM unnest($1::uuid[]) AS w(id)
             JOIN LATERAL (SELECT status FROM runs WHERE id = w.id LIMIT 1) r ON TRUE
             WHERE r.status IN ('succeeded', 'failed', 'cancelled')",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn get_run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        let rows = sqlx::query(concat!(
            "WITH run AS (SELECT ",
            run_columns!(),
            " FROM runs WHERE id = $1) ",
            with_steps!("run")
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        run_with_steps(&rows)
    }

    /// Up to `limit + 1` summaries (one more tells whether another page
    /// follows), measuring the JSON `q` asks for, in Postgres (lazily: a
    /// `CASE` that is false reads nothing).
    async fn list_runs(&self, q: &ListRuns) -> Result<Vec<RunSummary>, StoreError> {
        let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(concat!(
            "SELECT ",
            summary_columns!(),
            ", (SELECT COUNT(*) FROM steps WHERE steps.run_id = runs.id) AS step_count, "
        ));
        query.push(if q.input {
            "octet_length(input::text)::int8"
        } else {
            "NULL::int8"
        });
        query.push(" AS input_bytes, ");
        query.push(if q.output {
            "octet_length(output::text)::int8"
        } else {
            "NULL::int8"
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
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(summary_from_row).collect()
    }

    /// The input and output (as asked) of runs `ids`.
    async fn run_json(
        &self,
        ids: &[RunId],
        input: bool,
        output: bool,
    ) -> Result<Vec<(RunId, Option<RawJson>, Option<RawJson>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, CASE WHEN $2 THEN input END AS input,
                    CASE WHEN $3 THEN output END AS output
             FROM runs WHERE id = ANY($1)",
        )
        .bind(ids)
        .bind(input)
        .bind(output)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    row.try_get::<Option<Json<RawJson>>, _>("input")?
                        .map(|j| j.0),
                    row.try_get::<Option<Json<RawJson>>, _>("output")?
                        .map(|j| j.0),
                ))
            })
            .collect()
    }

    async fn run_size(&self, id: RunId) -> Result<Option<Option<i64>>, StoreError> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT (",
            run_size!(),
            ")::int8 FROM runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn claim_run(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Run>, StoreError> {
        let now = now_ms();
        // The claim and the read of the steps in one round trip.
        let rows = sqlx::query(concat!(claimed!(), " ", with_steps!("claimed")))
            .bind(id)
            .bind(worker)
            .bind(now)
            .bind(now.saturating_add(duration_ms(lease)))
            .fetch_all(&self.pool)
            .await?;
        run_with_steps(&rows)
    }

    /// `claim_run`, and the start of the step [`super::step_to_start`]
    /// picks, in one statement: the claim, the attempt, and the read of the
    /// run with its steps (the started one as the update left it).
    async fn claim_and_start(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
        versions: &[(&str, &str)],
    ) -> Result<Option<Claim>, StoreError> {
        let now = now_ms();
        let (plugins, versions): (Vec<&str>, Vec<&str>) = versions.iter().copied().unzip();
        let rows = sqlx::query(concat!(
            claimed!(),
            ", next AS (
                 SELECT s.idx AS next_idx, v.version AS next_version
                 FROM claimed c
                 JOIN LATERAL (SELECT run_id, idx, plugin, status FROM steps
                               WHERE run_id = $1 AND status <> 'succeeded'
                               ORDER BY idx LIMIT 1) s ON TRUE
                 JOIN UNNEST($5::text[], $6::text[]) AS v (plugin, version)
                      ON v.plugin = s.plugin
                 WHERE NOT c.cancel_requested AND c.plan IS NULL
                   AND s.status IN ('pending', 'running')
             ), started AS (
                 UPDATE steps
                 SET status = 'running', plugin_version = next.next_version,
                     attempts = steps.attempts + 1, started_at = COALESCE(steps.started_at, $3)
                 FROM next
                 WHERE steps.run_id = $1 AND steps.idx = next.next_idx
                 RETURNING ",
            step_columns!(),
            ") ",
            with_steps_updated!("claimed", "started")
        ))
        .bind(id)
        .bind(worker)
        .bind(now)
        .bind(now.saturating_add(duration_ms(lease)))
        .bind(&plugins)
        .bind(&versions)
        .fetch_all(&self.pool)
        .await?;
        let mut started = None;
        for row in &rows {
            if row.try_get::<Option<bool>, _>(RUN_COLUMNS + STEP_COLUMNS)? == Some(true) {
                let index: i32 = row.try_get(RUN_COLUMNS + 1)?;
                started = Some(to_u32(index.into(), "step index")?);
            }
        }
        Ok(run_with_steps(&rows)?.map(|run| Claim { run, started }))
    }

    async fn renew_lease(
        &self,
        id: RunId,
        worker: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let expires = now_ms().saturating_add(duration_ms(lease));
        let done = sqlx::query(
            "UPDATE runs SET lease_expires_at = $3
             WHERE id = $1 AND status = 'running' AND lease_owner = $2",
        )
        .bind(id)
        .bind(worker)
        .bind(expires)
        .execute(&self.pool)
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
        let input = input.map(RawJson::get);
        let Ok(idx) = i32::try_from(index) else {
            return Err(StoreError::StepNotFound { run: id, index });
        };
        for _ in 0..GUARDED_TRIES {
            let attempts: Option<i32> = sqlx::query_scalar(
                "WITH lease AS (
                     SELECT id FROM runs
                     WHERE id = $1 AND status = 'running' AND lease_owner = $4
                     FOR SHARE
                 )
                 UPDATE steps
                 SET status = 'running', plugin_version = $3, attempts = steps.attempts + 1,
                     started_at = COALESCE(steps.started_at, $5),
                     input = COALESCE($6::json, steps.input)
                 FROM lease
                 WHERE steps.run_id = $1 AND steps.idx = $2 AND lease.id = $1
                   AND steps.status IN ('pending', 'running')
                 RETURNING steps.attempts",
            )
            .bind(id)
            .bind(idx)
            .bind(plugin_version)
            .bind(worker)
            .bind(now_ms())
            .bind(input)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(attempts) = attempts {
                return to_u32(attempts.into(), "attempts");
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
        let Ok(idx) = i32::try_from(index) else {
            return Err(StoreError::StepNotFound { run: id, index });
        };
        let kept: Option<i64> = sqlx::query_scalar(
            "WITH lease AS (
                 SELECT id FROM runs
                 WHERE id = $1 AND status = 'running' AND lease_owner = $5
                 FOR SHARE
             )
             UPDATE steps
             SET status = 'running', started_at = COALESCE(steps.started_at, $6),
                 attempts = CASE WHEN steps.wake_at IS NULL THEN steps.attempts + 1
                                 ELSE steps.attempts END,
                 input = COALESCE(steps.input, $4::json),
                 wake_at = COALESCE(steps.wake_at, $3)
             FROM lease
             WHERE steps.run_id = $1 AND steps.idx = $2 AND lease.id = $1
               AND steps.status IN ('pending', 'running')
             RETURNING steps.wake_at",
        )
        .bind(id)
        .bind(idx)
        .bind(wake_at)
        .bind(input.get())
        .bind(worker)
        .bind(now_ms())
        .fetch_optional(&self.pool)
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
            "UPDATE runs SET lease_owner = NULL, lease_expires_at = $3
             WHERE id = $1 AND status = 'running' AND lease_owner = $2",
        )
        .bind(id)
        .bind(worker)
        .bind(until)
        .execute(&self.pool)
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
        let Ok(idx) = i32::try_from(index) else {
            return Err(StoreError::StepNotFound { run: id, index });
        };
        let done = sqlx::query(
            "WITH lease AS (
                 SELECT id FROM runs
                 WHERE id = $1 AND status = 'running' AND lease_owner = $4
                 FOR SHARE
             )
             UPDATE steps SET items = $3::json
             FROM lease
             WHERE steps.run_id = $1 AND steps.idx = $2 AND lease.id = $1
               AND steps.status = 'running'",
        )
        .bind(id)
        .bind(idx)
        .bind(items.get())
        .bind(worker)
        .execute(&self.pool)
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
            "INSERT INTO workflow_schedules (name, next_at) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET next_at = excluded.next_at",
        )
        .bind(name)
        .bind(next_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn schedule_delete(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM workflow_schedules WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn schedules_due(&self, now: i64, limit: u32) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, next_at FROM workflow_schedules WHERE next_at <= $1
             ORDER BY next_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn schedule_advance(&self, name: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE workflow_schedules SET next_at = $3 WHERE name = $1 AND next_at = $2",
        )
        .bind(name)
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn definition_put(
        &self,
        name: &str,
        body: &RawJson,
        now: i64,
    ) -> Result<Option<u32>, StoreError> {
        // Saves of one name queue on a transaction-scoped advisory lock, so
        // each reads the version the one before it wrote: under READ
        // COMMITTED, optimistic retries alone can starve when many save at
        // once.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('nova.definition:' || $1, 0))")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let version: Option<i32> = sqlx::query_scalar(
            "INSERT INTO workflow_definitions (name, version, body, created_at)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2::json, $3
             FROM workflow_definitions WHERE name = $1
             ON CONFLICT (name, version) DO NOTHING
             RETURNING version",
        )
        .bind(name)
        .bind(body.get())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        version
            .map(|v| to_u32(v.into(), "definition version"))
            .transpose()
    }

    async fn definition_get(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<DefinitionRow>, StoreError> {
        let version = version
            .map(i32::try_from)
            .transpose()
            .map_err(|_| StoreError::Invalid("definition version out of range".into()))?;
        let row = sqlx::query(
            "SELECT name, version, body, created_at FROM workflow_definitions
             WHERE name = $1 AND deleted_at IS NULL AND ($2::int4 IS NULL OR version = $2)
             ORDER BY version DESC LIMIT 1",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(definition_from_row).transpose()
    }

    async fn definition_list(&self) -> Result<Vec<DefinitionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (name) name, version, body, created_at FROM workflow_definitions
             WHERE deleted_at IS NULL ORDER BY name, version DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(definition_from_row).collect()
    }

    async fn definition_delete(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE workflow_definitions SET deleted_at = $2
             WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(now)
        .execute(&self.pool)
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
        let Ok(idx) = i32::try_from(index) else {
            return Err(StoreError::StepNotFound { run: id, index });
        };
        let (status, output, error) = outcome_columns(outcome);
        let output = output.as_ref().map(RawJson::get);
        for _ in 0..GUARDED_TRIES {
            let done = sqlx::query(
                "WITH lease AS (
                     SELECT id FROM runs
                     WHERE id = $1 AND status = 'running' AND lease_owner = $7
                     FOR SHARE
                 )
                 UPDATE steps
                 SET status = $3, output = $4::json, error = $5, finished_at = $6, duration_ms = $8
                 FROM lease
                 WHERE steps.run_id = $1 AND steps.idx = $2 AND lease.id = $1
                   AND steps.status IN ('pending', 'running')",
            )
            .bind(id)
            .bind(idx)
            .bind(status.as_str())
            .bind(output)
            .bind(&error)
            .bind(now_ms())
            .bind(worker)
            .bind(duration_ms)
            .execute(&self.pool)
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
        let Ok(idx) = i32::try_from(index) else {
            return Err(StoreError::StepNotFound { run: id, index });
        };
        // The step's checkpoint and the run's end in one statement: the
        // run only ends if the lease holder's step was recorded. The
        // finished run is read back in the same statement, for whoever
        // waits for it.
        let rows = sqlx::query(concat!(
            "WITH lease AS (
                 SELECT id FROM runs
                 WHERE id = $1 AND status = 'running' AND lease_owner = $5
                 FOR UPDATE
             ), step AS (
                 UPDATE steps
                 SET status = 'succeeded', output = $3::json, error = NULL, finished_at = $4,
                     duration_ms = $6
                 FROM lease
                 WHERE steps.run_id = $1 AND steps.idx = $2 AND lease.id = $1
                   AND steps.status IN ('pending', 'running')
                 RETURNING ",
            step_columns!(),
            "), done AS (
                 UPDATE runs
                 SET status = 'succeeded', output = $3::json, error = NULL, finished_at = $4,
                     lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM step)
                 RETURNING ",
            run_columns!(),
            ") ",
            with_steps_updated!("done", "step")
        ))
        .bind(id)
        .bind(idx)
        .bind(output.get())
        .bind(now_ms())
        .bind(worker)
        .bind(duration_ms)
        .fetch_all(&self.pool)
        .await?;
        run_with_steps(&rows)
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
            // A cancelled run's unfinished steps are cancelled with it; a
            // failed one's are left pending: they never ran.
            let finished: Option<RunId> = sqlx::query_scalar(
                "WITH run AS (
                     UPDATE runs
                     SET status = $2, output = $3::json, error = $4, finished_at = $5,
                         lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = $1 AND status IN ('queued', 'running')
                       AND ($6::text IS NULL OR lease_owner = $6)
                     RETURNING id, status
                 ), cancelled_steps AS (
                     UPDATE steps
                     SET status = 'cancelled',
                         finished_at = CASE WHEN steps.status = 'running' THEN $5
                                            ELSE steps.finished_at END
                     FROM run
                     WHERE steps.run_id = run.id AND run.status = 'cancelled'
                       AND steps.status IN ('pending', 'running')
                 )
                 SELECT id FROM run",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(output)
            .bind(&error)
            .bind(now_ms())
            .bind(worker)
            .fetch_optional(&self.pool)
            .await?;
            if finished.is_some() {
                return Ok(true);
            }
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
        // SET expressions read the row as it was, so a queued run becomes
        // cancelled and a running one only gets the request.
        let status: Option<String> = sqlx::query_scalar(
            "WITH run AS (
                 UPDATE runs
                 SET cancel_requested = TRUE,
                     status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                     finished_at = CASE WHEN status = 'queued' THEN $2 ELSE finished_at END,
                     -- A parked run (sleeping) is due now, to be cancelled.
                     lease_expires_at = CASE WHEN status = 'running' AND lease_owner IS NULL
                                             THEN $2 ELSE lease_expires_at END
                 WHERE id = $1 AND status IN ('queued', 'running')
                 RETURNING id, status
             ), cancelled_steps AS (
                 UPDATE steps SET status = 'cancelled'
                 FROM run
                 WHERE steps.run_id = run.id AND run.status = 'cancelled'
                   AND steps.status IN ('pending', 'running')
             )
             SELECT status FROM run",
        )
        .bind(id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(status) = status {
            tracing::info!(run = %id, status, "cancellation requested");
        }
        self.status_of(id).await
    }

    async fn retry_run(&self, id: RunId) -> Result<bool, StoreError> {
        let retried: Option<RunId> = sqlx::query_scalar(
            "WITH run AS (
                 UPDATE runs
                 SET status = 'queued', output = NULL, error = NULL, finished_at = NULL,
                     started_at = NULL, cancel_requested = FALSE, lease_owner = NULL,
                     lease_expires_at = NULL
                 WHERE id = $1 AND status IN ('failed', 'cancelled')
                 RETURNING id
             ), reopened AS (
                 UPDATE steps
                 SET status = 'pending', attempts = 0, output = NULL, error = NULL,
                     started_at = NULL, finished_at = NULL, duration_ms = NULL,
                     input = NULL, items = NULL, wake_at = NULL
                 FROM run
                 WHERE steps.run_id = $1 AND run.id = $1
                   AND steps.status IN ('failed', 'cancelled', 'running')
             )
             SELECT id FROM run",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(retried.is_some())
    }

    async fn cancel_requested(&self, id: RunId) -> Result<bool, StoreError> {
        let requested: Option<bool> = sqlx::query_scalar(
            "SELECT cancel_requested OR status = 'cancelled' FROM runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(requested.unwrap_or(false))
    }

    async fn stale_runs(&self, queued_for: Duration, limit: u32) -> Result<Vec<RunId>, StoreError> {
        let now = now_ms();
        // One branch per status, each a range of the (status, id) index
        // read in id order: the plan cannot drift into walking every run
        // by its key, whatever the statistics say.
        Ok(sqlx::query_scalar(
            "SELECT id FROM (
                 (SELECT id FROM runs
                  WHERE status = 'queued' AND created_at <= $1
                  ORDER BY id LIMIT $3)
                 UNION ALL
                 (SELECT id FROM runs
                  WHERE status = 'running'
                    AND (lease_expires_at IS NULL OR lease_expires_at <= $2)
                  ORDER BY id LIMIT $3)
             ) stale ORDER BY id LIMIT $3",
        )
        .bind(now.saturating_sub(duration_ms(queued_for)))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM runs WHERE status IN ('queued', 'running') ORDER BY id",
        )
        .fetch_all(&self.pool)
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
        Ok(sqlx::query_as(sql).fetch_all(&self.pool).await?)
    }

    async fn key_insert(&self, key: &ApiKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, prefix, hash, scopes, created_at, last_used_at, collections)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(&key.scopes)
        .bind(key.created_at)
        .bind(key.last_used_at)
        .bind(&key.collections)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn key_list(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn key_delete(&self, id: uuid::Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn key_used(&self, id: uuid::Uuid, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn doc_get(&self, namespace: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let row =
            sqlx::query("SELECT key, value, version FROM docs WHERE namespace = $1 AND key = $2")
                .bind(namespace)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(doc_from_row).transpose()
    }

    /// One transaction: the namespace's usage row is locked first, so the
    /// writers of one namespace take turns and its quota holds exactly.
    async fn doc_put(&self, w: &DocWrite<'_>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO doc_usage (namespace, docs, bytes) VALUES ($1, 0, 0)
             ON CONFLICT (namespace) DO NOTHING",
        )
        .bind(w.namespace)
        .execute(&mut *tx)
        .await?;
        let before: (i64, i64) =
            sqlx::query_as("SELECT docs, bytes FROM doc_usage WHERE namespace = $1 FOR UPDATE")
                .bind(w.namespace)
                .fetch_one(&mut *tx)
                .await?;
        let current: Option<(i64, i64)> = sqlx::query_as(
            "SELECT version, size_bytes FROM docs WHERE namespace = $1 AND key = $2",
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
             VALUES ($1, $2, $3::json, 1, $4, $5)
             RETURNING version"
        } else {
            "UPDATE docs SET value = $3::json, version = version + 1, updated_at = $4,
                             size_bytes = $5
             WHERE namespace = $1 AND key = $2
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
        sqlx::query("UPDATE doc_usage SET docs = $2, bytes = $3 WHERE namespace = $1")
            .bind(w.namespace)
            .bind(after.0)
            .bind(after.1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        to_u64(version, "version")
    }

    async fn doc_delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let _: Option<i64> =
            sqlx::query_scalar("SELECT docs FROM doc_usage WHERE namespace = $1 FOR UPDATE")
                .bind(namespace)
                .fetch_optional(&mut *tx)
                .await?;
        let size: Option<i64> = sqlx::query_scalar(
            "DELETE FROM docs WHERE namespace = $1 AND key = $2 RETURNING size_bytes",
        )
        .bind(namespace)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(size) = size {
            sqlx::query(
                "UPDATE doc_usage SET docs = docs - 1, bytes = bytes - $2 WHERE namespace = $1",
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
            sqlx::query_as("SELECT docs, bytes FROM doc_usage WHERE namespace = $1")
                .bind(namespace)
                .fetch_optional(&self.pool)
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
        let mut query = sqlx::QueryBuilder::<sqlx::Postgres>::new(
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
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The documents of `keys`, by key.
    async fn doc_values(&self, namespace: &str, keys: &[&str]) -> Result<Vec<Doc>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, value, version FROM docs
             WHERE namespace = $1 AND key = ANY($2) ORDER BY key",
        )
        .bind(namespace)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(doc_from_row).collect()
    }
}

fn summary_from_row(row: &PgRow) -> Result<RunSummary, StoreError> {
    let step_count: i64 = row.try_get("step_count")?;
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
            .try_get::<Option<i32>, _>("definition_version")?
            .map(|v| to_u32(v.into(), "definition version"))
            .transpose()?,
        step_count: to_u32(step_count, "step count")?,
        input_bytes: bytes("input_bytes")?,
        output_bytes: bytes("output_bytes")?,
        input: None,
        output: None,
    })
}

/// A run from the `run_columns!()` starting at column `at`.
fn run_at(row: &PgRow, at: usize) -> Result<Run, StoreError> {
    Ok(Run {
        id: row.try_get(at)?,
        status: run_status(row.try_get(at + 1)?)?,
        input: row.try_get::<Json<RawJson>, _>(at + 2)?.0,
        output: row
            .try_get::<Option<Json<RawJson>>, _>(at + 3)?
            .map(|j| j.0),
        error: row.try_get(at + 4)?,
        idempotency_key: row.try_get(at + 5)?,
        cancel_requested: row.try_get(at + 6)?,
        created_at: row.try_get(at + 7)?,
        started_at: row.try_get(at + 8)?,
        finished_at: row.try_get(at + 9)?,
        request_id: row.try_get(at + 10)?,
        definition: row.try_get(at + 11)?,
        definition_version: row
            .try_get::<Option<i32>, _>(at + 12)?
            .map(|v| to_u32(v.into(), "definition version"))
            .transpose()?,
        plan: row
            .try_get::<Option<Json<RawJson>>, _>(at + 13)?
            .map(|j| j.0),
        scheduled_for: row.try_get(at + 14)?,
        steps: Vec::new(),
    })
}

/// A step from the `step_columns!()` starting at column `at`.
fn step_at(row: &PgRow, at: usize) -> Result<(RunId, Step), StoreError> {
    let index: i32 = row.try_get(at + 1)?;
    let timeout_ms: Option<i64> = row.try_get(at + 4)?;
    let retries: Option<i64> = row.try_get(at + 5)?;
    let attempts: i32 = row.try_get(at + 8)?;
    let step = Step {
        index: to_u32(index.into(), "step index")?,
        plugin: row.try_get(at + 2)?,
        config: row.try_get::<Json<RawJson>, _>(at + 3)?.0,
        timeout_ms: timeout_ms.map(|v| to_u64(v, "timeout_ms")).transpose()?,
        retries: retries.map(|v| to_u32(v, "retries")).transpose()?,
        plugin_version: row.try_get(at + 6)?,
        status: step_status(row.try_get(at + 7)?)?,
        attempts: to_u32(attempts.into(), "attempts")?,
        output: row
            .try_get::<Option<Json<RawJson>>, _>(at + 9)?
            .map(|j| j.0),
        error: row.try_get(at + 10)?,
        started_at: row.try_get(at + 11)?,
        finished_at: row.try_get(at + 12)?,
        duration_ms: row.try_get(at + 13)?,
        id: row.try_get(at + 14)?,
        input: row
            .try_get::<Option<Json<RawJson>>, _>(at + 15)?
            .map(|j| j.0),
        items: row
            .try_get::<Option<Json<RawJson>>, _>(at + 16)?
            .map(|j| j.0),
        wake_at: row.try_get(at + 17)?,
    };
    Ok((row.try_get(at)?, step))
}

/// A run and its steps from the rows of a `with_steps` query: each row
/// holds the run's columns, then one step's (NULL when it has none).
fn run_with_steps(rows: &[PgRow]) -> Result<Option<Run>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut run = run_at(first, 0)?;
    for row in rows {
        if row.try_get::<Option<RunId>, _>(RUN_COLUMNS)?.is_some() {
            run.steps.push(step_at(row, RUN_COLUMNS)?.1);
        }
    }
    Ok(Some(run))
}

fn definition_from_row(row: &PgRow) -> Result<DefinitionRow, StoreError> {
    let version: i32 = row.try_get("version")?;
    Ok(DefinitionRow {
        name: row.try_get("name")?,
        version: to_u32(version.into(), "definition version")?,
        body: row.try_get::<Json<RawJson>, _>("body")?.0,
        created_at: row.try_get("created_at")?,
    })
}

fn doc_from_row(row: &PgRow) -> Result<Doc, StoreError> {
    Ok(Doc {
        key: row.try_get("key")?,
        value: row.try_get::<Json<RawJson>, _>("value")?.0,
        version: to_u64(row.try_get("version")?, "version")?,
    })
}

fn key_from_row(row: &PgRow) -> Result<ApiKeyRow, StoreError> {
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

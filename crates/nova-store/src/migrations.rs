//! The schema migrations, embedded in the binary and applied at connect.
//!
//! The SQL lives in `crates/nova-store/migrations/{postgres,sqlite}/NNNN_description.sql`,
//! the layout `sqlx migrate` uses, and the checksums are sqlx's own, so the
//! `_sqlx_migrations` table reads the same as if `sqlx::migrate!` had
//! embedded them. They are listed here instead because that macro needs
//! sqlx's `macros` feature, which builds a second copy of the drivers (and
//! of bundled SQLite) for the compiler. A migration added to a directory
//! but not to these lists fails the store tests.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// (version, description, SQL), in order.
type Embedded = &'static [(i64, &'static str, &'static str)];

// Postgres only: its 0003, the plugins the hosts of a fleet share; the
// migrations after it are numbered one higher there than in SQLite.
const POSTGRES: Embedded = &[
    (
        1,
        "runs steps docs",
        include_str!("../migrations/postgres/0001_runs_steps_docs.sql"),
    ),
    (
        2,
        "run request id",
        include_str!("../migrations/postgres/0002_run_request_id.sql"),
    ),
    (
        3,
        "plugins",
        include_str!("../migrations/postgres/0003_plugins.sql"),
    ),
    (
        4,
        "api keys",
        include_str!("../migrations/postgres/0004_api_keys.sql"),
    ),
    (
        5,
        "json text",
        include_str!("../migrations/postgres/0005_json_text.sql"),
    ),
    (
        6,
        "doc sizes and usage",
        include_str!("../migrations/postgres/0006_doc_sizes_and_usage.sql"),
    ),
    (
        7,
        "secrets",
        include_str!("../migrations/postgres/0007_secrets.sql"),
    ),
    (
        8,
        "workflows v2",
        include_str!("../migrations/postgres/0008_workflows_v2.sql"),
    ),
    (
        9,
        "key collections",
        include_str!("../migrations/postgres/0009_key_collections.sql"),
    ),
];

const SQLITE: Embedded = &[
    (
        1,
        "runs steps docs",
        include_str!("../migrations/sqlite/0001_runs_steps_docs.sql"),
    ),
    (
        2,
        "run request id",
        include_str!("../migrations/sqlite/0002_run_request_id.sql"),
    ),
    (
        3,
        "api keys",
        include_str!("../migrations/sqlite/0003_api_keys.sql"),
    ),
    (
        4,
        "doc sizes and usage",
        include_str!("../migrations/sqlite/0004_doc_sizes_and_usage.sql"),
    ),
    (
        5,
        "secrets",
        include_str!("../migrations/sqlite/0005_secrets.sql"),
    ),
    (
        6,
        "workflows v2",
        include_str!("../migrations/sqlite/0006_workflows_v2.sql"),
    ),
    (
        7,
        "key collections",
        include_str!("../migrations/sqlite/0007_key_collections.sql"),
    ),
];

fn migrator(embedded: Embedded) -> Migrator {
    Migrator::with_migrations(
        embedded
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

pub(super) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

pub(super) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

//! The job store on Postgres (sqlx): API keys, jobs and their parts.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;
use xlport_core::apikey;
use xlport_core::job::{
    Access, Caller, Claim, ExpiredUpload, Job, JobKind, JobState, KeyId, NewJob, PartStatus,
    Stalled, UploadOutcome, bounded_error, bounded_warnings,
};
use xlport_core::lifecycle::Step;
use xlport_core::ports::{JobStore, RowSource, TableError};

use crate::config::Config;
use crate::pgcopy::{CopyConnection, CopyOutEnd};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored job is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Random(#[from] apikey::RandomError),
}

/// What a client is told when Postgres refuses a write, by the name of the
/// constraint it breaks (the migrations name every constraint for this).
/// `None`: a constraint only a fault of xlport's own can break, which stays
/// an internal error.
pub fn constraint_message(name: &str) -> Option<&'static str> {
    Some(match name {
        "api_keys_key_hash_unique" => "an API key with this secret already exists",
        "jobs_owner_key_fk" => "the API key was removed while the request ran",
        "jobs_declared_size_check" => "`size` must be the file's size in bytes (>= 0)",
        "user_purchase_pkey" => "a row with this CPF already exists",
        "user_purchase_cpf_format" => "CPF must be 11 digits",
        "user_purchase_loja_mais_frequente_format" | "user_purchase_loja_ultima_compra_format" => {
            "a store's CNPJ must be 14 digits"
        }
        "user_purchase_loja_mais_frequente_valida_null"
        | "user_purchase_loja_ultima_compra_valida_null" => {
            "a store's validity flag is set only when its CNPJ is"
        }
        _ => return None,
    })
}

impl xlport_core::ports::JobStoreError for DbError {
    fn refusal(&self) -> Option<&'static str> {
        match self {
            DbError::Sqlx(sqlx::Error::Database(db)) => {
                db.constraint().and_then(constraint_message)
            }
            _ => None,
        }
    }
}

pub async fn connect(config: &Config) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(&config.database_url)?.application_name("xlport");
    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .min_connections(0)
        .idle_timeout(config.db_idle_timeout)
        .connect_lazy_with(options);
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

#[derive(Clone)]
pub struct PgStore {
    pub pool: PgPool,
}

#[derive(FromRow)]
struct JobRow {
    id: Uuid,
    kind: String,
    dataset: String,
    state: String,
    format: Option<String>,
    options: serde_json::Value,
    filename: Option<String>,
    object_key: Option<String>,
    declared_size: Option<i64>,
    object_size: Option<i64>,
    etag: Option<String>,
    upload_id: Option<String>,
    rows_done: i64,
    bytes_done: i64,
    parts_done: i32,
    parts_total: Option<i32>,
    counts: serde_json::Value,
    warnings: serde_json::Value,
    error: Option<String>,
    result_key: Option<String>,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JobRow> for Job {
    type Error = DbError;
    fn try_from(r: JobRow) -> Result<Self, DbError> {
        Ok(Job {
            id: r.id,
            kind: JobKind::from_str(&r.kind).map_err(|e| DbError::Corrupt(e.to_string()))?,
            dataset: r.dataset,
            state: JobState::from_str(&r.state).map_err(|e| DbError::Corrupt(e.to_string()))?,
            format: r.format,
            options: r.options,
            filename: r.filename,
            object_key: r.object_key,
            declared_size: r.declared_size,
            object_size: r.object_size,
            etag: r.etag,
            upload_id: r.upload_id,
            rows_done: r.rows_done,
            bytes_done: r.bytes_done,
            parts_done: r.parts_done,
            parts_total: r.parts_total,
            counts: r.counts,
            warnings: r.warnings,
            error: r.error,
            result_key: r.result_key,
            attempts: r.attempts,
            last_error: r.last_error,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }
}

/// The job columns every query returns, as a literal so queries stay `&'static str`.
macro_rules! job_columns {
    () => {
        "id, kind, dataset, state, format, options, filename, object_key, \
         declared_size, object_size, etag, upload_id, rows_done, bytes_done, parts_done, \
         parts_total, counts, warnings, error, result_key, attempts, last_error, next_attempt_at, \
         created_at, updated_at, started_at, finished_at"
    };
}

impl PgStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates a key with full access and returns its plaintext, which is
    /// never stored.
    pub async fn create_api_key(&self, name: &str) -> Result<(KeyId, String), DbError> {
        self.create_api_key_with(name, &Access::full()).await
    }

    /// Creates a key limited to `access` and returns its plaintext.
    pub async fn create_api_key_with(
        &self,
        name: &str,
        access: &Access,
    ) -> Result<(KeyId, String), DbError> {
        let key = apikey::generate()?;
        let id = Uuid::new_v4();
        sqlx::query(
            "insert into api_keys (id, name, key_hash, key_prefix, datasets, can_import, can_export) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(name)
        .bind(&key.hash)
        .bind(&key.display_prefix)
        .bind(&access.datasets)
        .bind(access.import)
        .bind(access.export)
        .execute(&self.pool)
        .await?;
        Ok((KeyId(id), key.plaintext))
    }

    /// Stores a key whose plaintext the caller chose (the local stack's fixed
    /// development key). Idempotent.
    pub async fn ensure_api_key(&self, name: &str, plaintext: &str) -> Result<KeyId, DbError> {
        let hash = apikey::hash(plaintext);
        let prefix: String = plaintext.chars().take(10).collect();
        let id: Uuid = sqlx::query_scalar(
            "insert into api_keys (id, name, key_hash, key_prefix) values ($1, $2, $3, $4) \
             on conflict on constraint api_keys_key_hash_unique do update set revoked_at = null \
             returning id",
        )
        .bind(Uuid::new_v4())
        .bind(name)
        .bind(hash)
        .bind(prefix)
        .fetch_one(&self.pool)
        .await?;
        Ok(KeyId(id))
    }

    /// Ends a job by `step` (fail, expire) with `reason`, from the step's
    /// states only. False if it had moved on.
    async fn end_job(&self, id: Uuid, step: Step, reason: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "update jobs set state = $3, error = $2, finished_at = now(), updated_at = now(), \
             lease_owner = null, lease_until = null \
             where id = $1 and state = any($4)",
        )
        .bind(id)
        .bind(reason)
        .bind(step.to().as_str())
        .bind(step.from_names())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// One row of `job_parts`, as [`PartStatus`].
type PartRow = (
    i32,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i32,
    i32,
    i32,
    i32,
    serde_json::Value,
    Option<String>,
);

impl JobStore for PgStore {
    type Error = DbError;

    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn authenticate(&self, token: &str) -> Result<Option<Caller>, DbError> {
        let row: Option<(Uuid, Option<Vec<String>>, bool, bool)> = sqlx::query_as(
            "select id, datasets, can_import, can_export from api_keys \
             where key_hash = $1 and revoked_at is null",
        )
        .bind(apikey::hash(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, datasets, import, export)| Caller {
            key: KeyId(id),
            access: Access {
                datasets,
                import,
                export,
            },
        }))
    }

    async fn create_job(&self, new: NewJob) -> Result<Job, DbError> {
        let row: JobRow = sqlx::query_as(concat!(
            "insert into jobs (id, owner_key_id, kind, dataset, state, format, options, filename, \
             object_key, declared_size, upload_id) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning ",
            job_columns!(),
            ""
        ))
        .bind(new.id)
        .bind(new.owner.0)
        .bind(new.kind.as_str())
        .bind(&new.dataset)
        .bind(new.state.as_str())
        .bind(&new.format)
        .bind(&new.options)
        .bind(&new.filename)
        .bind(&new.object_key)
        .bind(new.declared_size)
        .bind(&new.upload_id)
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    async fn job(&self, id: Uuid) -> Result<Option<Job>, DbError> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "select ",
            job_columns!(),
            " from jobs where id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Job::try_from).transpose()
    }

    async fn job_for_owner(&self, owner: KeyId, id: Uuid) -> Result<Option<Job>, DbError> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "select ",
            job_columns!(),
            " from jobs where id = $1 and owner_key_id = $2"
        ))
        .bind(id)
        .bind(owner.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Job::try_from).transpose()
    }

    async fn list_jobs(&self, owner: KeyId, limit: i64) -> Result<Vec<Job>, DbError> {
        let rows: Vec<JobRow> = sqlx::query_as(concat!(
            "select ",
            job_columns!(),
            " from jobs where owner_key_id = $1 order by created_at desc limit $2"
        ))
        .bind(owner.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    async fn job_parts(&self, job: Uuid) -> Result<Vec<PartStatus>, DbError> {
        let rows: Vec<PartRow> = sqlx::query_as(
            "select part_no, state, first_sheet, first_row, last_sheet, last_row, rows_read, \
                    inserted, updated, rejected, counts, error \
             from job_parts where job_id = $1 order by part_no",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PartStatus {
                part_no: r.0,
                state: r.1,
                first_sheet: r.2,
                first_row: r.3,
                last_sheet: r.4,
                last_row: r.5,
                rows_read: r.6,
                inserted: r.7,
                updated: r.8,
                rejected: r.9,
                counts: r.10,
                error: r.11,
            })
            .collect())
    }

    async fn touch_job(&self, id: Uuid) -> Result<(), DbError> {
        sqlx::query("update jobs set updated_at = now() where id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn cancel_upload(&self, id: Uuid, owner: KeyId) -> Result<bool, DbError> {
        let step = Step::CancelUpload;
        let done = sqlx::query(
            "update jobs set state = $3, finished_at = now(), updated_at = now() \
             where id = $1 and owner_key_id = $2 and state = any($4)",
        )
        .bind(id)
        .bind(owner.0)
        .bind(step.to().as_str())
        .bind(step.from_names())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_upload(
        &self,
        job_id: Uuid,
        key: &str,
        size: i64,
        etag: &str,
    ) -> Result<UploadOutcome, DbError> {
        let step = Step::UploadArrived;
        let queued: Option<JobRow> = sqlx::query_as(concat!(
            "update jobs set state = $5, object_size = $3, etag = $4, updated_at = now() \
             where id = $1 and object_key = $2 and kind = 'import' and state = any($6) \
             returning ",
            job_columns!(),
            ""
        ))
        .bind(job_id)
        .bind(key)
        .bind(size)
        .bind(etag)
        .bind(step.to().as_str())
        .bind(step.from_names())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = queued {
            return Ok(UploadOutcome::Queued(row.try_into()?));
        }
        let existing: Option<JobRow> = sqlx::query_as(concat!(
            "select ",
            job_columns!(),
            " from jobs where id = $1 and object_key = $2 and kind = 'import'"
        ))
        .bind(job_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        match existing {
            Some(row) => Ok(UploadOutcome::AlreadyRecorded(row.try_into()?)),
            None => Ok(UploadOutcome::UnknownKey),
        }
    }

    /// The claim is an `UPDATE … RETURNING`; when it takes nothing, the state
    /// is read to say why. A job seen there as claimable (it was requeued, or
    /// its lease lapsed, between the two statements) is claimed again, so a
    /// claimable job is never reported as [`Claim::NotClaimable`] and its
    /// message never dropped as a duplicate (issue #20).
    async fn claim_job(&self, id: Uuid, worker: &str, lease: Duration) -> Result<Claim, DbError> {
        let step = Step::Claim;
        for _ in 0..3 {
            let claimed: Option<JobRow> = sqlx::query_as(concat!(
                "update jobs set state = $4, attempts = attempts + 1, lease_owner = $2, \
                 lease_until = now() + make_interval(secs => $3), started_at = coalesce(started_at, now()), \
                 next_attempt_at = null, updated_at = now() \
                 where id = $1 and state = any($5) \
                   and (state <> 'running' or lease_until is null or lease_until < now()) \
                 returning ",
                job_columns!()
            ))
            .bind(id)
            .bind(worker)
            .bind(lease.as_secs_f64())
            .bind(step.to().as_str())
            .bind(step.from_names())
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = claimed {
                return Ok(Claim::Claimed(Box::new(row.try_into()?)));
            }
            let seen: Option<(String, bool)> = sqlx::query_as(
                "select state, coalesce(lease_until < now(), true) from jobs where id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            let Some((state, lapsed)) = seen else {
                return Ok(Claim::Missing);
            };
            match JobState::from_str(&state).map_err(|e| DbError::Corrupt(e.to_string()))? {
                JobState::Running if !lapsed => return Ok(Claim::Busy),
                // Claimable after all: it changed between the statements.
                state if step.applies_to(state) => continue,
                other => return Ok(Claim::NotClaimable(other)),
            }
        }
        // Still changing under us: treat it as busy, so the message comes back.
        Ok(Claim::Busy)
    }

    async fn heartbeat(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
        rows: i64,
        bytes: i64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "update jobs set rows_done = greatest(rows_done, $3), bytes_done = greatest(bytes_done, $4), \
             lease_until = now() + make_interval(secs => $5), updated_at = now() \
             where id = $1 and lease_owner = $2 and state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(rows)
        .bind(bytes)
        .bind(lease.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_upload(
        &self,
        id: Uuid,
        worker: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "update jobs set result_key = $3, upload_id = $4, updated_at = now() \
             where id = $1 and lease_owner = $2 and state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(key)
        .bind(upload_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn succeed_job(
        &self,
        id: Uuid,
        worker: &str,
        rows: i64,
        bytes: i64,
        counts: &serde_json::Value,
    ) -> Result<bool, DbError> {
        let step = Step::Succeed;
        let done = sqlx::query(
            "update jobs set state = $6, rows_done = $3, bytes_done = $4, counts = $5, \
             upload_id = null, lease_owner = null, lease_until = null, finished_at = now(), updated_at = now() \
             where id = $1 and lease_owner = $2 and state = any($7)",
        )
        .bind(id)
        .bind(worker)
        .bind(rows)
        .bind(bytes)
        .bind(counts)
        .bind(step.to().as_str())
        .bind(step.from_names())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn requeue_job(
        &self,
        id: Uuid,
        worker: &str,
        reason: &str,
        retry_in: Duration,
    ) -> Result<(), DbError> {
        let step = Step::Requeue;
        sqlx::query(
            "update jobs set state = $5, error = null, last_error = $3, \
             next_attempt_at = now() + make_interval(secs => $4), \
             warnings = warnings || jsonb_build_array(format('attempt %s failed: %s', attempts, $3::text)), \
             lease_owner = null, lease_until = null, updated_at = now() \
             where id = $1 and lease_owner = $2 and state = any($6)",
        )
        .bind(id)
        .bind(worker)
        .bind(bounded_error(reason))
        .bind(retry_in.as_secs_f64())
        .bind(step.to().as_str())
        .bind(step.from_names())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_job(&self, id: Uuid, reason: &str) -> Result<bool, DbError> {
        self.end_job(id, Step::Fail, reason).await
    }

    async fn expire_upload(&self, id: Uuid, reason: &str) -> Result<bool, DbError> {
        self.end_job(id, Step::ExpireUpload, reason).await
    }

    async fn stalled_jobs(
        &self,
        stall: Duration,
        upload_window: Duration,
        limit: i64,
    ) -> Result<Vec<Stalled>, DbError> {
        let rows: Vec<StalledRow> = sqlx::query_as(
            "select id, kind, state, object_key, object_size, etag, \
                    coalesce(greatest(updated_at, next_attempt_at), updated_at) as waiting_since \
             from jobs \
             where (state = 'queued' and coalesce(greatest(updated_at, next_attempt_at), updated_at) \
                        < now() - make_interval(secs => $1)) \
                or (state = 'running' and lease_until < now() - make_interval(secs => $1)) \
                or (state = 'awaiting_upload' and kind = 'import' \
                    and updated_at < now() - make_interval(secs => $1) \
                    and updated_at > now() - make_interval(secs => $3)) \
             order by updated_at limit $2",
        )
        .bind(stall.as_secs_f64())
        .bind(limit)
        .bind(upload_window.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Stalled {
                    id: r.id,
                    kind: r.kind.parse().map_err(|_| {
                        DbError::Corrupt(format!("job {} has kind {:?}", r.id, r.kind))
                    })?,
                    state: r.state.parse().map_err(|_| {
                        DbError::Corrupt(format!("job {} has state {:?}", r.id, r.state))
                    })?,
                    object_key: r.object_key,
                    object_size: r.object_size,
                    etag: r.etag,
                    waiting_since: r.waiting_since,
                })
            })
            .collect()
    }

    async fn expired_uploads(
        &self,
        upload_window: Duration,
        limit: i64,
    ) -> Result<Vec<ExpiredUpload>, DbError> {
        let rows: Vec<(Uuid, Option<String>, Option<String>)> = sqlx::query_as(
            "select id, object_key, upload_id from jobs \
             where state = any($3) and kind = 'import' \
               and updated_at < now() - make_interval(secs => $1) \
             order by updated_at limit $2",
        )
        .bind(upload_window.as_secs_f64())
        .bind(limit)
        .bind(Step::ExpireUpload.from_names())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, object_key, upload_id)| ExpiredUpload {
                id,
                object_key,
                upload_id,
            })
            .collect())
    }

    async fn note_redrive(&self, id: Uuid, state: JobState, note: &str) -> Result<bool, DbError> {
        let updated = sqlx::query(
            "update jobs set warnings = warnings || jsonb_build_array($2::text), updated_at = now() \
             where id = $1 and state = $3",
        )
        .bind(id)
        .bind(bounded_error(note))
        .bind(state.as_str())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn add_warnings(&self, id: Uuid, warnings: &[String]) -> Result<(), DbError> {
        sqlx::query(
            "update jobs set warnings = warnings || coalesce(( \
                 select jsonb_agg(w order by n) from jsonb_array_elements($2) with ordinality as a(w, n) \
                 where not jobs.warnings @> jsonb_build_array(w)), '[]'::jsonb), \
             updated_at = now() where id = $1",
        )
        .bind(id)
        .bind(serde_json::json!(bounded_warnings(warnings)))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A row of [`JobStore::stalled_jobs`]'s query.
#[derive(FromRow)]
struct StalledRow {
    id: Uuid,
    kind: String,
    state: String,
    object_key: Option<String>,
    object_size: Option<i64>,
    etag: Option<String>,
    waiting_since: DateTime<Utc>,
}

/// `COPY (SELECT ...) TO STDOUT` for an export, in key order. Identifiers come
/// from the validated datasets file; condition values are typed (bool, date),
/// so rendering them as literals cannot inject anything.
pub fn export_copy_sql(
    dataset: &xlport_core::Dataset,
    conditions: &[xlport_core::export::Condition],
) -> String {
    use xlport_core::export::Condition;
    let columns = dataset.stored_columns().join(", ");
    let mut wheres = Vec::new();
    for c in conditions {
        match c {
            Condition::Equals { column, value } => wheres.push(format!("{column} = {value}")),
            Condition::DateRange { column, from, to } => {
                if let Some(f) = from {
                    wheres.push(format!("{column} >= date '{}'", f.format("%Y-%m-%d")));
                }
                if let Some(t) = to {
                    wheres.push(format!("{column} <= date '{}'", t.format("%Y-%m-%d")));
                }
            }
        }
    }
    let filter = if wheres.is_empty() {
        String::new()
    } else {
        format!(" where {}", wheres.join(" and "))
    };
    format!(
        "copy (select {columns} from {table}{filter} order by {key}) to stdout",
        table = dataset.table,
        key = dataset.key
    )
}

/// A Postgres error as a table port tells it: a data exception (SQLSTATE
/// class 22) fails alike on every retry; anything else may pass next time.
pub fn table_error(e: sqlx::Error) -> TableError {
    match &e {
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
            TableError::Data(xlport_core::job::clip(db.message(), 200))
        }
        _ => TableError::Unavailable(format!("database error: {e}")),
    }
}

impl RowSource for PgStore {
    /// `COPY (SELECT ...) TO STDOUT` ([`export_copy_sql`]) on a connection
    /// of its own, closed unless the COPY ended cleanly (issue #20).
    async fn copy_out(
        &self,
        dataset: &xlport_core::Dataset,
        conditions: &[xlport_core::export::Condition],
        chunk_bytes: usize,
        out: &tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) -> Result<u64, TableError> {
        let sql = export_copy_sql(dataset, conditions);
        let end = CopyConnection::acquire(&self.pool)
            .await
            .map_err(table_error)?
            .copy_out(&sql, chunk_bytes, out)
            .await
            .map_err(table_error)?;
        Ok(match end {
            CopyOutEnd::Complete { bytes } | CopyOutEnd::Stopped { bytes } => bytes,
        })
    }
}

/// Loads `rows` deterministic sample rows into `user_purchase` with COPY
/// (see `xlport_core::sample`). For tests, benchmarks and demos.
pub async fn seed_user_purchase(pool: &PgPool, rows: u64, seed: u64) -> Result<u64, DbError> {
    let dataset = xlport_core::Datasets::builtin()
        .map_err(|e| DbError::Corrupt(e.to_string()))?
        .get("user_purchase")
        .cloned()
        .ok_or_else(|| DbError::Corrupt("user_purchase is not declared".into()))?;
    let sql = format!(
        "copy {} ({}) from stdin",
        dataset.table,
        dataset.stored_columns().join(", ")
    );
    // About 1 MiB of COPY text at a time, made as it is sent.
    let mut sample = xlport_core::sample::UserPurchaseSample::new(seed);
    let mut next = 0u64;
    let chunks = std::iter::from_fn(|| {
        if next >= rows {
            return None;
        }
        let mut buf = String::with_capacity(1 << 20);
        while next < rows && buf.len() < (1 << 20) - 256 {
            sample.write_row(next, &mut buf);
            next += 1;
        }
        Some(buf)
    });
    let mut conn = CopyConnection::acquire(pool).await?;
    let loaded = conn.copy_in(&sql, chunks).await?;
    conn.release().await;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every constraint the migrations name is either told to clients in
    /// words or known to be one only a fault of xlport's own can break.
    #[test]
    fn every_named_constraint_is_mapped_or_known_internal() {
        const INTERNAL: [&str; 11] = [
            // Only xlport-admin writes keys, and it checks this first.
            "api_keys_can_something",
            "jobs_kind_check",
            "jobs_state_check",
            "jobs_finished_when_terminal",
            "jobs_failed_has_error",
            "job_parts_job_fk",
            "job_parts_part_no_check",
            "job_parts_state_check",
            "job_parts_pkey",
            "job_rejections_pkey",
            "job_rejections_job_fk",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("migrations") {
            let sql = std::fs::read_to_string(entry.expect("entry").path()).expect("sql");
            let code: String = sql
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            let mut words = code.split_whitespace();
            while let Some(w) = words.next() {
                if w.eq_ignore_ascii_case("constraint")
                    && let Some(name) = words.next()
                {
                    names.push(
                        name.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                            .to_string(),
                    );
                }
            }
        }
        assert!(names.len() >= 15, "{names:?}");
        for name in names {
            assert!(
                constraint_message(&name).is_some() || INTERNAL.contains(&name.as_str()),
                "constraint `{name}` has no message and is not known internal"
            );
        }
    }
}

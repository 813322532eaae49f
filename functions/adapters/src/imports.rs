//! Loading import parts into Postgres: COPY into a staging table, merge into
//! the dataset's table per conflict policy, and record the part's counts and
//! rejected rows in the same transaction, so a retried import resumes after
//! the last committed part and ends exactly as one clean run would.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;
use xlport_core::Dataset;
use xlport_core::cells::Reason;
use xlport_core::import::{ConflictPolicy, ImportCounts, Part, RejectedRow, duplicate_key_message};
use xlport_core::ports::{
    ImportSession, ImportTarget, LoadSpec, ReportShape, StoredRejection, TableError,
};

use crate::pgcopy::{CopyConnection, CopyTx};
use crate::postgres::{DbError, PgStore, table_error};

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// Whether an import's parts try a plain COPY of their new rows before the
/// merge (see [`merge_part`]): on at the start of an import, off for the rest
/// of it once a COPY meets a key already in the table.
#[derive(Debug, Clone, Copy)]
pub struct DirectCopy(pub bool);

impl Default for DirectCopy {
    fn default() -> Self {
        DirectCopy(true)
    }
}

/// The staging table of a dataset's table, one per connection.
fn staging(dataset: &Dataset) -> String {
    format!("xlport_staging_{}", dataset.table)
}

/// COPYs a part into staging and merges it into the table on `conn` (inside
/// the caller's transaction). Returns the part's final counts and the valid
/// rows the policy rejected as duplicates.
pub async fn merge_part(
    conn: &mut CopyTx<'_>,
    dataset: &Dataset,
    job: Uuid,
    policy: ConflictPolicy,
    part: &Part,
    direct: &mut DirectCopy,
) -> Result<(ImportCounts, Vec<RejectedRow>), DbError> {
    let mut counts = part.counts.clone();
    if part.valid_rows == 0 {
        return Ok((counts, Vec::new()));
    }
    // A part's rows and its counts commit together, so a commit lost in a
    // Postgres crash only means the part is loaded again on resume: no need
    // to wait for the WAL flush on every part.
    sqlx::query("set local synchronous_commit = off")
        .execute(&mut **conn)
        .await?;

    // Rows whose key appears once in the part are plain inserts under every
    // policy unless the key is in the table already: try them with one
    // COPY, the cheapest way into an indexed table, and merge only the rest.
    // A COPY that meets an existing key rolls back to its savepoint and the
    // whole part is merged; the import stops trying, since its keys are then
    // likely in the table. `reject` reports every duplicate, so it merges.
    let mut staged: &str = &part.copy_text;
    let mut staged_rows = part.valid_rows;
    let computed;
    if direct.0 && policy != ConflictPolicy::Reject && Part::direct_copy_possible(dataset) {
        // The parsing stage usually split the part already, off this path.
        let split = match &part.direct {
            Some(split) => split,
            None => {
                computed = part.split_for_direct_copy(dataset, &job.to_string());
                &computed
            }
        };
        if split.direct_rows > 0 {
            if copy_direct(conn, dataset, &split.direct).await? {
                counts.inserted += split.direct_rows;
                staged = &split.staged;
                staged_rows = split.staged_rows;
            } else {
                direct.0 = false;
            }
        }
    }
    if staged_rows == 0 {
        return Ok((counts, Vec::new()));
    }
    stage(conn, dataset, staged).await?;
    let rejected = match policy {
        ConflictPolicy::Upsert => {
            let new = merge_upsert(conn, dataset, job).await?;
            counts.inserted += new;
            // Every other staged row updated a row: one already in the table,
            // or one an earlier occurrence in this file wrote.
            counts.updated += staged_rows - new;
            Vec::new()
        }
        ConflictPolicy::Skip => {
            let new = merge_skip(conn, dataset, job).await?;
            counts.inserted += new;
            counts.skipped += staged_rows - new;
            Vec::new()
        }
        ConflictPolicy::Reject => merge_reject(conn, dataset, job, part, &mut counts).await?,
    };
    Ok((counts, rejected))
}

/// COPYs rows (stored columns, then the job id) straight into the table
/// inside a savepoint. `false`: a key was already there (unique violation),
/// and the savepoint was rolled back.
async fn copy_direct(
    conn: &mut CopyTx<'_>,
    dataset: &Dataset,
    rows: &str,
) -> Result<bool, DbError> {
    let (table, list) = (&dataset.table, dataset.stored_columns().join(", "));
    let mut savepoint = conn.savepoint().await?;
    let copied = savepoint
        .copy_in(
            &format!("copy {table} ({list}, last_job_id) from stdin"),
            [rows.as_bytes()],
        )
        .await;
    match copied {
        Ok(_) => {
            savepoint.commit().await?;
            Ok(true)
        }
        Err(e) if is_unique_violation(&e) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// COPYs rows (`ord` then the stored columns) into the connection's staging
/// table, emptied first.
async fn stage(conn: &mut CopyTx<'_>, dataset: &Dataset, rows: &str) -> Result<(), DbError> {
    let (table, stage) = (&dataset.table, staging(dataset));
    let list = dataset.stored_columns().join(", ");
    sqlx::query(AssertSqlSafe(format!(
        "create temp table if not exists {stage} (ord bigint not null, like {table} including defaults)"
    )))
    .execute(&mut **conn)
    .await?;
    sqlx::query(AssertSqlSafe(format!("truncate {stage}")))
        .execute(&mut **conn)
        .await?;
    conn.copy_in(
        &format!("copy {stage} (ord, {list}) from stdin"),
        [rows.as_bytes()],
    )
    .await?;
    Ok(())
}

/// `upsert`: each staged key's last occurrence inserted or written over the
/// row there. Returns the keys that were new.
async fn merge_upsert(conn: &mut CopyTx<'_>, dataset: &Dataset, job: Uuid) -> Result<u64, DbError> {
    let (table, key, stage) = (&dataset.table, &dataset.key, staging(dataset));
    let columns = dataset.stored_columns();
    let list = columns.join(", ");
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| *c != key)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let inserted: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "with merged as (insert into {table} ({list}, last_job_id, updated_at) \
         select {list}, $1, now() from (select distinct on ({key}) * from {stage} order by {key}, ord desc) s \
         on conflict ({key}) do update set {}, last_job_id = excluded.last_job_id, updated_at = excluded.updated_at \
         returning (xmax = 0) as inserted) \
         select count(*) filter (where inserted) from merged",
        updates.join(", ")
    )))
    .bind(job)
    .fetch_one(&mut **conn)
    .await?;
    Ok(inserted.max(0) as u64)
}

/// `skip`: each staged key's first occurrence inserted unless the key is
/// there. Returns the rows inserted.
async fn merge_skip(conn: &mut CopyTx<'_>, dataset: &Dataset, job: Uuid) -> Result<u64, DbError> {
    let (table, key, stage) = (&dataset.table, &dataset.key, staging(dataset));
    let list = dataset.stored_columns().join(", ");
    Ok(sqlx::query(AssertSqlSafe(format!(
        "insert into {table} ({list}, last_job_id, updated_at) \
         select {list}, $1, now() from (select distinct on ({key}) * from {stage} order by {key}, ord) s \
         on conflict ({key}) do nothing"
    )))
    .bind(job)
    .execute(&mut **conn)
    .await?
    .rows_affected())
}

/// `reject`: each staged key's first occurrence inserted when the key is
/// new; every other row rejected as a duplicate, in file order. Adds to
/// `counts`; returns the rejected rows.
async fn merge_reject(
    conn: &mut CopyTx<'_>,
    dataset: &Dataset,
    job: Uuid,
    part: &Part,
    counts: &mut ImportCounts,
) -> Result<Vec<RejectedRow>, DbError> {
    let (table, key, stage) = (&dataset.table, &dataset.key, staging(dataset));
    let list = dataset.stored_columns().join(", ");
    let rows = sqlx::query(AssertSqlSafe(format!(
        "select s.ord, s.{key}::text as k, exists (select 1 from {table} t where t.{key} = s.{key}) as existing \
         from {stage} s order by s.ord"
    )))
    .fetch_all(&mut **conn)
    .await?;
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    let mut keys = HashMap::new();
    let mut duplicates = Vec::new();
    for r in &rows {
        let ord: i64 = r.try_get("ord")?;
        let k: String = r.try_get("k")?;
        let existing: bool = r.try_get("existing")?;
        if existing || !seen.insert(k.clone()) {
            duplicates.push((ord, k));
        } else {
            keys.insert(ord, k);
            candidates.push(ord);
        }
    }
    let inserted: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "insert into {table} ({list}, last_job_id, updated_at) \
         select {list}, $1, now() from {stage} where ord = any($2) \
         on conflict ({key}) do nothing returning {key}::text"
    )))
    .bind(job)
    .bind(&candidates)
    .fetch_all(&mut **conn)
    .await?;
    let inserted: HashSet<String> = inserted.into_iter().collect();
    counts.inserted += inserted.len() as u64;
    // A candidate not inserted lost a race with another import.
    duplicates.extend(keys.into_iter().filter(|(_, k)| !inserted.contains(k)));
    duplicates.sort();
    let mut rejected = Vec::new();
    for (ord, k) in duplicates {
        let Some(kept) = part.valid_cells.get(&(ord as u64)).cloned() else {
            continue;
        };
        counts.reject(Reason::DuplicateKey);
        rejected.push(kept.rejected(ord as u64, duplicate_key_message(dataset, &k)));
    }
    Ok(rejected)
}

/// Records a merged part, its rejected rows and the job's new totals, on
/// `conn` inside the caller's transaction. Fails if the worker lost the job.
#[allow(clippy::too_many_arguments)]
async fn record_part(
    conn: &mut PgConnection,
    job: Uuid,
    worker: &str,
    part: &Part,
    part_counts: &ImportCounts,
    extra_rejections: &[RejectedRow],
    totals: &ImportCounts,
    bytes_done: i64,
) -> Result<(), TableError> {
    let rejections: Vec<&RejectedRow> = part.rejected.iter().chain(extra_rejections).collect();
    if !rejections.is_empty() {
        let json = serde_json::to_value(&rejections)
            .map_err(|e| TableError::Unavailable(format!("encoding rejected rows: {e}")))?;
        sqlx::query(
            "insert into job_rejections (job_id, part_no, ord, sheet, row_number, reason, message, cells, failed_field, record) \
             select $1, $2, r.ord, r.sheet, r.row_number, r.reason, r.message, r.cells, r.failed_field, r.record \
             from jsonb_to_recordset($3) as r(ord bigint, sheet text, row_number bigint, reason text, \
                  message text, cells jsonb, failed_field integer, record text) \
             on conflict do nothing",
        )
        .bind(job)
        .bind(part.number as i32)
        .bind(json)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    sqlx::query(
        "insert into job_parts (job_id, part_no, state, first_row, last_row, rows_read, inserted, updated, rejected, counts, first_sheet, last_sheet) \
         values ($1, $2, 'succeeded', $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         on conflict (job_id, part_no) do update set state = 'succeeded', counts = excluded.counts, \
         rows_read = excluded.rows_read, inserted = excluded.inserted, updated = excluded.updated, \
         rejected = excluded.rejected, error = null, updated_at = now()",
    )
    .bind(job)
    .bind(part.number as i32)
    .bind(part.first_row as i64)
    .bind(part.last_row as i64)
    .bind(part_counts.rows_read as i32)
    .bind(part_counts.inserted as i32)
    .bind(part_counts.updated as i32)
    .bind(part_counts.rejected as i32)
    .bind(part_counts.to_json())
    .bind(&part.first_sheet)
    .bind(&part.last_sheet)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let updated = sqlx::query(
        "update jobs set parts_done = $3, rows_done = $4, bytes_done = greatest(bytes_done, $5), counts = $6, updated_at = now() \
         where id = $1 and lease_owner = $2 and state = 'running'",
    )
    .bind(job)
    .bind(worker)
    .bind(part.number as i32)
    .bind(totals.rows_read as i64)
    .bind(bytes_done)
    .bind(totals.to_json())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if updated.rows_affected() != 1 {
        return Err(TableError::LeaseLost);
    }
    Ok(())
}

impl From<DbError> for TableError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Sqlx(e) => table_error(e),
            other => TableError::Unavailable(other.to_string()),
        }
    }
}

fn db(e: sqlx::Error) -> TableError {
    table_error(e)
}

/// A part on its way to a dry run's merge, and where its outcome goes back
/// (with the part, which the record needs).
type DryPart = (
    Part,
    tokio::sync::oneshot::Sender<(Part, Result<(ImportCounts, Vec<RejectedRow>), TableError>)>,
);

/// A dry run's merging task, and where its parts go. Dropped (the import
/// failed, or its future was dropped), it aborts the task: the task's
/// connection is then closed, which rolls its transaction back, rather than
/// left open with uncommitted keys that would block real imports of them.
struct DryRun {
    parts: tokio::sync::mpsc::Sender<DryPart>,
    task: tokio::task::JoinHandle<Result<(), TableError>>,
}

impl Drop for DryRun {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DryRun {
    /// Stops taking parts and waits for the task: its own error (no
    /// connection, a failed `BEGIN` or rollback, a panic), if it had one.
    async fn end(mut self) -> Result<(), TableError> {
        let (parts, _) = tokio::sync::mpsc::channel(1);
        drop(std::mem::replace(&mut self.parts, parts));
        match (&mut self.task).await {
            Ok(ended) => ended,
            Err(e) => Err(TableError::Unavailable(format!("the dry run's task: {e}"))),
        }
    }
}

/// One import's loading into Postgres (see [`ImportTarget`]).
pub struct PgSession<'a> {
    store: &'a PgStore,
    spec: LoadSpec,
    direct: DirectCopy,
    /// A dry run's merges run on a connection of their own inside one
    /// transaction, rolled back at the end; a task owns that connection
    /// (the transaction borrows it) and takes the parts in turn.
    dry: Option<DryRun>,
}

/// The dry run's merging task: every part into one transaction, rolled
/// back once the parts stop coming. Its connection goes back to the pool
/// only after a clean end, and is closed otherwise (issue #20).
async fn dry_run_merges(
    pool: sqlx::PgPool,
    dataset: Dataset,
    job: Uuid,
    policy: ConflictPolicy,
    mut parts: tokio::sync::mpsc::Receiver<DryPart>,
) -> Result<(), TableError> {
    let mut conn = CopyConnection::acquire(&pool).await.map_err(db)?;
    let ended = async {
        let mut tx = conn.begin().await.map_err(db)?;
        let mut direct = DirectCopy::default();
        while let Some((part, reply)) = parts.recv().await {
            let merged = merge_part(&mut tx, &dataset, job, policy, &part, &mut direct)
                .await
                .map_err(TableError::from);
            let failed = merged.is_err();
            let _ = reply.send((part, merged));
            if failed {
                return Err(TableError::Unavailable("a dry run's merge failed".into()));
            }
        }
        tx.rollback().await.map_err(db)
    }
    .await;
    if ended.is_ok() {
        conn.release().await;
    }
    ended
}

impl ImportTarget for PgStore {
    type Session<'a> = PgSession<'a>;

    async fn begin(&self, spec: LoadSpec) -> Result<PgSession<'_>, TableError> {
        let dry = spec.dry_run.then(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let task = tokio::spawn(dry_run_merges(
                self.pool.clone(),
                spec.dataset.clone(),
                spec.job,
                spec.policy,
                rx,
            ));
            DryRun { parts: tx, task }
        });
        Ok(PgSession {
            store: self,
            spec,
            direct: DirectCopy::default(),
            dry,
        })
    }

    async fn set_source_header(&self, job: Uuid, header: &[String]) -> Result<(), TableError> {
        sqlx::query("update jobs set source_header = $2, updated_at = now() where id = $1")
            .bind(job)
            .bind(serde_json::json!(header))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn reset_progress(&self, job: Uuid, worker: &str) -> Result<(), TableError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("delete from job_parts where job_id = $1")
            .bind(job)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("delete from job_rejections where job_id = $1")
            .bind(job)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "update jobs set parts_done = 0, rows_done = 0, counts = '{}'::jsonb, updated_at = now() \
             where id = $1 and lease_owner = $2",
        )
        .bind(job)
        .bind(worker)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn report_shape(&self, job: Uuid) -> Result<ReportShape, TableError> {
        let (header, max_fields, has_records): (Option<serde_json::Value>, Option<i32>, bool) =
            sqlx::query_as(
                "select (select source_header from jobs where id = $1), \
                        max(jsonb_array_length(cells)), coalesce(bool_or(record is not null), false) \
                 from job_rejections where job_id = $1",
            )
            .bind(job)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(ReportShape {
            header: header
                .and_then(|h| serde_json::from_value(h).ok())
                .unwrap_or_default(),
            max_fields: max_fields.unwrap_or(0).max(0) as usize,
            has_records,
        })
    }

    async fn rejections_page(
        &self,
        job: Uuid,
        after_ord: i64,
        limit: i64,
    ) -> Result<Vec<StoredRejection>, TableError> {
        let rows = sqlx::query(
            "select ord, sheet, row_number, reason, message, cells, failed_field, record \
             from job_rejections where job_id = $1 and ord > $2 order by ord limit $3",
        )
        .bind(job)
        .bind(after_ord)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(StoredRejection {
                    ord: r.try_get("ord")?,
                    sheet: r.try_get("sheet")?,
                    row_number: r.try_get("row_number")?,
                    reason: r.try_get("reason")?,
                    message: r.try_get("message")?,
                    cells: r.try_get("cells")?,
                    failed_field: r.try_get("failed_field")?,
                    record: r.try_get("record")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db)
    }
}

impl ImportSession for PgSession<'_> {
    async fn load_part(&mut self, part: Part) -> Result<ImportCounts, TableError> {
        let spec = &self.spec;
        let mut conn = CopyConnection::acquire(&self.store.pool)
            .await
            .map_err(db)?;
        let mut tx = conn.begin().await.map_err(db)?;
        let (part, (counts, duplicates)) = match &self.dry {
            Some(dry) => {
                let (reply, outcome) = tokio::sync::oneshot::channel();
                let handed = match dry.parts.send((part, reply)).await {
                    Ok(()) => outcome.await.ok(),
                    Err(_) => None,
                };
                match handed {
                    Some((part, merged)) => (part, merged?),
                    // The task stopped on its own: its error says why.
                    None => {
                        let ended = match self.dry.take() {
                            Some(dry) => dry.end().await,
                            None => Ok(()),
                        };
                        return Err(ended.err().unwrap_or_else(|| {
                            TableError::Unavailable("the dry run's merge stopped".into())
                        }));
                    }
                }
            }
            None => {
                let merged = merge_part(
                    &mut tx,
                    &spec.dataset,
                    spec.job,
                    spec.policy,
                    &part,
                    &mut self.direct,
                )
                .await?;
                (part, merged)
            }
        };
        let mut totals = spec.totals.clone();
        totals.add(&counts);
        record_part(
            &mut tx,
            spec.job,
            &spec.worker,
            &part,
            &counts,
            &duplicates,
            &totals,
            spec.object_size,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        conn.release().await;
        self.spec.totals = totals;
        Ok(counts)
    }

    fn totals(&self) -> &ImportCounts {
        &self.spec.totals
    }

    async fn finish(mut self) -> Result<(), TableError> {
        match self.dry.take() {
            Some(dry) => dry.end().await,
            None => Ok(()),
        }
    }
}

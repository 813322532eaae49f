//! The dataset tables in memory: rows held as their COPY text fields, keyed
//! by the dataset's key, so an export reads what an import wrote, in key
//! order, with the same conflict policies as the Postgres merge. What the
//! Postgres adapter keeps beside a row (`last_job_id`, `updated_at`) is not
//! kept: no caller reads it back through the ports.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use uuid::Uuid;

use super::{MemoryJobStore, lock};
use crate::Dataset;
use crate::cells::Reason;
use crate::export::{Condition, split_copy_line};
use crate::import::{ConflictPolicy, ImportCounts, Part, RejectedRow, duplicate_key_message};
use crate::job::{JobState, PartStatus};
use crate::ports::tables::{
    ImportSession, ImportTarget, LoadSpec, ReportShape, RowSource, StoredRejection, TableError,
};

/// A table: COPY text fields of each row (`stored_columns` order, escaped
/// as COPY writes them, `\N` for null) by key.
type Table = BTreeMap<String, Vec<String>>;

/// The tables in memory, by table name. Clones share the same tables; the
/// job store given to [`MemoryTables::new`] records the imports' parts.
#[derive(Clone)]
pub struct MemoryTables {
    tables: Arc<Mutex<BTreeMap<String, Table>>>,
    jobs: MemoryJobStore,
    down: Arc<AtomicBool>,
    faults: Arc<Mutex<Faults>>,
}

/// Faults a test arms; each fires once.
#[derive(Default)]
struct Faults {
    /// Loading this part fails with this error, before anything of it lands.
    fail_part: Option<(u32, TableError)>,
    /// Before this part loads, this worker takes the job over (the running
    /// worker's lease lapsed).
    take_over_at_part: Option<(u32, String)>,
    /// The next `copy_out` fails with this.
    copy_out: Option<TableError>,
}

impl MemoryTables {
    /// Tables whose imports record their parts in `jobs`.
    pub fn new(jobs: MemoryJobStore) -> Self {
        MemoryTables {
            tables: Arc::default(),
            jobs,
            down: Arc::default(),
            faults: Arc::default(),
        }
    }

    /// Loading part `part` fails once, as a lost connection would: nothing
    /// of it lands, and the worker's next attempt resumes before it.
    pub fn fail_part_once(&self, part: u32) {
        self.fail_part_once_with(
            part,
            TableError::Unavailable(format!(
                "connection lost loading part {part} (a test's fault)"
            )),
        );
    }

    /// Loading part `part` fails once with `error` (a data exception, say),
    /// before anything of it lands.
    pub fn fail_part_once_with(&self, part: u32, error: TableError) {
        lock(&self.faults).fail_part = Some((part, error));
    }

    /// Just before part `part` loads, `worker` takes the job over, as after
    /// the running worker's lease lapsed: that part is the running
    /// worker's [`TableError::LeaseLost`].
    pub fn take_over_at_part(&self, part: u32, worker: &str) {
        lock(&self.faults).take_over_at_part = Some((part, worker.to_string()));
    }

    /// The next [`RowSource::copy_out`] fails with `error`.
    pub fn fail_copy_out_once(&self, error: TableError) {
        lock(&self.faults).copy_out = Some(error);
    }

    /// Every call fails with [`TableError::Unavailable`] while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Puts rows given as COPY text lines (`stored_columns` order, no
    /// `ord`), as a seed would.
    pub fn insert_copy_text(&self, dataset: &Dataset, copy_text: &str) {
        let key = dataset.key_index();
        let mut tables = lock(&self.tables);
        let table = tables.entry(dataset.table.clone()).or_default();
        for line in copy_text.lines() {
            let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            if let Some(k) = fields.get(key) {
                table.insert(k.clone(), fields);
            }
        }
    }

    /// The table's rows in key order, as COPY text lines.
    pub fn rows(&self, dataset: &Dataset) -> Vec<String> {
        lock(&self.tables)
            .get(&dataset.table)
            .map(|t| t.values().map(|f| f.join("\t")).collect())
            .unwrap_or_default()
    }

    fn available(&self) -> Result<(), TableError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(TableError::Unavailable(
                "the in-memory tables are down (a test's outage)".into(),
            ));
        }
        Ok(())
    }
}

/// Whether a row (COPY text fields) meets every condition. Booleans are
/// `t`/`f` and dates `YYYY-MM-DD` in COPY text, so the comparisons are the
/// ones the SQL makes.
fn meets(dataset: &Dataset, fields: &[String], conditions: &[Condition]) -> bool {
    let columns = dataset.stored_columns();
    let field = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .and_then(|i| fields.get(i))
            .filter(|v| v.as_str() != "\\N")
    };
    conditions.iter().all(|c| match c {
        Condition::Equals { column, value } => {
            field(column).is_some_and(|v| v == if *value { "t" } else { "f" })
        }
        Condition::DateRange { column, from, to } => field(column).is_some_and(|v| {
            from.is_none_or(|f| v.as_str() >= f.format("%Y-%m-%d").to_string().as_str())
                && to.is_none_or(|t| v.as_str() <= t.format("%Y-%m-%d").to_string().as_str())
        }),
    })
}

impl RowSource for MemoryTables {
    async fn copy_out(
        &self,
        dataset: &Dataset,
        conditions: &[Condition],
        chunk_bytes: usize,
        out: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<u64, TableError> {
        self.available()?;
        if let Some(e) = lock(&self.faults).copy_out.take() {
            return Err(e);
        }
        let lines: Vec<String> = lock(&self.tables)
            .get(&dataset.table)
            .map(|t| {
                t.values()
                    .filter(|f| meets(dataset, f, conditions))
                    .map(|f| f.join("\t"))
                    .collect()
            })
            .unwrap_or_default();
        let mut sent = 0u64;
        let mut chunk = Vec::with_capacity(chunk_bytes);
        for line in lines {
            chunk.extend_from_slice(line.as_bytes());
            chunk.push(b'\n');
            if chunk.len() >= chunk_bytes {
                sent += chunk.len() as u64;
                if out
                    .send(Bytes::from(std::mem::take(&mut chunk)))
                    .await
                    .is_err()
                {
                    return Ok(sent);
                }
            }
        }
        if !chunk.is_empty() {
            sent += chunk.len() as u64;
            let _ = out.send(Bytes::from(chunk)).await;
        }
        Ok(sent)
    }
}

/// A part's valid rows as (ord, fields) from its COPY text (`ord` first).
fn part_rows(part: &Part) -> Vec<(u64, Vec<String>)> {
    part.copy_text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let ord = fields.next()?.parse().ok()?;
            Some((ord, fields.map(str::to_string).collect()))
        })
        .collect()
}

/// Merges `part` into `table` per `policy`, as the Postgres merge does:
/// `upsert` keeps a key's last row, `skip` its first, `reject` its first
/// and reports the rest. Returns the part's counts and the duplicates
/// rejected.
fn merge(
    table: &mut Table,
    dataset: &Dataset,
    policy: ConflictPolicy,
    part: &Part,
) -> (ImportCounts, Vec<RejectedRow>) {
    let mut counts = part.counts.clone();
    let mut rejected = Vec::new();
    let key = dataset.key_index();
    let mut seen = HashSet::new();
    for (ord, fields) in part_rows(part) {
        let Some(k) = fields.get(key).cloned() else {
            continue;
        };
        let known = table.contains_key(&k) || seen.contains(&k);
        seen.insert(k.clone());
        match (policy, known) {
            (_, false) => {
                table.insert(k, fields);
                counts.inserted += 1;
            }
            (ConflictPolicy::Upsert, true) => {
                table.insert(k, fields);
                counts.updated += 1;
            }
            (ConflictPolicy::Skip, true) => counts.skipped += 1,
            (ConflictPolicy::Reject, true) => {
                if let Some(kept) = part.valid_cells.get(&ord).cloned() {
                    // The key as the table holds it: COPY text unescaped.
                    let mut split = Vec::new();
                    split_copy_line(&k, &mut split);
                    let text = split.first().cloned().flatten().unwrap_or_default();
                    counts.reject(Reason::DuplicateKey);
                    rejected.push(kept.rejected(ord, duplicate_key_message(dataset, &text)));
                }
            }
        }
    }
    (counts, rejected)
}

/// One import's loading into [`MemoryTables`].
pub struct MemorySession<'a> {
    tables: &'a MemoryTables,
    spec: LoadSpec,
    /// A dry run's copy of the table, dropped at the end.
    scratch: Option<Table>,
}

impl ImportTarget for MemoryTables {
    type Session<'a> = MemorySession<'a>;

    async fn begin(&self, spec: LoadSpec) -> Result<MemorySession<'_>, TableError> {
        self.available()?;
        let scratch = spec.dry_run.then(|| {
            lock(&self.tables)
                .get(&spec.dataset.table)
                .cloned()
                .unwrap_or_default()
        });
        Ok(MemorySession {
            tables: self,
            spec,
            scratch,
        })
    }

    async fn set_source_header(&self, job: Uuid, header: &[String]) -> Result<(), TableError> {
        self.available()?;
        let mut jobs = self.jobs.up().map_err(unavailable)?;
        jobs.source_headers.insert(job, header.to_vec());
        Ok(())
    }

    async fn reset_progress(&self, job: Uuid, worker: &str) -> Result<(), TableError> {
        self.available()?;
        let mut jobs = self.jobs.up().map_err(unavailable)?;
        jobs.parts.remove(&job);
        jobs.rejections.remove(&job);
        if let Some(stored) = jobs
            .jobs
            .get_mut(&job)
            .filter(|s| s.lease_owner.as_deref() == Some(worker))
        {
            stored.job.parts_done = 0;
            stored.job.rows_done = 0;
            stored.job.counts = serde_json::json!({});
        }
        Ok(())
    }

    async fn report_shape(&self, job: Uuid) -> Result<ReportShape, TableError> {
        self.available()?;
        let jobs = self.jobs.up().map_err(unavailable)?;
        let rejections = jobs.rejections.get(&job);
        let all = || rejections.into_iter().flat_map(|r| r.values());
        Ok(ReportShape {
            header: jobs.source_headers.get(&job).cloned().unwrap_or_default(),
            max_fields: all()
                .map(|r| r.cells.as_array().map_or(0, Vec::len))
                .max()
                .unwrap_or(0),
            has_records: all().any(|r| r.record.is_some()),
        })
    }

    async fn rejections_page(
        &self,
        job: Uuid,
        after_ord: i64,
        limit: i64,
    ) -> Result<Vec<StoredRejection>, TableError> {
        self.available()?;
        let jobs = self.jobs.up().map_err(unavailable)?;
        Ok(jobs
            .rejections
            .get(&job)
            .map(|r| {
                r.range(after_ord.saturating_add(1)..)
                    .take(usize::try_from(limit.max(0)).unwrap_or(usize::MAX))
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn unavailable(e: super::Down) -> TableError {
    TableError::Unavailable(e.to_string())
}

impl MemorySession<'_> {
    fn table<'t>(
        scratch: &'t mut Option<Table>,
        tables: &'t mut MutexGuard<'_, BTreeMap<String, Table>>,
        name: &str,
    ) -> &'t mut Table {
        match scratch {
            Some(t) => t,
            None => tables.entry(name.to_string()).or_default(),
        }
    }
}

impl ImportSession for MemorySession<'_> {
    async fn load_part(&mut self, part: Part) -> Result<ImportCounts, TableError> {
        self.tables.available()?;
        let take_over = {
            let mut faults = lock(&self.tables.faults);
            if matches!(&faults.fail_part, Some((n, _)) if *n == part.number)
                && let Some((_, error)) = faults.fail_part.take()
            {
                return Err(error);
            }
            match &faults.take_over_at_part {
                Some((n, _)) if *n == part.number => faults.take_over_at_part.take(),
                _ => None,
            }
        };
        // Both locks for the whole part, jobs first: the part's rows and its
        // record land together or not at all, as in one transaction.
        let mut jobs = self.tables.jobs.up().map_err(unavailable)?;
        if let Some((_, thief)) = take_over
            && let Some(stored) = jobs.jobs.get_mut(&self.spec.job)
        {
            stored.lease_owner = Some(thief);
        }
        let spec = &self.spec;
        let holds = jobs.jobs.get(&spec.job).is_some_and(|s| {
            s.job.state == JobState::Running && s.lease_owner.as_deref() == Some(&spec.worker)
        });
        if !holds {
            return Err(TableError::LeaseLost);
        }
        let mut tables = lock(&self.tables.tables);
        // A dry run merges into its copy, which `finish` drops.
        let mut scratch = self.scratch.take();
        let table = Self::table(&mut scratch, &mut tables, &spec.dataset.table);
        let (counts, duplicates) = merge(table, &spec.dataset, spec.policy, &part);
        let mut totals = spec.totals.clone();
        totals.add(&counts);

        let rejections = jobs.rejections.entry(spec.job).or_default();
        for r in part.rejected.iter().chain(&duplicates) {
            let stored = StoredRejection::of(r);
            rejections.entry(stored.ord).or_insert(stored);
        }
        let parts = jobs.parts.entry(spec.job).or_default();
        parts.retain(|p| p.part_no != part.number as i32);
        parts.push(PartStatus {
            part_no: part.number as i32,
            state: "succeeded".into(),
            first_sheet: part.first_sheet.clone(),
            first_row: Some(part.first_row as i64),
            last_sheet: part.last_sheet.clone(),
            last_row: Some(part.last_row as i64),
            rows_read: counts.rows_read as i32,
            inserted: counts.inserted as i32,
            updated: counts.updated as i32,
            rejected: counts.rejected as i32,
            counts: counts.to_json(),
            error: None,
        });
        if let Some(stored) = jobs.jobs.get_mut(&spec.job) {
            stored.job.parts_done = part.number as i32;
            stored.job.rows_done = totals.rows_read as i64;
            stored.job.bytes_done = stored.job.bytes_done.max(spec.object_size);
            stored.job.counts = totals.to_json();
            stored.job.updated_at = chrono::Utc::now();
        }
        self.scratch = scratch;
        self.spec.totals = totals;
        Ok(counts)
    }

    fn totals(&self) -> &ImportCounts {
        &self.spec.totals
    }

    async fn finish(self) -> Result<(), TableError> {
        self.tables.available()
    }
}

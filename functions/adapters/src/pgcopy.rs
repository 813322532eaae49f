//! The one place COPY runs on a Postgres connection.
//!
//! sqlx's raw COPY API can hand a connection back to the pool out of step
//! with the server (issue #20): when `COPY … TO STDOUT` fails at its start
//! (say `date '0000-01-01'` in a filter), `copy_out_raw` returns the
//! `ErrorResponse` but leaves the `ReadyForQuery` behind it unread and
//! uncounted; a COPY-out stream dropped before its end leaves `CopyData`
//! unread; a dropped `PgCopyIn` sends `CopyFail` and never reads the reply.
//! The next query on that connection then reads the answers meant for an
//! earlier one: a claim `UPDATE … RETURNING` "finds no row" while its update
//! committed, and the read after it sees the state the update replaced. That
//! is how unrelated jobs were left `running` with nobody to finish them.
//!
//! So a connection that runs COPY is held in a [`CopyConnection`], which goes
//! back to the pool only through [`CopyConnection::release`] after every COPY
//! on it ended cleanly. Any COPY error (at its start, mid-stream, at its end),
//! a stream stopped early, or a future dropped mid-COPY (a `?`, a timeout, a
//! cancelled task) closes the connection instead. Raw sqlx COPY calls
//! elsewhere are refused by clippy (`disallowed-methods` in `clippy.toml`).
//!
//! Protocol reference: PostgreSQL docs, "Frontend/Backend Protocol — COPY
//! Operations" (§55.2.6 in PostgreSQL 15).

// The only module allowed to call sqlx's raw COPY API (see clippy.toml).
#![allow(clippy::disallowed_methods)]

use std::ops::{Deref, DerefMut};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, Postgres};
use sqlx::{Connection, Transaction};

/// A pooled connection that may run COPY; see the module docs.
///
/// Plain queries run on it through `Deref<Target = PgConnection>`. Dropped
/// without [`release`](Self::release) — an error path, a `?`, a cancelled
/// future — the connection is closed, never returned to the pool.
pub struct CopyConnection {
    conn: Option<PoolConnection<Postgres>>,
    /// Set when a COPY starts and cleared when it ends cleanly: a COPY that
    /// failed or never finished leaves it set, and the connection is closed.
    broken: bool,
}

/// How a [`CopyConnection::copy_out`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOutEnd {
    /// Postgres sent every row (`CommandComplete`); `bytes` of COPY data.
    Complete { bytes: u64 },
    /// The receiver went away first; the connection was closed mid-stream.
    Stopped { bytes: u64 },
}

impl CopyConnection {
    /// Takes a connection from `pool` (waiting up to the pool's acquire timeout).
    pub async fn acquire(pool: &PgPool) -> Result<Self, sqlx::Error> {
        Ok(CopyConnection {
            conn: Some(pool.acquire().await?),
            broken: false,
        })
    }

    /// Whether a COPY on this connection failed or never finished (then
    /// [`release`](Self::release) closes it).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Returns the connection to the pool if every COPY on it ended cleanly,
    /// and closes it otherwise.
    pub async fn release(mut self) {
        if let Some(conn) = self.conn.take()
            && self.broken
        {
            close(conn).await;
        }
    }

    /// Starts a transaction on this connection; COPY inside it goes through
    /// [`CopyTx::copy_in`].
    pub async fn begin(&mut self) -> Result<CopyTx<'_>, sqlx::Error> {
        let conn = self.conn.as_deref_mut().ok_or_else(released)?;
        Ok(CopyTx {
            tx: conn.begin().await?,
            broken: &mut self.broken,
        })
    }

    /// `COPY … FROM STDIN` of `chunks` (COPY text, CSV or binary, as the
    /// statement says). Returns the rows Postgres loaded. Any error marks the
    /// connection broken (closed on release).
    pub async fn copy_in<I>(&mut self, statement: &str, chunks: I) -> Result<u64, sqlx::Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let conn = self.conn.as_deref_mut().ok_or_else(released)?;
        copy_in_on(
            conn,
            &mut self.broken,
            statement,
            Source::<I, &[u8]>::Chunks(chunks),
        )
        .await
    }

    /// `COPY … FROM STDIN` of everything `reader` yields (read to its end).
    pub async fn copy_in_reader<R>(
        &mut self,
        statement: &str,
        reader: R,
    ) -> Result<u64, sqlx::Error>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let conn = self.conn.as_deref_mut().ok_or_else(released)?;
        copy_in_on(
            conn,
            &mut self.broken,
            statement,
            Source::<[&[u8]; 0], R>::Reader(reader),
        )
        .await
    }

    /// `COPY … TO STDOUT` into `out`, in batches of at least `batch_bytes`
    /// of COPY data (whole messages, so about whole rows; the last batch may
    /// be smaller). Postgres sends one message per row: handing them over in
    /// batches costs far fewer wake-ups of whoever reads `out`.
    ///
    /// Uses the connection up and releases it: back to the pool after a
    /// complete COPY, closed after an error or when `out`'s receiver is gone
    /// (a connection left mid-COPY-out cannot be reused; the rows still on
    /// their way are dropped with it).
    pub async fn copy_out(
        mut self,
        statement: &str,
        batch_bytes: usize,
        out: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<CopyOutEnd, sqlx::Error> {
        let conn = self.conn.as_deref_mut().ok_or_else(released)?;
        self.broken = true;
        let mut bytes = 0u64;
        let mut batch = BytesMut::with_capacity(batch_bytes);
        let end = {
            let mut stream = conn.copy_out_raw(statement).await?;
            loop {
                match stream.next().await {
                    Some(chunk) => {
                        let chunk = chunk?;
                        bytes += chunk.len() as u64;
                        batch.extend_from_slice(&chunk);
                        if batch.len() >= batch_bytes {
                            let full = batch.split().freeze();
                            batch.reserve(batch_bytes);
                            if out.send(full).await.is_err() {
                                break CopyOutEnd::Stopped { bytes };
                            }
                        }
                    }
                    None => {
                        if !batch.is_empty() && out.send(batch.freeze()).await.is_err() {
                            break CopyOutEnd::Stopped { bytes };
                        }
                        break CopyOutEnd::Complete { bytes };
                    }
                }
            }
        };
        if matches!(end, CopyOutEnd::Complete { .. }) {
            self.broken = false;
        }
        self.release().await;
        Ok(end)
    }
}

impl Deref for CopyConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        // Only `release` and `copy_out`, which consume self, take it out.
        self.conn
            .as_deref()
            .expect("a CopyConnection holds its connection until it is consumed")
    }
}

impl DerefMut for CopyConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .expect("a CopyConnection holds its connection until it is consumed")
    }
}

impl Drop for CopyConnection {
    fn drop(&mut self) {
        // Not released: an error path or a cancelled future. The connection
        // may be mid-COPY or hold unread replies, so it must not be pooled.
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// A transaction (or savepoint) on a [`CopyConnection`]. Dropped without
/// `commit`, it rolls back, as sqlx transactions do.
pub struct CopyTx<'c> {
    tx: Transaction<'c, Postgres>,
    broken: &'c mut bool,
}

impl CopyTx<'_> {
    /// A savepoint inside this transaction: its own commit or rollback.
    pub async fn savepoint(&mut self) -> Result<CopyTx<'_>, sqlx::Error> {
        Ok(CopyTx {
            tx: Connection::begin(&mut *self.tx).await?,
            broken: &mut *self.broken,
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }

    /// `COPY … FROM STDIN` of `chunks` inside the transaction. On an error
    /// reported by Postgres (a unique violation, a bad value) the transaction
    /// stays usable for a rollback, and the connection is closed when its
    /// [`CopyConnection`] is released.
    pub async fn copy_in<I>(&mut self, statement: &str, chunks: I) -> Result<u64, sqlx::Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        copy_in_on(
            &mut self.tx,
            self.broken,
            statement,
            Source::<I, &[u8]>::Chunks(chunks),
        )
        .await
    }
}

impl Deref for CopyTx<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for CopyTx<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

enum Source<I, R> {
    Chunks(I),
    Reader(R),
}

/// The COPY-in sequence. `broken` is set before anything is sent and cleared
/// only after `CommandComplete` and `ReadyForQuery` were read, so an error or
/// a cancellation at any await leaves it set.
async fn copy_in_on<I, R>(
    conn: &mut PgConnection,
    broken: &mut bool,
    statement: &str,
    source: Source<I, R>,
) -> Result<u64, sqlx::Error>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
    R: tokio::io::AsyncRead + Unpin,
{
    *broken = true;
    let mut copy = conn.copy_in_raw(statement).await?;
    match source {
        Source::Chunks(chunks) => {
            for chunk in chunks {
                copy.send(chunk.as_ref()).await?;
            }
        }
        Source::Reader(reader) => {
            copy.read_from(reader).await?;
        }
    }
    let rows = copy.finish().await?;
    *broken = false;
    Ok(rows)
}

async fn close(conn: PoolConnection<Postgres>) {
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing a connection after a failed COPY");
    }
}

fn released() -> sqlx::Error {
    sqlx::Error::PoolClosed
}

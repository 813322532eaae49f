//! What the Postgres catalog says of a table (`pg_catalog`), for
//! `xlport-admin dataset describe`: its columns with their types,
//! nullability, enum labels, lengths, precision and scale, comments, and its
//! primary key. `xlport_core::describe` writes the declaration from it.

use sqlx::PgPool;
use xlport_core::describe::{CatalogColumn, TableShape};

use crate::postgres::DbError;

/// The shape of `table` (`table` or `schema.table`, as Postgres resolves
/// it: `to_regclass`). `Ok(None)` when there is no such table.
pub async fn table_shape(pool: &PgPool, table: &str) -> Result<Option<TableShape>, DbError> {
    let oid: Option<i64> = sqlx::query_scalar("select to_regclass($1)::oid::bigint")
        .bind(table)
        .fetch_one(pool)
        .await?;
    let Some(oid) = oid else {
        return Ok(None);
    };
    type Row = (
        String,
        String,
        String,
        bool,
        bool,
        Option<Vec<String>>,
        i32,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod), \
                t.typtype = 'e', a.attnotnull, \
                case when t.typtype = 'e' then array(select e.enumlabel::text from pg_enum e \
                     where e.enumtypid = t.oid order by e.enumsortorder) end, \
                a.atttypmod, col_description(a.attrelid, a.attnum) \
         from pg_attribute a join pg_type t on t.oid = a.atttypid \
         where a.attrelid = $1::bigint::oid and a.attnum > 0 and not a.attisdropped \
         order by a.attnum",
    )
    .bind(oid)
    .fetch_all(pool)
    .await?;
    let columns = rows
        .into_iter()
        .map(
            |(name, base, formatted, is_enum, not_null, labels, typmod, comment)| {
                // atttypmod: varchar(n)/char(n) store n + 4; numeric(p, s)
                // stores ((p << 16) | s) + 4; -1 when unconstrained.
                let modifier = (typmod >= 4).then(|| (typmod - 4) as u32);
                CatalogColumn {
                    max_length: modifier.filter(|_| matches!(base.as_str(), "varchar" | "bpchar")),
                    numeric: modifier
                        .filter(|_| base == "numeric")
                        .map(|m| ((m >> 16) & 0xffff, m & 0xffff)),
                    enum_labels: if is_enum { labels } else { None },
                    name,
                    base,
                    formatted,
                    not_null,
                    comment,
                }
            },
        )
        .collect();
    let primary_key: Vec<String> = sqlx::query_scalar(
        "select a.attname::text from pg_index i \
         cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord) \
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum \
         where i.indrelid = $1::bigint::oid and i.indisprimary order by k.ord",
    )
    .bind(oid)
    .fetch_all(pool)
    .await?;
    let table = if table.contains('.') {
        table.to_string()
    } else {
        format!("public.{table}")
    };
    Ok(Some(TableShape {
        table,
        primary_key,
        columns,
    }))
}

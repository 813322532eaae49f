//! `xlport-admin dataset describe` on the real catalog (issue #14): a table
//! a team made itself is read from Postgres and declared as a dataset the
//! loader takes as it is, with its types, lengths, precision, enum labels,
//! nullability, comments and key.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use xlport_core::Datasets;
use xlport_core::describe::{declaration, mismatches};
use xlport_tests::fresh_database;

#[tokio::test]
async fn a_teams_own_table_is_described_as_a_dataset_that_loads() {
    let db = fresh_database().await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&db.url)
        .await
        .expect("pool");
    for statement in [
        "create type order_status as enum ('paid', 'shipped', 'cancelled')",
        "create table orders (
            id bigint generated always as identity primary key,
            status order_status not null,
            placed_at timestamptz not null default now(),
            quantity integer not null,
            total numeric(12, 2),
            reference uuid,
            email varchar(120),
            gift boolean not null default false,
            due date,
            extra jsonb,
            ip inet)",
        "comment on column orders.placed_at is 'Placed at (UTC)'",
        "alter table orders drop column ip",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    let shape = xlport_adapters::catalog::table_shape(&pool, "orders")
        .await
        .unwrap()
        .expect("the table");
    assert_eq!(shape.primary_key, ["id"]);
    let toml = declaration("orders", &shape).unwrap();
    let datasets = Datasets::parse(&toml, "described").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let orders = datasets.get("orders").unwrap();
    assert_eq!(
        (orders.table.as_str(), orders.key.as_str()),
        ("orders", "id")
    );
    let described: Vec<(&str, &str, bool)> = orders
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kind.as_str(), c.nullable))
        .collect();
    assert_eq!(
        described,
        [
            ("id", "integer", false),
            ("status", "enum", false),
            ("placed_at", "timestamp", false),
            ("quantity", "integer", false),
            ("total", "decimal", true),
            ("reference", "uuid", true),
            ("email", "text", true),
            ("gift", "boolean", false),
            ("due", "date", true),
            ("extra", "json", true),
        ],
        "a dropped column is not described"
    );
    let column = |name| orders.column(name).unwrap();
    assert_eq!(column("status").labels, ["paid", "shipped", "cancelled"]);
    assert_eq!(column("placed_at").header, "Placed at (UTC)");
    assert_eq!(column("placed_at").pg_type.as_deref(), Some("timestamptz"));
    assert_eq!(column("id").pg_type.as_deref(), Some("bigint"));
    assert_eq!(column("email").max_length, Some(120));
    assert_eq!(
        (column("total").precision, column("total").scale),
        (Some(12), Some(2))
    );
    assert_eq!(column("extra").pg_type.as_deref(), Some("jsonb"));

    // `dataset check`: the declaration agrees with its table, and an edit
    // the table does not back is named.
    assert_eq!(mismatches(orders, &shape), Vec::<String>::new());
    let edited = toml.replace(
        "labels = [\"paid\", \"shipped\", \"cancelled\"]",
        "labels = [\"paid\", \"refunded\"]",
    );
    let edited = Datasets::parse(&edited, "edited").unwrap();
    assert_eq!(
        mismatches(edited.get("orders").unwrap(), &shape),
        ["column `status`: label \"refunded\" is not one of the type's (paid, shipped, cancelled)"]
    );
    // The shipped dataset agrees with its migration.
    let user_purchase = xlport_adapters::catalog::table_shape(&pool, "user_purchase")
        .await
        .unwrap()
        .expect("the migrations made it");
    let builtin = Datasets::builtin().unwrap();
    assert_eq!(
        mismatches(builtin.get("user_purchase").unwrap(), &user_purchase),
        Vec::<String>::new()
    );

    assert!(
        xlport_adapters::catalog::table_shape(&pool, "no_such_table")
            .await
            .unwrap()
            .is_none()
    );
    pool.close().await;
}

//! Embedded migrations: the up/down round trip and concurrent boots.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use festapi::db::migrations;

use crate::support::TestDatabase;

diesel::table! {
    __diesel_schema_migrations (version) {
        version -> Text,
    }
}

async fn applied_versions(url: &str) -> Vec<String> {
    let mut connection = AsyncPgConnection::establish(url).await.unwrap();
    __diesel_schema_migrations::table
        .select(__diesel_schema_migrations::version)
        .order(__diesel_schema_migrations::version)
        .load(&mut connection)
        .await
        .unwrap()
}

async fn table_names(url: &str) -> Vec<String> {
    diesel::table! {
        information_schema.tables (table_name) {
            table_name -> Text,
            table_schema -> Text,
        }
    }
    let mut connection = AsyncPgConnection::establish(url).await.unwrap();
    tables::table
        .filter(tables::table_schema.eq("public"))
        .select(tables::table_name)
        .order(tables::table_name)
        .load(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_run_revert_and_run_again() {
    let database = TestDatabase::empty().await;
    let all = migrations::status(&database.url).await.unwrap();
    assert!(all.len() >= 3 && all.iter().all(|migration| !migration.applied));

    let applied = migrations::run_pending(&database.url).await.unwrap();
    assert_eq!(applied.len(), all.len());
    assert_eq!(
        table_names(&database.url).await,
        [
            "__diesel_schema_migrations",
            "auth_flows",
            "identities",
            "posts",
            "refresh_tokens",
            "sessions",
            "users"
        ]
    );
    assert!(
        migrations::run_pending(&database.url)
            .await
            .unwrap()
            .is_empty()
    );

    for expected in all.iter().rev() {
        let reverted = migrations::revert_last(&database.url).await.unwrap();
        assert_eq!(reverted.as_deref(), Some(expected.name.as_str()));
    }
    assert_eq!(migrations::revert_last(&database.url).await.unwrap(), None);
    assert_eq!(
        table_names(&database.url).await,
        ["__diesel_schema_migrations"]
    );

    assert_eq!(
        migrations::run_pending(&database.url).await.unwrap().len(),
        all.len()
    );
    let status = migrations::status(&database.url).await.unwrap();
    assert!(status.iter().all(|migration| migration.applied));
}

#[tokio::test]
async fn instances_booting_together_migrate_once() {
    let database = TestDatabase::empty().await;
    let expected = migrations::status(&database.url).await.unwrap().len();

    let boots: Vec<_> = (0..5)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { migrations::run_pending(&url).await })
        })
        .collect();
    let mut applied_counts = Vec::new();
    for boot in boots {
        applied_counts.push(boot.await.unwrap().unwrap().len());
    }

    applied_counts.sort_unstable();
    assert_eq!(applied_counts, [0, 0, 0, 0, expected]);
    assert_eq!(applied_versions(&database.url).await.len(), expected);
}

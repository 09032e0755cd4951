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

const OPTIONAL_EMAILS: &str = "2026-11-25-140000_allow_users_without_email";

/// Stores a user of provider `kakao` and subject `subject` with `email`, flagged `verified`.
async fn insert_user(
    client: &tokio_postgres::Client,
    subject: &str,
    email: Option<&str>,
    verified: bool,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO users (id, email, name, verified_email, provider, provider_id) \
             VALUES ('kakao_' || $1, $2, 'Minji', $3, 'kakao', $1)",
            &[&subject, &email, &verified],
        )
        .await
}

#[tokio::test]
async fn users_without_email_addresses_keep_optional_emails_from_being_reverted() {
    let database = TestDatabase::migrated().await;
    let client = database.admin_client().await;
    insert_user(&client, "1", None, false).await.unwrap();
    // An address nobody gave cannot have been verified.
    let verified_nothing = insert_user(&client, "2", None, true).await.unwrap_err();
    assert!(
        format!("{verified_nothing:?}").contains("users_verified_email_needs_email"),
        "{verified_nothing:?}"
    );
    // Addresses that are there stay unique regardless of case.
    insert_user(&client, "3", Some("minji@example.test"), true)
        .await
        .unwrap();
    assert!(
        insert_user(&client, "4", Some("MINJI@example.test"), true)
            .await
            .is_err()
    );

    let refused = migrations::revert_last(&database.url).await.unwrap_err();

    assert!(
        format!("{refused:#}").contains("1 users have no e-mail address"),
        "{refused:#}"
    );
    let status = migrations::status(&database.url).await.unwrap();
    assert!(status.iter().all(|migration| migration.applied));
    let kept: i64 = client
        .query_one("SELECT count(*) FROM users WHERE email IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1);

    client
        .batch_execute("UPDATE users SET email = 'given@example.test' WHERE email IS NULL")
        .await
        .unwrap();
    let reverted = migrations::revert_last(&database.url).await.unwrap();
    assert_eq!(reverted.as_deref(), Some(OPTIONAL_EMAILS));
    assert!(insert_user(&client, "5", None, false).await.is_err());

    let applied = migrations::run_pending(&database.url).await.unwrap();
    assert_eq!(applied, [OPTIONAL_EMAILS]);
    insert_user(&client, "5", None, false).await.unwrap();
}

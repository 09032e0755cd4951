//! Rolling back: reverting migrations down to a version from the command line, and serving a
//! database a newer release migrated.

use std::process::{Command, Output};
use std::time::Duration;

use festapi::db::migrations::{self, RevertPermissions, RevertTarget};

use crate::cli::{ServedBinary, festapi, stderr};
use crate::support::TestDatabase;

/// A version no release has yet, as a newer release's migration would be recorded.
const FUTURE_VERSION: &str = "20991231000000";

/// `festapi args` against `database`.
fn migrate(database: &TestDatabase, args: &[&str]) -> Output {
    festapi(args, &[("DATABASE_URL", &database.url)])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The schema of `database` as `pg_dump --schema-only` writes it, without the random key of
/// the `\restrict` lines newer pg_dump releases add.
fn schema_of(database: &TestDatabase) -> String {
    let output = Command::new("pg_dump")
        .args(["--schema-only", "--no-owner", "--no-privileges", "--dbname"])
        .arg(&database.url)
        .output()
        .expect("pg_dump runs");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Stores a user with an identity, a post, a session with a refresh token, and a sign-in flow.
async fn store_some_data(database: &TestDatabase) {
    let client = database.admin_client().await;
    client
        .batch_execute(
            "INSERT INTO users (id, email, name, verified_email, provider, provider_id) \
                 VALUES ('user_1', 'minji@example.test', 'Minji', true, 'kakao', '1'), \
                        ('user_2', 'jun@example.test', 'Jun', false, 'google', '2');
             INSERT INTO identities (id, user_id, provider, subject, email) \
                 VALUES ('identity_1', 'user_1', 'kakao', '1', 'minji@example.test');
             INSERT INTO posts (id, title, content, author_id) \
                 VALUES ('post_1', 'Hello', 'First post', 'user_1'), \
                        ('post_2', 'Again', 'Second post', 'user_1'), \
                        ('post_3', 'Mine', 'Jun writes', 'user_2');
             INSERT INTO sessions (id, user_id, provider, expires_at) \
                 VALUES ('session_1', 'user_1', 'kakao', now() + interval '1 day');
             INSERT INTO refresh_tokens (hash, session_id) \
                 VALUES (sha256('refresh'), 'session_1');
             INSERT INTO auth_flows (state_hash, provider, nonce, pkce_verifier, binding_hash, \
                                     expires_at) \
                 VALUES (repeat('a', 64), 'kakao', 'nonce', repeat('v', 43), repeat('b', 64), \
                         now() + interval '10 minutes');",
        )
        .await
        .unwrap();
}

async fn count(database: &TestDatabase, query: &str) -> i64 {
    let client = database.admin_client().await;
    client.query_one(query, &[]).await.unwrap().get(0)
}

async fn applied_count(database: &TestDatabase) -> i64 {
    count(database, "SELECT count(*) FROM __diesel_schema_migrations").await
}

fn embedded_count() -> i64 {
    i64::try_from(migrations::embedded_count().unwrap()).unwrap()
}

#[tokio::test]
async fn reverting_everything_and_migrating_again_gives_the_same_schema() {
    let database = TestDatabase::empty().await;
    let applied = migrate(&database, &["migrate", "run"]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    store_some_data(&database).await;
    let before = schema_of(&database);

    let reverted = migrate(
        &database,
        &["migrate", "revert", "--to", "0", "--yes-drop-all-data"],
    );

    assert!(reverted.status.success(), "{}", stderr(&reverted));
    let said = stdout(&reverted);
    assert!(
        said.contains("reverted 2026-11-25-000001_create_users"),
        "{said}"
    );
    assert!(said.contains("users (2 rows)"), "{said}");
    assert!(said.contains("posts (3 rows)"), "{said}");
    assert_eq!(applied_count(&database).await, 0);
    let tables = count(
        &database,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_name <> '__diesel_schema_migrations'",
    )
    .await;
    assert_eq!(tables, 0);
    let nothing = migrate(&database, &["migrate", "revert"]);
    assert!(nothing.status.success(), "{}", stderr(&nothing));
    assert_eq!(
        stdout(&nothing),
        "nothing to revert: no migration is applied\n"
    );

    let again = migrate(&database, &["migrate", "run"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(schema_of(&database), before);
    let newest = migrate(
        &database,
        &["migrate", "revert", "--to", "2026-11-25-140000"],
    );
    assert_eq!(
        stdout(&newest),
        "nothing to revert: no migration newer than 2026-11-25-140000 is applied\n"
    );
}

#[tokio::test]
async fn each_migration_reverts_and_applies_again_to_the_same_schema() {
    let database = TestDatabase::empty().await;
    migrations::run_pending(&database.url).await.unwrap();
    store_some_data(&database).await;
    let versions = migrations::embedded_versions().unwrap();
    let allowed = RevertPermissions {
        drop_tables_with_rows: true,
        ..RevertPermissions::default()
    };

    // Newest first: the database holds every migration up to `version`, and data.
    for version in versions.iter().rev() {
        let with_it = schema_of(&database);

        let plan = migrations::revert(&database.url, RevertTarget::Last, allowed)
            .await
            .unwrap();
        assert_eq!(plan.steps.len(), 1);
        assert!(
            plan.steps[0].name.replace('-', "").starts_with(version),
            "{version}"
        );
        assert_ne!(
            schema_of(&database),
            with_it,
            "reverting {version} changed nothing"
        );
        migrations::run_pending(&database.url).await.unwrap();
        // Back to `version` again: the run applied the newer ones too.
        migrations::revert(&database.url, RevertTarget::To(version.clone()), allowed)
            .await
            .unwrap();

        assert_eq!(schema_of(&database), with_it, "after reverting {version}");
        migrations::revert(&database.url, RevertTarget::Last, allowed)
            .await
            .unwrap();
    }
    assert_eq!(applied_count(&database).await, 0);
}

#[tokio::test]
async fn a_dry_run_lists_the_steps_and_changes_nothing() {
    let database = TestDatabase::migrated().await;
    store_some_data(&database).await;
    let before = schema_of(&database);

    let dry_run = migrate(
        &database,
        &[
            "migrate",
            "revert",
            "--to",
            "2026-11-25-000002",
            "--dry-run",
        ],
    );

    assert!(dry_run.status.success(), "{}", stderr(&dry_run));
    let said = stdout(&dry_run);
    let steps: Vec<&str> = said
        .lines()
        .filter_map(|line| line.split_once(". revert ").map(|(_, name)| name))
        .collect();
    assert_eq!(
        steps,
        [
            "2026-11-25-140000_allow_users_without_email",
            "2026-11-25-130000_create_identities_and_auth_flows",
            "2026-11-25-120001_drop_token_blacklist",
            "2026-11-25-120000_create_sessions",
            "2026-11-25-000003_create_token_blacklist",
        ]
    );
    assert!(said.contains("DROP TABLE refresh_tokens;"), "{said}");
    assert!(
        said.contains(
            "auth_flows (1 row), identities (1 row), refresh_tokens (1 row), sessions (1 row)"
        ),
        "{said}"
    );
    assert!(said.contains("needs --yes"), "{said}");
    assert_eq!(applied_count(&database).await, embedded_count());
    assert_eq!(schema_of(&database), before);
    assert_eq!(count(&database, "SELECT count(*) FROM sessions").await, 1);
}

#[tokio::test]
async fn a_revert_dropping_tables_with_rows_needs_yes() {
    let database = TestDatabase::migrated().await;
    store_some_data(&database).await;
    let before = schema_of(&database);

    let refused = migrate(
        &database,
        &["migrate", "revert", "--to", "2026-11-25-000001"],
    );

    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("reverting would drop tables holding rows"),
        "{message}"
    );
    for table in [
        "auth_flows (1 row)",
        "identities (1 row)",
        "refresh_tokens (1 row)",
        "sessions (1 row)",
        "posts (3 rows)",
    ] {
        assert!(message.contains(table), "{table}: {message}");
    }
    assert!(message.contains("--yes"), "{message}");
    assert_eq!(applied_count(&database).await, embedded_count());
    assert_eq!(schema_of(&database), before);

    // Only the tables that hold rows count.
    let client = database.admin_client().await;
    client
        .batch_execute("DELETE FROM auth_flows")
        .await
        .unwrap();
    let drops_no_table = migrate(&database, &["migrate", "revert"]);
    assert!(
        drops_no_table.status.success(),
        "{}",
        stderr(&drops_no_table)
    );
    let identities_hold_rows = migrate(&database, &["migrate", "revert"]);
    assert!(!identities_hold_rows.status.success());
    let message = stderr(&identities_hold_rows);
    assert!(message.contains("rows: identities (1 row);"), "{message}");
    client
        .batch_execute("DELETE FROM identities")
        .await
        .unwrap();
    let emptied = migrate(&database, &["migrate", "revert"]);
    assert!(emptied.status.success(), "{}", stderr(&emptied));

    let confirmed = migrate(
        &database,
        &["migrate", "revert", "--to", "2026-11-25-000001", "--yes"],
    );
    assert!(confirmed.status.success(), "{}", stderr(&confirmed));
    assert_eq!(applied_count(&database).await, 1);
    assert_eq!(count(&database, "SELECT count(*) FROM users").await, 2);
}

#[tokio::test]
async fn reverting_everything_needs_its_own_confirmation() {
    let database = TestDatabase::migrated().await;

    for args in [
        &["migrate", "revert", "--to", "0"][..],
        &["migrate", "revert", "--to", "0", "--yes"][..],
    ] {
        let refused = migrate(&database, args);
        assert!(!refused.status.success(), "{args:?}");
        let message = stderr(&refused);
        assert!(message.contains("--yes-drop-all-data"), "{message}");
    }

    assert_eq!(applied_count(&database).await, embedded_count());
}

#[tokio::test]
async fn an_unknown_version_is_refused() {
    let database = TestDatabase::migrated().await;

    for version in ["2026-11-25-000004", "yesterday"] {
        let refused = migrate(&database, &["migrate", "revert", "--to", version, "--yes"]);
        assert!(!refused.status.success(), "{version}");
        let message = stderr(&refused);
        assert!(
            message.contains(&format!("unknown migration version {version:?}")),
            "{message}"
        );
    }

    assert_eq!(applied_count(&database).await, embedded_count());
}

#[tokio::test]
async fn a_revert_failing_half_way_leaves_every_migration_in_place() {
    let database = TestDatabase::migrated().await;
    store_some_data(&database).await;
    // A view the down migration of posts does not know about keeps it from dropping the table,
    // after the four newer migrations have been reverted.
    let client = database.admin_client().await;
    client
        .batch_execute("CREATE VIEW post_titles AS SELECT title FROM posts")
        .await
        .unwrap();
    let before = schema_of(&database);

    let failed = migrate(
        &database,
        &["migrate", "revert", "--to", "0", "--yes-drop-all-data"],
    );

    assert!(!failed.status.success());
    let message = stderr(&failed);
    assert!(
        message.contains("reverting 2026-11-25-000002_create_posts"),
        "{message}"
    );
    assert_eq!(applied_count(&database).await, embedded_count());
    assert_eq!(schema_of(&database), before);
    assert_eq!(count(&database, "SELECT count(*) FROM sessions").await, 1);
    assert_eq!(count(&database, "SELECT count(*) FROM posts").await, 3);
}

#[tokio::test]
async fn status_shows_when_each_migration_was_applied_and_what_is_pending_or_unknown() {
    let database = TestDatabase::migrated().await;
    let reverted = migrate(&database, &["migrate", "revert"]);
    assert!(reverted.status.success(), "{}", stderr(&reverted));
    let client = database.admin_client().await;
    client
        .execute(
            "INSERT INTO __diesel_schema_migrations (version, run_on) \
             VALUES ($1, '2099-12-31 08:30:00')",
            &[&FUTURE_VERSION],
        )
        .await
        .unwrap();

    let status = migrate(&database, &["migrate", "status"]);

    assert!(status.status.success(), "{}", stderr(&status));
    let said = stdout(&status);
    let lines: Vec<&str> = said.lines().collect();
    let versions = migrations::embedded_versions().unwrap();
    assert_eq!(lines.len(), versions.len() + 2, "{said}");
    for line in &lines[..versions.len() - 1] {
        assert!(line.starts_with("applied  2026-11-25-"), "{line}");
        let time = line.rsplit("  ").next().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S UTC").is_ok(),
            "{line}"
        );
    }
    assert_eq!(
        lines[versions.len() - 1],
        "pending  2026-11-25-140000_allow_users_without_email"
    );
    assert!(
        lines[versions.len()].starts_with("unknown  2099-12-31-000000 "),
        "{said}"
    );
    assert!(
        lines[versions.len()].ends_with("  2099-12-31 08:30:00 UTC"),
        "{said}"
    );
    assert!(
        lines[versions.len() + 1].contains("FESTAPI_ALLOW_NEWER_SCHEMA"),
        "{said}"
    );
}

/// Records a migration of a release newer than this build.
async fn migrate_with_a_newer_release(database: &TestDatabase) {
    database
        .admin_client()
        .await
        .execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ($1)",
            &[&FUTURE_VERSION],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn start_up_refuses_a_database_a_newer_release_migrated() {
    let database = TestDatabase::migrated().await;
    migrate_with_a_newer_release(&database).await;

    let server = ServedBinary::launch(&database.url, &[]);
    let (status, logs) = server.exit_within(Duration::from_secs(20)).await;

    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains("the database has migrations this build does not know: 2099-12-31-000000"),
        "{logs}"
    );
    assert!(
        logs.contains("`festapi migrate revert --to 2026-11-25-140000`, run by that release"),
        "{logs}"
    );
    assert!(logs.contains("FESTAPI_ALLOW_NEWER_SCHEMA=true"), "{logs}");
    assert!(!logs.contains("not reachable yet"), "{logs}");

    let run = migrate(&database, &["migrate", "run"]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("migrations this build does not know: 2099-12-31-000000"),
        "{}",
        stderr(&run)
    );
    let revert = migrate(&database, &["migrate", "revert", "--yes"]);
    assert!(!revert.status.success());
    assert!(
        stderr(&revert).contains("revert them first with the release that has them"),
        "{}",
        stderr(&revert)
    );
    assert_eq!(applied_count(&database).await, embedded_count() + 1);
}

#[tokio::test]
async fn a_newer_schema_declared_compatible_is_served_and_ready() {
    let database = TestDatabase::migrated().await;
    migrate_with_a_newer_release(&database).await;

    let server =
        ServedBinary::start(&database.url, &[("FESTAPI_ALLOW_NEWER_SCHEMA", "true")]).await;

    let (status, body) = server.probe("/readyz").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
    let logs = server.logs();
    assert!(logs.contains("does not know"), "{logs}");
    assert!(logs.contains("2099-12-31-000000"), "{logs}");

    let run = festapi(
        &["migrate", "run"],
        &[
            ("DATABASE_URL", &database.url),
            ("FESTAPI_ALLOW_NEWER_SCHEMA", "true"),
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stdout(&run).contains("allowed by FESTAPI_ALLOW_NEWER_SCHEMA=true"));
}

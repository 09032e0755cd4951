//! `festapi backup` and `festapi restore`, run as operators run them, with the real PostgreSQL
//! client tools: a backup restores every row of every table; what restore refuses it leaves
//! untouched; a missing or outdated tool is named with what to install; and the password of
//! `DATABASE_URL` is never printed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::str::FromStr as _;

use reqwest::StatusCode;
use serde_json::json;
use tokio_postgres::NoTls;

use crate::cli::{festapi, stderr};
use crate::support::database::{execute, execute_from_drop};
use crate::support::identity_provider::{Shape, TestIdentityProvider};
use crate::support::{TestApp, TestDatabase, url_for};

/// A folder for archives, removed with everything in it when dropped.
struct BackupFolder(PathBuf);

impl BackupFolder {
    fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("festapi-test-backups-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    /// The path of `name` in the folder, as a string for the command line.
    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for BackupFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `festapi backup` or `restore` with `args` against the database at `url`.
fn run(args: &[&str], url: &str) -> Output {
    festapi(args, &[("DATABASE_URL", url)])
}

/// Runs `args` and checks that the command succeeded.
fn succeeds(args: &[&str], url: &str) -> Output {
    let output = run(args, url);
    assert!(
        output.status.success(),
        "festapi {args:?} failed:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    output
}

/// Runs `args` and returns the error it failed with.
fn fails(args: &[&str], url: &str) -> String {
    let output = run(args, url);
    assert!(
        !output.status.success(),
        "festapi {args:?} succeeded:\n{}",
        stdout(&output)
    );
    stderr(&output)
}

/// The value of the summary line `name` (`  rows        12`).
fn summary_value(output: &Output, name: &str) -> u64 {
    stdout(output)
        .lines()
        .find_map(|line| line.trim().strip_prefix(name))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the summary:\n{}", stdout(output)))
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Every row of every table of the database at `url`, each as its text form, ordered by the
/// table's primary key: `schema.table` → rows.
async fn every_row(url: &str) -> BTreeMap<String, Vec<String>> {
    let client = connect(url).await;
    let tables = client
        .query(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) \
             FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' \
               AND table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .unwrap();
    let mut rows = BTreeMap::new();
    for table in tables {
        let table: String = table.get(0);
        let key: Vec<String> = client
            .query(
                "SELECT quote_ident(a.attname) FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = $1::text::regclass AND i.indisprimary \
                 ORDER BY array_position(i.indkey::smallint[], a.attnum)",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|column| column.get(0))
            .collect();
        assert!(!key.is_empty(), "{table} has no primary key");
        let texts = client
            .query(
                &format!(
                    "SELECT row_to_json(t)::text FROM {table} AS t ORDER BY {}",
                    key.join(", ")
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        rows.insert(table, texts);
    }
    rows
}

async fn applied_migrations(url: &str) -> Vec<String> {
    connect(url)
        .await
        .query(
            "SELECT version FROM __diesel_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn database_exists(name: &str) -> bool {
    connect(&url_for("postgres"))
        .await
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

/// A server whose database holds something in every table, all written through the API: users,
/// identities, posts with awkward text, sessions (one ended), rotated refresh tokens, and a
/// browser sign-in left unfinished.
async fn app_with_data() -> TestApp {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let mut builder = TestApp::builder()
        .with_env("AUTH_PUBLIC_URL", "http://127.0.0.1:8000")
        .with_env("AUTH_ALLOWED_REDIRECTS", "http://localhost:3000/signed-in");
    for (variable, value) in idp.settings("oidc") {
        builder = builder.with_env(&variable, &value);
    }
    let app = builder.start().await;

    let ada = app.signed_in("ada").await;
    let grace = app.signed_in("grace").await;
    ada.create_post("Hello", "First post.").await;
    ada.create_post(
        "Tabs\tand \"quotes\"",
        "Line one\nline two\\with a backslash, 'single quotes', \u{1F600} and ünïcödé",
    )
    .await;
    grace.create_post("COPY-looking", "\\.\nNULL\n\\N").await;
    let profile = grace
        .graphql(
            "mutation { updateMe(input: { name: \"Grace Hopper\", \
             picture: \"https://example.com/grace.png\" }) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(profile.data()["updateMe"]["name"], "Grace Hopper");
    let refreshed = app
        .anonymous()
        .graphql(
            "mutation($token: String!) { refreshToken(refreshToken: $token) { accessToken } }",
            json!({ "token": ada.refresh_token.clone().unwrap() }),
        )
        .await;
    assert!(refreshed.data()["refreshToken"]["accessToken"].is_string());
    let logged_out = app
        .signed_in("alan")
        .await
        .graphql("mutation { logout }", json!({}))
        .await;
    assert_eq!(logged_out.data()["logout"], true);
    let started = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/auth/oidc?redirect_to=http://localhost:3000/signed-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    app
}

#[tokio::test]
async fn a_backup_restores_every_row_of_every_table_into_a_new_database() {
    let app = app_with_data().await;
    let before = every_row(&app.database.url).await;
    for (table, rows) in &before {
        assert!(!rows.is_empty(), "{table} holds nothing to back up");
    }
    let folder = BackupFolder::new();
    let archive = folder.file("festapi.dump");

    let backed_up = succeeds(&["backup", &archive], &app.database.url);

    let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the owner may read a backup");
    let rows: usize = before.values().map(Vec::len).sum();
    assert_eq!(summary_value(&backed_up, "tables"), before.len() as u64);
    assert_eq!(summary_value(&backed_up, "rows"), rows as u64);
    assert_eq!(
        summary_value(&backed_up, "bytes"),
        std::fs::metadata(&archive).unwrap().len()
    );
    assert!(stdout(&backed_up).contains("seconds"));
    assert!(
        stderr(&backed_up).contains("dumping public.users"),
        "progress lines off a terminal:\n{}",
        stderr(&backed_up)
    );

    let target = TestDatabase::unused();
    let restored = succeeds(&["restore", &archive], &target.url);

    assert_eq!(every_row(&target.url).await, before);
    assert!(
        stdout(&restored).contains("(created)"),
        "{}",
        stdout(&restored)
    );
    assert!(stdout(&restored).contains("migrations  none to apply"));
    assert_eq!(summary_value(&restored, "tables"), before.len() as u64);
    assert_eq!(summary_value(&restored, "rows"), rows as u64);
    assert!(stderr(&restored).contains("restoring public.posts"));

    // The restored database serves: a server on it reads the posts back.
    let restored_app = TestApp::on_database(target).await;
    let posts = restored_app
        .anonymous()
        .graphql(
            "{ posts(first: 10) { edges { node { title } } } }",
            json!({}),
        )
        .await;
    assert_eq!(posts.data()["posts"]["edges"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn restore_refuses_a_database_holding_festapi_tables_and_changes_nothing() {
    let source = app_with_data().await;
    let folder = BackupFolder::new();
    let archive = folder.file("festapi.dump");
    succeeds(&["backup", &archive], &source.database.url);

    // Tables without a row count as much as tables with rows.
    let migrated = TestDatabase::migrated().await;
    let other = TestApp::new().await;
    other
        .signed_in("someone")
        .await
        .create_post("Mine", "Keep me.")
        .await;
    for target in [&migrated.url, &other.database.url] {
        let before = every_row(target).await;

        let error = fails(&["restore", &archive], target);

        assert!(error.contains("already holds FestAPI tables"), "{error}");
        assert!(error.contains("public.users ("), "{error}");
        assert!(error.contains("--force"), "{error}");
        assert_eq!(every_row(target).await, before);
    }

    // With --force, the backup replaces what was there.
    succeeds(&["restore", "--force", &archive], &other.database.url);
    assert_eq!(
        every_row(&other.database.url).await,
        every_row(&source.database.url).await
    );
}

#[tokio::test]
async fn a_restore_that_fails_midway_leaves_the_database_as_it_was() {
    let source = TestApp::new().await;
    source
        .signed_in("ada")
        .await
        .create_post("From the backup", "Old.")
        .await;
    let folder = BackupFolder::new();
    let archive = folder.file("festapi.dump");
    succeeds(&["backup", &archive], &source.database.url);
    let target = TestApp::new().await;
    target
        .signed_in("grace")
        .await
        .create_post("Current", "New.")
        .await;
    // A table of someone else's that needs `posts`: dropping `posts` to replace it fails, after
    // the restore has already dropped and recreated other objects.
    execute(
        &target.database.url,
        "CREATE TABLE bookmarks (post_id text PRIMARY KEY REFERENCES posts (id))",
    )
    .await;
    let before = every_row(&target.database.url).await;

    let error = fails(&["restore", "--force", &archive], &target.database.url);

    assert!(error.contains("pg_restore failed"), "{error}");
    assert!(error.contains("nothing of it stayed"), "{error}");
    assert_eq!(every_row(&target.database.url).await, before);
}

#[tokio::test]
async fn backup_refuses_to_replace_a_file_unless_forced() {
    let app = TestApp::new().await;
    let folder = BackupFolder::new();
    let archive = folder.file("festapi.dump");
    std::fs::write(&archive, "yesterday's backup").unwrap();

    let error = fails(&["backup", &archive], &app.database.url);

    assert!(error.contains("exists: pass --force"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&archive).unwrap(),
        "yesterday's backup"
    );
    succeeds(&["backup", "--force", &archive], &app.database.url);
    assert!(std::fs::read(&archive).unwrap().starts_with(b"PGDMP"));
    let leftovers: Vec<_> = std::fs::read_dir(&folder.0).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no partial file is left: {leftovers:?}");
}

#[tokio::test]
async fn an_older_backup_is_migrated_after_the_restore() {
    let source = TestDatabase::migrated().await;
    let reverted = festapi::db::migrations::revert_last(&source.url)
        .await
        .unwrap()
        .expect("a migration to revert");
    execute(
        &source.url,
        "INSERT INTO users (id, email, name, provider, provider_id) \
         VALUES ('local_1', 'old@example.test', 'Old', 'local', '1')",
    )
    .await;
    let folder = BackupFolder::new();
    let archive = folder.file("older.dump");
    succeeds(&["backup", &archive], &source.url);
    let target = TestDatabase::unused();

    let restored = succeeds(&["restore", &archive], &target.url);

    assert!(
        stdout(&restored).contains(&format!("migrations  applied {reverted}")),
        "{}",
        stdout(&restored)
    );
    assert_eq!(
        applied_migrations(&target.url).await,
        festapi::db::migrations::embedded_versions().unwrap()
    );
    assert_eq!(every_row(&target.url).await["public.users"].len(), 1);
}

#[tokio::test]
async fn a_backup_newer_than_the_binary_is_refused_before_anything_is_created() {
    let source = TestDatabase::migrated().await;
    execute(
        &source.url,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')",
    )
    .await;
    let folder = BackupFolder::new();
    let archive = folder.file("newer.dump");
    succeeds(&["backup", &archive], &source.url);
    let target = TestDatabase::unused();

    let error = fails(&["restore", &archive], &target.url);

    assert!(error.contains("newer than this festapi's"), "{error}");
    assert!(error.contains("29991231000000"), "{error}");
    assert!(!database_exists(&target.name).await);
}

#[tokio::test]
async fn a_file_that_is_no_festapi_backup_is_refused() {
    let folder = BackupFolder::new();
    let target = TestDatabase::unused();
    let garbage = folder.file("garbage.dump");
    std::fs::write(&garbage, "not an archive").unwrap();
    let unrelated = TestDatabase::empty().await;
    execute(
        &unrelated.url,
        "CREATE TABLE notes (id integer PRIMARY KEY)",
    )
    .await;
    let foreign = folder.file("foreign.dump");
    succeeds(&["backup", &foreign], &unrelated.url);

    let not_an_archive = fails(&["restore", &garbage], &target.url);
    let not_festapi = fails(&["restore", &foreign], &target.url);
    let missing = fails(&["restore", &folder.file("missing.dump")], &target.url);

    assert!(
        not_an_archive.contains("is not a readable pg_dump archive"),
        "{not_an_archive}"
    );
    assert!(
        not_festapi.contains("is not a FestAPI backup"),
        "{not_festapi}"
    );
    assert!(missing.contains("cannot read"), "{missing}");
    assert!(!database_exists(&target.name).await);
}

/// A folder to use as `PATH`, holding only the programs a test puts there.
fn path_with(programs: &[(&str, &str)]) -> BackupFolder {
    let folder = BackupFolder::new();
    for (name, script) in programs {
        let path = folder.0.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    folder
}

fn with_path(args: &[&str], url: &str, path: &Path) -> String {
    let output = festapi(
        args,
        &[("DATABASE_URL", url), ("PATH", path.to_str().unwrap())],
    );
    assert!(!output.status.success(), "{}", stdout(&output));
    stderr(&output)
}

#[tokio::test]
async fn a_missing_tool_is_named_with_the_package_to_install() {
    let app = TestApp::new().await;
    let folder = BackupFolder::new();
    let archive = folder.file("festapi.dump");
    let empty_path = path_with(&[]);

    let backup = with_path(&["backup", &archive], &app.database.url, &empty_path.0);
    std::fs::write(&archive, "an archive").unwrap();
    let restore = with_path(&["restore", &archive], &app.database.url, &empty_path.0);

    for (tool, error) in [("pg_dump", &backup), ("pg_restore", &restore)] {
        assert!(
            error.contains(&format!("{tool} was not found on PATH")),
            "{error}"
        );
        assert!(
            error.contains("apt-get install postgresql-client"),
            "{error}"
        );
    }
    assert_eq!(std::fs::read_to_string(&archive).unwrap(), "an archive");
}

#[tokio::test]
async fn a_tool_older_than_the_server_is_refused() {
    let app = TestApp::new().await;
    let server_version: i32 = connect(&app.database.url)
        .await
        .query_one("SELECT current_setting('server_version_num')::integer", &[])
        .await
        .unwrap()
        .get(0);
    let server_major = server_version / 10_000;
    let old_tools = path_with(&[
        (
            "pg_dump",
            "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n[ \"$1\" = --version ] || exit 3\n",
        ),
        (
            "pg_restore",
            "#!/bin/sh\necho 'pg_restore (PostgreSQL) 9.6.24'\n[ \"$1\" = --version ] || exit 3\n",
        ),
    ]);
    let folder = BackupFolder::new();
    let archive = folder.file("festapi.dump");

    let error = with_path(&["backup", &archive], &app.database.url, &old_tools.0);

    assert!(
        error.contains(&format!(
            "pg_dump 9.6 at {}/pg_dump is older than the PostgreSQL {server_major} server",
            old_tools.0.display()
        )),
        "{error}"
    );
    assert!(
        error.contains(&format!("postgresql-client-{server_major}")),
        "{error}"
    );
    assert!(!Path::new(&archive).exists());
}

/// A login role with a password, dropped with this value.
struct RoleWithPassword {
    name: String,
    password: String,
}

impl RoleWithPassword {
    /// A role that may create databases and read every table, as a backup operator's would.
    async fn create() -> Self {
        let name = format!("festapi_test_role_{}", uuid::Uuid::new_v4().simple());
        // Characters that URLs must encode, so both of its forms are checked.
        let password = format!("pä ss@wörd/{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&url_for("postgres")).await;
        admin
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN CREATEDB PASSWORD '{password}'; \
                 GRANT pg_read_all_data TO \"{name}\""
            ))
            .await
            .unwrap();
        Self { name, password }
    }

    /// The URL of database `database` for this role, with the password in it.
    fn url(&self, database: &str) -> String {
        let mut url = url::Url::parse(&url_for(database)).unwrap();
        url.set_username(&self.name).unwrap();
        url.set_password(Some(&self.password)).unwrap();
        assert!(tokio_postgres::Config::from_str(url.as_str()).is_ok());
        url.to_string()
    }
}

impl Drop for RoleWithPassword {
    fn drop(&mut self) {
        let statement = format!("DROP ROLE IF EXISTS \"{}\"", self.name);
        if let Err(error) = execute_from_drop(statement) {
            eprintln!("could not drop role {}: {error}", self.name);
        }
    }
}

#[tokio::test]
async fn the_password_of_the_database_url_is_never_printed() {
    let role = RoleWithPassword::create().await;
    let source = app_with_data().await;
    let target = TestDatabase::unused();
    let folder = BackupFolder::new();
    let archive = folder.file("festapi.dump");
    let source_url = role.url(&source.database.name);
    let target_url = role.url(&target.name);
    let url_file = folder.file("database-url");
    std::fs::write(&url_file, format!("{target_url}\n")).unwrap();
    let garbage = folder.file("garbage.dump");
    std::fs::write(&garbage, "not an archive").unwrap();

    let outputs = [
        succeeds(&["backup", &archive], &source_url),
        // DATABASE_URL_FILE, as a mounted secret gives it.
        festapi(&["restore", &archive], &[("DATABASE_URL_FILE", &url_file)]),
        run(&["restore", &archive], &target_url),
        run(&["backup", &archive], &source_url),
        run(&["restore", &garbage], &target_url),
        run(
            &["backup", &folder.file("other.dump")],
            &role.url("festapi_test_missing"),
        ),
        run(
            &["restore", &archive],
            &format!("{}?sslmode=require", target_url),
        ),
    ];

    assert!(outputs[1].status.success(), "{}", stderr(&outputs[1]));
    assert!(outputs[2..].iter().all(|output| !output.status.success()));
    assert_eq!(
        every_row(&target.url).await,
        every_row(&source.database.url).await
    );
    let encoded = url::Url::parse(&target_url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    for output in &outputs {
        let printed = format!("{}{}", stdout(output), stderr(output));
        assert!(!printed.is_empty());
        for secret in [&role.password, &encoded] {
            assert!(!printed.contains(secret.as_str()), "{printed}");
        }
    }
}

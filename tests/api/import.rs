//! `festapi import`: the Python service's dump moved into PostgreSQL, run as an operator runs it.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::{TestApp, TestDatabase};

const SAMPLE: &str = "festapi-dump.sample.json";
const INVALID: &str = "festapi-dump.invalid.json";
const TRUNCATED: &str = "festapi-dump.truncated.json";

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap()
}

/// What one run of the command printed and how it ended.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "success: {}\n--- stdout\n{}--- stderr\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

/// Runs `festapi import ARGS` against `database`, in a time zone far from UTC, feeding `stdin`.
fn import(database: &TestDatabase, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_festapi"));
    command
        .arg("import")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &database.url)
        .env("TZ", "Asia/Seoul")
        .current_dir(std::env::temp_dir())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the festapi binary runs");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    Run::from(child.wait_with_output().unwrap())
}

fn import_fixture(database: &TestDatabase, name: &str, flags: &[&str]) -> Run {
    let path = fixture_path(name);
    let mut args = vec![path.to_str().unwrap()];
    args.extend(flags);
    import(database, &args, None)
}

/// A database whose sessions run in a time zone far from UTC, so that any timestamp read or
/// written as local time would land hours off.
async fn database_away_from_utc() -> TestDatabase {
    let database = TestDatabase::migrated().await;
    database
        .admin_client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET timezone TO 'America/New_York'",
            database.name
        ))
        .await
        .unwrap();
    database
}

/// Every row of the tables an import writes, as text, in a stable order.
async fn snapshot(database: &TestDatabase) -> Vec<String> {
    let client = database.admin_client().await;
    let mut rows = Vec::new();
    for table in ["users", "identities", "posts"] {
        let statement = format!(
            "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {table} t"
        );
        let text: String = client.query_one(&statement, &[]).await.unwrap().get(0);
        rows.push(format!("{table}:\n{text}"));
    }
    rows
}

async fn count(database: &TestDatabase, table: &str) -> i64 {
    database
        .admin_client()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// A timestamp of the dump as PostgreSQL prints a UTC instant: zone-less ones are UTC.
fn as_stored(timestamp: &str) -> String {
    let naive = chrono::NaiveDateTime::parse_from_str(
        timestamp.trim_end_matches('Z'),
        "%Y-%m-%dT%H:%M:%S%.f",
    )
    .unwrap();
    naive.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

const UTC_TEXT: &str = r#"to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"#;

fn utc_text(column: &str) -> String {
    UTC_TEXT.replace("ts", column)
}

/// The rows of `table` by id: `columns` as text, then the timestamps as UTC text.
async fn stored_rows(
    database: &TestDatabase,
    table: &str,
    columns: &str,
) -> HashMap<String, Vec<Option<String>>> {
    let statement = format!(
        "SELECT id, {columns}, {}, {} FROM {table}",
        utc_text("created_at"),
        utc_text("updated_at")
    );
    let client = database.admin_client().await;
    client
        .query(&statement, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            let columns = (1..row.len()).map(|index| row.get(index)).collect();
            (row.get(0), columns)
        })
        .collect()
}

/// The stored users by id: every column the dump has.
async fn stored_users(database: &TestDatabase) -> HashMap<String, Vec<Option<String>>> {
    let columns = "email, name, picture, verified_email::text, provider, provider_id";
    stored_rows(database, "users", columns).await
}

/// The stored posts by id: title, content, author id and the timestamps.
async fn stored_posts(database: &TestDatabase) -> HashMap<String, Vec<String>> {
    stored_rows(database, "posts", "title, content, author_id")
        .await
        .into_iter()
        .map(|(id, columns)| (id, columns.into_iter().map(Option::unwrap).collect()))
        .collect()
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

#[tokio::test]
async fn every_record_of_a_valid_dump_lands_with_its_exact_fields() {
    let database = database_away_from_utc().await;
    let before = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();

    let run = import_fixture(&database, SAMPLE, &[]);

    let after = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout.contains(
            "users: 6 read, 6 imported, 0 updated, 0 unchanged, 0 conflicting, 0 skipped"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "posts: 17 read, 17 imported, 0 updated, 0 unchanged, 0 conflicting, 0 skipped"
        ),
        "{run:?}"
    );

    // Standard error is no terminal here: progress comes as plain lines.
    assert!(
        run.stderr.lines().any(|line| line == "posts: 17/17"),
        "{run:?}"
    );

    let dump = fixture(SAMPLE);
    let users = stored_users(&database).await;
    assert_eq!(users.len(), 6);
    let mut import_times = Vec::new();
    for (key, user) in dump["users"].as_object().unwrap() {
        let id = user["id"].as_str().unwrap();
        let stored = &users[id];
        let expected_columns = [
            Some(key.clone()),
            text(&user["name"]),
            text(&user["picture"]),
            Some(user["verified_email"].to_string()),
            text(&user["provider"]),
            text(&user["provider_id"]),
        ];
        assert_eq!(stored[..6], expected_columns, "{id}");
        for (column, field) in [(6, "created_at"), (7, "updated_at")] {
            let stored = stored[column].clone().unwrap();
            match user[field].as_str() {
                Some(timestamp) => assert_eq!(stored, as_stored(timestamp), "{id} {field}"),
                None => import_times.push(stored),
            }
        }
    }
    // Unknown dates are the import's start, one instant for every row.
    assert!(!import_times.is_empty());
    assert!(
        import_times.iter().all(|time| *time == import_times[0]),
        "{import_times:?}"
    );
    assert!(
        before <= import_times[0] && import_times[0] <= after,
        "{before} {import_times:?} {after}"
    );

    // Each user signs in later through the provider it came from.
    let client = database.admin_client().await;
    let identities = client
        .query(
            "SELECT u.provider, u.provider_id, i.provider, i.subject, i.email, u.email \
             FROM users u JOIN identities i ON i.user_id = u.id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(identities.len(), 6);
    for row in identities {
        assert_eq!(row.get::<_, String>(0), row.get::<_, String>(2));
        assert_eq!(row.get::<_, String>(1), row.get::<_, String>(3));
        assert_eq!(
            row.get::<_, Option<String>>(4),
            row.get::<_, Option<String>>(5)
        );
    }

    let posts = stored_posts(&database).await;
    assert_eq!(posts.len(), 17);
    for (key, post) in dump["posts"].as_object().unwrap() {
        let author_id = dump["users"][post["author_email"].as_str().unwrap()]["id"]
            .as_str()
            .unwrap();
        let mut title = post["title"].as_str().unwrap().to_owned();
        if key == "post_emoji000001" {
            // The API's trimming takes the trailing zero-width space, as it would from a client.
            assert!(title.ends_with(" \u{200B}"));
            title = "Emoji 🎉🚀 ñ 中文".to_owned();
        }
        let expected = [
            title,
            post["content"].as_str().unwrap().to_owned(),
            author_id.to_owned(),
            as_stored(post["created_at"].as_str().unwrap()),
            as_stored(post["updated_at"].as_str().unwrap()),
        ];
        assert_eq!(posts[key], expected.to_vec(), "{key}");
    }
    assert_eq!(posts["post_maxlength01"][0].chars().count(), 200);
    assert_eq!(posts["post_maxlength01"][1].chars().count(), 10_000);
}

#[tokio::test]
async fn zone_less_timestamps_are_utc_whatever_the_time_zones_of_machine_and_database() {
    let database = database_away_from_utc().await;
    let mut dump = fixture(SAMPLE);
    dump["users"]["user1@icloud.com"]["created_at"] = "2024-01-06T12:07:00.050631".into();
    dump["users"]["user1@icloud.com"]["updated_at"] = "2024-01-06T23:59:59".into();
    dump["posts"]["post_12bd4acefaec"]["created_at"] = "2024-01-07T00:30:00.5".into();

    // The binary runs with TZ=Asia/Seoul, the database's sessions in America/New_York.
    let run = import(&database, &["-"], Some(&serde_json::to_vec(&dump).unwrap()));

    assert!(run.success, "{run:?}");
    let user = &stored_users(&database).await["apple_798935572"];
    assert_eq!(user[6].as_deref(), Some("2024-01-06T12:07:00.050631"));
    assert_eq!(user[7].as_deref(), Some("2024-01-06T23:59:59.000000"));
    let post = &stored_posts(&database).await["post_12bd4acefaec"];
    assert_eq!(post[3], "2024-01-07T00:30:00.500000");
}

#[tokio::test]
async fn e_mail_addresses_keep_their_case() {
    let database = TestDatabase::migrated().await;
    let mut dump = fixture(SAMPLE);
    let users = dump["users"].as_object_mut().unwrap();
    let mut user = users.remove("user3@kakao.com").unwrap();
    user["email"] = "Min.Jun@Kakao.COM".into();
    users.insert("Min.Jun@Kakao.COM".to_owned(), user);
    for post in dump["posts"].as_object_mut().unwrap().values_mut() {
        if post["author_email"] == "user3@kakao.com" {
            post["author_email"] = "Min.Jun@Kakao.COM".into();
        }
    }

    let run = import(&database, &["-"], Some(&serde_json::to_vec(&dump).unwrap()));

    assert!(run.success, "{run:?}");
    let stored = &stored_users(&database).await["kakao_1076787301"];
    assert_eq!(stored[0].as_deref(), Some("Min.Jun@Kakao.COM"));
}

#[tokio::test]
async fn the_api_serves_imported_users_and_posts() {
    let database = TestDatabase::migrated().await;
    assert!(import_fixture(&database, SAMPLE, &[]).success);
    let app = TestApp::on_database(database).await;

    let reply = app
        .anonymous()
        .graphql(
            r#"{ post(id: "post_12bd4acefaec") { title createdAt updatedAt author { name } } }"#,
            serde_json::json!({}),
        )
        .await;
    let post = &reply.data()["post"];
    let instant = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(post[field].as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    assert_eq!(
        instant("createdAt"),
        "2024-01-07T12:01:44.536800Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(
        instant("updatedAt"),
        "2024-01-07T13:01:44.536800Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(post["author"]["name"], "박 Chloé");
}

#[tokio::test]
async fn an_invalid_dump_reports_all_six_problems_and_writes_nothing() {
    let database = TestDatabase::migrated().await;
    let before = snapshot(&database).await;

    let run = import_fixture(&database, INVALID, &[]);

    assert!(!run.success, "{run:?}");
    let expected = [
        ("user \"user1@icloud.com\", field email:", "not-an-email"),
        (
            "user \"user2@naver.com\", field picture:",
            "http or https URL",
        ),
        (
            "post \"post_0cb1e29c658c\", field title:",
            "at most 200 characters, got 201",
        ),
        (
            "post \"post_1a61dbe22e44\", field created_at:",
            "\"yesterday\"",
        ),
        (
            "post \"post_1fb17c2390c1\", field author_email:",
            "nobody@nowhere.example",
        ),
        (
            "post \"post_8a6a63ec24ed\", field content:",
            "only whitespace",
        ),
    ];
    let problems: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("problems (6):"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .collect();
    assert_eq!(problems.len(), expected.len(), "{run:?}");
    for ((record, reason), line) in expected.iter().zip(&problems) {
        assert!(line.trim_start().starts_with(record), "{line}");
        assert!(line.contains(reason), "{line}");
    }
    assert!(
        run.stderr
            .contains("6 problems in the dump: nothing was written"),
        "{run:?}"
    );
    assert_eq!(snapshot(&database).await, before);
}

#[tokio::test]
async fn a_truncated_dump_names_the_line_and_column_and_writes_nothing() {
    let database = TestDatabase::migrated().await;
    let before = snapshot(&database).await;
    let bytes = std::fs::read(fixture_path(TRUNCATED)).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let last_line = text.rsplit('\n').next().unwrap();
    let position = format!(
        "line {}, column {}",
        text.lines().count(),
        last_line.chars().count()
    );

    let run = import_fixture(&database, TRUNCATED, &[]);

    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("not valid JSON"), "{run:?}");
    assert!(run.stderr.contains(&position), "{position}: {run:?}");
    assert_eq!(snapshot(&database).await, before);
}

#[tokio::test]
async fn skip_invalid_imports_the_valid_records_and_lists_the_rest() {
    let database = TestDatabase::migrated().await;

    let run = import_fixture(&database, INVALID, &["--skip-invalid"]);

    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains("skipped (9):"), "{run:?}");
    // The posts of the two skipped users are skipped with them, saying why.
    for post in [
        "post_6d76b07e881e",
        "post_cb5c74273f98",
        "post_d17f9acae01f",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|line| line.contains(post) && line.contains("is skipped")),
            "{post}: {run:?}"
        );
    }
    assert!(
        run.stdout.contains(
            "users: 6 read, 4 imported, 0 updated, 0 unchanged, 0 conflicting, 2 skipped"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "posts: 17 read, 10 imported, 0 updated, 0 unchanged, 0 conflicting, 7 skipped"
        ),
        "{run:?}"
    );
    let users = stored_users(&database).await;
    assert!(!users.contains_key("apple_798935572") && !users.contains_key("naver_201071364"));
    assert_eq!(users.len(), 4);
    let posts = stored_posts(&database).await;
    assert_eq!(posts.len(), 10);
    for skipped in [
        "post_0cb1e29c658c",
        "post_1a61dbe22e44",
        "post_1fb17c2390c1",
        "post_cb5c74273f98",
    ] {
        assert!(!posts.contains_key(skipped), "{skipped}");
    }
    assert_eq!(count(&database, "identities").await, 4);
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let database = TestDatabase::migrated().await;
    let before = snapshot(&database).await;

    let run = import_fixture(&database, SAMPLE, &["--dry-run"]);

    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains("dry run"), "{run:?}");
    assert!(
        run.stdout.contains("posts: 17 read, 17 imported"),
        "{run:?}"
    );
    assert_eq!(snapshot(&database).await, before);

    let invalid = import_fixture(&database, INVALID, &["--dry-run", "--skip-invalid"]);
    assert!(invalid.success, "{invalid:?}");
    assert!(
        invalid.stdout.contains("posts: 17 read, 10 imported"),
        "{invalid:?}"
    );
    assert_eq!(snapshot(&database).await, before);
}

#[tokio::test]
async fn importing_the_same_dump_twice_changes_nothing_the_second_time() {
    let database = database_away_from_utc().await;
    assert!(import_fixture(&database, SAMPLE, &[]).success);
    let first = snapshot(&database).await;

    // The second time from standard input, as `-` reads it.
    let bytes = std::fs::read(fixture_path(SAMPLE)).unwrap();
    let run = import(&database, &["-"], Some(&bytes));

    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("users: 6 read, 0 imported, 0 updated, 6 unchanged"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("posts: 17 read, 0 imported, 0 updated, 17 unchanged"),
        "{run:?}"
    );
    assert!(run.stdout.contains("nothing changed"), "{run:?}");
    assert_eq!(snapshot(&database).await, first);
}

/// The sample with user0's name and one post's title changed, and one post added.
fn edited_sample() -> Value {
    let mut dump = fixture(SAMPLE);
    dump["users"]["user0@gmail.com"]["name"] = "Renamed in the old service".into();
    dump["posts"]["post_6bf46c697d2c"]["title"] = "Edited in the old service".into();
    let mut added = dump["posts"]["post_6bf46c697d2c"].clone();
    added["id"] = "post_added000001".into();
    dump["posts"]["post_added000001"] = added;
    dump
}

#[tokio::test]
async fn records_stored_differently_are_conflicts_left_as_they_are() {
    let database = TestDatabase::migrated().await;
    assert!(import_fixture(&database, SAMPLE, &[]).success);
    let stored_before = stored_posts(&database).await;
    let edited = serde_json::to_vec(&edited_sample()).unwrap();

    let run = import(&database, &["-"], Some(&edited));

    assert!(!run.success, "{run:?}");
    assert!(run.stdout.contains("conflicts (2):"), "{run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|line| line.contains("user \"user0@gmail.com\"") && line.contains("name")),
        "{run:?}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|line| line.contains("post \"post_6bf46c697d2c\"") && line.contains("title")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("2 records conflict with the database"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("posts: 18 read, 1 imported, 0 updated, 16 unchanged, 1 conflicting"),
        "{run:?}"
    );
    let users = stored_users(&database).await;
    assert_eq!(users["google_447712782"][1].as_deref(), Some("박 Chloé"));
    let posts = stored_posts(&database).await;
    assert_eq!(
        posts["post_6bf46c697d2c"],
        stored_before["post_6bf46c697d2c"]
    );
    assert!(posts.contains_key("post_added000001"));
}

#[tokio::test]
async fn an_address_taken_by_another_stored_user_is_a_conflict_and_so_are_its_posts() {
    let app = TestApp::new().await;
    // Uniqueness ignores case: this account owns user0's address.
    let owner = app.create_user("USER0").await;
    app.database
        .admin_client()
        .await
        .execute(
            "UPDATE users SET email = 'USER0@gmail.com' WHERE id = $1",
            &[&owner.id.as_str()],
        )
        .await
        .unwrap();

    let run = import_fixture(&app.database, SAMPLE, &[]);

    assert!(!run.success, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|line| line.contains("user \"user0@gmail.com\"")
                && line.contains(owner.id.as_str())),
        "{run:?}"
    );
    // user0's posts cannot be written without their author.
    let dump = fixture(SAMPLE);
    let posts_of_user0 = dump["posts"]
        .as_object()
        .unwrap()
        .values()
        .filter(|post| post["author_email"] == "user0@gmail.com")
        .count();
    assert!(posts_of_user0 > 0);
    assert!(
        run.stdout
            .contains("users: 6 read, 5 imported, 0 updated, 0 unchanged, 1 conflicting"),
        "{run:?}"
    );
    let posts = format!(
        "posts: 17 read, {} imported, 0 updated, 0 unchanged, {posts_of_user0} conflicting",
        17 - posts_of_user0
    );
    assert!(run.stdout.contains(&posts), "{posts}: {run:?}");
    assert_eq!(count(&app.database, "users").await, 6);
}

#[tokio::test]
async fn update_existing_overwrites_records_stored_differently() {
    let database = TestDatabase::migrated().await;
    assert!(import_fixture(&database, SAMPLE, &[]).success);
    let created_before = stored_users(&database).await["google_447712782"][6].clone();
    let edited = serde_json::to_vec(&edited_sample()).unwrap();

    let run = import(&database, &["-", "--update-existing"], Some(&edited));

    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("users: 6 read, 0 imported, 1 updated, 5 unchanged, 0 conflicting"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("posts: 18 read, 1 imported, 1 updated, 16 unchanged, 0 conflicting"),
        "{run:?}"
    );
    let user = &stored_users(&database).await["google_447712782"];
    assert_eq!(user[1].as_deref(), Some("Renamed in the old service"));
    // The dump does not know when user0 was created: the stored date stands.
    assert_eq!(user[6], created_before);
    let posts = stored_posts(&database).await;
    assert_eq!(posts["post_6bf46c697d2c"][0], "Edited in the old service");
    assert_eq!(
        posts["post_6bf46c697d2c"][3],
        as_stored("2024-01-07T12:01:57.700675Z")
    );

    let again = import(&database, &["-", "--update-existing"], Some(&edited));
    assert!(again.stdout.contains("nothing changed"), "{again:?}");
}

#[tokio::test]
async fn a_failure_in_the_middle_of_the_write_leaves_the_database_as_it_was() {
    let app = TestApp::new().await;
    let author = app.signed_in("resident").await;
    author
        .create_post("Already here", "Written before the import")
        .await;
    // The database refuses one post, after every user and identity was written.
    app.database
        .admin_client()
        .await
        .batch_execute(
            "CREATE FUNCTION refuse_emoji_post() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.id = 'post_emoji000001' THEN
                     RAISE EXCEPTION 'refused by the test';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_emoji_post BEFORE INSERT ON posts
                 FOR EACH ROW EXECUTE FUNCTION refuse_emoji_post();",
        )
        .await
        .unwrap();
    let before = snapshot(&app.database).await;

    let run = import_fixture(&app.database, SAMPLE, &[]);

    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("inserting posts"), "{run:?}");
    assert!(run.stderr.contains("refused by the test"), "{run:?}");
    assert_eq!(snapshot(&app.database).await, before);
    assert_eq!(count(&app.database, "users").await, 1);
}

//! `festapi seed`: synthetic users and posts, identical for identical arguments, of the promised
//! sizes, refused on a database with content, and served by the API like any other rows.

use std::process::{Command, Stdio};

use festapi::domain::seed::{self, EPOCH, SeedRequest};
use serde_json::json;

use crate::support::{TestApp, TestDatabase};

/// What one run of the command printed and how it ended.
#[derive(Debug)]
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `festapi seed ARGS` against `database`, in a time zone far from UTC.
fn seed_command(database: &TestDatabase, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_festapi"))
        .arg("seed")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &database.url)
        .env("TZ", "Asia/Seoul")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("the festapi binary runs");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every row of the tables a seed writes, as text, in a stable order.
async fn snapshot(database: &TestDatabase) -> Vec<String> {
    let client = database.admin_client().await;
    client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let mut tables = Vec::new();
    for table in ["users", "identities", "posts"] {
        let statement = format!(
            "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {table} t"
        );
        let rows: String = client.query_one(&statement, &[]).await.unwrap().get(0);
        tables.push(format!("{table}:\n{rows}"));
    }
    tables
}

#[tokio::test]
async fn the_same_seed_gives_identical_rows_and_another_seed_other_rows() {
    let (first, second, other) = tokio::join!(
        TestDatabase::migrated(),
        TestDatabase::migrated(),
        TestDatabase::migrated()
    );
    for (database, seed) in [(&first, "7"), (&second, "7"), (&other, "8")] {
        let run = seed_command(
            database,
            &["--users", "40", "--posts", "300", "--seed", seed],
        );
        assert!(run.success, "{run:?}");
    }

    let first = snapshot(&first).await;
    assert_eq!(first, snapshot(&second).await);
    let other = snapshot(&other).await;
    for (table, (mine, theirs)) in ["users", "identities", "posts"]
        .iter()
        .zip(first.iter().zip(&other))
    {
        assert_ne!(mine, theirs, "{table} should differ under another seed");
    }
}

#[tokio::test]
async fn a_seed_writes_the_counts_asked_with_realistic_sizes_and_an_identity_per_user() {
    // A database that does not exist yet: the command creates and migrates it first.
    let database = TestDatabase::unused();

    let run = seed_command(&database, &["--users", "25", "--posts", "1000"]);

    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("seeded 25 users (each with a sign-in identity) and 1000 posts"),
        "{run:?}"
    );
    let client = database.admin_client().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts), \
                    (SELECT count(DISTINCT author_id) FROM posts), \
                    (SELECT min(char_length(title)) FROM posts), \
                    (SELECT max(char_length(title)) FROM posts), \
                    (SELECT min(char_length(content)) FROM posts), \
                    (SELECT max(char_length(content)) FROM posts), \
                    (SELECT count(*) FROM users JOIN identities ON identities.user_id = users.id \
                       AND identities.provider = users.provider \
                       AND identities.subject = users.provider_id), \
                    (SELECT count(*) FROM posts JOIN users ON users.id = posts.author_id \
                       WHERE posts.created_at < users.created_at), \
                    (SELECT (extract(epoch FROM max(created_at)) * 1e6)::bigint FROM posts), \
                    (SELECT (extract(epoch FROM min(created_at)) * 1e6)::bigint FROM posts)",
            &[],
        )
        .await
        .unwrap();
    let count = |index: usize| row.get::<_, i64>(index);
    let chars = |index: usize| row.get::<_, i32>(index);
    assert_eq!((count(0), count(1)), (25, 1000));
    assert!(count(2) >= 20, "posts spread over authors: {}", count(2));
    assert!(
        chars(3) >= 20 && chars(4) <= 80,
        "titles {}..{}",
        chars(3),
        chars(4)
    );
    assert!(
        chars(5) >= 200 && chars(6) <= 2_000,
        "contents {}..{}",
        chars(5),
        chars(6)
    );
    assert!(chars(6) - chars(5) > 1_000, "contents vary in size");
    assert_eq!(
        count(7),
        25,
        "every user signs in through an identity of their own"
    );
    assert_eq!(count(8), 0, "nobody posts before signing up");
    let (newest, oldest) = (count(9), count(10));
    assert!(
        newest < EPOCH.timestamp_micros(),
        "timestamps are counted back from a fixed epoch"
    );
    let days = (newest - oldest) / (24 * 3600 * 1_000_000);
    assert!(days > 300, "posts spread over a year, not {days} days");
}

#[tokio::test]
async fn a_database_with_users_or_posts_is_refused_unless_forced() {
    let app = TestApp::new().await;
    let author = app.signed_in("existing").await;
    author
        .create_post("Already here", "Written before any seed")
        .await;
    let before = snapshot(&app.database).await;

    let refused = seed_command(&app.database, &["--users", "5", "--posts", "20"]);

    assert!(!refused.success, "{refused:?}");
    assert!(
        refused.stderr.contains(
            "the database already holds 1 users and 1 posts; seed an empty database, or pass \
             --force"
        ),
        "{refused:?}"
    );
    assert_eq!(snapshot(&app.database).await, before, "nothing was written");

    let forced = seed_command(&app.database, &["--users", "5", "--posts", "20", "--force"]);

    assert!(forced.success, "{forced:?}");
    assert!(
        forced.stdout.contains("deleted 1 users and 1 posts first"),
        "{forced:?}"
    );
    let client = app.database.admin_client().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts), \
                    (SELECT count(*) FROM sessions)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (5, 20, 0)
    );
}

#[tokio::test]
async fn sizes_out_of_range_are_refused_with_the_argument_named() {
    let database = TestDatabase::unused();
    for (args, message) in [
        (
            ["--users", "0", "--posts", "10"],
            "--users must be between 1 and 1,000,000, got 0",
        ),
        (
            ["--users", "-5", "--posts", "10"],
            "--users must be between 1 and 1,000,000, got -5",
        ),
        (
            ["--users", "10", "--posts", "0"],
            "--posts must be between 1 and 1,000,000, got 0",
        ),
        (
            ["--users", "10", "--posts", "5000000"],
            "--posts must be between 1 and 1,000,000, got 5000000",
        ),
        (
            ["--users", "10", "--posts", "many"],
            "invalid value 'many' for '--posts <M>'",
        ),
    ] {
        let run = seed_command(&database, &args);
        assert!(!run.success, "{args:?}: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {run:?}");
    }
    // Refused before any database was created.
    let exists: bool = crate::support::database::admin_client()
        .await
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)",
            &[&database.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!exists);
}

#[tokio::test]
async fn the_api_serves_the_seeded_newest_posts_with_their_authors() {
    let database = TestDatabase::migrated().await;
    let run = seed_command(
        &database,
        &["--users", "30", "--posts", "500", "--seed", "42"],
    );
    assert!(run.success, "{run:?}");
    let app = TestApp::on_database(database).await;

    let reply = app
        .anonymous()
        .graphql(
            "{ posts(first: 20) { edges { node { id title content createdAt \
               author { id name } } } } }",
            json!({}),
        )
        .await;

    let request = SeedRequest::new(30, 500, 42).unwrap();
    let users = seed::users(&request);
    let mut expected: Vec<_> = seed::posts(&request)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(20)
        .map(|post| {
            let author = &users[post.author];
            json!({
                "id": post.id.as_str(),
                "title": post.title,
                "content": post.content,
                "createdAt": post.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "author": { "id": author.id.as_str(), "name": author.name },
            })
        })
        .collect();
    let served: Vec<_> = reply.data()["posts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    assert_eq!(served.len(), 20);
    // Timestamps are compared as instants: the API may write them in another form.
    for (served, expected) in served.iter().zip(expected.iter_mut()) {
        let instant = |value: &serde_json::Value| {
            chrono::DateTime::parse_from_rfc3339(value["createdAt"].as_str().unwrap()).unwrap()
        };
        assert_eq!(instant(served), instant(expected));
        expected["createdAt"] = served["createdAt"].clone();
    }
    assert_eq!(served, expected);
}

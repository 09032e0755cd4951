//! The `festapi` binary, run as operators and containers run it.

use std::process::{Command, Output};

use serde_json::json;

use crate::support::{TestApp, TestDatabase};

fn festapi(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_festapi"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    // No .env file of the developer's may leak in.
    command.current_dir(std::env::temp_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the festapi binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn schema_command_prints_the_sdl() {
    let output = festapi(&["schema"], &[]);

    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        festapi::graphql::sdl()
    );
}

#[test]
fn bad_configuration_stops_start_up_with_one_line() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("DATABASE_POOL_SIZE", "lots")], "DATABASE_POOL_SIZE"),
        (&[("DATABASE_URL", "not a url")], "DATABASE_URL"),
        (&[("APP_ENV", "production")], "JWT_SECRET"),
        (&[("JWT_SECRET", "too-short")], "JWT_SECRET"),
    ];
    for (env, variable) in cases {
        let output = festapi(&["serve"], env);
        let message = stderr(&output);
        assert!(!output.status.success(), "{env:?}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message.starts_with("error: invalid configuration: "),
            "{message}"
        );
        assert!(message.contains(variable), "{message}");
    }
}

#[tokio::test]
async fn token_issue_creates_the_database_and_a_working_token() {
    let database = TestDatabase::unused();
    let url = database.url.clone();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("APP_ENV", "test"),
        ("JWT_SECRET", crate::support::TEST_JWT_SECRET),
    ];

    let output = festapi(
        &[
            "token",
            "issue",
            "--email",
            "Grace@Example.com",
            "--name",
            "Grace Hopper",
        ],
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let again = festapi(&["token", "issue", "--email", "grace@example.com"], &env);
    assert!(again.status.success(), "{}", stderr(&again));

    let status = festapi(&["migrate", "status"], &env);
    let listing = String::from_utf8(status.stdout).unwrap();
    assert!(
        listing.lines().count() >= 3 && listing.lines().all(|line| line.starts_with("applied ")),
        "{listing}"
    );

    let app = TestApp::on_database(database).await;
    let reply = app
        .with_token(&token)
        .graphql("{ me { name email } }", json!({}))
        .await;
    assert_eq!(
        reply.data()["me"],
        json!({ "name": "Grace Hopper", "email": "Grace@Example.com" })
    );
    let users = app
        .with_token(&token)
        .graphql("{ users { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(users.data()["users"]["edges"].as_array().unwrap().len(), 1);

    let bad_email = festapi(&["token", "issue", "--email", "not-an-address"], &env);
    assert!(!bad_email.status.success());
    assert!(
        stderr(&bad_email).contains("email"),
        "{}",
        stderr(&bad_email)
    );
}

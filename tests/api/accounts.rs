//! Accounts and identities: a person is (provider, subject), accounts are never joined by
//! e-mail, and sign-ins refresh what the user did not set themselves.

use std::net::IpAddr;

use festapi::AppError;
use festapi::auth::providers::Profile;
use festapi::config::ProviderName;
use festapi::db::migrations;
use festapi::db::models::UserRow;
use festapi::domain::accounts;
use festapi::domain::sign_in::{self, Client};
use festapi::domain::users::{self, Patch};
use tokio_postgres::NoTls;

use crate::support::{TestApp, TestDatabase};

fn profile(subject: &str, email: &str, name: &str) -> Profile {
    Profile {
        subject: subject.into(),
        email: Some(email.into()),
        email_verified: true,
        name: Some(name.into()),
        picture: Some(format!("https://pictures.example.test/{subject}.png")),
    }
}

async fn sign_in(
    app: &TestApp,
    provider: ProviderName,
    profile: Profile,
) -> Result<UserRow, AppError> {
    accounts::sign_in(&app.state.database, provider, &profile)
        .await
        .map(|account| account.user)
}

/// Ada's first sign-in, through Google.
async fn ada_at_google(app: &TestApp) -> UserRow {
    sign_in(
        app,
        ProviderName::Google,
        profile("g-1", "ada@example.test", "Ada"),
    )
    .await
    .unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let client = app.database.admin_client().await;
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_first_sign_in_creates_the_account_and_its_identity() {
    let app = TestApp::new().await;

    let user = ada_at_google(&app).await;

    assert_eq!(user.id.as_str(), "google_g-1");
    assert_eq!(user.email.as_deref(), Some("ada@example.test"));
    assert_eq!(user.name, "Ada");
    assert!(user.verified_email);
    assert_eq!(
        user.picture.as_deref(),
        Some("https://pictures.example.test/g-1.png")
    );
    let again = ada_at_google(&app).await;
    assert_eq!(again.id, user.id);
    assert_eq!(count(&app, "users").await, 1);
    assert_eq!(count(&app, "identities").await, 1);
}

#[tokio::test]
async fn a_new_identity_with_a_taken_address_is_refused_and_creates_nothing() {
    let app = TestApp::new().await;
    ada_at_google(&app).await;

    // Same address, other provider, other person as far as we can know.
    let error = sign_in(
        &app,
        ProviderName::Kakao,
        profile("k-9", "ADA@example.test", "Mallory"),
    )
    .await
    .unwrap_err();

    assert_eq!(error.code(), "ACCOUNT_EXISTS");
    assert!(matches!(&error, AppError::AccountExists { provider } if provider == "google"));
    assert_eq!(count(&app, "users").await, 1);
    assert_eq!(count(&app, "identities").await, 1);
}

#[tokio::test]
async fn a_linked_identity_signs_in_to_the_same_account() {
    let app = TestApp::new().await;
    let database = &app.state.database;
    let user = ada_at_google(&app).await;

    accounts::link(
        database,
        &user.id,
        ProviderName::Kakao,
        &profile("k-1", "ada@example.test", "Ada"),
    )
    .await
    .unwrap();
    let through_kakao = sign_in(
        &app,
        ProviderName::Kakao,
        profile("k-1", "ada@example.test", "Ada"),
    )
    .await
    .unwrap();

    assert_eq!(through_kakao.id, user.id);
    assert_eq!(count(&app, "identities").await, 2);

    // An identity that signs in to one account cannot be linked to another.
    let other = app.create_user("bob").await;
    let error = accounts::link(
        database,
        &other.id,
        ProviderName::Kakao,
        &profile("k-1", "x@example.test", "X"),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "FORBIDDEN");
}

#[tokio::test]
async fn sign_ins_refresh_the_profile_but_not_what_the_user_set() {
    let app = TestApp::new().await;
    let database = &app.state.database;
    let user = ada_at_google(&app).await;

    let mut changed = profile("g-1", "ada@example.test", "Ada Lovelace");
    changed.picture = Some("https://pictures.example.test/new.png".into());
    let refreshed = sign_in(&app, ProviderName::Google, changed).await.unwrap();
    assert_eq!(refreshed.name, "Ada Lovelace");
    assert_eq!(
        refreshed.picture.as_deref(),
        Some("https://pictures.example.test/new.png")
    );

    users::update_profile(database, &user.id, Some("Countess"), Patch::Clear)
        .await
        .unwrap();
    let after_edit = sign_in(
        &app,
        ProviderName::Google,
        profile("g-1", "ada@example.test", "Ada L."),
    )
    .await
    .unwrap();
    assert_eq!(after_edit.name, "Countess");
    assert_eq!(after_edit.picture, None);
}

#[tokio::test]
async fn accounts_issued_by_the_command_line_have_their_own_identity() {
    let app = TestApp::new().await;
    let user = app.create_user("carol").await;
    assert_eq!(count(&app, "identities").await, 1);
    let client = app.database.admin_client().await;
    let row = client
        .query_one("SELECT user_id, provider FROM identities", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), user.id.as_str());
    assert_eq!(row.get::<_, String>(1), "festapi");
}

/// Reverts migrations, newest first, up to and including `name`.
async fn revert_until(database: &TestDatabase, name: &str) {
    for _ in 0..20 {
        let reverted = migrations::revert_last(&database.url).await.unwrap();
        assert!(reverted.is_some(), "{name} was never applied");
        if reverted.as_deref() == Some(name) {
            return;
        }
    }
    panic!("{name} is not among the last 20 migrations");
}

#[tokio::test]
async fn existing_users_get_their_identity_when_the_identities_migration_runs() {
    let database = TestDatabase::migrated().await;
    revert_until(
        &database,
        "2026-11-25-130000_create_identities_and_auth_flows",
    )
    .await;
    let (client, connection) = tokio_postgres::connect(&database.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "INSERT INTO users (id, email, name, provider, provider_id) \
             VALUES ('google_42', 'old@example.test', 'Old Timer', 'google', '42')",
        )
        .await
        .unwrap();

    migrations::run_pending(&database.url).await.unwrap();

    let row = client
        .query_one(
            "SELECT user_id, provider, subject, email FROM identities",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "google_42");
    assert_eq!(row.get::<_, String>(1), "google");
    assert_eq!(row.get::<_, String>(2), "42");
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some("old@example.test")
    );
    drop(client);

    // The migrated identity signs in to the old account.
    let app = TestApp::on_database(database).await;
    let user = sign_in(
        &app,
        ProviderName::Google,
        profile("42", "old@example.test", "Old Timer"),
    )
    .await
    .unwrap();
    assert_eq!(user.id.as_str(), "google_42");
}

#[tokio::test]
async fn signing_in_starts_a_session_of_the_identity_from_the_client() {
    let app = TestApp::new().await;
    let client = Client {
        user_agent: Some("Mozilla/5.0 (festapi test)"),
        ip: Some(IpAddr::from([192, 0, 2, 7])),
    };
    let ada = profile("g-1", "ada@example.test", "Ada");

    let first = sign_in::sign_in(
        &app.state.database,
        &app.state.tokens,
        ProviderName::Google,
        &ada,
        &client,
    )
    .await
    .unwrap();
    let second = sign_in::sign_in(
        &app.state.database,
        &app.state.tokens,
        ProviderName::Google,
        &ada,
        &Client::default(),
    )
    .await
    .unwrap();

    assert_eq!(first.user.id.as_str(), "google_g-1");
    assert_eq!(second.user.id, first.user.id);
    assert_ne!(second.session_id, first.session_id);
    let database = app.database.admin_client().await;
    let row = database
        .query_one(
            "SELECT s.provider, s.user_agent, host(s.ip), i.subject FROM sessions s \
             JOIN identities i ON i.id = s.identity_id WHERE s.id = $1",
            &[&first.session_id.as_str()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "google");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("Mozilla/5.0 (festapi test)")
    );
    assert_eq!(row.get::<_, String>(2), "192.0.2.7");
    assert_eq!(row.get::<_, String>(3), "g-1");
}

#[tokio::test]
async fn a_refused_sign_in_starts_no_session() {
    let app = TestApp::new().await;
    ada_at_google(&app).await;

    let error = sign_in::sign_in(
        &app.state.database,
        &app.state.tokens,
        ProviderName::Kakao,
        &profile("k-9", "ada@example.test", "Mallory"),
        &Client::default(),
    )
    .await
    .unwrap_err();

    assert_eq!(error.code(), "ACCOUNT_EXISTS");
    assert_eq!(count(&app, "sessions").await, 0);
    assert_eq!(count(&app, "identities").await, 1);
}

#[tokio::test]
async fn an_operators_account_names_a_provider_it_was_linked_to_once_it_has_one() {
    let app = TestApp::new().await;
    let ada = app.create_user("ada").await;
    let refused = sign_in(
        &app,
        ProviderName::Google,
        profile("g-1", "ada@example.test", "Ada"),
    )
    .await
    .unwrap_err();
    assert!(matches!(&refused, AppError::AccountExists { provider } if provider == "festapi"));
    accounts::link(
        &app.state.database,
        &ada.id,
        ProviderName::Google,
        &profile("g-1", "ada@example.test", "Ada"),
    )
    .await
    .unwrap();

    let error = sign_in(
        &app,
        ProviderName::Kakao,
        profile("k-1", "ada@example.test", "Ada"),
    )
    .await
    .unwrap_err();

    // Google, which the person can sign in with; not the operator's `festapi`.
    assert!(matches!(&error, AppError::AccountExists { provider } if provider == "google"));
}

#[tokio::test]
async fn an_identity_without_an_address_gets_an_account_without_one() {
    let app = TestApp::new().await;
    ada_at_google(&app).await;
    let without_address = Profile {
        email: None,
        // Claimed, but there is no address to have verified.
        email_verified: true,
        name: None,
        ..profile("k-1", "unused@example.test", "unused")
    };

    let user = sign_in(&app, ProviderName::Kakao, without_address.clone())
        .await
        .unwrap();

    assert_eq!(user.email, None);
    assert!(!user.verified_email);
    // No name and no address to take one from: the provider's name stands in.
    assert_eq!(user.name, "kakao");
    let again = sign_in(&app, ProviderName::Kakao, without_address)
        .await
        .unwrap();
    assert_eq!(again.id, user.id);
    assert_eq!(count(&app, "users").await, 2);
    // The account's address stays empty; the identity records what each sign-in gave.
    let client = app.database.admin_client().await;
    let recorded: Option<String> = client
        .query_one("SELECT email FROM identities WHERE provider = 'kakao'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, None);
}

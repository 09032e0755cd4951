//! Sessions: refresh-token rotation and reuse detection, logout, logoutAll, mySessions,
//! endSession and the purge, seen over HTTP and from other server instances.

use festapi::auth::refresh_tokens::hash_presented;
use festapi::db::sessions::Purged;
use festapi::domain::sessions::{self, SignIn};
use festapi::domain::users::LOCAL_PROVIDER;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, Reply, TEST_USER_AGENT, TestApp};

const REFRESH: &str = "mutation($token: String!) { refreshToken(refreshToken: $token) { \
                       accessToken refreshToken tokenType expiresIn user { id } } }";
const MY_SESSIONS: &str = "{ mySessions { id createdAt lastUsedAt userAgent current } }";

/// Sends `refreshToken` without an access token, as a client whose token expired would.
async fn refresh(app: &TestApp, refresh_token: &str) -> Reply {
    app.anonymous()
        .graphql(REFRESH, json!({ "token": refresh_token }))
        .await
}

/// The payload of a refresh that must succeed.
async fn refreshed(app: &TestApp, refresh_token: &str) -> Value {
    refresh(app, refresh_token).await.data()["refreshToken"].clone()
}

async fn me(app: &TestApp, access_token: &str) -> Reply {
    app.with_token(access_token)
        .graphql("{ me { id } }", json!({}))
        .await
}

/// Asserts `access_token` signs the user of `client` in through `instance`.
async fn assert_accepted(instance: &TestApp, access_token: &str, client: &Client) {
    let reply = me(instance, access_token).await;
    assert_eq!(reply.data()["me"]["id"], client.user_id());
}

fn assert_refused(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:#}", reply.body);
    assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{:#}", reply.body);
}

/// Asserts the only error's message contains `words`.
fn assert_says(reply: &Reply, words: &str) {
    let message = reply.error()["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{:#}", reply.body);
}

/// Asserts a refused `refreshToken`: UNAUTHENTICATED and no data.
fn assert_refresh_refused(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{:#}", reply.body);
    assert_eq!(reply.body["data"], Value::Null, "{:#}", reply.body);
}

/// Runs `sql` on the test database with `parameters`, outside any server.
async fn execute(
    app: &TestApp,
    sql: &str,
    parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) {
    let client = app.database.admin_client().await;
    client.execute(sql, parameters).await.unwrap();
}

/// Makes the session of `client` expire a second ago.
async fn expire(app: &TestApp, client: &Client) {
    execute(
        app,
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        &[&session_id(client)],
    )
    .await;
}

/// How many sessions and refresh tokens are stored, live or not.
async fn stored_rows(app: &TestApp) -> (i64, i64) {
    let client = app.database.admin_client().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM refresh_tokens)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Whether the session `id` has been ended.
async fn is_ended(app: &TestApp, id: &str) -> bool {
    let client = app.database.admin_client().await;
    client
        .query_one(
            "SELECT ended_at IS NOT NULL FROM sessions WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

fn access_token(client: &Client) -> &str {
    client.token.as_deref().unwrap()
}

fn refresh_token(client: &Client) -> &str {
    client.refresh_token.as_deref().unwrap()
}

fn session_id(client: &Client) -> &str {
    client.session_id.as_deref().unwrap()
}

/// Another session of the user `client` is signed in as.
async fn another_session(app: &TestApp, client: &Client) -> Client {
    let user = client.user.clone().unwrap();
    app.client_of(app.start_session(user).await)
}

#[tokio::test]
async fn refresh_hands_out_new_tokens_and_extends_the_session() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    execute(
        &app,
        "UPDATE sessions SET expires_at = now() + interval '1 hour', \
         last_used_at = now() - interval '1 day' WHERE id = $1",
        &[&session_id(&alice)],
    )
    .await;

    let payload = refreshed(&app, refresh_token(&alice)).await;

    assert_eq!(payload["tokenType"], "Bearer");
    assert_eq!(payload["expiresIn"], 900);
    assert_eq!(payload["user"]["id"], alice.user_id());
    let access = payload["accessToken"].as_str().unwrap();
    let next_refresh = payload["refreshToken"].as_str().unwrap();
    assert_ne!(access, access_token(&alice));
    assert_ne!(next_refresh, refresh_token(&alice));
    assert_accepted(&app, access, &alice).await;
    // The access tokens handed out before stay valid: the session is the same one.
    assert_accepted(&app, access_token(&alice), &alice).await;
    let listed = app
        .with_token(access)
        .graphql("{ mySessions { id current } }", json!({}))
        .await;
    assert_eq!(
        listed.data()["mySessions"],
        json!([{ "id": session_id(&alice), "current": true }])
    );
    let client = app.database.admin_client().await;
    let extended: bool = client
        .query_one(
            "SELECT expires_at > now() + interval '13 days' \
               AND last_used_at > now() - interval '1 minute' FROM sessions WHERE id = $1",
            &[&session_id(&alice)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(extended, "a refresh extends the session and notes its use");

    // The new refresh token refreshes in turn.
    let again = refreshed(&app, next_refresh).await;
    assert_accepted(&app, again["accessToken"].as_str().unwrap(), &alice).await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_ends_the_session() {
    let app = TestApp::new().await;
    let replica = app.another_instance().await;
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    let stolen = refresh_token(&alice).to_owned();
    let payload = refreshed(&app, &stolen).await;
    let newest_access = payload["accessToken"].as_str().unwrap();
    let newest_refresh = payload["refreshToken"].as_str().unwrap();
    let rows_before = stored_rows(&app).await;

    let reuse = refresh(&replica, &stolen).await;

    assert_refresh_refused(&reuse);
    assert_says(&reuse, "already used");
    assert_eq!(stored_rows(&app).await, rows_before, "nothing was created");
    assert!(is_ended(&app, session_id(&alice)).await);
    for instance in [&app, &replica] {
        assert_refused(&me(instance, access_token(&alice)).await);
        assert_refused(&me(instance, newest_access).await);
    }
    assert_refresh_refused(&refresh(&app, newest_refresh).await);
    assert_refresh_refused(&refresh(&app, &stolen).await);
    assert_eq!(stored_rows(&app).await, rows_before, "nothing was created");
    // Other users' sessions are untouched.
    assert_accepted(&replica, access_token(&bob), &bob).await;
}

#[tokio::test]
async fn of_two_concurrent_refreshes_with_one_token_exactly_one_succeeds() {
    let app = TestApp::new().await;
    let replica = app.another_instance().await;
    let alice = app.signed_in("alice").await;

    let (first, second) = tokio::join!(
        refresh(&app, refresh_token(&alice)),
        refresh(&replica, refresh_token(&alice)),
    );

    let (winner, loser) = if first.body["errors"].is_null() {
        (first, second)
    } else {
        (second, first)
    };
    let payload = &winner.data()["refreshToken"];
    assert_refresh_refused(&loser);
    // The loser presented a token that had just been exchanged: that is reuse, so the session
    // ends, and the winner's tokens with it. Clients refresh once at a time.
    assert!(is_ended(&app, session_id(&alice)).await);
    assert_refused(&me(&app, payload["accessToken"].as_str().unwrap()).await);
    assert_refresh_refused(&refresh(&app, payload["refreshToken"].as_str().unwrap()).await);
    assert_eq!(
        stored_rows(&app).await,
        (1, 2),
        "one session, its two refresh tokens"
    );
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let reply = me(&app, refresh_token(&alice)).await;

    assert_refused(&reply);
    assert!(reply.headers.contains_key("www-authenticate"));
    // The refused attempt cost the session nothing.
    assert!(!is_ended(&app, session_id(&alice)).await);
    refreshed(&app, refresh_token(&alice)).await;
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let rows_before = stored_rows(&app).await;

    for not_a_refresh_token in [
        access_token(&alice).to_owned(),
        session_id(&alice).to_owned(),
        String::new(),
        format!("{}=", refresh_token(&alice)),
        "\0".repeat(43),
    ] {
        let reply = refresh(&app, &not_a_refresh_token).await;
        assert_refresh_refused(&reply);
        assert_says(&reply, "refresh token is invalid");
    }

    assert_eq!(stored_rows(&app).await, rows_before, "nothing was created");
    assert!(!is_ended(&app, session_id(&alice)).await);
    assert_accepted(&app, access_token(&alice), &alice).await;
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let rows_before = stored_rows(&app).await;
    let unknown = festapi::auth::refresh_tokens::RefreshToken::generate()
        .unwrap()
        .token;

    let reply = refresh(&app, &unknown).await;

    assert_refresh_refused(&reply);
    assert_says(&reply, "refresh token is invalid");

    assert_eq!(stored_rows(&app).await, rows_before, "nothing was created");
    assert!(!is_ended(&app, session_id(&alice)).await);
}

#[tokio::test]
async fn an_expired_session_refuses_its_refresh_and_access_tokens() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    expire(&app, &alice).await;
    let rows_before = stored_rows(&app).await;

    let reply = refresh(&app, refresh_token(&alice)).await;

    assert_refresh_refused(&reply);
    assert_says(&reply, "ended or expired");
    assert_eq!(stored_rows(&app).await, rows_before, "nothing was created");
    assert_refused(&me(&app, access_token(&alice)).await);
}

#[tokio::test]
async fn logout_ends_the_session_on_every_instance_and_only_that_one() {
    let app = TestApp::new().await;
    let replica = app.another_instance().await;
    let alice = app.signed_in("alice").await;
    let alice_elsewhere = another_session(&app, &alice).await;
    assert_accepted(&replica, access_token(&alice), &alice).await;

    let reply = alice.graphql("mutation { logout }", json!({})).await;
    assert_eq!(reply.data()["logout"], true);

    for instance in [&app, &replica] {
        assert_refused(&me(instance, access_token(&alice)).await);
        let again = instance
            .with_token(access_token(&alice))
            .graphql("mutation { logout }", json!({}))
            .await;
        assert_refused(&again);
    }
    let rows_before = stored_rows(&app).await;
    assert_refresh_refused(&refresh(&replica, refresh_token(&alice)).await);
    assert_eq!(stored_rows(&app).await, rows_before, "nothing was created");
    // The user's other session goes on, tokens and refresh alike.
    assert_accepted(&replica, access_token(&alice_elsewhere), &alice).await;
    refreshed(&replica, refresh_token(&alice_elsewhere)).await;
}

#[tokio::test]
async fn logout_all_ends_every_live_session_of_the_user_on_every_instance() {
    let app = TestApp::new().await;
    let replica = app.another_instance().await;
    let alice = app.signed_in("alice").await;
    let mut alices = vec![another_session(&app, &alice).await];
    alices.push(another_session(&app, &alice).await);
    let logged_out = another_session(&app, &alice).await;
    logged_out.graphql("mutation { logout }", json!({})).await;
    let bob = app.signed_in("bob").await;

    let reply = alice.graphql("mutation { logoutAll }", json!({})).await;

    assert_eq!(reply.data()["logoutAll"], 3);
    alices.push(alice);
    for instance in [&app, &replica] {
        for client in &alices {
            assert_refused(&me(instance, access_token(client)).await);
        }
    }
    for client in &alices {
        assert_refresh_refused(&refresh(&replica, refresh_token(client)).await);
    }
    assert_accepted(&replica, access_token(&bob), &bob).await;
}

#[tokio::test]
async fn my_sessions_lists_live_sessions_newest_first_without_secrets() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let user = alice.user.clone().unwrap();
    let browser = app.client_of(
        app.start_session_as(
            user.clone(),
            &SignIn {
                provider: "google",
                user_agent: Some("  Mozilla/5.0 (X11; Linux)\0 "),
                ip: Some("203.0.113.7".parse().unwrap()),
                ..SignIn::default()
            },
        )
        .await,
    );
    let silent = app.client_of(
        app.start_session_as(
            user.clone(),
            &SignIn {
                provider: LOCAL_PROVIDER,
                ..SignIn::default()
            },
        )
        .await,
    );
    let ended = another_session(&app, &alice).await;
    ended.graphql("mutation { logout }", json!({})).await;
    let expired = another_session(&app, &alice).await;
    expire(&app, &expired).await;
    app.signed_in("bob").await;

    let reply = browser.graphql(MY_SESSIONS, json!({})).await;

    let listed = reply.data()["mySessions"].as_array().unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|session| json!([session["id"], session["userAgent"], session["current"]]))
        .collect();
    assert_eq!(
        summary,
        [
            json!([session_id(&silent), null, false]),
            json!([session_id(&browser), "Mozilla/5.0 (X11; Linux)", true]),
            json!([session_id(&alice), TEST_USER_AGENT, false]),
        ]
    );
    for session in listed {
        assert!(session["createdAt"].is_string() && session["lastUsedAt"].is_string());
    }
    let text = reply.body.to_string();
    for client in [&alice, &browser, &silent] {
        assert!(!text.contains(access_token(client)));
        assert!(!text.contains(refresh_token(client)));
    }
    let secret = browser
        .graphql("{ mySessions { refreshToken } }", json!({}))
        .await;
    assert_eq!(secret.error_code(), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn end_session_ends_the_users_own_sessions_only() {
    let app = TestApp::new().await;
    let replica = app.another_instance().await;
    let alice = app.signed_in("alice").await;
    let alice_phone = another_session(&app, &alice).await;
    let bob = app.signed_in("bob").await;
    const END: &str = "mutation($id: ID!) { endSession(id: $id) }";

    let reply = alice
        .graphql(END, json!({ "id": session_id(&alice_phone) }))
        .await;

    assert_eq!(reply.data()["endSession"], true);
    assert_refused(&me(&replica, access_token(&alice_phone)).await);
    assert_refresh_refused(&refresh(&replica, refresh_token(&alice_phone)).await);
    assert_accepted(&replica, access_token(&alice), &alice).await;

    // Another user's session, an ended one and one that never was are all just not found.
    for id in [session_id(&bob), session_id(&alice_phone), "session_404"] {
        let reply = alice.graphql(END, json!({ "id": id })).await;
        reply.assert_error("NOT_FOUND", None);
        assert_eq!(reply.body["data"], Value::Null);
    }
    assert!(!is_ended(&app, session_id(&bob)).await);
    assert_accepted(&replica, access_token(&bob), &bob).await;

    alice
        .graphql(END, json!({ "id": "" }))
        .await
        .assert_error("BAD_USER_INPUT", Some("id"));

    // Ending the current session is a logout.
    let reply = alice
        .graphql(END, json!({ "id": session_id(&alice) }))
        .await;
    assert_eq!(reply.data()["endSession"], true);
    assert_refused(&me(&replica, access_token(&alice)).await);
}

#[tokio::test]
async fn session_fields_need_a_signed_in_caller() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();

    for (query, variables) in [
        (MY_SESSIONS, json!({})),
        ("mutation { logout }", json!({})),
        ("mutation { logoutAll }", json!({})),
        (
            "mutation($id: ID!) { endSession(id: $id) }",
            json!({ "id": "session_1" }),
        ),
    ] {
        let reply = anonymous.graphql(query, variables).await;
        reply.assert_error("UNAUTHENTICATED", None);
    }
}

#[tokio::test]
async fn purge_removes_ended_and_expired_sessions_and_expired_rotated_tokens() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let first = refreshed(&app, refresh_token(&alice)).await;
    let second = refreshed(&app, first["refreshToken"].as_str().unwrap()).await;
    let long_rotated = hash_presented(first["refreshToken"].as_str().unwrap()).unwrap();
    execute(
        &app,
        "UPDATE refresh_tokens SET created_at = now() - interval '15 days' WHERE hash = $1",
        &[&long_rotated.as_slice()],
    )
    .await;
    let bob = app.signed_in("bob").await;
    bob.graphql("mutation { logout }", json!({})).await;
    let carol = app.signed_in("carol").await;
    expire(&app, &carol).await;
    assert_eq!(stored_rows(&app).await, (3, 5));

    let purged = sessions::purge(&app.state.database, &app.state.tokens)
        .await
        .unwrap();

    assert_eq!(
        purged,
        Purged {
            sessions: 2,
            refresh_tokens: 1
        }
    );
    // Alice's session remains, with its current token and the one rotated recently.
    assert_eq!(stored_rows(&app).await, (1, 2));
    assert_accepted(&app, second["accessToken"].as_str().unwrap(), &alice).await;
    assert_refused(&me(&app, access_token(&bob)).await);
    assert_refused(&me(&app, access_token(&carol)).await);
    assert_eq!(
        sessions::purge(&app.state.database, &app.state.tokens)
            .await
            .unwrap(),
        Purged::default()
    );
}

#[tokio::test]
async fn authentication_is_one_statement_that_notes_use_once_a_minute() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let last_used = async || -> String {
        let client = app.database.admin_client().await;
        client
            .query_one(
                "SELECT last_used_at::text FROM sessions WHERE id = $1",
                &[&session_id(&alice)],
            )
            .await
            .unwrap()
            .get(0)
    };
    execute(
        &app,
        "UPDATE sessions SET last_used_at = now() - interval '2 minutes' WHERE id = $1",
        &[&session_id(&alice)],
    )
    .await;
    let stale = last_used().await;

    let before = app.statements();
    me(&app, access_token(&alice)).await.data();
    assert_eq!(
        app.statements() - before,
        1,
        "a stale note is renewed in the same statement"
    );
    let noted = last_used().await;
    assert!(noted > stale, "{noted} after {stale}");

    let before = app.statements();
    me(&app, access_token(&alice)).await.data();
    assert_eq!(app.statements() - before, 1);
    assert_eq!(last_used().await, noted, "noted at most once a minute");

    alice.graphql("mutation { logout }", json!({})).await.data();
    let before = app.statements();
    assert_refused(&me(&app, access_token(&alice)).await);
    assert_eq!(
        app.statements() - before,
        1,
        "an ended session is refused in one statement"
    );
}

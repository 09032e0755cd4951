//! Arguments no row could hold are the client's mistake: BAD_USER_INPUT naming the argument,
//! refused before any query runs, with nothing written and nothing logged as an error.

use serde_json::{Value, json};

use crate::support::{Client, ErrorLog, TestApp};

/// Sends `query` and checks it was refused as BAD_USER_INPUT on `field` without a statement
/// beyond the one that opens a signed-in session.
async fn assert_refused(
    app: &TestApp,
    client: &Client,
    query: &str,
    variables: Value,
    field: &str,
) {
    let session_lookups = u64::from(client.token.is_some());
    let before = app.statements();

    let reply = client.graphql(query, variables.clone()).await;

    reply.assert_error("BAD_USER_INPUT", Some(field));
    assert_eq!(
        app.statements() - before,
        session_lookups,
        "{query} with {variables} reached the database"
    );
}

/// Every post's id and title, as stored.
async fn stored_posts(app: &TestApp) -> Value {
    let reply = app
        .anonymous()
        .graphql(
            "{ posts(first: 100) { edges { node { id title content } } } }",
            json!({}),
        )
        .await;
    reply.data()["posts"]["edges"].clone()
}

#[tokio::test]
async fn ids_no_row_could_have_are_bad_input_naming_the_argument() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    alice.create_post("Kept", "as it was").await;
    let stored = stored_posts(&app).await;
    let errors = ErrorLog::capture();
    let anonymous = app.anonymous();

    let too_long = "p".repeat(256);
    for id in [
        "",
        "post_\u{0}",
        "post_\u{1b}[0m",
        "post_\u{85}",
        too_long.as_str(),
    ] {
        let id = json!(id);
        for (client, query, field) in [
            (&anonymous, "query($id: ID!) { post(id: $id) { id } }", "id"),
            (
                &anonymous,
                "query($id: ID) { posts(authorId: $id) { edges { cursor } } }",
                "authorId",
            ),
            (&alice, "query($id: ID) { user(id: $id) { id } }", "id"),
            (
                &alice,
                "mutation($id: ID!) { updatePost(id: $id, input: { title: \"Changed\" }) { id } }",
                "id",
            ),
            (&alice, "mutation($id: ID!) { deletePost(id: $id) }", "id"),
        ] {
            assert_refused(&app, client, query, json!({ "id": id }), field).await;
        }
    }

    // 255 characters could be an id: it names no post, which is no error.
    let longest = "p".repeat(255);
    let reply = anonymous
        .graphql(
            "query($id: ID!) { post(id: $id) { id } }",
            json!({ "id": longest }),
        )
        .await;
    assert_eq!(reply.data()["post"], json!(null));
    assert_eq!(stored_posts(&app).await, stored);
    assert_eq!(errors.count(), 0, "an ERROR was logged");
}

//! The signed-in user, user lookups and profile changes.

use serde_json::json;

use crate::support::{Client, Reply, TestApp};

async fn update_me(client: &Client, input: serde_json::Value) -> Reply {
    client
        .graphql(
            "mutation($input: UpdateMeInput!) { updateMe(input: $input) { name picture } }",
            json!({ "input": input }),
        )
        .await
}

#[tokio::test]
async fn me_is_the_signed_in_user() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let reply = alice
        .graphql(
            "{ me { id email name picture verifiedEmail provider createdAt updatedAt } }",
            json!({}),
        )
        .await;

    let me = &reply.data()["me"];
    assert_eq!(me["id"], alice.user_id());
    assert_eq!(me["email"], "alice@example.test");
    assert_eq!(me["name"], "alice");
    assert_eq!(me["picture"], json!(null));
    assert_eq!(me["verifiedEmail"], false);
    assert_eq!(me["provider"], "festapi");
    assert!(chrono::DateTime::parse_from_rfc3339(me["createdAt"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn me_is_null_for_anonymous_clients_and_the_rest_still_answers() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Hello", "World").await;

    let reply = app
        .anonymous()
        .graphql("{ me { id } posts { edges { node { id } } } }", json!({}))
        .await;

    reply.assert_error("UNAUTHENTICATED", None);
    assert_eq!(reply.error()["path"], json!(["me"]));
    assert_eq!(reply.body["data"]["me"], json!(null));
    assert_eq!(
        reply.body["data"]["posts"]["edges"],
        json!([{ "node": { "id": id } }])
    );
}

#[tokio::test]
async fn user_is_found_by_id_or_by_email_ignoring_case() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    let query = "query($id: ID, $email: String) { user(id: $id, email: $email) { id name } }";

    let by_id = alice.graphql(query, json!({ "id": bob.user_id() })).await;
    assert_eq!(by_id.data()["user"]["name"], "bob");
    let by_email = alice
        .graphql(query, json!({ "email": "BOB@Example.TEST" }))
        .await;
    assert_eq!(by_email.data()["user"]["id"], bob.user_id());
    let absent = alice
        .graphql(query, json!({ "email": "nobody@example.test" }))
        .await;
    assert_eq!(absent.data()["user"], json!(null));
    let absent = alice.graphql(query, json!({ "id": "google_0" })).await;
    assert_eq!(absent.data()["user"], json!(null));
}

#[tokio::test]
async fn user_takes_exactly_one_argument_and_a_signed_in_user() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let query = "query($id: ID, $email: String) { user(id: $id, email: $email) { id } }";

    alice
        .graphql(query, json!({}))
        .await
        .assert_error("BAD_USER_INPUT", Some("id"));
    alice
        .graphql(
            query,
            json!({ "id": alice.user_id(), "email": "alice@example.test" }),
        )
        .await
        .assert_error("BAD_USER_INPUT", Some("id"));
    app.anonymous()
        .graphql(query, json!({ "id": alice.user_id() }))
        .await
        .assert_error("UNAUTHENTICATED", None);
}

#[tokio::test]
async fn users_lists_everyone_newest_first() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    app.create_user("bob").await;
    app.create_user("carol").await;

    let reply = alice
        .graphql(
            "{ users(first: 2) { edges { node { name } } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    let users = &reply.data()["users"];
    assert_eq!(users["edges"][0]["node"]["name"], "carol");
    assert_eq!(users["edges"][1]["node"]["name"], "bob");
    assert_eq!(users["pageInfo"]["hasNextPage"], true);

    let rest = alice
        .graphql(
            "query($after: String) { users(first: 2, after: $after) { edges { node { name } } pageInfo { hasNextPage } } }",
            json!({ "after": users["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        rest.data()["users"]["edges"],
        json!([{ "node": { "name": "alice" } }])
    );
    assert_eq!(rest.data()["users"]["pageInfo"]["hasNextPage"], false);
    app.anonymous()
        .graphql("{ users { edges { cursor } } }", json!({}))
        .await
        .assert_error("UNAUTHENTICATED", None);
}

#[tokio::test]
async fn e_mail_addresses_are_null_without_error_for_anonymous_clients() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Hello", "World").await;
    let query = "query($id: ID!) { post(id: $id) { author { name email } } }";

    let anonymous = app.anonymous().graphql(query, json!({ "id": id })).await;
    assert_eq!(
        anonymous.data()["post"]["author"],
        json!({ "name": "alice", "email": null })
    );
    let listed = app
        .anonymous()
        .graphql(
            "{ posts { edges { node { author { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed.data()["posts"]["edges"],
        json!([{ "node": { "author": { "email": null } } }])
    );
    let signed_in = alice.graphql(query, json!({ "id": id })).await;
    assert_eq!(
        signed_in.data()["post"]["author"]["email"],
        "alice@example.test"
    );
}

#[tokio::test]
async fn user_posts_are_a_connection() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let first = alice.create_post("First", "1").await;
    let second = alice.create_post("Second", "2").await;

    let reply = alice
        .graphql(
            "{ me { posts(first: 1) { edges { node { id } } pageInfo { hasNextPage } } } }",
            json!({}),
        )
        .await;
    let posts = &reply.data()["me"]["posts"];
    assert_eq!(posts["edges"][0]["node"]["id"], second);
    assert_eq!(posts["pageInfo"]["hasNextPage"], true);
    assert_ne!(first, second);
}

#[tokio::test]
async fn update_me_changes_name_and_picture() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let reply = update_me(
        &alice,
        json!({ "name": "  Alice Liddell ", "picture": "https://example.com/alice.png" }),
    )
    .await;
    assert_eq!(
        reply.data()["updateMe"],
        json!({ "name": "Alice Liddell", "picture": "https://example.com/alice.png" })
    );
    // Omitting the picture keeps it; null removes it.
    let reply = update_me(&alice, json!({ "name": "Alice" })).await;
    assert_eq!(
        reply.data()["updateMe"]["picture"],
        "https://example.com/alice.png"
    );
    let reply = update_me(&alice, json!({ "picture": null })).await;
    assert_eq!(
        reply.data()["updateMe"],
        json!({ "name": "Alice", "picture": null })
    );
    let reply = update_me(&alice, json!({ "picture": "http://example.com/a.png" })).await;
    assert_eq!(
        reply.data()["updateMe"]["picture"],
        "http://example.com/a.png"
    );
}

#[tokio::test]
async fn update_me_refuses_bad_names_and_pictures() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let reply = update_me(&alice, json!({ "name": "名".repeat(100) })).await;
    assert_eq!(reply.data()["updateMe"]["name"], "名".repeat(100));
    for name in ["名".repeat(101), "   ".to_owned(), String::new()] {
        update_me(&alice, json!({ "name": name }))
            .await
            .assert_error("BAD_USER_INPUT", Some("name"));
    }
    for picture in [
        "ftp://example.com/a.png",
        "javascript:alert(1)",
        "not a url",
        "https://",
    ] {
        update_me(&alice, json!({ "picture": picture }))
            .await
            .assert_error("BAD_USER_INPUT", Some("picture"));
    }
    // A refused change leaves the profile as it was.
    update_me(&alice, json!({ "name": "Valid", "picture": "ftp://x" }))
        .await
        .assert_error("BAD_USER_INPUT", Some("picture"));
    let me = alice.graphql("{ me { name picture } }", json!({})).await;
    assert_eq!(
        me.data()["me"],
        json!({ "name": "名".repeat(100), "picture": null })
    );
    app.anonymous()
        .graphql(
            "mutation { updateMe(input: { name: \"x\" }) { name } }",
            json!({}),
        )
        .await
        .assert_error("UNAUTHENTICATED", None);
}

#[tokio::test]
async fn posts_of_listed_users_load_in_one_query() {
    let app = TestApp::new().await;
    let mut expected = Vec::new();
    for index in 0..20 {
        let author = app.signed_in(&format!("author{index}")).await;
        let mut titles = Vec::new();
        for number in 0..index % 4 {
            let title = format!("{index}.{number}");
            author.create_post(&title, "body").await;
            titles.push(title);
        }
        titles.reverse();
        expected.push((format!("author{index}"), titles));
    }
    expected.reverse();
    let viewer = app.signed_in("viewer").await;
    let query = "query($after: String) { users(first: 21) { edges { node { id name posts(first: 2, after: $after) { edges { node { title author { name } } } pageInfo { hasNextPage endCursor } } } } } }";

    let before = app.statements();
    let reply = viewer.graphql(query, json!({})).await;
    let statements = app.statements() - before;

    let users = reply.data()["users"]["edges"].as_array().unwrap();
    assert_eq!(users[0]["node"]["name"], "viewer");
    for ((name, titles), user) in expected.iter().zip(&users[1..]) {
        let node = &user["node"];
        assert_eq!(node["name"], name.as_str());
        let shown: Vec<&str> = node["posts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["title"].as_str().unwrap())
            .collect();
        let first_two: Vec<&str> = titles.iter().take(2).map(String::as_str).collect();
        assert_eq!(shown, first_two, "{name}");
        assert_eq!(
            node["posts"]["pageInfo"]["hasNextPage"],
            titles.len() > 2,
            "{name}"
        );
    }
    // Session, users page, every user's posts (each post's author is the user listed); a slow
    // machine may split the DataLoader batch in two.
    assert!(
        (3..=4).contains(&statements),
        "listing 21 users with their posts ran {statements} statements"
    );

    // The next page of one author's posts, through the same batched path.
    let author3 = &users
        .iter()
        .find(|user| user["node"]["name"] == "author3")
        .unwrap()["node"];
    let rest = viewer
        .graphql(
            "query($id: ID, $after: String) { user(id: $id) { posts(first: 2, after: $after) { edges { node { title } } pageInfo { hasNextPage } } } }",
            json!({ "id": author3["id"], "after": author3["posts"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        rest.data()["user"]["posts"],
        json!({ "edges": [{ "node": { "title": "3.0" } }], "pageInfo": { "hasNextPage": false } })
    );
}

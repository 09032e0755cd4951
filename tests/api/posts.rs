//! Creating, reading, updating and deleting posts.

use serde_json::json;

use crate::support::TestApp;

const POST_FIELDS: &str = "id title content createdAt updatedAt author { id name }";

async fn read_post(app: &TestApp, id: &str) -> serde_json::Value {
    let reply = app
        .anonymous()
        .graphql(
            &format!("query($id: ID!) {{ post(id: $id) {{ {POST_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    reply.data()["post"].clone()
}

#[tokio::test]
async fn signed_in_user_creates_a_trimmed_post() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let reply = alice
        .graphql(
            &format!("mutation($input: CreatePostInput!) {{ createPost(input: $input) {{ {POST_FIELDS} }} }}"),
            json!({ "input": { "title": "  Hello, FestAPI \n", "content": "\tFirst post.  " } }),
        )
        .await;

    let post = &reply.data()["createPost"];
    assert_eq!(post["title"], "Hello, FestAPI");
    assert_eq!(post["content"], "First post.");
    assert_eq!(post["author"]["id"], alice.user_id());
    assert_eq!(post["author"]["name"], "alice");
    assert!(post["id"].as_str().unwrap().starts_with("post_"));
    assert_eq!(post["createdAt"], post["updatedAt"]);
    assert_eq!(read_post(&app, post["id"].as_str().unwrap()).await, *post);
}

#[tokio::test]
async fn anonymous_user_cannot_create_a_post() {
    let app = TestApp::new().await;

    let reply = app
        .anonymous()
        .graphql(
            "mutation { createPost(input: { title: \"t\", content: \"c\" }) { id } }",
            json!({}),
        )
        .await;

    reply.assert_error("UNAUTHENTICATED", None);
    let count = app
        .anonymous()
        .graphql("{ posts { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(count.data()["posts"]["edges"], json!([]));
}

#[tokio::test]
async fn title_and_content_limits_hold_at_their_boundaries() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let create = |title: String, content: String| {
        let alice = alice.clone();
        async move {
            alice
                .graphql(
                    "mutation($input: CreatePostInput!) { createPost(input: $input) { title content } }",
                    json!({ "input": { "title": title, "content": content } }),
                )
                .await
        }
    };

    // Lengths count characters: 200 Hangul syllables are 600 bytes and still fit.
    for title in ["a".repeat(200), "가".repeat(200), "🎉".repeat(200)] {
        let reply = create(title.clone(), "c".into()).await;
        assert_eq!(reply.data()["createPost"]["title"], title);
    }
    for title in ["a".repeat(201), "가".repeat(201)] {
        create(title, "c".into())
            .await
            .assert_error("BAD_USER_INPUT", Some("title"));
    }
    let reply = create("t".into(), "é".repeat(10_000)).await;
    assert_eq!(
        reply.data()["createPost"]["content"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        10_000
    );
    create("t".into(), "é".repeat(10_001))
        .await
        .assert_error("BAD_USER_INPUT", Some("content"));
    for blank in ["", "   ", "\n\t", "\u{3000}"] {
        create(blank.into(), "c".into())
            .await
            .assert_error("BAD_USER_INPUT", Some("title"));
        create("t".into(), blank.into())
            .await
            .assert_error("BAD_USER_INPUT", Some("content"));
    }
    // Surrounding whitespace does not count toward the limit.
    let padded = format!("   {}   ", "a".repeat(200));
    assert_eq!(
        create(padded, "c".into()).await.data()["createPost"]["title"],
        "a".repeat(200)
    );

    let stored = app
        .anonymous()
        .graphql("{ posts(first: 100) { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(stored.data()["posts"]["edges"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn post_is_public_and_null_when_absent() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Hello", "World").await;

    let post = read_post(&app, &id).await;
    assert_eq!(post["title"], "Hello");
    assert_eq!(read_post(&app, "post_does_not_exist").await, json!(null));
}

#[tokio::test]
async fn author_updates_title_content_or_both() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Before", "Original body").await;
    let update = |input: serde_json::Value| {
        let alice = alice.clone();
        let id = id.clone();
        async move {
            alice
                .graphql(
                    "mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { title content createdAt updatedAt } }",
                    json!({ "id": id, "input": input }),
                )
                .await
        }
    };

    let reply = update(json!({ "title": " After " })).await;
    let post = &reply.data()["updatePost"];
    assert_eq!(post["title"], "After");
    assert_eq!(post["content"], "Original body");
    assert_ne!(post["updatedAt"], post["createdAt"]);

    let reply = update(json!({ "content": "New body" })).await;
    assert_eq!(reply.data()["updatePost"]["title"], "After");
    assert_eq!(reply.data()["updatePost"]["content"], "New body");

    let reply = update(json!({ "title": "Both", "content": "Changed" })).await;
    assert_eq!(reply.data()["updatePost"]["title"], "Both");
    assert_eq!(reply.data()["updatePost"]["content"], "Changed");

    update(json!({}))
        .await
        .assert_error("BAD_USER_INPUT", Some("input"));
}

#[tokio::test]
async fn failed_update_changes_nothing() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Title", "Body").await;
    let before = read_post(&app, &id).await;

    let reply = alice
        .graphql(
            "mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id } }",
            json!({ "id": id, "input": { "title": "A fine new title", "content": "x".repeat(10_001) } }),
        )
        .await;

    reply.assert_error("BAD_USER_INPUT", Some("content"));
    assert_eq!(read_post(&app, &id).await, before);
}

#[tokio::test]
async fn non_author_cannot_update_post() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let mallory = app.signed_in("mallory").await;
    let id = alice.create_post("Alice's", "Mine").await;
    let before = read_post(&app, &id).await;

    let reply = mallory
        .graphql(
            "mutation($id: ID!) { updatePost(id: $id, input: { title: \"Pwned\" }) { id } }",
            json!({ "id": id }),
        )
        .await;

    reply.assert_error("FORBIDDEN", None);
    assert_eq!(reply.body["data"], json!(null));
    assert_eq!(read_post(&app, &id).await, before);
}

#[tokio::test]
async fn non_author_cannot_delete_post() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let mallory = app.signed_in("mallory").await;
    let id = alice.create_post("Alice's", "Mine").await;

    let reply = mallory
        .graphql(
            "mutation($id: ID!) { deletePost(id: $id) }",
            json!({ "id": id }),
        )
        .await;

    reply.assert_error("FORBIDDEN", None);
    assert_eq!(read_post(&app, &id).await["title"], "Alice's");
}

#[tokio::test]
async fn author_deletes_post() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Short-lived", "Gone soon").await;

    let reply = alice
        .graphql(
            "mutation($id: ID!) { deletePost(id: $id) }",
            json!({ "id": id }),
        )
        .await;

    assert_eq!(reply.data()["deletePost"], id);
    assert_eq!(read_post(&app, &id).await, json!(null));
    let again = alice
        .graphql(
            "mutation($id: ID!) { deletePost(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    again.assert_error("NOT_FOUND", None);
}

#[tokio::test]
async fn mutations_on_missing_posts_are_not_found() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let update = alice
        .graphql(
            "mutation { updatePost(id: \"post_missing\", input: { title: \"t\" }) { id } }",
            json!({}),
        )
        .await;
    update.assert_error("NOT_FOUND", None);
    let delete = alice
        .graphql("mutation { deletePost(id: \"post_missing\") }", json!({}))
        .await;
    delete.assert_error("NOT_FOUND", None);
}

#[tokio::test]
async fn post_lists_filter_by_author() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    let alices = alice.create_post("A1", "a").await;
    let bobs = bob.create_post("B1", "b").await;

    let ids = |reply: &crate::support::Reply, field: &str| -> Vec<String> {
        reply.data()[field]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mine = alice
        .graphql("{ myPosts { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(ids(&mine, "myPosts"), vec![alices.clone()]);
    let by_bob = app
        .anonymous()
        .graphql(
            "query($author: ID) { posts(authorId: $author) { edges { node { id } } } }",
            json!({ "author": bob.user_id() }),
        )
        .await;
    assert_eq!(ids(&by_bob, "posts"), vec![bobs.clone()]);
    let everyone = app
        .anonymous()
        .graphql("{ posts { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(ids(&everyone, "posts"), vec![bobs, alices]);
    let anonymous_mine = app
        .anonymous()
        .graphql("{ myPosts { edges { node { id } } } }", json!({}))
        .await;
    anonymous_mine.assert_error("UNAUTHENTICATED", None);
}

#[tokio::test]
async fn authors_of_a_page_load_in_one_query() {
    let app = TestApp::new().await;
    for index in 0..100 {
        let author = app.signed_in(&format!("author{index}")).await;
        author.create_post(&format!("Post {index}"), "body").await;
    }
    let anonymous = app.anonymous();

    let before = app.statements();
    let reply = anonymous
        .graphql(
            "{ posts(first: 100) { edges { node { id author { id name } } } } }",
            json!({}),
        )
        .await;
    let statements = app.statements() - before;

    let edges = reply.data()["posts"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 100);
    assert!(edges.iter().all(|edge| {
        edge["node"]["author"]["name"]
            .as_str()
            .unwrap()
            .starts_with("author")
    }));
    // The page and its authors in one statement: never one per post.
    assert_eq!(
        statements, 1,
        "listing 100 posts with their authors ran {statements} statements"
    );
}

#[tokio::test]
async fn database_refuses_what_the_api_refuses() {
    use diesel::ExpressionMethods as _;
    use diesel_async::RunQueryDsl as _;
    use festapi::db::schema::{posts, users};

    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;
    let mut connection = app.state.database.connection().await.unwrap();
    let post = |id: &str, title: String, content: &str| {
        diesel::insert_into(posts::table).values((
            posts::id.eq(id.to_owned()),
            posts::title.eq(title),
            posts::content.eq(content.to_owned()),
            posts::author_id.eq(alice.id.clone()),
        ))
    };

    assert!(
        post("p1", "a".repeat(200), "ok")
            .execute(&mut connection)
            .await
            .is_ok()
    );
    for (id, title, content) in [
        ("p2", "a".repeat(201), "ok"),
        ("p3", "   ".to_owned(), "ok"),
        ("p4", "ok".to_owned(), ""),
        ("p5", "ok".to_owned(), " \n "),
    ] {
        let refused = post(id, title, content).execute(&mut connection).await;
        assert!(refused.is_err(), "{id} was stored");
    }
    let orphan = diesel::insert_into(posts::table)
        .values((
            posts::id.eq("p6"),
            posts::title.eq("t"),
            posts::content.eq("c"),
            posts::author_id.eq("nobody"),
        ))
        .execute(&mut connection)
        .await;
    assert!(orphan.is_err(), "a post without an author was stored");

    let bad_picture = diesel::update(users::table)
        .set(users::picture.eq("ftp://example.com/a.png"))
        .execute(&mut connection)
        .await;
    assert!(bad_picture.is_err(), "an ftp picture was stored");
    let same_email = diesel::insert_into(users::table)
        .values((
            users::id.eq("google_1"),
            users::email.eq("ALICE@example.test"),
            users::name.eq("Impostor"),
            users::provider.eq("google"),
            users::provider_id.eq("1"),
        ))
        .execute(&mut connection)
        .await;
    assert!(
        same_email.is_err(),
        "an e-mail differing only in case was stored"
    );

    // Deleting a user deletes their posts.
    diesel::delete(users::table)
        .execute(&mut connection)
        .await
        .unwrap();
    let remaining: i64 = diesel::QueryDsl::count(posts::table)
        .get_result(&mut connection)
        .await
        .unwrap();
    assert_eq!(remaining, 0);
}

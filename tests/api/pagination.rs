//! Cursor pagination: page sizes, cursors, and stability while rows are inserted.

use chrono::Utc;
use diesel::ExpressionMethods as _;
use diesel_async::RunQueryDsl as _;
use festapi::db::schema::posts;
use serde_json::{Value, json};

use crate::support::{Client, TestApp};

const PAGE: &str = "query($first: Int, $after: String) { posts(first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";

async fn page(client: &Client, first: i64, after: &Value) -> (Vec<String>, Value) {
    let reply = client
        .graphql(PAGE, json!({ "first": first, "after": after }))
        .await;
    let posts = &reply.data()["posts"];
    let ids = posts["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, posts["pageInfo"].clone())
}

#[tokio::test]
async fn first_defaults_to_20_and_is_bounded() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    for index in 0..21 {
        alice.create_post(&format!("Post {index}"), "body").await;
    }
    let anonymous = app.anonymous();

    let reply = anonymous
        .graphql(
            "{ posts { edges { cursor } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.data()["posts"]["edges"].as_array().unwrap().len(), 20);
    assert_eq!(reply.data()["posts"]["pageInfo"]["hasNextPage"], true);
    let (ids, info) = page(&anonymous, 0, &Value::Null).await;
    assert!(ids.is_empty());
    assert_eq!(info["hasNextPage"], true);
    let (ids, info) = page(&anonymous, 100, &Value::Null).await;
    assert_eq!(ids.len(), 21);
    assert_eq!(info["hasNextPage"], false);

    for first in [101, -1, 100_000] {
        anonymous
            .graphql(PAGE, json!({ "first": first }))
            .await
            .assert_error("BAD_USER_INPUT", Some("first"));
    }
    for field in ["myPosts", "users"] {
        alice
            .graphql(
                &format!("{{ {field}(first: 101) {{ edges {{ cursor }} }} }}"),
                json!({}),
            )
            .await
            .assert_error("BAD_USER_INPUT", Some("first"));
    }
}

#[tokio::test]
async fn foreign_cursors_are_bad_input() {
    let app = TestApp::new().await;

    for cursor in ["nonsense", "", "MTIz", "bm90OmEtY3Vyc29y"] {
        app.anonymous()
            .graphql(PAGE, json!({ "after": cursor }))
            .await
            .assert_error("BAD_USER_INPUT", Some("after"));
    }
}

#[tokio::test]
async fn paging_while_posts_are_added_neither_repeats_nor_skips() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let mut originals = Vec::new();
    for index in 0..25 {
        originals.push(alice.create_post(&format!("Post {index}"), "body").await);
    }
    let anonymous = app.anonymous();

    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let (ids, info) = page(&anonymous, 4, &after).await;
        seen.extend(ids);
        // A writer keeps publishing between every page.
        alice.create_post("Meanwhile", "new").await;
        if info["hasNextPage"] == false {
            break;
        }
        assert_eq!(info["hasPreviousPage"], !after.is_null());
        after = info["endCursor"].clone();
    }

    originals.reverse();
    assert_eq!(seen, originals, "newest first, each exactly once");
}

#[tokio::test]
async fn posts_created_at_the_same_instant_page_by_id() {
    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;
    let instant = Utc::now();
    let ids: Vec<String> = (0..7).map(|index| format!("post_tie_{index}")).collect();
    {
        let mut connection = app.state.database.connection().await.unwrap();
        let rows: Vec<_> = ids
            .iter()
            .map(|id| {
                (
                    posts::id.eq(id),
                    posts::title.eq("Tie"),
                    posts::content.eq("same instant"),
                    posts::author_id.eq(&alice.id),
                    posts::created_at.eq(instant),
                )
            })
            .collect();
        diesel::insert_into(posts::table)
            .values(rows)
            .execute(&mut connection)
            .await
            .unwrap();
    }

    let anonymous = app.anonymous();
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let (page_ids, info) = page(&anonymous, 2, &after).await;
        seen.extend(page_ids);
        if info["hasNextPage"] == false {
            break;
        }
        after = info["endCursor"].clone();
    }

    let mut expected = ids;
    expected.reverse();
    assert_eq!(seen, expected);
}

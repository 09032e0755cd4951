//! Reads of posts fetch what their selection asks for, in as few statements as the data allows:
//! the author joined to the post, the content only when selected, and the same pages, cursors
//! and answers whatever the selection.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::support::{Client, JsonLog, Reply, TestApp};

/// The shape of the benchmark's listing: a page of posts with their authors' names.
const PAGE_WITH_AUTHORS: &str =
    "{ posts(first: 20) { edges { node { id title author { name } } } } }";

/// Sends `query` as `client` and returns the reply with the SQL of every statement the server
/// started for it, as the trace of `festapi::db` shows it.
async fn traced(
    app: &TestApp,
    log: &JsonLog,
    client: &Client,
    query: &str,
    variables: Value,
) -> (Reply, Vec<String>) {
    let seen = log.lines().len();
    let counted = app.statements();
    let reply = client.graphql(query, variables).await;
    let statements: Vec<String> = log.lines()[seen..]
        .iter()
        .filter(|line| line["message"] == "statement started")
        .map(|line| line["sql"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statements.len() as u64,
        app.statements() - counted,
        "every counted statement is traced: {statements:#?}"
    );
    (reply, statements)
}

/// Whether `sql` reads the content column.
fn reads_content(sql: &str) -> bool {
    sql.contains("\"content\"")
}

/// Asserts that `statements` is one statement, joining the authors and leaving the content.
fn assert_one_join_without_content(statements: &[String]) {
    assert_eq!(statements.len(), 1, "{statements:#?}");
    assert!(
        statements[0].contains("INNER JOIN \"users\""),
        "{}",
        statements[0]
    );
    assert!(!reads_content(&statements[0]), "{}", statements[0]);
}

/// Whether `sql` reads users.
fn reads_users(sql: &str) -> bool {
    sql.contains("\"users\"")
}

#[tokio::test]
async fn a_page_of_posts_with_their_authors_is_one_statement() {
    let app = TestApp::new().await;
    let log = JsonLog::capture();
    for index in 0..25 {
        let author = app.signed_in(&format!("author{index}")).await;
        author
            .create_post(&format!("Post {index}"), &"long body ".repeat(900))
            .await;
    }

    let (reply, statements) =
        traced(&app, &log, &app.anonymous(), PAGE_WITH_AUTHORS, json!({})).await;
    let edges = reply.data()["posts"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 20);
    for edge in edges {
        let node = &edge["node"];
        let index = node["title"]
            .as_str()
            .unwrap()
            .strip_prefix("Post ")
            .unwrap();
        assert_eq!(node["author"]["name"], format!("author{index}"));
    }
    assert_one_join_without_content(&statements);

    // A signed-in caller adds the one statement that checks the session.
    let viewer = app.signed_in("viewer").await;
    let (reply, statements) = traced(&app, &log, &viewer, PAGE_WITH_AUTHORS, json!({})).await;
    assert_eq!(reply.data()["posts"]["edges"].as_array().unwrap().len(), 20);
    assert_eq!(statements.len(), 2, "{statements:#?}");
    assert!(
        statements[0].contains("FROM users JOIN sessions"),
        "{}",
        statements[0]
    );

    // Without `author`, no user is read at all.
    let (reply, statements) = traced(
        &app,
        &log,
        &app.anonymous(),
        "{ posts(first: 20) { edges { node { id title } } pageInfo { hasNextPage } } }",
        json!({}),
    )
    .await;
    assert_eq!(reply.data()["posts"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(statements.len(), 1, "{statements:#?}");
    assert!(!reads_users(&statements[0]), "{}", statements[0]);
    assert!(!reads_content(&statements[0]), "{}", statements[0]);
}

#[tokio::test]
async fn a_post_with_its_author_is_one_statement() {
    let app = TestApp::new().await;
    let log = JsonLog::capture();
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Hello", &"x".repeat(10_000)).await;
    let query = "query($id: ID!) { post(id: $id) { id title author { email } } }";

    let (reply, statements) =
        traced(&app, &log, &app.anonymous(), query, json!({ "id": id })).await;
    assert_eq!(
        reply.data()["post"],
        json!({ "id": id, "title": "Hello", "author": { "email": null } }),
        "e-mail addresses are for signed-in callers only"
    );
    assert_one_join_without_content(&statements);

    let bob = app.signed_in("bob").await;
    let (reply, statements) = traced(&app, &log, &bob, query, json!({ "id": id })).await;
    assert_eq!(
        reply.data()["post"]["author"]["email"],
        "alice@example.test"
    );
    assert_eq!(
        statements.len(),
        2,
        "the session's statement and the post's: {statements:#?}"
    );

    // A post that does not exist is null, as before, and still costs one statement.
    let (reply, statements) = traced(
        &app,
        &log,
        &app.anonymous(),
        query,
        json!({ "id": "post_missing" }),
    )
    .await;
    assert_eq!(reply.data()["post"], Value::Null);
    assert_eq!(statements.len(), 1, "{statements:#?}");
}

#[tokio::test]
async fn content_is_read_only_when_selected() {
    let app = TestApp::new().await;
    let log = JsonLog::capture();
    let alice = app.signed_in("alice").await;
    let body = "a long body ".repeat(800).trim().to_owned();
    let id = alice.create_post("Hello", &body).await;
    let author = json!({ "author": alice.user_id(), "id": id });

    let reads = [
        ("post", "query($id: ID!) { post(id: $id) { SELECTION } }"),
        ("posts", "{ posts { edges { node { SELECTION } } } }"),
        ("nodes", "{ posts { nodes { SELECTION } } }"),
        (
            "posts by author",
            "query($author: ID) { posts(authorId: $author) { edges { node { SELECTION } } } }",
        ),
        ("myPosts", "{ myPosts { edges { node { SELECTION } } } }"),
        (
            "User.posts",
            "query($author: ID) { user(id: $author) { posts { edges { node { SELECTION } } } } }",
        ),
    ];
    for (name, template) in reads {
        for (selection, selected) in [("id title", false), ("id content", true)] {
            let query = template.replace("SELECTION", selection);
            let (reply, statements) = traced(&app, &log, &alice, &query, author.clone()).await;
            let shown = reply.body["data"].to_string();
            assert!(
                reply.body.get("errors").is_none(),
                "{name}: {:#}",
                reply.body
            );
            assert_eq!(shown.contains(&body), selected, "{name}: {shown}");
            assert_eq!(
                statements.iter().any(|sql| reads_content(sql)),
                selected,
                "{name} selecting {selection}: {statements:#?}"
            );
        }
    }
}

/// Every page of one list, read with `selection` under the connection `list` names: for each
/// page its edges' cursors and node ids, and its `pageInfo`; and every node as shown.
async fn all_pages(
    client: &Client,
    list: &str,
    selection: &str,
    author: &str,
) -> (Vec<(Vec<(Value, Value)>, Value)>, Vec<Value>) {
    let (field, path): (&str, &[&str]) = match list {
        "posts" => ("posts(first: $first, after: $after)", &["posts"]),
        "posts by author" => (
            "posts(first: $first, after: $after, authorId: $author)",
            &["posts"],
        ),
        "myPosts" => ("myPosts(first: $first, after: $after)", &["myPosts"]),
        "User.posts" => (
            "user(id: $author) { posts(first: $first, after: $after)",
            &["user", "posts"],
        ),
        _ => unreachable!("{list}"),
    };
    let close = if list == "User.posts" { "}" } else { "" };
    let author_variable = if field.contains("$author") {
        ", $author: ID"
    } else {
        ""
    };
    let query = format!(
        "query($first: Int, $after: String{author_variable}) {{ {field} {{ {selection} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} {close} }}"
    );
    let mut pages = Vec::new();
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let reply = client
            .graphql(
                &query,
                if author_variable.is_empty() {
                    json!({ "first": 3, "after": after })
                } else {
                    json!({ "first": 3, "after": after, "author": author })
                },
            )
            .await;
        let mut connection = reply.data();
        for step in path {
            connection = &connection[step];
        }
        let edges = connection["edges"].as_array().unwrap();
        let page_info = connection["pageInfo"].clone();
        pages.push((
            edges
                .iter()
                .map(|edge| (edge["cursor"].clone(), edge["node"]["id"].clone()))
                .collect(),
            page_info.clone(),
        ));
        nodes.extend(edges.iter().map(|edge| edge["node"].clone()));
        if let Some(listed) = connection.get("nodes") {
            assert_eq!(
                listed.as_array().unwrap().len(),
                edges.len(),
                "{list}: {selection}"
            );
            nodes.extend(listed.as_array().unwrap().iter().cloned());
        }
        if page_info["hasNextPage"] != true {
            return (pages, nodes);
        }
        after = page_info["endCursor"].clone();
    }
}

#[tokio::test]
async fn pages_are_the_same_whatever_the_selection() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    let mut expected: HashMap<String, (String, String)> = HashMap::new();
    for index in 0..8 {
        let author = if index % 3 == 0 { &bob } else { &alice };
        let content = format!("Body {index} ").repeat(index * 100 + 1);
        let id = author
            .create_post(&format!("Post {index}"), content.trim())
            .await;
        expected.insert(id, (author.user_id().to_owned(), content.trim().to_owned()));
    }
    // Posts created at the same instant, ordered by id alone, and a page boundary between them.
    app.database
        .admin_client()
        .await
        .execute(
            "UPDATE posts SET created_at = (SELECT min(created_at) FROM posts) \
             WHERE id IN (SELECT id FROM posts ORDER BY created_at DESC LIMIT 4)",
            &[],
        )
        .await
        .unwrap();

    let selections = [
        "edges { cursor node { id } }",
        "edges { cursor node { id author { id name email } } }",
        "edges { cursor node { id content } }",
        "edges { cursor node { id title content author { id email } } }",
        "edges { cursor node { id } } nodes { id content author { id } }",
    ];
    for list in ["posts", "posts by author", "myPosts", "User.posts"] {
        let (bare, _) = all_pages(&alice, list, selections[0], alice.user_id()).await;
        let listed: usize = bare.iter().map(|(edges, _)| edges.len()).sum();
        let wanted = if list == "posts" { 8 } else { 5 };
        assert_eq!(listed, wanted, "{list}");
        assert!(bare.len() > 1, "{list} spans several pages");
        for selection in &selections[1..] {
            let (pages, nodes) = all_pages(&alice, list, selection, alice.user_id()).await;
            assert_eq!(pages, bare, "{list} with {selection}");
            for node in nodes {
                let (author_id, content) = &expected[node["id"].as_str().unwrap()];
                if let Some(author) = node.get("author") {
                    assert_eq!(author["id"], author_id.as_str(), "{list}: {node}");
                    if let Some(email) = author.get("email") {
                        let name = if author_id == alice.user_id() {
                            "alice"
                        } else {
                            "bob"
                        };
                        assert_eq!(email, &format!("{name}@example.test"), "{list}: {node}");
                    }
                }
                if let Some(shown) = node.get("content") {
                    assert_eq!(shown, content.as_str(), "{list}: {}", node["id"]);
                }
            }
        }
    }
}

#[tokio::test]
async fn fragments_aliases_and_directives_still_read_what_they_select() {
    let app = TestApp::new().await;
    let log = JsonLog::capture();
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Hello", "The body").await;

    let query = "
        query($id: ID!, $yes: Boolean!) {
          listed: posts(first: 5) {
            edges { node { ...Parts } }
            byNodes: nodes { ... on Post { body: content } }
          }
          one: post(id: $id) { ... @include(if: $yes) { content } writer: author { ...Who } }
          skipped: posts(first: 1) { edges { node { id content @skip(if: $yes) } } }
          bare: posts(first: 1) { edges { node { id } } }
          full: posts(first: 1) { edges { node { content } } }
        }
        fragment Parts on Post { id text: content author { ...Who } }
        fragment Who on User { name }";
    let (reply, statements) = traced(
        &app,
        &log,
        &app.anonymous(),
        query,
        json!({ "id": id, "yes": true }),
    )
    .await;
    assert_eq!(
        reply.data(),
        &json!({
            "listed": {
                "edges": [{ "node": { "id": id, "text": "The body", "author": { "name": "alice" } } }],
                "byNodes": [{ "body": "The body" }],
            },
            "one": { "content": "The body", "writer": { "name": "alice" } },
            "skipped": { "edges": [{ "node": { "id": id } }] },
            "bare": { "edges": [{ "node": { "id": id } }] },
            "full": { "edges": [{ "node": { "content": "The body" } }] },
        })
    );
    // One statement per field. `bare` leaves the content out though `full` asks for it from the
    // same field, and so does `skipped`: skipped fields are gone before resolvers look ahead.
    assert_eq!(statements.len(), 5, "{statements:#?}");
    assert_eq!(
        statements.iter().filter(|sql| reads_content(sql)).count(),
        3,
        "{statements:#?}"
    );
}

#[tokio::test]
async fn authors_known_already_cost_no_statement() {
    let app = TestApp::new().await;
    let log = JsonLog::capture();
    let alice = app.signed_in("alice").await;
    alice.create_post("First", "One").await;
    alice.create_post("Second", "Two").await;
    let author = json!({ "name": "alice", "email": "alice@example.test" });

    // `myPosts` are the signed-in user's, whose row came with the session.
    let (reply, statements) = traced(
        &app,
        &log,
        &alice,
        "{ myPosts { edges { node { title author { name email } } } } }",
        json!({}),
    )
    .await;
    let edges = reply.data()["myPosts"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert!(edges.iter().all(|edge| edge["node"]["author"] == author));
    assert_eq!(statements.len(), 2, "session and page: {statements:#?}");
    assert!(!reads_users(&statements[1]), "{}", statements[1]);

    // A user's `posts` are theirs.
    let (reply, statements) = traced(
        &app,
        &log,
        &alice,
        "{ me { posts { nodes { title author { name email } } } } }",
        json!({}),
    )
    .await;
    let nodes = reply.data()["me"]["posts"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|node| node["author"] == author));
    assert_eq!(statements.len(), 2, "session and posts: {statements:#?}");
    assert!(!reads_users(&statements[1]), "{}", statements[1]);
}

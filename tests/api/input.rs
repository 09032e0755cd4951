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

const CREATE_POST: &str = "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }";
const UPDATE_POST: &str =
    "mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id } }";
const UPDATE_ME: &str = "mutation($input: UpdateMeInput!) { updateMe(input: $input) { name } }";

/// A server with one user who wrote one post, and what they looked like before the test.
struct Fixture {
    app: TestApp,
    alice: Client,
    post_id: String,
    posts_before: Value,
    profile_before: Value,
    errors: ErrorLog,
}

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::new().await;
        let alice = app.signed_in("alice").await;
        let post_id = alice.create_post("Kept", "as it was").await;
        let posts_before = stored_posts(&app).await;
        let profile_before = profile(&alice).await;
        Self {
            errors: ErrorLog::capture(),
            app,
            alice,
            post_id,
            posts_before,
            profile_before,
        }
    }

    /// Asserts no post and no profile changed, and no ERROR was logged.
    async fn assert_nothing_written_nor_logged(&self) {
        assert_eq!(stored_posts(&self.app).await, self.posts_before);
        assert_eq!(profile(&self.alice).await, self.profile_before);
        assert_eq!(self.errors.count(), 0, "an ERROR was logged");
    }
}

/// Every post's id, title and content, as stored.
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

/// The signed-in user's profile, as stored.
async fn profile(client: &Client) -> Value {
    let reply = client.graphql("{ me { name picture } }", json!({})).await;
    reply.data()["me"].clone()
}

#[tokio::test]
async fn ids_no_row_could_have_are_bad_input_naming_the_argument() {
    let fixture = Fixture::new().await;
    let (app, alice) = (&fixture.app, &fixture.alice);
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
            (alice, "query($id: ID) { user(id: $id) { id } }", "id"),
            (
                alice,
                "mutation($id: ID!) { updatePost(id: $id, input: { title: \"Changed\" }) { id } }",
                "id",
            ),
            (alice, "mutation($id: ID!) { deletePost(id: $id) }", "id"),
        ] {
            assert_refused(app, client, query, json!({ "id": id }), field).await;
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
    fixture.assert_nothing_written_nor_logged().await;
}

#[tokio::test]
async fn nul_in_any_string_argument_is_bad_input_naming_it() {
    let fixture = Fixture::new().await;
    let (app, alice, id) = (&fixture.app, &fixture.alice, &fixture.post_id);

    for (client, query, variables, field) in [
        (
            alice,
            CREATE_POST,
            json!({ "input": { "title": "Hello\u{0}", "content": "c" } }),
            "title",
        ),
        (
            alice,
            CREATE_POST,
            json!({ "input": { "title": "t", "content": "\u{0}" } }),
            "content",
        ),
        (
            alice,
            UPDATE_POST,
            json!({ "id": id, "input": { "title": "\u{0}Changed" } }),
            "title",
        ),
        (
            alice,
            UPDATE_POST,
            json!({ "id": id, "input": { "content": "Changed\u{0}body" } }),
            "content",
        ),
        (
            alice,
            UPDATE_ME,
            json!({ "input": { "name": "Ada\u{0}" } }),
            "name",
        ),
        (
            alice,
            UPDATE_ME,
            json!({ "input": { "picture": "https://example.com/\u{0}.png" } }),
            "picture",
        ),
        (
            alice,
            "query($email: String) { user(email: $email) { id } }",
            json!({ "email": "alice\u{0}@example.test" }),
            "email",
        ),
        (
            &app.anonymous(),
            "query($after: String) { posts(after: $after) { edges { cursor } } }",
            json!({ "after": "\u{0}" }),
            "after",
        ),
        (
            alice,
            "query($after: String) { users(after: $after) { edges { cursor } } }",
            json!({ "after": "bm9\u{0}" }),
            "after",
        ),
        (
            alice,
            "query($after: String) { me { posts(after: $after) { edges { cursor } } } }",
            json!({ "after": "\u{0}" }),
            "after",
        ),
    ] {
        assert_refused(app, client, query, variables, field).await;
    }

    fixture.assert_nothing_written_nor_logged().await;
}

/// Texts that show nothing: whitespace, C0 and C1 controls, and invisible characters.
const BLANKS: [&str; 8] = [
    "\u{200B}\u{200C}\u{200D}",
    "\u{2060}\u{FEFF}",
    " \u{2800} ",
    "\u{3164}\u{115F}\u{1160}",
    "\u{FFA0}\u{180E}",
    "\u{1}\u{7}\u{1b}\u{7f}",
    "\u{80}\u{85}\u{9f}",
    "\t\u{200B}\n\u{3000}",
];

#[tokio::test]
async fn titles_contents_and_names_that_show_nothing_are_blank() {
    let fixture = Fixture::new().await;
    let (app, alice, id) = (&fixture.app, &fixture.alice, &fixture.post_id);

    for blank in BLANKS {
        for (query, variables, field) in [
            (
                CREATE_POST,
                json!({ "input": { "title": blank, "content": "c" } }),
                "title",
            ),
            (
                CREATE_POST,
                json!({ "input": { "title": "t", "content": blank } }),
                "content",
            ),
            (
                UPDATE_POST,
                json!({ "id": id, "input": { "title": blank } }),
                "title",
            ),
            (UPDATE_ME, json!({ "input": { "name": blank } }), "name"),
        ] {
            assert_refused(app, alice, query, variables, field).await;
        }
    }

    fixture.assert_nothing_written_nor_logged().await;
}

#[tokio::test]
async fn invisible_characters_are_trimmed_from_both_ends() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let reply = alice
        .graphql(
            "mutation($input: CreatePostInput!) { createPost(input: $input) { title content } }",
            json!({ "input": {
                "title": "\u{200B} Hello \u{FEFF}",
                "content": "\u{2060}Body with a \u{200D} inside\u{180E}\u{85}",
            } }),
        )
        .await;
    assert_eq!(
        reply.data()["createPost"],
        json!({ "title": "Hello", "content": "Body with a \u{200D} inside" })
    );
    let reply = alice
        .graphql(
            "mutation($input: UpdateMeInput!) { updateMe(input: $input) { name } }",
            json!({ "input": { "name": "\u{3164}Ada\u{2800}" } }),
        )
        .await;
    assert_eq!(reply.data()["updateMe"]["name"], "Ada");
}

/// A cursor as this server encodes one, for a position of the test's choosing.
fn forged_cursor(micros: i64, id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"))
}

#[tokio::test]
async fn cursors_this_server_could_not_have_issued_are_bad_input() {
    let fixture = Fixture::new().await;
    let (app, alice) = (&fixture.app, &fixture.alice);
    // Microseconds since 1970 of 10000-01-01 and of 0000-12-31, just outside years 1 to 9999;
    // of 200000-01-01, far out but still a time chrono holds; and of 5001 BC (year -5000),
    // older than PostgreSQL's timestamptz can hold.
    let year_10000 = 253_402_300_800_000_000;
    let year_0 = -62_135_596_800_000_001;
    let year_200000 = 6_249_223_180_800_000_000;
    let before_timestamptz = -219_952_022_400_000_000;
    let too_long = "p".repeat(256);

    let cursors = [
        "Zm9yZ2Vk".to_owned(),
        forged_cursor(year_10000, "post_a"),
        forged_cursor(year_0, "post_a"),
        forged_cursor(year_200000, "post_a"),
        forged_cursor(before_timestamptz, "post_a"),
        forged_cursor(0, ""),
        forged_cursor(0, "post_\u{0}"),
        forged_cursor(0, "post_\u{7}"),
        forged_cursor(0, &too_long),
        "not base64!".to_owned(),
    ];
    for cursor in cursors {
        for (client, query) in [
            (
                &app.anonymous(),
                "query($after: String) { posts(after: $after) { edges { cursor } } }",
            ),
            (
                alice,
                "query($after: String) { users(after: $after) { edges { cursor } } }",
            ),
            (
                alice,
                "query($after: String) { me { posts(after: $after) { edges { cursor } } } }",
            ),
        ] {
            assert_refused(app, client, query, json!({ "after": cursor }), "after").await;
        }
    }

    // The edges of the range are fine, and simply past every row or before all of them.
    let first_of_year_1 = -62_135_596_800_000_000;
    for (cursor, expected) in [
        (forged_cursor(year_10000 - 1, "post_z"), 1),
        (forged_cursor(first_of_year_1, "post_a"), 0),
    ] {
        let reply = app
            .anonymous()
            .graphql(
                "query($after: String) { posts(after: $after) { edges { cursor } } }",
                json!({ "after": cursor }),
            )
            .await;
        assert_eq!(
            reply.data()["posts"]["edges"].as_array().unwrap().len(),
            expected
        );
    }
    fixture.assert_nothing_written_nor_logged().await;
}

//! The `x-request-id` a response carries: the client's own only when it is short and printable.

use festapi::http::MAX_REQUEST_ID_BYTES;
use reqwest::header::HeaderValue;
use serde_json::json;

use crate::support::TestApp;

async fn request_id_answered_to(app: &TestApp, sent: HeaderValue) -> String {
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("x-request-id", sent)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_visible_ascii_request_id_of_up_to_128_characters_is_echoed() {
    let app = TestApp::new().await;

    for sent in [
        "trace-me-42".to_owned(),
        "x".repeat(MAX_REQUEST_ID_BYTES),
        "!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~".to_owned(),
    ] {
        let answered = request_id_answered_to(&app, HeaderValue::from_str(&sent).unwrap()).await;
        assert_eq!(answered, sent);
    }
}

#[tokio::test]
async fn an_overlong_or_unprintable_request_id_is_replaced_by_a_uuid() {
    let app = TestApp::new().await;

    let too_long = "x".repeat(MAX_REQUEST_ID_BYTES + 1);
    for sent in [
        too_long.as_bytes(),
        b"with spaces",
        b"with\ta tab",
        "non-ASCII caf\u{e9}".as_bytes(),
        b"\x80\xff",
    ] {
        let answered = request_id_answered_to(&app, HeaderValue::from_bytes(sent).unwrap()).await;
        assert!(
            uuid::Uuid::try_parse(&answered).is_ok(),
            "{sent:?} was answered with {answered:?}"
        );
    }
}

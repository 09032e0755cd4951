//! Which `x-request-id` a request keeps: the client's own when it is 1 to
//! [`MAX_REQUEST_ID_BYTES`] visible ASCII characters, a fresh UUID otherwise.
//!
//! The id is echoed in the response and written into every log line of the request, so an
//! unchecked one would let a client forge log lines, or bloat every one of them.

use axum::extract::Request;
use axum::http::HeaderValue;

use crate::http::REQUEST_ID_HEADER;

/// The longest request id kept from a client.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Removes a client's `x-request-id` that is not one usable value, so that the request-id layer
/// after this one gives the request a fresh UUID instead.
pub(crate) async fn drop_unusable_request_id(mut request: Request) -> Request {
    let mut values = request.headers().get_all(REQUEST_ID_HEADER).iter();
    let usable = match (values.next(), values.next()) {
        (None, _) => return request,
        (Some(value), None) => is_usable(value),
        (Some(_), Some(_)) => false,
    };
    if !usable {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// Whether `value` is 1 to [`MAX_REQUEST_ID_BYTES`] characters from `!` (0x21) to `~` (0x7E).
fn is_usable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=MAX_REQUEST_ID_BYTES).contains(&bytes.len())
        && bytes.iter().all(|byte| (b'!'..=b'~').contains(byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_visible_ascii() {
        for usable in [
            "a",
            "trace-me-42",
            "0b7f3d5e-2a4c-4e8f-9a1b-3c5d7e9f1a2b",
            "!~",
        ] {
            assert!(is_usable(&HeaderValue::from_static(usable)), "{usable}");
        }
        assert!(is_usable(
            &HeaderValue::from_str(&"x".repeat(MAX_REQUEST_ID_BYTES)).unwrap()
        ));

        let too_long = "x".repeat(MAX_REQUEST_ID_BYTES + 1);
        for unusable in ["", "has space", "tab\there", too_long.as_str()] {
            assert!(
                !is_usable(&HeaderValue::from_str(unusable).unwrap()),
                "{unusable:?}"
            );
        }
        for unusable in [&b"caf\xc3\xa9"[..], b"\xff", b"del\x7f"] {
            if let Ok(value) = HeaderValue::from_bytes(unusable) {
                assert!(!is_usable(&value), "{unusable:?}");
            }
        }
    }

    #[tokio::test]
    async fn an_unusable_or_repeated_id_is_dropped_and_a_usable_one_kept() {
        let request = |ids: &[&'static str]| {
            let mut request = Request::new(axum::body::Body::empty());
            for id in ids {
                request
                    .headers_mut()
                    .append(REQUEST_ID_HEADER, HeaderValue::from_static(id));
            }
            request
        };
        let kept = drop_unusable_request_id(request(&["trace-me-42"])).await;
        assert_eq!(kept.headers()[REQUEST_ID_HEADER], "trace-me-42");

        for ids in [&["has space"][..], &["one", "two"], &[]] {
            let dropped = drop_unusable_request_id(request(ids)).await;
            assert!(
                dropped.headers().get(REQUEST_ID_HEADER).is_none(),
                "{ids:?}"
            );
        }
    }
}

//! Pages of newest-first lists, and the opaque cursors clients page through them with.
//!
//! A cursor names the last row a client has seen; the next page is the rows past it, as the
//! keyset slices of [`crate::db::pagination`] read them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike as _, Utc};

use crate::db::pagination::{Keyset, KeysetSlice};
use crate::domain::validation::{identifier, storable};
use crate::error::AppError;

/// How many items a page holds when the client does not say.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// The most items one page may hold.
pub const MAX_PAGE_SIZE: i32 = 100;

/// The cursor handed to clients for `position`: opaque text they send back as `after`.
pub fn encode_cursor(position: &Keyset) -> String {
    let plain = format!("{}:{}", position.created_at.timestamp_micros(), position.id);
    URL_SAFE_NO_PAD.encode(plain)
}

/// The position a cursor sent back by a client names; `field` names the argument for the error.
///
/// A cursor this server could not have issued is refused: one that does not decode, whose time
/// lies outside years 1 to 9999 (PostgreSQL's `timestamptz` ends in year 294276, chrono's
/// sooner, and no row is that old or new), or whose id no row could have.
pub fn decode_cursor(field: &'static str, encoded: &str) -> Result<Keyset, AppError> {
    let invalid = || AppError::invalid_input(field, "not a cursor this server issued");
    let plain = URL_SAFE_NO_PAD
        .decode(storable(field, encoded)?)
        .map_err(|_| invalid())?;
    let plain = String::from_utf8(plain).map_err(|_| invalid())?;
    let (micros, id) = plain.split_once(':').ok_or_else(invalid)?;
    let created_at = micros
        .parse()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .filter(|created_at| (1..=9999).contains(&created_at.year()))
        .ok_or_else(invalid)?;
    let id = identifier(field, id).map_err(|_| invalid())?;
    Ok(Keyset { created_at, id })
}

/// A validated request for one page: its size and where it starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// How many items the page holds, 0 to [`MAX_PAGE_SIZE`].
    pub first: i64,
    /// The position the page starts after, or `None` for the first page.
    pub after: Option<Keyset>,
}

impl PageRequest {
    /// Checks the `first` and `after` arguments of a connection field.
    pub fn new(first: Option<i32>, after: Option<&str>) -> Result<Self, AppError> {
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(0..=MAX_PAGE_SIZE).contains(&first) {
            return Err(AppError::invalid_input(
                "first",
                format!("must be between 0 and {MAX_PAGE_SIZE}, got {first}"),
            ));
        }
        let after = after
            .map(|cursor| decode_cursor("after", cursor))
            .transpose()?;
        Ok(Self {
            first: i64::from(first),
            after,
        })
    }

    /// The rows to read: one more than the page holds, to learn whether another page follows.
    pub fn slice(&self) -> KeysetSlice {
        KeysetSlice {
            after: self.after.clone(),
            limit: self.first + 1,
        }
    }

    /// The page made of `rows`, read as [`slice`](Self::slice) says.
    pub fn page_from<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let page_size = usize::try_from(self.first).unwrap_or(0);
        let has_next_page = rows.len() > page_size;
        rows.truncate(page_size);
        Page {
            items: rows,
            has_next_page,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Whether more items follow the last one.
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// The same page with each item turned into another.
    pub fn map<U>(self, transform: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(transform).collect(),
            has_next_page: self.has_next_page,
        }
    }
}

/// An empty last page.
impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            has_next_page: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let position = Keyset {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: "post_abc:with:colons".to_owned(),
        };
        assert_eq!(
            decode_cursor("after", &encode_cursor(&position)).unwrap(),
            position
        );
    }

    #[test]
    fn foreign_cursors_are_bad_input() {
        for garbage in ["", "!!!", "bm9jb2xvbg", "MTIzOg", "eHl6OnBvc3Q"] {
            let error = decode_cursor("after", garbage).unwrap_err();
            assert_eq!(error.code(), "BAD_USER_INPUT", "{garbage}");
        }
    }

    #[test]
    fn cursors_no_row_could_have_are_bad_input() {
        let forge = |micros: i64, id: &str| URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"));
        let year_one = DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap();
        let last_of_9999 = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z").unwrap();
        for micros in [year_one.timestamp_micros(), last_of_9999.timestamp_micros()] {
            assert!(decode_cursor("after", &forge(micros, "post_a")).is_ok());
        }
        for (micros, id) in [
            (year_one.timestamp_micros() - 1, "post_a"),
            (last_of_9999.timestamp_micros() + 1, "post_a"),
            (i64::MAX, "post_a"),
            (0, ""),
            (0, "post_\0"),
            (0, "post_\u{1b}"),
            (0, &"p".repeat(256)),
        ] {
            let error = decode_cursor("after", &forge(micros, id)).unwrap_err();
            assert!(
                matches!(error, AppError::InvalidInput { field: "after", .. }),
                "{micros}:{id:?}"
            );
        }
        assert!(decode_cursor("after", "\0").is_err());
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(PageRequest::new(None, None).unwrap().first, 20);
        assert_eq!(PageRequest::new(Some(0), None).unwrap().first, 0);
        assert_eq!(PageRequest::new(Some(100), None).unwrap().first, 100);
        for first in [-1, 101, i32::MAX] {
            let error = PageRequest::new(Some(first), None).unwrap_err();
            assert!(matches!(
                error,
                AppError::InvalidInput { field: "first", .. }
            ));
        }
    }

    #[test]
    fn extra_row_means_another_page() {
        let request = PageRequest::new(Some(2), None).unwrap();
        assert_eq!(request.slice().limit, 3);
        let page = request.page_from(vec![1, 2, 3]);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next_page);
        assert!(!request.page_from(vec![1, 2]).has_next_page);
    }
}

//! Checks shared by the input rules of several entities.

use crate::db::ids::MAX_ID_CHARS;
use crate::error::AppError;

/// `raw` if some row could have it as its id: 1 to [`MAX_ID_CHARS`] characters, none of them a
/// control character. Anything else cannot name a row, so it is the client's mistake.
pub(crate) fn identifier(field: &'static str, raw: &str) -> Result<String, AppError> {
    if raw.is_empty() {
        return Err(AppError::invalid_input(
            field,
            format!("{field} must not be empty"),
        ));
    }
    at_most_chars(field, raw, MAX_ID_CHARS)?;
    if raw.chars().any(char::is_control) {
        return Err(AppError::invalid_input(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(raw.to_owned())
}

/// `raw` without surrounding whitespace, refused when empty or longer than `max_chars`
/// characters (characters, not bytes: "é" and "한" count one each).
pub(crate) fn trimmed_text(
    field: &'static str,
    raw: &str,
    max_chars: usize,
) -> Result<String, AppError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(AppError::invalid_input(
            field,
            format!("{field} must not be empty or only whitespace"),
        ));
    }
    at_most_chars(field, text, max_chars)?;
    Ok(text.to_owned())
}

/// Refuses `text` when it is longer than `max_chars` characters (characters, not bytes).
fn at_most_chars(field: &'static str, text: &str, max_chars: usize) -> Result<(), AppError> {
    let length = text.chars().count();
    if length > max_chars {
        return Err(AppError::invalid_input(
            field,
            format!("{field} must be at most {max_chars} characters, got {length}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_what_a_row_could_have() {
        assert_eq!(identifier("id", "post_abc").unwrap(), "post_abc");
        assert!(identifier("id", &"가".repeat(MAX_ID_CHARS)).is_ok());
        for impossible in [
            String::new(),
            "a".repeat(MAX_ID_CHARS + 1),
            "post\0abc".to_owned(),
            "post\nabc".to_owned(),
            "post\u{9b}abc".to_owned(),
        ] {
            let error = identifier("authorId", &impossible).unwrap_err();
            assert!(
                matches!(
                    error,
                    AppError::InvalidInput {
                        field: "authorId",
                        ..
                    }
                ),
                "{impossible:?}"
            );
        }
    }

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(trimmed_text("title", "  hi \n", 2).unwrap(), "hi");
        assert_eq!(trimmed_text("title", "한글", 2).unwrap(), "한글");
        assert!(trimmed_text("title", "한글!", 2).is_err());
        assert!(trimmed_text("title", " \t\u{3000}", 2).is_err());
    }
}

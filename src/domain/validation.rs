//! Checks shared by the input rules of several entities.
//!
//! Every string a client sends passes [`storable`] before anything else, so text PostgreSQL
//! cannot store never reaches it.

use crate::db::ids::MAX_ID_CHARS;
use crate::error::AppError;

/// Characters that show nothing yet are not whitespace to Unicode: zero-width spaces and
/// joiners, the word joiner, the byte-order mark, the blank Braille pattern, the Hangul fillers
/// and the Mongolian vowel separator.
const INVISIBLE: [char; 11] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{2800}', '\u{3164}', '\u{115F}',
    '\u{1160}', '\u{FFA0}', '\u{180E}',
];

/// `raw` unless it holds NUL (U+0000), the one character PostgreSQL's text cannot store.
pub(crate) fn storable<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, AppError> {
    if raw.contains('\0') {
        return Err(AppError::invalid_input(
            field,
            format!("{field} must not contain NUL characters (U+0000)"),
        ));
    }
    Ok(raw)
}

/// Whether `character` shows nothing: whitespace, a control character (C0 or C1), or one of
/// the [`INVISIBLE`] characters.
fn is_blank(character: char) -> bool {
    character.is_whitespace() || character.is_control() || INVISIBLE.contains(&character)
}

/// `raw` if some row could have it as its id: 1 to [`MAX_ID_CHARS`] characters, none of them a
/// control character. Anything else cannot name a row, so it is the client's mistake.
pub(crate) fn identifier(field: &'static str, raw: &str) -> Result<String, AppError> {
    storable(field, raw)?;
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

/// `raw` without the blank characters (see [`is_blank`]) at either end, refused when nothing
/// else is left or when longer than `max_chars` characters (characters, not bytes: "é" and "한"
/// count one each).
pub(crate) fn trimmed_text(
    field: &'static str,
    raw: &str,
    max_chars: usize,
) -> Result<String, AppError> {
    let text = storable(field, raw)?.trim_matches(is_blank);
    if text.is_empty() {
        return Err(AppError::invalid_input(
            field,
            format!("{field} must not be empty or only whitespace and invisible characters"),
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
    fn nul_is_refused_naming_the_field() {
        assert_eq!(
            storable("email", "ada@example.com").unwrap(),
            "ada@example.com"
        );
        let error = storable("email", "ada\0@example.com").unwrap_err();
        assert!(matches!(
            error,
            AppError::InvalidInput { field: "email", .. }
        ));
        assert!(error.to_string().contains("U+0000"));
    }

    #[test]
    fn invisible_and_control_characters_are_blank() {
        for character in INVISIBLE
            .into_iter()
            .chain(['\u{1}', '\u{7f}', '\u{85}', '\u{9f}', '\u{a0}', '\u{3000}'])
        {
            let blank = format!(" {character}{character}\t");
            assert!(trimmed_text("name", &blank, 100).is_err(), "{character:?}");
            let padded = format!("{character}Ada{character}");
            assert_eq!(
                trimmed_text("name", &padded, 100).unwrap(),
                "Ada",
                "{character:?}"
            );
        }
        // Inside the text they stay: a zero-width joiner binds an emoji sequence.
        assert_eq!(
            trimmed_text("title", "👩\u{200D}💻 at work", 200).unwrap(),
            "👩\u{200D}💻 at work"
        );
    }

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(trimmed_text("title", "  hi \n", 2).unwrap(), "hi");
        assert_eq!(trimmed_text("title", "한글", 2).unwrap(), "한글");
        assert!(trimmed_text("title", "한글!", 2).is_err());
        assert!(trimmed_text("title", " \t\u{3000}", 2).is_err());
    }
}

//! Checks shared by the input rules of several entities.

use crate::error::AppError;

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
    let length = text.chars().count();
    if length > max_chars {
        return Err(AppError::invalid_input(
            field,
            format!("{field} must be at most {max_chars} characters, got {length}"),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(trimmed_text("title", "  hi \n", 2).unwrap(), "hi");
        assert_eq!(trimmed_text("title", "한글", 2).unwrap(), "한글");
        assert!(trimmed_text("title", "한글!", 2).is_err());
        assert!(trimmed_text("title", " \t\u{3000}", 2).is_err());
    }
}

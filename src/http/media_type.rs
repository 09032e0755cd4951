//! Media types as `Content-Type` and `Accept` carry them, read as far as content negotiation
//! needs: the type itself, its weight (`q`) and whether its charset is UTF-8.

/// One media type or media range, such as `application/json; charset=utf-8` or `*/*;q=0.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaRange<'a> {
    /// `type/subtype` as written, without parameters.
    essence: &'a str,
    /// The weight in thousandths (1000 when there is no `q`); `None` when `q` is malformed.
    pub(crate) weight: Option<u16>,
    /// Whether the range allows UTF-8: it has no `charset`, or names `utf-8` (or `utf8`).
    pub(crate) utf8: bool,
}

impl<'a> MediaRange<'a> {
    /// Reads one media range; unknown parameters are ignored.
    pub(crate) fn parse(text: &'a str) -> Self {
        let mut parts = text.split(';');
        let mut range = Self {
            essence: parts.next().unwrap_or_default().trim(),
            weight: Some(1000),
            utf8: true,
        };
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            let name = name.trim();
            if name.eq_ignore_ascii_case("q") {
                range.weight = weight(value);
            } else if name.eq_ignore_ascii_case("charset") {
                range.utf8 =
                    value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8");
            }
        }
        range
    }

    /// Whether this is `media_type` (or the range written the same way), ignoring case.
    pub(crate) fn is(&self, media_type: &str) -> bool {
        self.essence.eq_ignore_ascii_case(media_type)
    }
}

/// A `q` value (RFC 9110 §12.4.2: 0 to 1 with at most three decimals) in thousandths.
fn weight(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let whole = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let fraction: u16 = format!("{fraction:0<3}").parse().ok()?;
    Some(whole + fraction).filter(|weight| *weight <= 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_type_weight_and_charset() {
        let range = MediaRange::parse(" Application/JSON ; q=0.5 ; charset=\"UTF-8\" ");
        assert!(range.is("application/json"));
        assert_eq!(range.weight, Some(500));
        assert!(range.utf8);

        let latin = MediaRange::parse("application/json;charset=iso-8859-1");
        assert!(!latin.utf8);
        assert_eq!(latin.weight, Some(1000));
    }

    #[test]
    fn weights_follow_the_rfc_grammar() {
        for (q, expected) in [
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("0", Some(0)),
            ("0.9", Some(900)),
            ("0.125", Some(125)),
            ("1.5", None),
            ("0.1234", None),
            ("2", None),
            ("-1", None),
            ("", None),
            ("0.x", None),
        ] {
            assert_eq!(weight(q), expected, "q={q}");
        }
    }
}

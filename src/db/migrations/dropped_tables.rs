//! Which tables a down migration drops, read from its SQL.
//!
//! `festapi migrate revert` refuses to drop tables that hold rows unless told to, so it must know
//! the tables a revert drops before running it. The one mechanism is reading every
//! `DROP TABLE` statement of each `down.sql`: comments, string literals and dollar-quoted bodies
//! (`DO $$ … $$`) are skipped first, so text that merely mentions a drop does not count.

/// The tables `sql` drops with `DROP TABLE`, in the order it drops them, as PostgreSQL names
/// them: unquoted names folded to lower case, quoted ones as written, a schema kept when given
/// (`audit.events`).
pub(crate) fn dropped_tables(sql: &str) -> Vec<String> {
    let mut tables = Vec::new();
    for statement in code_only(sql).split(';') {
        let words: Vec<&str> = statement.split_whitespace().collect();
        let [first, second, ..] = words.as_slice() else {
            continue;
        };
        if !first.eq_ignore_ascii_case("drop") || !second.eq_ignore_ascii_case("table") {
            continue;
        }
        let mut rest = &words[2..];
        if rest.len() >= 2
            && rest[0].eq_ignore_ascii_case("if")
            && rest[1].eq_ignore_ascii_case("exists")
        {
            rest = &rest[2..];
        }
        if let Some(last) = rest.last()
            && (last.eq_ignore_ascii_case("cascade") || last.eq_ignore_ascii_case("restrict"))
        {
            rest = &rest[..rest.len() - 1];
        }
        tables.extend(
            rest.join(" ")
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(normalized_name),
        );
    }
    tables
}

/// A table name as written in SQL (`Users`, `"Users"`, `public.users`) as PostgreSQL stores it.
fn normalized_name(written: &str) -> String {
    written
        .split('.')
        .map(|part| {
            match part
                .strip_prefix('"')
                .and_then(|part| part.strip_suffix('"'))
            {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => part.to_ascii_lowercase(),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// `sql` with comments, string literals and dollar-quoted bodies each replaced by one space, so
/// that what is left is statements and their separators only.
fn code_only(sql: &str) -> String {
    let mut code = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(next) = rest.chars().next() {
        let skipped = if rest.starts_with("--") {
            rest.find('\n').map_or(rest.len(), |end| end + 1)
        } else if let Some(comment) = rest.strip_prefix("/*") {
            comment.find("*/").map_or(rest.len(), |end| end + 4)
        } else if next == '\'' {
            string_literal_length(rest)
        } else if let Some(tag) = dollar_quote_tag(rest) {
            rest[tag.len()..]
                .find(tag)
                .map_or(rest.len(), |end| 2 * tag.len() + end)
        } else {
            0
        };
        if skipped == 0 {
            code.push(next);
            rest = &rest[next.len_utf8()..];
        } else {
            code.push(' ');
            rest = &rest[skipped..];
        }
    }
    code
}

/// The length of the `'…'` literal `text` starts with, `''` inside it being a quote.
fn string_literal_length(text: &str) -> usize {
    let mut position = 1;
    while let Some(offset) = text[position..].find('\'') {
        position += offset + 1;
        if !text[position..].starts_with('\'') {
            return position;
        }
        position += 1;
    }
    text.len()
}

/// The opening `$tag$` (or `$$`) `text` starts with, if it starts with one.
fn dollar_quote_tag(text: &str) -> Option<&str> {
    let after = text.strip_prefix('$')?;
    let end = after.find('$')?;
    let tag = &after[..end];
    let is_tag = tag
        .chars()
        .enumerate()
        .all(|(index, c)| c == '_' || c.is_alphabetic() || (index > 0 && c.is_ascii_digit()));
    is_tag.then(|| &text[..end + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_table_statement_is_found_in_order() {
        let sql = "DROP TABLE auth_flows;\n\
                   ALTER TABLE users DROP COLUMN name_set_by_user;\n\
                   drop table if exists Identities, \"Odd\"\"Name\" CASCADE;\n\
                   DROP TABLE audit.events RESTRICT;\n\
                   DROP FUNCTION festapi_touch_updated_at();";

        assert_eq!(
            dropped_tables(sql),
            ["auth_flows", "identities", "Odd\"Name", "audit.events"]
        );
    }

    #[test]
    fn comments_strings_and_dollar_quoted_bodies_drop_nothing() {
        let sql = "-- DROP TABLE users;\n\
                   /* DROP TABLE posts; */\n\
                   SELECT 'DROP TABLE sessions; it''s DROP TABLE quoted';\n\
                   DO $$ BEGIN EXECUTE 'x'; DROP TABLE inside_do; END $$;\n\
                   DO $body$ BEGIN RAISE NOTICE '$$'; END $body$;\n\
                   CREATE TABLE token_blacklist (jti text PRIMARY KEY);";

        assert!(dropped_tables(sql).is_empty(), "{:?}", dropped_tables(sql));
    }

    #[test]
    fn a_drop_after_a_dollar_quoted_block_is_found() {
        let sql = "DO $$ BEGIN RAISE EXCEPTION 'no; really'; END $$;\nDROP TABLE posts;";

        assert_eq!(dropped_tables(sql), ["posts"]);
    }
}

//! The dump of the Python service's in-memory database, read and checked record by record.
//!
//! Every record is checked against the rules the API applies (trimming included) before
//! anything is written, and every problem is kept with the record's key and the field, so one
//! run lists all of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::config::ProviderName;
use crate::db::ids::{PostId, UserId};
use crate::domain::posts::{valid_content, valid_title};
use crate::domain::users::{valid_email, valid_name, valid_picture};
use crate::domain::validation::identifier;
use crate::error::AppError;

/// The providers the Python service signed users in with.
const DUMP_PROVIDERS: [ProviderName; 4] = [
    ProviderName::Google,
    ProviderName::Apple,
    ProviderName::Naver,
    ProviderName::Kakao,
];

/// The record a problem, a conflict or a skip is about: the key it is stored under in the dump.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKey {
    /// A member of `users`, keyed by e-mail address.
    User(String),
    /// A member of `posts`, keyed by post id.
    Post(String),
}

impl fmt::Display for RecordKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(key) => write!(formatter, "user {key:?}"),
            Self::Post(key) => write!(formatter, "post {key:?}"),
        }
    }
}

/// Something about one record that keeps it out of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The record.
    pub record: RecordKey,
    /// The field at fault, as the dump spells it; `None` for the record as a whole.
    pub field: Option<&'static str>,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(formatter, "{}, field {field}: {}", self.record, self.reason),
            None => write!(formatter, "{}: {}", self.record, self.reason),
        }
    }
}

/// A dump that is not JSON, or not shaped as one: nothing in it can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    /// The text is not JSON.
    #[error("the dump is not valid JSON: line {line}, column {column}: {reason}")]
    Syntax {
        /// The line of the first error, from 1.
        line: usize,
        /// The column of the first error, in characters, from 1.
        column: usize,
        /// What the parser found there.
        reason: String,
    },
    /// The JSON is not a dump of the Python service.
    #[error("the dump is not a dump of the Python service: {0}")]
    Shape(String),
}

/// A user as it will be stored: checked and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpUser {
    /// The e-mail address the dump keys the user by.
    pub key: String,
    /// The user's id, `{provider}_{provider_id}`.
    pub id: UserId,
    /// The e-mail address, in its case.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The picture URL.
    pub picture: Option<String>,
    /// Whether the provider verified the address.
    pub verified_email: bool,
    /// The provider the user signed in with.
    pub provider: ProviderName,
    /// The user's id at that provider.
    pub provider_id: String,
    /// When the user was created; `None` when the dump does not know.
    pub created_at: Option<DateTime<Utc>>,
    /// When the user last changed; `None` when the dump does not know.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A post as it will be stored: checked and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPost {
    /// The post's id, which is also its key.
    pub id: PostId,
    /// The title.
    pub title: String,
    /// The content.
    pub content: String,
    /// The key (e-mail address) of its author in the dump.
    pub author_key: String,
    /// When the post was created.
    pub created_at: DateTime<Utc>,
    /// When the post last changed.
    pub updated_at: DateTime<Utc>,
}

/// A dump read and checked: the records that passed, and what is wrong with the others.
#[derive(Debug, Default)]
pub struct CheckedDump {
    /// How many members `users` has.
    pub users_read: usize,
    /// How many members `posts` has.
    pub posts_read: usize,
    /// The users that passed every check, by key.
    pub users: BTreeMap<String, DumpUser>,
    /// The posts that passed every check, whatever their author's fate.
    pub posts: Vec<DumpPost>,
    /// Every problem found: users first, then posts, each in key order.
    pub problems: Vec<Problem>,
    /// How many tokens of the old service (`token_blacklist`, `active_sessions`) the dump holds.
    pub old_tokens: usize,
}

/// Reads `bytes` as a dump and checks every record.
pub fn check(bytes: &[u8]) -> Result<CheckedDump, DumpError> {
    let document: Value = serde_json::from_slice(bytes).map_err(|error| DumpError::Syntax {
        line: error.line(),
        column: character_column(bytes, error.line(), error.column()),
        reason: syntax_reason(&error),
    })?;
    let Value::Object(document) = document else {
        return Err(DumpError::Shape("it is not a JSON object".into()));
    };
    let users = member_object(&document, "users")?;
    let posts = member_object(&document, "posts")?;
    let old_tokens = ["token_blacklist", "active_sessions"]
        .iter()
        .filter_map(|name| document.get(*name).and_then(Value::as_object))
        .map(Map::len)
        .sum();

    let mut checked = CheckedDump {
        users_read: users.len(),
        posts_read: posts.len(),
        old_tokens,
        ..CheckedDump::default()
    };
    let user_keys: HashSet<&str> = users.keys().map(String::as_str).collect();
    for (key, record) in users {
        let record_key = RecordKey::User(key.clone());
        let mut fields = Fields::of(&record_key, record, &mut checked.problems);
        if let Some(user) = check_user(key, &mut fields) {
            checked.users.insert(key.clone(), user);
        }
    }
    refuse_shared_emails(&mut checked);
    refuse_shared_identities(&mut checked);

    let mut post_keys: Vec<&String> = posts.keys().collect();
    post_keys.sort();
    for key in post_keys {
        let record_key = RecordKey::Post(key.clone());
        let mut fields = Fields::of(&record_key, &posts[key], &mut checked.problems);
        if let Some(post) = check_post(key, &user_keys, &mut fields) {
            checked.posts.push(post);
        }
    }
    // Sorting is stable: each record's problems stay in the order of its fields.
    checked
        .problems
        .sort_by(|left, right| left.record.cmp(&right.record));
    Ok(checked)
}

/// The column, in characters as an editor counts them, of the `byte_column`th byte of `line`
/// (both from 1): serde_json counts bytes, and a line of Korean text has three to a character.
fn character_column(bytes: &[u8], line: usize, byte_column: usize) -> usize {
    let line_start = bytes
        .split_inclusive(|byte| *byte == b'\n')
        .take(line.saturating_sub(1))
        .map(<[u8]>::len)
        .sum::<usize>();
    let line_end = (line_start + byte_column).min(bytes.len());
    String::from_utf8_lossy(&bytes[line_start.min(line_end)..line_end])
        .chars()
        .count()
}

/// serde_json's message without its trailing position, which [`DumpError::Syntax`] gives.
fn syntax_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(position) => message[..position].to_owned(),
        None => message,
    }
}

fn member_object<'a>(
    document: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Map<String, Value>, DumpError> {
    match document.get(name) {
        Some(Value::Object(members)) => Ok(members),
        Some(_) => Err(DumpError::Shape(format!("`{name}` is not an object"))),
        None => Err(DumpError::Shape(format!("it has no `{name}` member"))),
    }
}

fn check_user(key: &str, fields: &mut Fields<'_>) -> Option<DumpUser> {
    let id = fields
        .text("id")
        .and_then(|raw| fields.rule("id", identifier("id", raw)));
    let email = fields.text("email").and_then(|raw| match valid_email(raw) {
        Ok(email) if email == key => Some(email),
        Ok(_) => {
            fields.problem(
                "email",
                format!("{raw:?} differs from the key {key:?} it is stored under"),
            );
            None
        }
        Err(error) if raw.trim() != key => {
            fields.problem(
                "email",
                format!("{error}, and {raw:?} differs from the key {key:?} it is stored under"),
            );
            None
        }
        Err(error) => fields.rule("email", Err(error)),
    });
    let name = fields
        .text("name")
        .and_then(|raw| fields.rule("name", valid_name(raw)));
    let picture = fields.optional_text("picture").and_then(|raw| match raw {
        Some(raw) => fields.rule("picture", valid_picture(raw)).map(Some),
        None => Some(None),
    });
    let verified_email = fields.flag("verified_email");
    let provider = fields.text("provider").and_then(|raw| {
        let known = DUMP_PROVIDERS
            .into_iter()
            .find(|provider| provider.as_str() == raw);
        if known.is_none() {
            fields.problem(
                "provider",
                format!("{raw:?} is not one of google, apple, naver, kakao"),
            );
        }
        known
    });
    let provider_id = fields
        .text("provider_id")
        .and_then(|raw| fields.rule("provider_id", identifier("provider_id", raw)));
    let created_at = fields.optional_timestamp("created_at");
    let updated_at = fields.optional_timestamp("updated_at");

    let (id, provider, provider_id) = (id?, provider?, provider_id?);
    let expected_id = format!("{provider}_{provider_id}");
    if id != expected_id {
        fields.problem(
            "id",
            format!("{id:?} is not {expected_id:?}, its provider and provider_id"),
        );
        return None;
    }
    Some(DumpUser {
        key: key.to_owned(),
        id: UserId::from_trusted(id),
        email: email?,
        name: name?,
        picture: picture?,
        verified_email: verified_email?,
        provider,
        provider_id,
        created_at: created_at?,
        updated_at: updated_at?,
    })
}

fn check_post(key: &str, user_keys: &HashSet<&str>, fields: &mut Fields<'_>) -> Option<DumpPost> {
    let id = fields
        .text("id")
        .and_then(|raw| fields.rule("id", identifier("id", raw)));
    let id = id.and_then(|id| {
        if id == key {
            Some(id)
        } else {
            fields.problem(
                "id",
                format!("{id:?} differs from the key {key:?} it is stored under"),
            );
            None
        }
    });
    let title = fields
        .text("title")
        .and_then(|raw| fields.rule("title", valid_title(raw)));
    let content = fields
        .text("content")
        .and_then(|raw| fields.rule("content", valid_content(raw)));
    let author_key = fields.text("author_email").and_then(|author| {
        if user_keys.contains(author) {
            Some(author.to_owned())
        } else {
            fields.problem(
                "author_email",
                format!("no user of the dump has the key {author:?}"),
            );
            None
        }
    });
    let created_at = fields.timestamp("created_at");
    let updated_at = fields.timestamp("updated_at");
    Some(DumpPost {
        id: PostId::from_trusted(id?),
        title: title?,
        content: content?,
        author_key: author_key?,
        created_at: created_at?,
        updated_at: updated_at?,
    })
}

/// Refuses every user whose address another user's equals without regard to case: which of
/// them owns it is for a person to decide.
fn refuse_shared_emails(checked: &mut CheckedDump) {
    let mut by_address: HashMap<String, Vec<String>> = HashMap::new();
    for user in checked.users.values() {
        by_address
            .entry(user.email.to_lowercase())
            .or_default()
            .push(user.key.clone());
    }
    refuse_groups(checked, by_address.into_values(), "email", |others| {
        format!("the address is the same as that of {others} without regard to case")
    });
}

/// Refuses every user whose (provider, provider_id) another user has too.
fn refuse_shared_identities(checked: &mut CheckedDump) {
    let mut by_identity: HashMap<(ProviderName, String), Vec<String>> = HashMap::new();
    for user in checked.users.values() {
        by_identity
            .entry((user.provider, user.provider_id.clone()))
            .or_default()
            .push(user.key.clone());
    }
    refuse_groups(
        checked,
        by_identity.into_values(),
        "provider_id",
        |others| format!("the same (provider, provider_id) belongs to {others}"),
    );
}

fn refuse_groups(
    checked: &mut CheckedDump,
    groups: impl Iterator<Item = Vec<String>>,
    field: &'static str,
    reason: impl Fn(&str) -> String,
) {
    let mut refused = Vec::new();
    for group in groups.filter(|group| group.len() > 1) {
        for key in &group {
            let others: Vec<String> = group
                .iter()
                .filter(|other| *other != key)
                .map(|other| format!("user {other:?}"))
                .collect();
            refused.push(Problem {
                record: RecordKey::User(key.clone()),
                field: Some(field),
                reason: reason(&others.join(", ")),
            });
        }
    }
    refused.sort_by(|left, right| left.record.cmp(&right.record));
    for problem in refused {
        if let RecordKey::User(key) = &problem.record {
            checked.users.remove(key);
        }
        checked.problems.push(problem);
    }
}

/// Reads a timestamp in one of the forms the Python service wrote: RFC 3339 with `Z` or an
/// offset, or without a zone (UTC). PostgreSQL keeps microseconds, so finer digits are dropped.
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let instant = DateTime::parse_from_rfc3339(raw)
        .map(|instant| instant.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").map(|naive| naive.and_utc())
        })
        .ok()?;
    DateTime::from_timestamp_micros(instant.timestamp_micros())
}

/// The fields of one record, each read once, with what is wrong with them collected.
struct Fields<'a> {
    record: &'a RecordKey,
    object: Option<&'a Map<String, Value>>,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Fields<'a> {
    fn of(record: &'a RecordKey, value: &'a Value, problems: &'a mut Vec<Problem>) -> Self {
        let object = value.as_object();
        if object.is_none() {
            problems.push(Problem {
                record: record.clone(),
                field: None,
                reason: "the record is not a JSON object".into(),
            });
        }
        Self {
            record,
            object,
            problems,
        }
    }

    fn problem(&mut self, field: &'static str, reason: String) {
        self.problems.push(Problem {
            record: self.record.clone(),
            field: Some(field),
            reason,
        });
    }

    /// The value of `field`; a missing field is a problem (and an absent record is one already).
    fn value(&mut self, field: &'static str) -> Option<&'a Value> {
        let object = self.object?;
        let value = object.get(field);
        if value.is_none() {
            self.problem(field, "the field is missing".into());
        }
        value
    }

    fn text(&mut self, field: &'static str) -> Option<&'a str> {
        match self.value(field)? {
            Value::String(text) => Some(text),
            other => {
                self.problem(field, format!("expected a string, got {}", kind(other)));
                None
            }
        }
    }

    fn optional_text(&mut self, field: &'static str) -> Option<Option<&'a str>> {
        match self.value(field)? {
            Value::Null => Some(None),
            Value::String(text) => Some(Some(text)),
            other => {
                self.problem(
                    field,
                    format!("expected a string or null, got {}", kind(other)),
                );
                None
            }
        }
    }

    fn flag(&mut self, field: &'static str) -> Option<bool> {
        match self.value(field)? {
            Value::Bool(flag) => Some(*flag),
            other => {
                self.problem(
                    field,
                    format!("expected true or false, got {}", kind(other)),
                );
                None
            }
        }
    }

    fn timestamp(&mut self, field: &'static str) -> Option<DateTime<Utc>> {
        let raw = self.text(field)?;
        self.parsed_timestamp(field, raw)
    }

    fn optional_timestamp(&mut self, field: &'static str) -> Option<Option<DateTime<Utc>>> {
        match self.optional_text(field)? {
            Some(raw) => self.parsed_timestamp(field, raw).map(Some),
            None => Some(None),
        }
    }

    fn parsed_timestamp(&mut self, field: &'static str, raw: &str) -> Option<DateTime<Utc>> {
        let parsed = parse_timestamp(raw);
        if parsed.is_none() {
            self.problem(
                field,
                format!("{raw:?} is not a timestamp such as 2024-01-08T12:00:00Z"),
            );
        }
        parsed
    }

    /// The outcome of one of the API's rules, its refusal kept as a problem of `field`.
    fn rule<T>(&mut self, field: &'static str, outcome: Result<T, AppError>) -> Option<T> {
        outcome
            .map_err(|error| self.problem(field, error.to_string()))
            .ok()
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_form_the_service_wrote_are_utc() {
        let noon = "2024-01-08T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(parse_timestamp("2024-01-08T12:00:00Z"), Some(noon));
        assert_eq!(parse_timestamp("2024-01-08T12:00:00"), Some(noon));
        assert_eq!(parse_timestamp("2024-01-08T21:00:00+09:00"), Some(noon));
        assert_eq!(
            parse_timestamp("2024-01-06T12:07:00.050631")
                .unwrap()
                .timestamp_subsec_micros(),
            50_631
        );
        assert_eq!(
            parse_timestamp("2024-02-01T00:00:01.5Z")
                .unwrap()
                .timestamp_subsec_micros(),
            500_000
        );
        // PostgreSQL keeps microseconds: nanoseconds would never compare equal once stored.
        assert_eq!(
            parse_timestamp("2024-01-08T12:00:00.123456789Z")
                .unwrap()
                .timestamp_subsec_nanos(),
            123_456_000
        );
        for bad in [
            "yesterday",
            "",
            "2024-01-08",
            "2024-13-08T12:00:00Z",
            "12:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_of_the_wrong_type_are_problems_not_failures() {
        let dump = br#"{"users": {"a@example.com": 7,
            "b@example.com": {"id": "google_1", "email": "b@example.com", "name": "B",
              "picture": null, "verified_email": "yes", "provider": "myspace",
              "provider_id": "1", "created_at": null}},
            "posts": {"p1": []}}"#;
        let checked = check(dump).unwrap();
        let reasons: Vec<String> = checked.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "user \"a@example.com\": the record is not a JSON object",
                "user \"b@example.com\", field verified_email: expected true or false, got a string",
                "user \"b@example.com\", field provider: \"myspace\" is not one of google, apple, naver, kakao",
                "user \"b@example.com\", field updated_at: the field is missing",
                "post \"p1\": the record is not a JSON object",
            ]
        );
        assert!(checked.users.is_empty() && checked.posts.is_empty());
    }

    #[test]
    fn addresses_and_identities_shared_between_users_refuse_them_all() {
        let user = |key: &str, id: &str| {
            serde_json::json!({"id": format!("google_{id}"), "email": key, "name": "N",
                "picture": null, "verified_email": false, "provider": "google",
                "provider_id": id, "created_at": null, "updated_at": null})
        };
        let dump = serde_json::json!({"posts": {}, "users": {
            "Ada@example.com": user("Ada@example.com", "1"),
            "ada@example.com": user("ada@example.com", "2"),
            "bob@example.com": user("bob@example.com", "3"),
            "eve@example.com": user("eve@example.com", "3"),
            "zoe@example.com": user("zoe@example.com", "4"),
        }});
        let checked = check(dump.to_string().as_bytes()).unwrap();
        let refused: Vec<(String, &str)> = checked
            .problems
            .iter()
            .map(|problem| (problem.record.to_string(), problem.field.unwrap()))
            .collect();
        assert_eq!(
            refused,
            [
                ("user \"Ada@example.com\"".to_owned(), "email"),
                ("user \"ada@example.com\"".to_owned(), "email"),
                ("user \"bob@example.com\"".to_owned(), "provider_id"),
                ("user \"eve@example.com\"".to_owned(), "provider_id"),
            ]
        );
        assert_eq!(
            checked.users.keys().collect::<Vec<_>>(),
            ["zoe@example.com"]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let error = check("{\"users\": {},\n\"posts\": {\"한글\": ]".as_bytes()).unwrap_err();
        assert!(
            matches!(
                error,
                DumpError::Syntax {
                    line: 2,
                    column: 17,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn json_errors_give_line_and_column() {
        let error = check(b"{\"users\": {},\n \"posts\": {\"p\": ").unwrap_err();
        assert!(
            matches!(
                error,
                DumpError::Syntax {
                    line: 2,
                    column: 16,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(matches!(check(b"[]"), Err(DumpError::Shape(_))));
        assert!(matches!(
            check(b"{\"users\": {}}"),
            Err(DumpError::Shape(_))
        ));
    }
}

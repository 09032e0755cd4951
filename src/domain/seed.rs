//! Synthetic data for benchmarks and demonstrations (`festapi seed`): users who can sign in, and
//! posts spread over those authors and over a year, of realistic sizes.
//!
//! The same sizes and seed always give the same rows, byte for byte: every value comes from a
//! SplitMix64 generator written out below (so no dependency update can change the sequence), and
//! every timestamp is counted back from a fixed [`EPOCH`], never from the clock. Benchmarks run on
//! different days, or on different machines, therefore read the same data.
//!
//! Posts are generated in creation order and streamed into the database in large multi-row
//! INSERTs inside one transaction, so that a million of them never sit in memory at once and a
//! failed seed leaves nothing behind.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use uuid::Uuid;

use crate::db::bulk::{self, ContentRows};
use crate::db::ids::{IdentityId, PostId, UserId};
use crate::db::models::{CarriedOverIdentity, CarriedOverPost, CarriedOverUser, NewPost, NewUser};
use crate::db::{identities, posts, users};
use crate::domain::users::LOCAL_PROVIDER;
use crate::progress::Progress;

/// The most users one seed creates.
pub const MAX_USERS: i64 = 1_000_000;
/// The most posts one seed creates: about 1.1 GB of text at this size.
pub const MAX_POSTS: i64 = 1_000_000;
/// The shortest and longest titles, in characters.
pub const TITLE_CHARS: (usize, usize) = (20, 80);
/// The shortest and longest contents, in characters.
pub const CONTENT_CHARS: (usize, usize) = (200, 2_000);

/// Rows per INSERT: a few megabytes of posts per statement, well under PostgreSQL's 65,535 bind
/// parameters for every table written (posts take 6 per row).
const ROWS_PER_STATEMENT: usize = 2_000;

/// The instant every seeded timestamp is counted back from: 2026-01-01 00:00:00 UTC. The newest
/// post is a little older than this.
pub const EPOCH: DateTime<Utc> = match DateTime::from_timestamp(1_767_225_600, 0) {
    Some(epoch) => epoch,
    None => panic!("the seeding epoch is a valid timestamp"),
};

/// Users sign up during the year before the posts' year; posts are written during the year
/// before [`EPOCH`].
const YEAR: TimeDelta = TimeDelta::days(365);

/// How much to seed, checked: 1 to [`MAX_USERS`] users, 1 to [`MAX_POSTS`] posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRequest {
    users: usize,
    posts: usize,
    seed: u64,
}

impl SeedRequest {
    /// Checks the sizes an operator asked for; `seed` picks one of the possible data sets.
    pub fn new(users: i64, posts: i64, seed: u64) -> anyhow::Result<Self> {
        let users = within("--users", users, MAX_USERS)?;
        let posts = within("--posts", posts, MAX_POSTS)?;
        Ok(Self { users, posts, seed })
    }

    /// How many users to create.
    pub fn users(&self) -> usize {
        self.users
    }

    /// How many posts to create.
    pub fn posts(&self) -> usize {
        self.posts
    }

    /// The seed of the generator.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

fn within(argument: &str, value: i64, max: i64) -> anyhow::Result<usize> {
    anyhow::ensure!(
        (1..=max).contains(&value),
        "{argument} must be between 1 and {}, got {value}",
        thousands(max)
    );
    usize::try_from(value).with_context(|| format!("{argument} {value} is too large here"))
}

/// `1000000` written `1,000,000`.
fn thousands(value: i64) -> String {
    let digits = value.to_string();
    let mut written = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            written.push(',');
        }
        written.push(digit);
    }
    written
}

/// A user as seeded, with the identity that signs them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededUser {
    /// `festapi_` and [`provider_id`](Self::provider_id), as for accounts FestAPI creates.
    pub id: UserId,
    /// A random 32-digit hexadecimal id, the identity's subject.
    pub provider_id: String,
    /// `first.last.N@example.org` (or `.com`, `.net`): unique, in lower case.
    pub email: String,
    /// `First Last`.
    pub name: String,
    /// When the user signed up.
    pub created_at: DateTime<Utc>,
    /// The id of the user's identity.
    pub identity_id: IdentityId,
}

/// A post as seeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededPost {
    /// `post_` and a time-ordered UUID, as for posts the API creates.
    pub id: PostId,
    /// A sentence of [`TITLE_CHARS`] characters.
    pub title: String,
    /// Paragraphs of [`CONTENT_CHARS`] characters.
    pub content: String,
    /// Its author's position in the seeded users.
    pub author: usize,
    /// When it was written; also its `updated_at`.
    pub created_at: DateTime<Utc>,
}

/// The users of `request`, oldest first.
pub fn users(request: &SeedRequest) -> Vec<SeededUser> {
    let mut random = SplitMix64::new(request.seed, Stream::Users);
    let span = micros(YEAR);
    let step = span / request.users as i64;
    let first = EPOCH - YEAR - YEAR;
    (0..request.users)
        .map(|index| {
            let created_at = first
                + TimeDelta::microseconds(index as i64 * step)
                + TimeDelta::microseconds(random.below(step.max(1) as u64) as i64);
            let provider_id = Uuid::from_bytes(random.bytes16()).simple().to_string();
            let given = random.pick(GIVEN_NAMES);
            let family = random.pick(FAMILY_NAMES);
            let domain = random.pick(&["example.org", "example.com", "example.net"]);
            let identity_id = IdentityId::from_trusted(format!(
                "identity_{}",
                time_ordered_uuid(created_at, &mut random)
            ));
            SeededUser {
                id: UserId::from_trusted(format!("{LOCAL_PROVIDER}_{provider_id}")),
                email: format!(
                    "{}.{}.{}@{domain}",
                    given.to_lowercase(),
                    family.to_lowercase(),
                    index + 1
                ),
                name: format!("{given} {family}"),
                provider_id,
                created_at,
                identity_id,
            }
        })
        .collect()
}

/// The posts of `request`, oldest first, made one at a time.
pub fn posts(request: &SeedRequest) -> SeededPosts {
    let span = micros(YEAR);
    SeededPosts {
        random: SplitMix64::new(request.seed, Stream::Posts),
        authors: request.users,
        total: request.posts,
        made: 0,
        step: span / request.posts as i64,
        first: EPOCH - YEAR,
    }
}

/// The posts of one seed, generated as they are read.
#[derive(Debug, Clone)]
pub struct SeededPosts {
    random: SplitMix64,
    authors: usize,
    total: usize,
    made: usize,
    /// Microseconds between the starts of consecutive posts' time slots.
    step: i64,
    first: DateTime<Utc>,
}

impl Iterator for SeededPosts {
    type Item = SeededPost;

    fn next(&mut self) -> Option<SeededPost> {
        if self.made == self.total {
            return None;
        }
        let random = &mut self.random;
        // One slot of time per post, the post somewhere within it: strictly increasing times,
        // irregular gaps.
        let created_at = self.first
            + TimeDelta::microseconds(self.made as i64 * self.step)
            + TimeDelta::microseconds(random.below(self.step.max(1) as u64) as i64);
        // Squaring a uniform draw favours the first users: a few prolific authors, a long tail
        // of occasional ones, as on a real site.
        let draw = random.unit();
        let author = ((draw * draw * self.authors as f64) as usize).min(self.authors - 1);
        let id = PostId::from_trusted(format!("post_{}", time_ordered_uuid(created_at, random)));
        let title_chars = random.between(TITLE_CHARS.0, TITLE_CHARS.1);
        let title = text(random, title_chars, 4..=9, usize::MAX);
        let content_chars = random.between(CONTENT_CHARS.0, CONTENT_CHARS.1);
        let content = text(random, content_chars, 6..=16, 5);
        self.made += 1;
        Some(SeededPost {
            id,
            title,
            content,
            author,
            created_at,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.made;
        (left, Some(left))
    }
}

/// What a seed wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// What was asked.
    pub request: SeedRequest,
    /// The users and posts deleted first (`--force`).
    pub deleted: ContentRows,
    /// Characters of post content written.
    pub content_chars: u64,
    /// How long it took, from the first statement to the commit.
    pub elapsed: Duration,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deleted != ContentRows::default() {
            writeln!(
                formatter,
                "deleted {} users and {} posts first",
                self.deleted.users, self.deleted.posts
            )?;
        }
        write!(
            formatter,
            "seeded {} users (each with a sign-in identity) and {} posts ({:.1} MB of content) \
             with seed {} in {:.1} s",
            self.request.users,
            self.request.posts,
            self.content_chars as f64 / 1e6,
            self.request.seed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Writes the users, identities and posts of `request` in one transaction, then refreshes the
/// planner's statistics.
///
/// A database that holds users or posts already is refused, unless `replace` says to delete
/// them (with everything that hangs off them) first.
pub async fn seed(
    connection: &mut AsyncPgConnection,
    request: SeedRequest,
    replace: bool,
    progress: &Progress,
) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let (deleted, content_chars) = connection
        .transaction(async |connection| -> anyhow::Result<_> {
            bulk::lift_time_limits_for_transaction(connection).await?;
            let stored = bulk::count_content(connection)
                .await
                .context("counting the users and posts stored")?;
            let deleted = if stored == ContentRows::default() {
                ContentRows::default()
            } else if replace {
                bulk::delete_all_content(connection)
                    .await
                    .context("deleting the users and posts stored")?;
                stored
            } else {
                anyhow::bail!(
                    "the database already holds {} users and {} posts; seed an empty database, \
                     or pass --force to delete them (with their identities and sessions) first",
                    stored.users,
                    stored.posts
                );
            };
            let users = users(&request);
            write_users(connection, &users, progress).await?;
            let content_chars = write_posts(connection, &request, &users, progress).await?;
            progress.finish();
            bulk::analyze_content(connection)
                .await
                .context("refreshing the planner's statistics")?;
            Ok((deleted, content_chars))
        })
        .await?;
    Ok(SeedReport {
        request,
        deleted,
        content_chars,
        elapsed: started.elapsed(),
    })
}

async fn write_users(
    connection: &mut AsyncPgConnection,
    users: &[SeededUser],
    progress: &Progress,
) -> anyhow::Result<()> {
    progress.stage("users", users.len());
    for batch in users.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<CarriedOverUser<'_>> = batch
            .iter()
            .map(|user| CarriedOverUser {
                user: NewUser {
                    id: &user.id,
                    email: Some(&user.email),
                    name: &user.name,
                    picture: None,
                    verified_email: true,
                    provider: LOCAL_PROVIDER,
                    provider_id: &user.provider_id,
                },
                created_at: user.created_at,
                updated_at: user.created_at,
            })
            .collect();
        users::insert_many(connection, &rows)
            .await
            .context("inserting users")?;
        let identities: Vec<CarriedOverIdentity<'_>> = batch
            .iter()
            .map(|user| CarriedOverIdentity {
                id: user.identity_id.clone(),
                user_id: &user.id,
                provider: LOCAL_PROVIDER,
                subject: &user.provider_id,
                email: Some(&user.email),
                created_at: user.created_at,
            })
            .collect();
        identities::insert_many_if_absent(connection, &identities)
            .await
            .context("inserting identities")?;
        progress.advance(batch.len());
    }
    Ok(())
}

/// Writes the posts, a statement's worth at a time; returns the characters of content written.
async fn write_posts(
    connection: &mut AsyncPgConnection,
    request: &SeedRequest,
    users: &[SeededUser],
    progress: &Progress,
) -> anyhow::Result<u64> {
    progress.stage("posts", request.posts);
    let mut generated = posts(request);
    let mut content_chars = 0;
    loop {
        let batch: Vec<SeededPost> = generated.by_ref().take(ROWS_PER_STATEMENT).collect();
        if batch.is_empty() {
            return Ok(content_chars);
        }
        let rows: Vec<CarriedOverPost<'_>> = batch
            .iter()
            .map(|post| CarriedOverPost {
                post: NewPost {
                    id: &post.id,
                    title: &post.title,
                    content: &post.content,
                    author_id: &users[post.author].id,
                },
                created_at: post.created_at,
                updated_at: post.created_at,
            })
            .collect();
        posts::insert_many(connection, &rows)
            .await
            .context("inserting posts")?;
        content_chars += batch
            .iter()
            .map(|post| post.content.len() as u64)
            .sum::<u64>();
        progress.advance(batch.len());
    }
}

fn micros(delta: TimeDelta) -> i64 {
    delta.num_microseconds().unwrap_or(i64::MAX)
}

/// A version 7 UUID for `at`, its random bits drawn from `random`: the form of the ids the
/// server mints, ordered by time as theirs are.
fn time_ordered_uuid(at: DateTime<Utc>, random: &mut SplitMix64) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let bytes = random.bytes16();
    let mut tail = [0; 10];
    tail.copy_from_slice(&bytes[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
}

/// Text of exactly `chars` characters: sentences of `words_per_sentence` words, grouped in
/// paragraphs of up to `sentences_per_paragraph` sentences, with no white space at either end.
fn text(
    random: &mut SplitMix64,
    chars: usize,
    words_per_sentence: std::ops::RangeInclusive<usize>,
    sentences_per_paragraph: usize,
) -> String {
    let mut written = String::with_capacity(chars + 16);
    let mut sentences_in_paragraph = 0;
    while written.len() < chars {
        if !written.is_empty() {
            if sentences_in_paragraph >= sentences_per_paragraph {
                written.push_str("\n\n");
                sentences_in_paragraph = 0;
            } else {
                written.push(' ');
            }
        }
        let words = random.between(*words_per_sentence.start(), *words_per_sentence.end());
        for position in 0..words {
            let word = random.pick(WORDS);
            if position == 0 {
                let mut letters = word.chars();
                if let Some(first) = letters.next() {
                    written.extend(first.to_uppercase());
                    written.push_str(letters.as_str());
                }
            } else {
                written.push(' ');
                written.push_str(word);
            }
        }
        written.push('.');
        sentences_in_paragraph += 1;
    }
    // Every word is ASCII, so bytes are characters.
    written.truncate(chars);
    if written.ends_with(char::is_whitespace) {
        written.pop();
        written.push('.');
    }
    written
}

/// Which part of the data a generator makes: each part has a sequence of its own, so that the
/// number of users does not shift every post's text.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Users = 1,
    Posts = 2,
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit counter stepped by the golden-ratio
/// constant and scrambled. Not for secrets; fast, and its output for a seed never changes.
#[derive(Debug, Clone)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64, stream: Stream) -> Self {
        let mut mixer = Self { state: seed };
        // Mixed once more per stream, so that seeds 1 and 2 do not give overlapping sequences.
        let state = mixer.next_u64() ^ (stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        Self { state }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), by Lemire's multiply-shift: unbiased enough for
    /// test data, and the same on every platform.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below((high - low + 1) as u64) as usize
    }

    /// A number in `[0, 1)`, from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }

    fn bytes16(&mut self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes
    }
}

const GIVEN_NAMES: &[&str] = &[
    "Ada", "Alan", "Amara", "Anders", "Aiko", "Bea", "Carlos", "Chen", "Dara", "Elif", "Emeka",
    "Farah", "Grace", "Hana", "Ines", "Ivan", "Jin", "Kofi", "Lena", "Luca", "Maya", "Minh",
    "Nadia", "Noah", "Olu", "Priya", "Rafael", "Sara", "Soo-ah", "Tomas", "Uma", "Wei", "Yara",
    "Zoe",
];

const FAMILY_NAMES: &[&str] = &[
    "Adeyemi",
    "Bergstrom",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fernandes",
    "Garcia",
    "Haddad",
    "Ishikawa",
    "Jensen",
    "Kim",
    "Kowalski",
    "Lindqvist",
    "Mensah",
    "Moreau",
    "Nakamura",
    "Novak",
    "Okafor",
    "Park",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Wong",
    "Yilmaz",
    "Zhang",
];

const WORDS: &[&str] = &[
    "about",
    "after",
    "again",
    "almost",
    "along",
    "answer",
    "around",
    "because",
    "before",
    "begin",
    "better",
    "between",
    "build",
    "change",
    "city",
    "close",
    "country",
    "early",
    "every",
    "example",
    "family",
    "feature",
    "festival",
    "field",
    "follow",
    "friend",
    "garden",
    "general",
    "great",
    "group",
    "happen",
    "however",
    "idea",
    "important",
    "interest",
    "keep",
    "language",
    "large",
    "later",
    "learn",
    "light",
    "little",
    "local",
    "market",
    "member",
    "moment",
    "morning",
    "music",
    "never",
    "night",
    "number",
    "often",
    "order",
    "other",
    "people",
    "perhaps",
    "picture",
    "place",
    "point",
    "problem",
    "program",
    "question",
    "quickly",
    "reason",
    "remember",
    "report",
    "river",
    "school",
    "second",
    "several",
    "small",
    "something",
    "sound",
    "speak",
    "stage",
    "start",
    "still",
    "story",
    "street",
    "system",
    "table",
    "think",
    "through",
    "ticket",
    "today",
    "together",
    "travel",
    "under",
    "until",
    "weather",
    "where",
    "while",
    "window",
    "within",
    "without",
    "world",
    "write",
    "year",
    "young",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn request(users: i64, posts: i64, seed: u64) -> SeedRequest {
        SeedRequest::new(users, posts, seed).unwrap()
    }

    #[test]
    fn sizes_out_of_range_are_refused_by_name() {
        for (users, posts, argument) in [
            (0, 10, "--users"),
            (-3, 10, "--users"),
            (MAX_USERS + 1, 10, "--users"),
            (10, 0, "--posts"),
            (10, -1, "--posts"),
            (10, MAX_POSTS + 1, "--posts"),
        ] {
            let error = SeedRequest::new(users, posts, 0).unwrap_err().to_string();
            assert!(error.starts_with(argument), "{error}");
            assert!(error.contains("must be between 1 and 1,000,000"), "{error}");
        }
        assert!(SeedRequest::new(MAX_USERS, MAX_POSTS, u64::MAX).is_ok());
    }

    #[test]
    fn the_same_seed_makes_the_same_data_and_another_seed_other_data() {
        let first: Vec<SeededPost> = posts(&request(50, 300, 7)).collect();
        let again: Vec<SeededPost> = posts(&request(50, 300, 7)).collect();
        let other: Vec<SeededPost> = posts(&request(50, 300, 8)).collect();
        assert_eq!(first, again);
        assert_eq!(users(&request(50, 300, 7)), users(&request(50, 300, 7)));
        assert!(
            first
                .iter()
                .zip(&other)
                .all(|(a, b)| a.id != b.id && a.title != b.title)
        );
        assert_ne!(users(&request(50, 300, 7)), users(&request(50, 300, 8)));
    }

    #[test]
    fn texts_have_the_promised_sizes_and_no_outer_white_space() {
        for post in posts(&request(20, 2_000, 1)) {
            let title = post.title.chars().count();
            let content = post.content.chars().count();
            assert!((20..=80).contains(&title), "{title}: {:?}", post.title);
            assert!((200..=2_000).contains(&content), "{content}");
            assert_eq!(post.title.trim(), post.title);
            assert_eq!(post.content.trim(), post.content);
        }
    }

    #[test]
    fn posts_are_in_creation_order_within_the_year_before_the_epoch() {
        let generated: Vec<SeededPost> = posts(&request(10, 5_000, 3)).collect();
        assert!(
            generated
                .windows(2)
                .all(|pair| pair[0].created_at < pair[1].created_at)
        );
        assert!(generated[0].created_at >= EPOCH - YEAR);
        assert!(generated[generated.len() - 1].created_at < EPOCH);
        let authors: std::collections::HashSet<usize> =
            generated.iter().map(|post| post.author).collect();
        assert_eq!(authors.len(), 10, "every author writes");
    }

    #[test]
    fn users_have_distinct_ids_and_addresses_and_sign_up_before_posting() {
        let seeded = users(&request(3_000, 1, 0));
        let ids: std::collections::HashSet<&UserId> = seeded.iter().map(|user| &user.id).collect();
        let emails: std::collections::HashSet<&str> =
            seeded.iter().map(|user| user.email.as_str()).collect();
        assert_eq!(ids.len(), 3_000);
        assert_eq!(emails.len(), 3_000);
        assert!(seeded.iter().all(|user| user.created_at < EPOCH - YEAR));
    }

    #[test]
    fn large_numbers_get_separators() {
        assert_eq!(thousands(1), "1");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}

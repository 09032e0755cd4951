//! What an import does with each checked record, given what the database holds already: insert
//! it, leave it (stored as the dump has it), overwrite it, or report it as a conflict.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::config::ProviderName;
use crate::db::ids::{PostId, UserId};
use crate::db::models::{
    CarriedOverIdentity, CarriedOverPost, CarriedOverUser, NewPost, NewUser, PostRow, UserRow,
};
use crate::db::{identities, posts, users};
use crate::domain::import::dump::{DumpPost, DumpUser, RecordKey};
use crate::domain::import::{Conflict, Tally};
use crate::domain::users::new_identity_id;

/// The writes an import makes, and what it leaves alone.
#[derive(Debug, Default)]
pub(super) struct Plan<'a> {
    /// Users not in the database yet.
    pub new_users: Vec<CarriedOverUser<'a>>,
    /// Users stored with other content, to overwrite (`--update-existing`).
    pub overwritten_users: Vec<CarriedOverUser<'a>>,
    /// The identities of new and overwritten users.
    pub identities: Vec<CarriedOverIdentity<'a>>,
    /// Posts not in the database yet.
    pub new_posts: Vec<CarriedOverPost<'a>>,
    /// Posts stored with other content, to overwrite (`--update-existing`).
    pub overwritten_posts: Vec<CarriedOverPost<'a>>,
    /// Users and posts that cannot be written as the dump has them.
    pub conflicts: Vec<Conflict>,
    /// The counts for users (`read` and `skipped` left to the caller).
    pub users: Tally,
    /// The counts for posts (`read` and `skipped` left to the caller).
    pub posts: Tally,
}

/// Decides the fate of every record of `users` and `posts` (posts whose author is among
/// `users`), comparing them with the rows stored.
///
/// `import_started` stands in for timestamps the dump does not know.
pub(super) async fn plan<'a>(
    connection: &mut AsyncPgConnection,
    users: &'a BTreeMap<String, DumpUser>,
    posts: &'a [DumpPost],
    update_existing: bool,
    import_started: DateTime<Utc>,
) -> anyhow::Result<Plan<'a>> {
    let stored = StoredUsers::load(connection, users).await?;
    let mut plan = Plan::default();
    for user in users.values() {
        plan_user(&mut plan, &stored, user, update_existing, import_started);
    }

    let post_ids: Vec<PostId> = posts.iter().map(|post| post.id.clone()).collect();
    let stored_posts: HashMap<PostId, PostRow> = posts::find_many(connection, &post_ids)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    let new_user_ids: HashSet<&UserId> = plan.new_users.iter().map(|row| row.user.id).collect();
    for post in posts {
        let Some(author) = users.get(&post.author_key) else {
            continue;
        };
        let author_will_exist =
            stored.by_id.contains_key(&author.id) || new_user_ids.contains(&author.id);
        let record = RecordKey::Post(post.id.to_string());
        if !author_will_exist {
            plan.posts.conflicting += 1;
            plan.conflicts.push(Conflict {
                record,
                reason: format!(
                    "its author, user {:?}, is not in the database (see that user's conflict)",
                    author.key
                ),
            });
            continue;
        }
        let row = CarriedOverPost {
            post: NewPost {
                id: &post.id,
                title: &post.title,
                content: &post.content,
                author_id: &author.id,
            },
            created_at: post.created_at,
            updated_at: post.updated_at,
        };
        match stored_posts.get(&post.id) {
            None => {
                plan.posts.imported += 1;
                plan.new_posts.push(row);
            }
            Some(stored) => {
                let differences = post_differences(&row, stored);
                if differences.is_empty() {
                    plan.posts.unchanged += 1;
                } else if update_existing {
                    plan.posts.updated += 1;
                    plan.overwritten_posts.push(row);
                } else {
                    plan.posts.conflicting += 1;
                    plan.conflicts.push(Conflict {
                        record,
                        reason: stored_differently(&differences),
                    });
                }
            }
        }
    }
    Ok(plan)
}

fn plan_user<'a>(
    plan: &mut Plan<'a>,
    stored: &StoredUsers,
    user: &'a DumpUser,
    update_existing: bool,
    import_started: DateTime<Utc>,
) {
    let record = RecordKey::User(user.key.clone());
    let conflict = |plan: &mut Plan<'a>, reason: String| {
        plan.users.conflicting += 1;
        plan.conflicts.push(Conflict {
            record: record.clone(),
            reason,
        });
    };
    if let Some(owner) = stored
        .by_email
        .get(&user.email.to_lowercase())
        .filter(|owner| **owner != user.id)
    {
        return conflict(
            plan,
            format!("the address belongs to another stored user, {owner}"),
        );
    }
    let identity = (user.provider, user.provider_id.clone());
    if let Some(owner) = stored
        .by_identity
        .get(&identity)
        .filter(|owner| **owner != user.id)
    {
        return conflict(
            plan,
            format!(
                "{} id {:?} signs in another stored user, {owner}",
                user.provider, user.provider_id
            ),
        );
    }
    let existing = stored.by_id.get(&user.id);
    let row = CarriedOverUser {
        user: NewUser {
            id: &user.id,
            email: Some(&user.email),
            name: &user.name,
            picture: user.picture.as_deref(),
            verified_email: user.verified_email,
            provider: user.provider.as_str(),
            provider_id: &user.provider_id,
        },
        // Unknown in the dump: the stored date stands, or else the import's start.
        created_at: user
            .created_at
            .or(existing.map(|row| row.created_at))
            .unwrap_or(import_started),
        updated_at: user.updated_at.unwrap_or(import_started),
    };
    let identity = CarriedOverIdentity {
        id: new_identity_id(),
        user_id: &user.id,
        provider: user.provider.as_str(),
        subject: &user.provider_id,
        email: Some(&user.email),
        created_at: row.created_at,
    };
    match existing {
        None => {
            plan.users.imported += 1;
            plan.new_users.push(row);
            plan.identities.push(identity);
        }
        Some(stored) => {
            let differences = user_differences(&row, stored);
            if differences.is_empty() {
                plan.users.unchanged += 1;
            } else if update_existing {
                plan.users.updated += 1;
                plan.overwritten_users.push(row);
                plan.identities.push(identity);
            } else {
                conflict(plan, stored_differently(&differences));
            }
        }
    }
}

/// The stored users the dump's users may meet: by id, by address and by identity.
struct StoredUsers {
    by_id: HashMap<UserId, UserRow>,
    /// The owner of each address, in lower case.
    by_email: HashMap<String, UserId>,
    /// The user each (provider, id at the provider) signs in, from users and identities.
    by_identity: HashMap<(ProviderName, String), UserId>,
}

impl StoredUsers {
    async fn load(
        connection: &mut AsyncPgConnection,
        users: &BTreeMap<String, DumpUser>,
    ) -> anyhow::Result<Self> {
        let ids: Vec<UserId> = users.values().map(|user| user.id.clone()).collect();
        let by_id = users::find_many(connection, &ids)
            .await?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect();
        let emails: Vec<String> = users.values().map(|user| user.email.clone()).collect();
        let by_email = users::find_by_emails_ignoring_case(connection, &emails)
            .await?
            .into_iter()
            .filter_map(|row| Some((row.email?.to_lowercase(), row.id)))
            .collect();

        let mut provider_ids: HashMap<ProviderName, Vec<String>> = HashMap::new();
        for user in users.values() {
            provider_ids
                .entry(user.provider)
                .or_default()
                .push(user.provider_id.clone());
        }
        let mut by_identity = HashMap::new();
        for (provider, subjects) in provider_ids {
            for row in users::find_by_provider_ids(connection, provider.as_str(), &subjects).await?
            {
                by_identity.insert((provider, row.provider_id), row.id);
            }
            for row in identities::find_many(connection, provider.as_str(), &subjects).await? {
                by_identity.insert((provider, row.subject), row.user_id);
            }
        }
        Ok(Self {
            by_id,
            by_email,
            by_identity,
        })
    }
}

/// The fields in which `stored` differs from `row`, leaving out `updated_at`.
fn user_differences(row: &CarriedOverUser<'_>, stored: &UserRow) -> Vec<&'static str> {
    let user = &row.user;
    [
        ("email", user.email != stored.email.as_deref()),
        ("name", user.name != stored.name),
        ("picture", user.picture != stored.picture.as_deref()),
        (
            "verified_email",
            user.verified_email != stored.verified_email,
        ),
        ("provider", user.provider != stored.provider),
        ("provider_id", user.provider_id != stored.provider_id),
        ("created_at", row.created_at != stored.created_at),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect()
}

/// The fields in which `stored` differs from `row`, leaving out `updated_at`.
fn post_differences(row: &CarriedOverPost<'_>, stored: &PostRow) -> Vec<&'static str> {
    let post = &row.post;
    [
        ("title", post.title != stored.title),
        ("content", post.content != stored.content),
        ("author_email", *post.author_id != stored.author_id),
        ("created_at", row.created_at != stored.created_at),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect()
}

fn stored_differently(differences: &[&str]) -> String {
    format!(
        "stored with a different {}; left as it is (--update-existing overwrites it)",
        differences.join(", ")
    )
}

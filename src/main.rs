//! The `festapi` command: serve the API, manage migrations, print the schema, issue tokens,
//! check a running server's readiness, back the database up and restore it, import the old
//! service's data, and fill a database with synthetic data for benchmarks.

#![expect(clippy::print_stdout, reason = "a command line prints its results")]

use std::io::Read as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use festapi::config::{self, Config};
use festapi::db::Database;
use festapi::db::migrations::{
    self, MigrationState, NewerSchema, RevertPermissions, RevertPlan, RevertTarget,
};
use festapi::domain::import::{self, ImportOptions, ImportReport};
use festapi::domain::seed::{self, SeedRequest};
use festapi::domain::sessions::{self, SignIn};
use festapi::domain::users::{self, LOCAL_PROVIDER};
use festapi::progress::Progress;
use festapi::{backup, graphql, server, telemetry};

/// FestAPI: a GraphQL API for users and posts, backed by PostgreSQL.
///
/// Settings come from environment variables, and from a `.env` file in the working directory
/// when there is one; see the README for the list.
#[derive(Debug, Parser)]
#[command(name = "festapi", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default): create the database if needed, migrate, then listen.
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    Schema,
    /// Sessions and their tokens, for developers and operators.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Ask the server listening on `FESTAPI_ADDR` on this host whether it is ready (`/readyz`);
    /// exit 0 when it answers 200 within two seconds, 1 otherwise. For container health checks.
    Healthcheck,
    /// Back the database up into FILE, a pg_dump archive (custom format), with the pg_dump found
    /// on PATH. Prints a summary: tables, rows, bytes and seconds.
    Backup {
        /// The archive to write; an existing file is replaced only with --force.
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Restore the database from FILE, an archive `festapi backup` wrote, with the pg_restore
    /// found on PATH: create the database if needed, restore in one transaction, then apply
    /// this build's pending migrations. Refuses a database that already holds FestAPI tables.
    Restore {
        /// The archive to restore.
        file: PathBuf,
        /// Drop the FestAPI tables the database holds and replace them with the backup's.
        #[arg(long)]
        force: bool,
    },
    /// Import a JSON dump of the Python service: its users (with their sign-in identities) and
    /// posts, in one transaction. Every record is checked first; any problem stops the import
    /// before anything is written. Records already stored alike are left; records stored
    /// otherwise are conflicts, left as they are (exit 1). Tokens are not carried over.
    Import {
        /// The dump to read; `-` reads standard input.
        file: PathBuf,
        /// Import the valid records even when others have problems, listing what was skipped.
        #[arg(long)]
        skip_invalid: bool,
        /// Check the dump and compare it with the database; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Overwrite records stored with other content instead of leaving them as conflicts.
        #[arg(long)]
        update_existing: bool,
    },
    /// Fill the database with synthetic users (each able to sign in, e.g. with `festapi token
    /// issue --email ...`) and posts, for benchmarks and demonstrations: migrate it, then write
    /// everything in one transaction. The same sizes and seed always give identical rows.
    /// Refuses a database that holds users or posts already.
    Seed {
        /// How many users to create, 1 to 1,000,000.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        users: i64,
        /// How many posts to create, 1 to 1,000,000, spread over the users and over the year
        /// before 2026-01-01.
        #[arg(long, value_name = "M", allow_negative_numbers = true)]
        posts: i64,
        /// Picks one of the possible data sets.
        #[arg(long, value_name = "S", default_value_t = 1)]
        seed: u64,
        /// Delete the users and posts the database holds (with their identities and sessions)
        /// first.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration. Refuses a database with migrations this build does not
    /// know (a newer release's) unless FESTAPI_ALLOW_NEWER_SCHEMA=true.
    Run,
    /// Revert the most recently applied migration, or with --to every one newer than VERSION,
    /// newest first, in one transaction. Refuses to drop tables that hold rows without --yes.
    Revert {
        /// Revert every applied migration newer than VERSION, written as `migrate status`
        /// writes it (2026-11-25-000001); 0 reverts all of them (needs --yes-drop-all-data).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Print the migrations that would be reverted, in order, with their SQL and the rows of
        /// the tables they drop; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Drop tables that hold rows.
        #[arg(long)]
        yes: bool,
        /// With --to 0: revert every migration, dropping every table and all data.
        #[arg(long)]
        yes_drop_all_data: bool,
    },
    /// List every migration, whether and when (UTC) it was applied, and applied migrations
    /// this build does not know.
    Status,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Start a session for the user with this e-mail address, creating the user if needed, and
    /// print its access token: the only line on standard output.
    Issue {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// The display name of a user created now (default: the part of the address before @).
        #[arg(long)]
        name: Option<String>,
        /// Also print the session's refresh token, on standard error after the line
        /// `refresh token:`.
        #[arg(long)]
        print_refresh_token: bool,
    },
}

/// mimalloc rather than glibc's malloc: a GraphQL response is built from many small
/// allocations, and with mimalloc a request costs about a quarter fewer instructions
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = load_dotenv() {
        telemetry::report_fatal(&error);
        return ExitCode::FAILURE;
    }
    match run(cli.command.unwrap_or(Command::Serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            telemetry::report_fatal(&error);
            ExitCode::FAILURE
        }
    }
}

/// Reads `.env` when present; a file that exists but cannot be read is an error.
fn load_dotenv() -> anyhow::Result<()> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(error) => Err(error).context(".env"),
    }
}

#[tokio::main]
async fn run(command: Command) -> anyhow::Result<()> {
    let outcome = run_command(command).await;
    telemetry::shutdown().await;
    outcome
}

async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Schema => {
            print!("{}", graphql::sdl());
            return Ok(());
        }
        // A probe asks the server; it never looks for a database of its own.
        Command::Healthcheck => return healthcheck().await,
        // Sizes out of range are refused before any database is looked for.
        Command::Seed {
            users, posts, seed, ..
        } => {
            SeedRequest::new(users, posts, seed)?;
        }
        Command::Serve
        | Command::Migrate { .. }
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Import { .. }
        | Command::Token { .. } => {}
    }
    let (config, local_postgres) = server::find_database(load_config()?).await?;
    let outcome = match command {
        Command::Schema | Command::Healthcheck => Ok(()),
        Command::Serve => server::serve(config).await,
        Command::Migrate { action } => migrate(action, &config).await,
        Command::Backup { file, force } => backup::backup(&config.database, &file, force)
            .await
            .map(|summary| println!("{summary}")),
        Command::Restore { file, force } => backup::restore(&config.database, &file, force)
            .await
            .map(|summary| println!("{summary}")),
        Command::Import {
            file,
            skip_invalid,
            dry_run,
            update_existing,
        } => {
            let options = ImportOptions {
                skip_invalid,
                dry_run,
                update_existing,
            };
            import_dump(&config, &file, options).await
        }
        Command::Seed {
            users,
            posts,
            seed,
            force,
        } => seed_database(&config, users, posts, seed, force).await,
        Command::Token {
            action:
                TokenAction::Issue {
                    email,
                    name,
                    print_refresh_token,
                },
        } => issue_token(&config, &email, name.as_deref(), print_refresh_token).await,
    };
    if let Some(lease) = local_postgres {
        server::release_local_postgres(lease).await;
    }
    outcome
}

/// Reads the configuration and starts logging as it asks.
fn load_config() -> anyhow::Result<Config> {
    let config = Config::from_env().context("invalid configuration")?;
    telemetry::init(config.env, config.otlp_traces_endpoint.as_ref())
        .context("invalid configuration")?;
    Ok(config)
}

async fn migrate(action: MigrateAction, config: &Config) -> anyhow::Result<()> {
    let database_url = config.database.url();
    match action {
        MigrateAction::Run => {
            festapi::db::create_database_if_missing(database_url).await?;
            let newer = if config.database.allow_newer_schema {
                NewerSchema::Allow
            } else {
                NewerSchema::Refuse
            };
            let migrated = migrations::run_pending_with(database_url, newer).await?;
            if !migrated.unknown.is_empty() {
                println!(
                    "the database has migrations this build does not know ({}); allowed by \
                     FESTAPI_ALLOW_NEWER_SCHEMA=true",
                    migrated.unknown.join(", ")
                );
            }
            if migrated.applied.is_empty() {
                println!("nothing to apply: the schema is up to date");
            }
            for name in migrated.applied {
                println!("applied  {name}");
            }
        }
        MigrateAction::Revert {
            to,
            dry_run,
            yes,
            yes_drop_all_data,
        } => {
            let target = to.as_deref().map_or(RevertTarget::Last, RevertTarget::to);
            let permissions = RevertPermissions {
                dry_run,
                drop_tables_with_rows: yes,
                drop_all_data: yes_drop_all_data,
            };
            let everything = target == RevertTarget::Everything;
            let plan = migrations::revert(database_url, target.clone(), permissions).await?;
            print_revert_plan(&plan, &target, dry_run);
            if dry_run && everything && !yes_drop_all_data {
                println!("reverting every migration needs --yes-drop-all-data");
            } else if dry_run && !plan.tables_with_rows().is_empty() && !yes && !yes_drop_all_data {
                println!("dropping tables that hold rows needs --yes");
            }
        }
        MigrateAction::Status => print_status(&migrations::status(database_url).await?),
    }
    Ok(())
}

/// Prints what a revert did, or on a dry run what it would do, with the SQL of each step.
fn print_revert_plan(plan: &RevertPlan, target: &RevertTarget, dry_run: bool) {
    if plan.steps.is_empty() {
        match target {
            RevertTarget::To(version) => {
                println!("nothing to revert: no migration newer than {version} is applied");
            }
            RevertTarget::Last | RevertTarget::Everything => {
                println!("nothing to revert: no migration is applied");
            }
        }
        return;
    }
    if dry_run {
        println!("dry run: nothing changed; a revert would run, in one transaction:");
        for (number, step) in plan.steps.iter().enumerate() {
            println!();
            println!("{}. revert {}", number + 1, step.name);
            for line in step.down_sql.trim().lines() {
                println!("   {line}");
            }
        }
        println!();
    } else {
        for step in &plan.steps {
            println!("reverted {}", step.name);
        }
    }
    let dropped: Vec<String> = plan.dropped.iter().map(ToString::to_string).collect();
    let verb = if dry_run { "would drop" } else { "dropped" };
    if dropped.is_empty() {
        println!("tables it {verb}: none");
    } else {
        println!("tables it {verb}: {}", dropped.join(", "));
    }
}

/// Prints one line per migration: its state, its name and when it was applied.
fn print_status(states: &[MigrationState]) {
    let width = states
        .iter()
        .map(|state| state.name.len())
        .max()
        .unwrap_or(0);
    for state in states {
        let label = match (state.known, state.applied) {
            (false, _) => "unknown",
            (true, true) => "applied",
            (true, false) => "pending",
        };
        let name = &state.name;
        match state.applied_at {
            Some(at) => println!(
                "{label:<8} {name:<width$}  {}",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => println!("{label:<8} {name}"),
        }
    }
    let unknown: Vec<&str> = states
        .iter()
        .filter(|state| !state.known)
        .map(|state| state.name.as_str())
        .collect();
    if !unknown.is_empty() {
        println!(
            "unknown: applied, but this build does not have {}: a newer release applied them; \
             this build refuses to serve this database unless FESTAPI_ALLOW_NEWER_SCHEMA=true",
            unknown.join(", ")
        );
    }
}

/// Starts a session for `email`, creating that user first when needed, and prints its access
/// token on standard output, and its refresh token on standard error when asked to.
async fn issue_token(
    config: &Config,
    email: &str,
    name: Option<&str>,
    print_refresh_token: bool,
) -> anyhow::Result<()> {
    server::prepare_database(&config.database).await?;
    let state = festapi::AppState::new(config)?;
    let user = users::find_or_create_local(&state.database, email, name).await?;
    let sign_in = SignIn {
        provider: LOCAL_PROVIDER,
        user_agent: Some("festapi token issue"),
        ..SignIn::default()
    };
    let signed_in = sessions::start_session(&state.database, &state.tokens, user, &sign_in).await?;
    eprintln!(
        "access token for {} ({}) in session {}, valid for {} minutes:",
        signed_in.user.email.as_deref().unwrap_or(email),
        signed_in.user.id,
        signed_in.session_id,
        signed_in.expires_in.as_secs() / 60
    );
    if print_refresh_token {
        eprintln!(
            "refresh token: {}\n(one use; the session expires {} days after its last refresh)",
            signed_in.refresh_token,
            state.tokens.refresh_ttl().as_secs() / (24 * 60 * 60)
        );
    }
    println!("{}", signed_in.access_token);
    Ok(())
}

/// Imports the dump in `file` (`-`: standard input), then prints what became of every record.
async fn import_dump(config: &Config, file: &Path, options: ImportOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let bytes = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading the dump from standard input")?;
        bytes
    } else {
        std::fs::read(file).with_context(|| format!("reading the dump {}", file.display()))?
    };
    let checked = import::check(&bytes)?;
    let report = if checked.problems.is_empty() || options.skip_invalid {
        // A dry run writes nothing, not even the schema: it needs a migrated database.
        if !options.dry_run {
            server::prepare_database(&config.database).await?;
        }
        let database = Database::connect(&config.database)?;
        let mut connection = database.connection().await?;
        import::import(&mut connection, &checked, options, &Progress::on_stderr()).await?
    } else {
        ImportReport::of_checked(&checked, options)
    };
    print_import_report(&report);
    println!("took {:.1} s", started.elapsed().as_secs_f64());
    match report.failure() {
        Some(failure) => Err(anyhow::anyhow!(failure)),
        None => Ok(()),
    }
}

/// Checks the sizes before touching the database, migrates it, seeds it and prints what was
/// written.
async fn seed_database(
    config: &Config,
    users: i64,
    posts: i64,
    seed: u64,
    force: bool,
) -> anyhow::Result<()> {
    let request = SeedRequest::new(users, posts, seed)?;
    server::prepare_database(&config.database).await?;
    let database = Database::connect(&config.database)?;
    let mut connection = database.connection().await?;
    let report = seed::seed(&mut connection, request, force, &Progress::on_stderr()).await?;
    println!("{report}");
    Ok(())
}

fn print_import_report(report: &ImportReport) {
    let listed = |heading: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            println!("{heading} ({}):", lines.len());
            for line in lines {
                println!("  {line}");
            }
        }
    };
    if report.options.skip_invalid {
        listed(
            "skipped",
            report.skipped.iter().map(ToString::to_string).collect(),
        );
    } else {
        listed(
            "problems",
            report.problems.iter().map(ToString::to_string).collect(),
        );
    }
    listed(
        "conflicts",
        report.conflicts.iter().map(ToString::to_string).collect(),
    );
    let would = if report.options.dry_run {
        "dry run, nothing written; counts say what an import would do"
    } else {
        "written in one transaction"
    };
    if report.options.skip_invalid || report.problems.is_empty() {
        println!("summary ({would}):");
    } else {
        println!("summary (nothing written):");
    }
    println!("  users: {}", report.users);
    println!("  posts: {}", report.posts);
    if report.old_tokens > 0 {
        println!(
            "  tokens of the old service: {} not carried over (everyone signs in again)",
            report.old_tokens
        );
    }
    let considered = report.options.skip_invalid || report.problems.is_empty();
    if considered && report.conflicts.is_empty() && !report.changed_anything() {
        println!("nothing changed: every record is stored already as the dump has it");
    }
}

/// How long `festapi healthcheck` waits for an answer: below the image's HEALTHCHECK timeout,
/// so a server that hangs is reported by this command rather than killed by the engine.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks this host's server for `/readyz` and prints one line saying whether it is ready.
///
/// Reads only `FESTAPI_ADDR`: no secret is opened and no database is touched, so the check costs
/// the server one request.
async fn healthcheck() -> anyhow::Result<()> {
    let listening = config::listen_address_from_env().context("invalid configuration")?;
    let url = format!("http://{}/readyz", local_address(listening));
    festapi::auth::providers::install_tls_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(HEALTHCHECK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let status = client
        .get(&url)
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .with_context(|| format!("not ready: {url}"))?
        .status();
    anyhow::ensure!(status.is_success(), "not ready: {url} answered {status}");
    println!("ready: {url} answered {status}");
    Ok(())
}

/// Where a client on this host reaches a server listening on `listening`: the loopback address
/// of the same family when the server listens on every address (`0.0.0.0`, `::`).
fn local_address(listening: SocketAddr) -> SocketAddr {
    match listening {
        SocketAddr::V4(address) if address.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, address.port()))
        }
        SocketAddr::V6(address) if address.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, address.port()))
        }
        address => address,
    }
}

//! The `festapi` command: serve the API, manage migrations, print the schema, issue tokens.

#![expect(clippy::print_stdout, reason = "a command line prints its results")]

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use festapi::config::Config;
use festapi::db::migrations;
use festapi::domain::users;
use festapi::{graphql, server, telemetry};

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
    /// Access tokens for developers and operators.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Run,
    /// Revert the most recently applied migration.
    Revert,
    /// List every migration and whether it is applied.
    Status,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Print an access token for the user with this e-mail address, creating the user if needed.
    Issue {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// The display name of a user created now (default: the part of the address before @).
        #[arg(long)]
        name: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = load_dotenv() {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    match run(cli.command.unwrap_or(Command::Serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
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
    match command {
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Serve => server::serve(load_config()?).await,
        Command::Migrate { action } => migrate(action, &load_config()?).await,
        Command::Token {
            action: TokenAction::Issue { email, name },
        } => issue_token(&load_config()?, &email, name.as_deref()).await,
    }
}

/// Reads the configuration and starts logging as it asks.
fn load_config() -> anyhow::Result<Config> {
    let config = Config::from_env().context("invalid configuration")?;
    telemetry::init(config.env).context("invalid configuration")?;
    Ok(config)
}

async fn migrate(action: MigrateAction, config: &Config) -> anyhow::Result<()> {
    let database_url = config.database.url();
    festapi::db::create_database_if_missing(database_url).await?;
    match action {
        MigrateAction::Run => {
            let applied = migrations::run_pending(database_url).await?;
            if applied.is_empty() {
                println!("nothing to apply: the schema is up to date");
            }
            for name in applied {
                println!("applied  {name}");
            }
        }
        MigrateAction::Revert => match migrations::revert_last(database_url).await? {
            Some(name) => println!("reverted {name}"),
            None => println!("nothing to revert: no migration is applied"),
        },
        MigrateAction::Status => {
            for migration in migrations::status(database_url).await? {
                let state = if migration.applied {
                    "applied"
                } else {
                    "pending"
                };
                println!("{state:<8} {}", migration.name);
            }
        }
    }
    Ok(())
}

/// Prints an access token for `email`, creating that user first when needed.
async fn issue_token(config: &Config, email: &str, name: Option<&str>) -> anyhow::Result<()> {
    server::prepare_database(&config.database).await?;
    let state = festapi::AppState::new(config)?;
    let user = users::find_or_create_local(&state.database, email, name).await?;
    let issued = state.tokens.issue_access_token(user.id.as_str())?;
    eprintln!(
        "access token for {} ({}), valid for {} minutes:",
        user.email,
        user.id,
        state.tokens.access_ttl().as_secs() / 60
    );
    println!("{}", issued.token);
    Ok(())
}

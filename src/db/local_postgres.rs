//! A private PostgreSQL cluster in a folder of its own, for machines with PostgreSQL installed
//! but no server running.
//!
//! The cluster listens on a Unix socket in its folder and on no TCP port. Its layout:
//!
//! - `data/`: the cluster itself (`PGDATA`), made by `initdb` on first use;
//! - `.s.PGSQL.5432`: the socket, present while the cluster runs;
//! - `postgresql.log`: the server's log;
//! - `control.lock` and `users.lock`: how several processes share the cluster.
//!
//! Every process using the cluster holds a shared lock on `users.lock` for as long as it does.
//! Starting and stopping happen under an exclusive lock on `control.lock`: a process finding the
//! cluster running uses it as it is, and the last process to let go of it stops it. A process
//! that dies lets go of its locks with it, so a cluster left running by one is used and then
//! stopped by the next.
//!
//! PostgreSQL refuses to run as root. A root process runs the cluster's programs as an
//! unprivileged system user (`postgres` unless told otherwise), which owns the folder.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The system user a root process runs the cluster as, unless told otherwise.
pub const DEFAULT_SYSTEM_USER: &str = "postgres";
/// The port number in the socket's name; no TCP port is opened unless a setting asks for one.
pub const SOCKET_PORT: u16 = 5432;
/// The database superuser `initdb` creates.
pub const SUPERUSER: &str = "postgres";

/// How long starting or stopping the server may take, and how long to wait for another
/// process that is doing so.
const SERVER_WAIT: Duration = Duration::from_secs(60);
/// The longest path the kernel accepts for a Unix socket (`sun_path` less its final NUL).
const MAX_SOCKET_PATH_BYTES: usize = 107;
/// The programs a cluster needs, all from one installation.
const PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// Where PostgreSQL's programs live when they are not on `PATH`: Debian and Ubuntu, the
/// PostgreSQL project's RPMs, source builds, and Homebrew.
const INSTALL_FOLDER_PATTERNS: [&str; 6] = [
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/opt/homebrew/bin",
];

/// One installation of PostgreSQL's server programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresPrograms {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    version: Version,
}

/// A PostgreSQL version, as its programs print it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Version(Vec<u32>);

impl std::fmt::Display for Version {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        formatter.write_str(&parts.join("."))
    }
}

impl PostgresPrograms {
    /// The newest installation on `PATH` or in the usual install folders.
    pub fn find() -> anyhow::Result<Self> {
        Self::find_in(&default_search_folders())
    }

    /// The newest installation in `folders`, each of which must hold `initdb`, `pg_ctl` and
    /// `postgres` to count; the first of equally new ones wins.
    pub fn find_in(folders: &[PathBuf]) -> anyhow::Result<Self> {
        let mut newest: Option<Self> = None;
        for folder in folders {
            let Some(found) = Self::in_folder(folder) else {
                continue;
            };
            if newest
                .as_ref()
                .is_none_or(|newest| found.version > newest.version)
            {
                newest = Some(found);
            }
        }
        newest.with_context(|| {
            format!(
                "PostgreSQL's server programs (initdb, pg_ctl, postgres) are not installed: \
                 looked on PATH and in {}. Install PostgreSQL (e.g. `apt-get install \
                 postgresql` or `brew install postgresql`), or set DATABASE_URL to a server \
                 of yours",
                INSTALL_FOLDER_PATTERNS.join(", ")
            )
        })
    }

    fn in_folder(folder: &Path) -> Option<Self> {
        let [initdb, pg_ctl, postgres] =
            PROGRAMS.map(|program| fs::canonicalize(folder.join(program)).ok());
        let (initdb, pg_ctl) = (initdb?, pg_ctl?);
        postgres.filter(|path| path.is_file())?;
        let output = Command::new(&pg_ctl).arg("--version").output().ok()?;
        let version = parse_version(&String::from_utf8_lossy(&output.stdout))?;
        Some(Self {
            initdb,
            pg_ctl,
            version,
        })
    }

    /// The version, such as `15.8`.
    pub fn version(&self) -> String {
        self.version.to_string()
    }
}

/// `PATH`'s folders, then the usual install folders, newest version first within a pattern.
pub fn default_search_folders() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    for pattern in INSTALL_FOLDER_PATTERNS {
        folders.extend(expand_star(pattern));
    }
    folders
}

/// The folders matching `pattern`, whose one `*` stands for any name of a single component.
fn expand_star(pattern: &str) -> Vec<PathBuf> {
    let Some((before, after)) = pattern.split_once('*') else {
        return vec![PathBuf::from(pattern)];
    };
    let (parent, prefix) = before.rsplit_once('/').unwrap_or(("", before));
    let (suffix, rest) = after.split_once('/').unwrap_or((after, ""));
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
        .map(|name| Path::new(parent).join(name).join(rest))
        .collect();
    found.sort();
    found
}

/// The version in `pg_ctl --version`'s output, e.g. `pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1)`.
fn parse_version(output: &str) -> Option<Version> {
    let word = output
        .split_once("(PostgreSQL) ")?
        .1
        .split_whitespace()
        .next()?;
    let parts: Vec<u32> = word
        .split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    (!parts.is_empty()).then_some(Version(parts))
}

/// The system user the cluster's programs run as, when this process runs as root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SystemUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// A private cluster: its folder, the programs that run it, and its settings.
#[derive(Debug, Clone)]
pub struct LocalCluster {
    programs: PostgresPrograms,
    folder: PathBuf,
    system_user: String,
    settings: Vec<String>,
}

impl LocalCluster {
    /// A cluster in `folder` (made when missing), run by `programs`.
    pub fn new(programs: PostgresPrograms, folder: &Path) -> anyhow::Result<Self> {
        let folder = std::path::absolute(folder)
            .with_context(|| format!("the local PostgreSQL folder {}", folder.display()))?;
        let socket = folder.join(format!(".s.PGSQL.{SOCKET_PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
            bail!(
                "the local PostgreSQL folder {} is too deep for a Unix socket (at most {} \
                 bytes with the socket's name): set LOCAL_POSTGRES_DIR to a shorter path",
                folder.display(),
                MAX_SOCKET_PATH_BYTES
            );
        }
        let text = folder.to_string_lossy();
        if text.contains([',', '"', '\\', '\'']) || text.chars().any(char::is_control) {
            bail!(
                "the local PostgreSQL folder {} has a comma, quote, backslash or control \
                 character in its path, which PostgreSQL's settings cannot hold: set \
                 LOCAL_POSTGRES_DIR to another path",
                folder.display()
            );
        }
        Ok(Self {
            programs,
            folder,
            system_user: DEFAULT_SYSTEM_USER.to_owned(),
            settings: Vec::new(),
        })
    }

    /// Runs the cluster as system user `name` when this process is root (default `postgres`).
    #[must_use]
    pub fn with_system_user(mut self, name: &str) -> Self {
        name.clone_into(&mut self.system_user);
        self
    }

    /// Adds a `postgresql.conf` line, applied from the next start on. Lines come after the
    /// defaults (`listen_addresses = ''`, the socket folder, the port), so they may override
    /// them, e.g. `listen_addresses = '127.0.0.1'` with a `port` to accept TCP too.
    #[must_use]
    pub fn with_setting(mut self, line: &str) -> Self {
        self.settings.push(line.to_owned());
        self
    }

    /// The cluster's folder, absolute.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The cluster's data folder (`PGDATA`).
    pub fn data_folder(&self) -> PathBuf {
        self.folder.join("data")
    }

    /// The programs that run the cluster.
    pub fn programs(&self) -> &PostgresPrograms {
        &self.programs
    }

    /// A connection URL for `database` through the cluster's socket, as the superuser.
    pub fn url(&self, database: &str) -> String {
        let folder = self.folder.to_string_lossy();
        let host =
            percent_encoding::utf8_percent_encode(&folder, percent_encoding::NON_ALPHANUMERIC);
        format!("postgres://{SUPERUSER}@{host}:{SOCKET_PORT}/{database}")
    }

    /// Makes the cluster when it does not exist, starts it unless it runs, and holds a share of
    /// it until the lease is released or dropped.
    pub fn acquire(&self) -> anyhow::Result<ClusterLease> {
        let owner = self.system_user_if_root()?;
        self.make_folder(owner.as_ref())?;
        let control = self.lock_file("control.lock")?;
        lock_exclusive(&control, SERVER_WAIT)
            .context("waiting for another process to start or stop the local PostgreSQL")?;
        let started = self.ensure_running(owner.as_ref());
        let lease = started.and_then(|started| {
            let users = self.lock_file("users.lock")?;
            // Anyone holding it exclusively holds `control.lock` first, which is ours.
            users
                .try_lock_shared()
                .map_err(|error| anyhow::anyhow!("{error}"))
                .context("taking a share of the local PostgreSQL")?;
            Ok(ClusterLease {
                cluster: self.clone(),
                owner: owner.clone(),
                users: Some(users),
                started,
            })
        });
        drop(control);
        lease
    }

    /// Makes the cluster unless it exists and starts it unless it runs; whether it started it.
    fn ensure_running(&self, owner: Option<&SystemUser>) -> anyhow::Result<bool> {
        if !self.data_folder().join("PG_VERSION").exists() {
            self.initdb(owner)?;
        }
        if self.is_running(owner)? {
            return Ok(false);
        }
        self.start(owner)?;
        Ok(true)
    }

    /// The process id of the running server, from `postmaster.pid`.
    pub fn server_pid(&self) -> Option<u32> {
        let pid_file = fs::read_to_string(self.data_folder().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Stops the server now, whoever else uses it; for tests that take a server away.
    pub fn stop_server(&self) -> anyhow::Result<()> {
        let owner = self.system_user_if_root()?;
        self.pg_ctl(owner.as_ref(), "stop", &["-m", "fast"])
            .map(drop)
    }

    /// Starts the server again after [`LocalCluster::stop_server`], with the current settings.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let owner = self.system_user_if_root()?;
        self.start(owner.as_ref())
    }

    fn system_user_if_root(&self) -> anyhow::Result<Option<SystemUser>> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let name = &self.system_user;
        let user = nix::unistd::User::from_name(name)
            .with_context(|| format!("looking up system user {name:?}"))?
            .with_context(|| {
                format!(
                    "PostgreSQL refuses to run as root, and there is no system user {name:?} \
                     to run the local PostgreSQL as: create one (`useradd --system {name}`), \
                     run festapi as an ordinary user, or set DATABASE_URL"
                )
            })?;
        if user.uid.is_root() {
            bail!("system user {name:?} is root, and PostgreSQL refuses to run as root");
        }
        Ok(Some(SystemUser {
            name: name.clone(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }))
    }

    /// Makes the folder, private to whoever runs the cluster.
    fn make_folder(&self, owner: Option<&SystemUser>) -> anyhow::Result<()> {
        let folder = &self.folder;
        fs::create_dir_all(folder)
            .with_context(|| format!("making the local PostgreSQL folder {}", folder.display()))?;
        if let Some(owner) = owner {
            std::os::unix::fs::chown(folder, Some(owner.uid), Some(owner.gid)).with_context(
                || {
                    format!(
                        "giving {} to system user {:?}",
                        folder.display(),
                        owner.name
                    )
                },
            )?;
            check_reachable(folder, owner)?;
        }
        fs::set_permissions(folder, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", folder.display()))
    }

    fn lock_file(&self, name: &str) -> anyhow::Result<File> {
        let path = self.folder.join(name);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }

    fn initdb(&self, owner: Option<&SystemUser>) -> anyhow::Result<()> {
        let data = self.data_folder();
        let mut command = self.command(&self.programs.initdb, owner);
        command
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", SUPERUSER, "--auth", "trust"])
            .args(["--encoding", "UTF8", "--locale", "C", "--no-instructions"]);
        run(command, "initdb")?;
        let config = data.join("postgresql.conf");
        let mut text =
            fs::read_to_string(&config).with_context(|| format!("reading {}", config.display()))?;
        text.push_str(
            "\n# Written by festapi on every start.\ninclude_if_exists = 'festapi.conf'\n",
        );
        fs::write(&config, text).with_context(|| format!("writing {}", config.display()))
    }

    fn is_running(&self, owner: Option<&SystemUser>) -> anyhow::Result<bool> {
        let mut command = self.command(&self.programs.pg_ctl, owner);
        command
            .arg("status")
            .arg("--pgdata")
            .arg(self.data_folder());
        let output = command.output().context("running pg_ctl status")?;
        // 0: running; 3: not running; anything else: no usable cluster there.
        match output.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => bail!("pg_ctl status: {}", describe(&output)),
        }
    }

    fn start(&self, owner: Option<&SystemUser>) -> anyhow::Result<()> {
        let settings_path = self.data_folder().join("festapi.conf");
        fs::write(&settings_path, self.settings_file())
            .with_context(|| format!("writing {}", settings_path.display()))?;
        if let Some(owner) = owner {
            std::os::unix::fs::chown(&settings_path, Some(owner.uid), Some(owner.gid))
                .with_context(|| {
                    format!("giving {} to {:?}", settings_path.display(), owner.name)
                })?;
        }
        let log = self.folder.join("postgresql.log");
        self.pg_ctl(owner, "start", &["--log", &log.to_string_lossy()])
            .with_context(|| format!("see {} for the server's own words", log.display()))
            .map(drop)
    }

    /// `festapi.conf`: the socket in the folder, no TCP, then the caller's lines.
    fn settings_file(&self) -> String {
        let folder = self.folder.to_string_lossy();
        let mut text = format!(
            "listen_addresses = ''\nunix_socket_directories = '{folder}'\n\
             unix_socket_permissions = 0700\nport = {SOCKET_PORT}\n"
        );
        for line in &self.settings {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn pg_ctl(
        &self,
        owner: Option<&SystemUser>,
        action: &str,
        arguments: &[&str],
    ) -> anyhow::Result<Output> {
        let mut command = self.command(&self.programs.pg_ctl, owner);
        command
            .arg(action)
            .arg("--pgdata")
            .arg(self.data_folder())
            .args(["--wait", "--timeout"])
            .arg(SERVER_WAIT.as_secs().to_string())
            .args(arguments);
        run(command, &format!("pg_ctl {action}"))
    }

    /// A command for one of the cluster's programs, as its owner, in a predictable environment.
    fn command(&self, program: &Path, owner: Option<&SystemUser>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LC_ALL", "C")
            .current_dir(&self.folder)
            .stdin(Stdio::null());
        if let Some(owner) = owner {
            command
                .uid(owner.uid)
                .gid(owner.gid)
                .env("USER", &owner.name)
                .env("LOGNAME", &owner.name);
        }
        command
    }
}

/// Fails with a clear message when `owner` cannot reach `folder` through its parents.
fn check_reachable(folder: &Path, owner: &SystemUser) -> anyhow::Result<()> {
    for ancestor in folder.ancestors().skip(1) {
        let metadata =
            fs::metadata(ancestor).with_context(|| format!("reading {}", ancestor.display()))?;
        let mode = metadata.mode();
        let searchable = if metadata.uid() == owner.uid {
            mode & 0o100 != 0
        } else if metadata.gid() == owner.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !searchable {
            bail!(
                "the local PostgreSQL runs as system user {:?}, which cannot reach {}: {} is \
                 closed to it. Set LOCAL_POSTGRES_DIR to a folder it can reach (such as one \
                 under /var/tmp), or set DATABASE_URL",
                owner.name,
                folder.display(),
                ancestor.display()
            );
        }
    }
    Ok(())
}

fn run(mut command: Command, what: &str) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!("{what} failed: {}", describe(&output));
    }
    Ok(output)
}

/// A program's exit status and what it said.
fn describe(output: &Output) -> String {
    let said = [&output.stderr, &output.stdout]
        .iter()
        .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    format!("{} ({})", said, output.status)
}

/// Takes an exclusive lock on `file`, trying again until `wait` has passed.
fn lock_exclusive(file: &File, wait: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => bail!("still locked after {wait:?}"),
            Err(fs::TryLockError::Error(error)) => return Err(error.into()),
        }
    }
}

/// What [`ClusterLease::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// This was the last process using the cluster: it is stopped.
    Stopped,
    /// Another process still uses the cluster: it runs on.
    LeftRunning,
}

/// A share of a running [`LocalCluster`]; the last share released stops the server.
#[derive(Debug)]
pub struct ClusterLease {
    cluster: LocalCluster,
    owner: Option<SystemUser>,
    /// The shared lock on `users.lock`; `None` once released.
    users: Option<File>,
    started: bool,
}

impl ClusterLease {
    /// The cluster this is a share of.
    pub fn cluster(&self) -> &LocalCluster {
        &self.cluster
    }

    /// Whether this process started the server, rather than finding it running.
    pub fn started_here(&self) -> bool {
        self.started
    }

    /// A connection URL for `database` through the cluster's socket.
    pub fn url(&self, database: &str) -> String {
        self.cluster.url(database)
    }

    /// Lets go of the cluster, stopping it when no other process uses it.
    pub fn release(mut self) -> anyhow::Result<Released> {
        self.let_go()
    }

    fn let_go(&mut self) -> anyhow::Result<Released> {
        let Some(users) = self.users.take() else {
            return Ok(Released::LeftRunning);
        };
        let control = self.cluster.lock_file("control.lock")?;
        lock_exclusive(&control, SERVER_WAIT)
            .context("waiting for another process to start or stop the local PostgreSQL")?;
        users.unlock()?;
        let last = match users.try_lock() {
            Ok(()) => true,
            Err(fs::TryLockError::WouldBlock) => false,
            Err(fs::TryLockError::Error(error)) => return Err(error.into()),
        };
        if !last {
            return Ok(Released::LeftRunning);
        }
        if self.cluster.is_running(self.owner.as_ref())? {
            self.cluster
                .pg_ctl(self.owner.as_ref(), "stop", &["-m", "fast"])?;
        }
        Ok(Released::Stopped)
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        if let Err(error) = self.let_go() {
            tracing::warn!(
                error = format!("{error:#}"),
                folder = %self.cluster.folder.display(),
                "could not stop the local PostgreSQL"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_pg_ctl() {
        let version = |text: &str| parse_version(text).map(|version| version.to_string());
        assert_eq!(
            version("pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)\n").as_deref(),
            Some("15.8")
        );
        assert_eq!(
            version("pg_ctl (PostgreSQL) 17beta2\n").as_deref(),
            Some("17")
        );
        assert_eq!(version("pg_ctl 15.8\n"), None);
        assert!(
            parse_version("pg_ctl (PostgreSQL) 16.1").unwrap()
                > parse_version("pg_ctl (PostgreSQL) 9.6.24").unwrap()
        );
    }

    #[test]
    fn socket_urls_name_the_folder_as_host() {
        let programs = PostgresPrograms {
            initdb: PathBuf::from("/bin/true"),
            pg_ctl: PathBuf::from("/bin/true"),
            version: Version(vec![15]),
        };
        let cluster = LocalCluster::new(programs, Path::new("/tmp/festapi postgres")).unwrap();
        let url = cluster.url("festapi");
        assert_eq!(
            url,
            "postgres://postgres@%2Ftmp%2Ffestapi%20postgres:5432/festapi"
        );
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Unix(PathBuf::from(
                "/tmp/festapi postgres"
            ))]
        );
    }
}

//! The container image, proven without a container engine: the server started exactly as the
//! Dockerfile's runtime stage starts it, against a database set up by the compose file's init
//! scripts, and checked with the image's own health check.
//!
//! USER, ENV, WORKDIR, ENTRYPOINT, CMD and HEALTHCHECK are read from the Dockerfile, so the test
//! follows it as it changes. The one substitution is the binary: the image's release build is
//! replaced by this build's debug binary. Both come from the same source with the same features
//! and settings, and a release build takes many minutes on a two-core machine, too slow for the
//! test suite; the Dockerfile's build stage is what compiles the release binary.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::cli::{ServedBinary, free_port};
use crate::support::{TEST_JWT_SECRET, TestDatabase, url_for};

/// The PATH Docker gives a container whose image sets none.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the Dockerfile's last stage says about how the server runs.
#[derive(Debug)]
struct RuntimeImage {
    /// `USER uid:gid`, numeric so it needs no user database.
    user: (u32, u32),
    env: BTreeMap<String, String>,
    workdir: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
}

impl RuntimeImage {
    fn from_dockerfile() -> Self {
        let instructions = instructions(include_str!("../../Dockerfile"));
        let last_stage = instructions
            .iter()
            .rposition(|(keyword, _)| keyword == "FROM")
            .expect("a FROM line");
        let mut image = Self {
            user: (0, 0),
            env: BTreeMap::new(),
            workdir: "/".to_owned(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            healthcheck: Vec::new(),
        };
        for (keyword, arguments) in &instructions[last_stage + 1..] {
            match keyword.as_str() {
                "USER" => {
                    let (uid, gid) = arguments
                        .split_once(':')
                        .expect("USER uid:gid, so the image needs no /etc/passwd lookup");
                    image.user = (uid.parse().unwrap(), gid.parse().unwrap());
                }
                "ENV" => {
                    assert!(
                        !arguments.contains(['"', '\'']),
                        "ENV values are unquoted here: {arguments}"
                    );
                    for pair in arguments.split_whitespace() {
                        let (name, value) = pair.split_once('=').expect("ENV NAME=value");
                        image.env.insert(name.to_owned(), value.to_owned());
                    }
                }
                "WORKDIR" => arguments.clone_into(&mut image.workdir),
                "ENTRYPOINT" => image.entrypoint = exec_form(arguments),
                "CMD" => image.cmd = exec_form(arguments),
                "HEALTHCHECK" => {
                    let (_options, command) = arguments
                        .split_once("CMD ")
                        .expect("HEALTHCHECK [options] CMD [...]");
                    image.healthcheck = exec_form(command);
                }
                _ => {}
            }
        }
        image
    }

    /// `argv` as the container runs it: the image's environment plus `settings`, its working
    /// directory, and its user when the test may switch to it.
    fn command(&self, argv: &[String], settings: &[(&str, &str)]) -> Command {
        let (program, arguments) = argv.split_first().expect("a command");
        assert_eq!(
            Some(program),
            self.entrypoint.first(),
            "the health check runs the image's own binary"
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_festapi"));
        command
            .args(arguments)
            .env_clear()
            .env("PATH", CONTAINER_PATH)
            .envs(&self.env)
            .envs(settings.iter().copied())
            .current_dir(&self.workdir);
        if running_as_root() {
            command.uid(self.user.0).gid(self.user.1);
        }
        command
    }
}

/// The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined and comments
/// left out.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines().map(str::trim) {
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let (keyword, arguments) = current
            .split_once(char::is_whitespace)
            .expect("an instruction with arguments");
        instructions.push((keyword.to_uppercase(), arguments.trim().to_owned()));
        current.clear();
    }
    instructions
}

/// A JSON-array ("exec form") command. The shell form would make a shell PID 1, which does not
/// pass SIGTERM on to the server.
fn exec_form(arguments: &str) -> Vec<String> {
    serde_json::from_str(arguments)
        .unwrap_or_else(|_| panic!("exec form, a JSON array of strings: {arguments}"))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// The user a process runs as, from `/proc`.
fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .expect("a Uid line");
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// Files mounted the way compose mounts secrets: readable by the container's user, removed when
/// dropped.
struct SecretFiles(PathBuf);

impl SecretFiles {
    fn new(secrets: &[(&str, &str)]) -> Self {
        let directory =
            std::env::temp_dir().join(format!("festapi-secrets-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&directory).unwrap();
        std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, value) in secrets {
            let path = directory.join(name);
            // As `openssl rand … > file` and `echo … > file` write them: one trailing newline.
            std::fs::write(&path, format!("{value}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        Self(directory)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database owned by a role of its own with no other privilege, made by running the compose
/// file's PostgreSQL init scripts as the postgres image would; both are dropped with this value.
struct ApplicationDatabase {
    database: Option<TestDatabase>,
    role: String,
    url: String,
}

impl ApplicationDatabase {
    fn create() -> Self {
        let database = TestDatabase::unused();
        let role = database.name.clone();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let password_file = SecretFiles::new(&[("festapi_db_password", &password)]);
        let server = url::Url::parse(&url_for("postgres")).unwrap();
        let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/postgres/init");
        let mut scripts: Vec<_> = std::fs::read_dir(&init)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        scripts.sort();
        for script in scripts {
            assert_eq!(
                script.extension().and_then(|extension| extension.to_str()),
                Some("sh"),
                "this test runs shell init scripts only: {script:?}"
            );
            let output = Command::new(&script)
                .env("POSTGRES_USER", server.username())
                .env("PGHOST", server.host_str().unwrap_or("127.0.0.1"))
                .env("PGPORT", server.port().unwrap_or(5432).to_string())
                .env("PGPASSWORD", server.password().unwrap_or_default())
                .env("FESTAPI_DB_USER", &role)
                .env("FESTAPI_DB_NAME", &database.name)
                .env(
                    "FESTAPI_DB_PASSWORD_FILE",
                    password_file.path("festapi_db_password"),
                )
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{script:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut url = url::Url::parse(&database.url).unwrap();
        url.set_username(&role).unwrap();
        url.set_password(Some(&password)).unwrap();
        Self {
            url: url.to_string(),
            database: Some(database),
            role,
        }
    }

    /// Lets the role log in, or refuses it and ends its sessions.
    fn allow_login(&self, allowed: bool) {
        let login = if allowed { "LOGIN" } else { "NOLOGIN" };
        let altered = psql(&format!("ALTER ROLE \"{}\" {login}", self.role));
        assert!(altered.status.success(), "{altered:?}");
        if !allowed {
            let ended = psql(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{}'",
                self.role
            ));
            assert!(ended.status.success(), "{ended:?}");
        }
    }

    /// Asks PostgreSQL what the role may do: (superuser, may create databases, may create roles).
    fn privileges(&self) -> String {
        let output = psql(&format!(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = '{}'",
            self.role
        ));
        assert!(output.status.success(), "{output:?}");
        stdout(&output).trim().to_owned()
    }
}

impl Drop for ApplicationDatabase {
    fn drop(&mut self) {
        // The database first: a role that owns one cannot be dropped.
        drop(self.database.take());
        psql(&format!("DROP ROLE IF EXISTS \"{}\"", self.role));
    }
}

/// Runs one SQL command on the test server as its administrator, with unaligned output.
fn psql(sql: &str) -> Output {
    Command::new("psql")
        .args([
            url_for("postgres").as_str(),
            "--no-psqlrc",
            "--quiet",
            "--tuples-only",
            "--no-align",
            "--command",
            sql,
        ])
        .output()
        .unwrap()
}

/// Runs the health check until it passes (`passing`) or fails, for at most ten seconds; returns
/// that run's output.
async fn health_check_until(health_check: &impl Fn() -> Output, passing: bool) -> Option<Output> {
    for _ in 0..100 {
        let output = health_check();
        if output.status.success() == passing {
            return Some(output);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn image_serves_as_its_own_user_and_its_health_check_follows_readiness() {
    let image = RuntimeImage::from_dockerfile();
    assert_ne!(image.user.0, 0, "the image runs as a non-root user");
    assert_eq!(image.env["APP_ENV"], "production");
    let (host, _) = image.env["FESTAPI_ADDR"]
        .rsplit_once(':')
        .expect("FESTAPI_ADDR host:port");
    assert_eq!(host, "0.0.0.0", "the image listens on every interface");
    let database = ApplicationDatabase::create();
    assert_eq!(database.privileges(), "f|f|f");
    let secrets = SecretFiles::new(&[
        ("database_url", &database.url),
        ("jwt_secret", TEST_JWT_SECRET),
    ]);
    let port = free_port(host);
    let listen = format!("{host}:{port}");
    // As docker-compose.yml configures the container.
    let settings = [
        ("FESTAPI_ADDR", listen.as_str()),
        ("DATABASE_URL_FILE", &secrets.path("database_url")),
        ("JWT_SECRET_FILE", &secrets.path("jwt_secret")),
    ];
    let health_check = || {
        image
            .command(&image.healthcheck, &settings)
            .output()
            .unwrap()
    };

    let before = health_check();
    assert!(!before.status.success(), "nothing listens yet");
    assert_eq!(before.status.code(), Some(1), "Docker reads 1 as unhealthy");
    assert_eq!(stderr(&before).lines().count(), 1, "{}", stderr(&before));
    assert!(stderr(&before).contains("not ready"), "{}", stderr(&before));

    let argv: Vec<String> = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
    let server = ServedBinary::spawn(
        &mut image.command(&argv, &settings),
        format!("127.0.0.1:{port}"),
    );
    let ready = health_check_until(&health_check, true)
        .await
        .expect("the health check passes once the server is ready");
    assert_eq!(
        stdout(&ready).trim(),
        format!("ready: http://127.0.0.1:{port}/readyz answered 200 OK")
    );
    if running_as_root() {
        assert_eq!(uid_of(server.id()), image.user.0);
    }

    // The check follows readiness, not mere liveness: PostgreSQL refusing the role turns it.
    database.allow_login(false);
    let unready = health_check_until(&health_check, false)
        .await
        .expect("the health check fails while the database refuses the server");
    assert!(
        stderr(&unready).contains("answered 503 Service Unavailable"),
        "{}",
        stderr(&unready)
    );
    database.allow_login(true);
    health_check_until(&health_check, true)
        .await
        .expect("the health check passes again once the database accepts the server");

    server.terminate();
    let (status, logs) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}: {logs}");
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "production logs are JSON lines: {line}"
        );
    }
    let after = health_check();
    assert_eq!(after.status.code(), Some(1), "{}", stderr(&after));
}

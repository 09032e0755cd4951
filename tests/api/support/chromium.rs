//! A headless Chromium driven over the DevTools protocol, for tests that need a real browser.
//!
//! Chromium comes from Debian's `chromium` package (`/usr/bin/chromium`, or the path in
//! `CHROMIUM`). Without it, a test is skipped with a note on the terminal, unless `CI` is set:
//! there a missing browser fails the test rather than letting it pass without running.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long Chromium may take to start and open its first page.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Records every Content-Security-Policy violation of a page, before any of its scripts runs.
const RECORD_CSP_VIOLATIONS: &str = "window.cspViolations = []; \
    document.addEventListener('securitypolicyviolation', (event) => \
    window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`));";

/// A running headless Chromium with one page open.
pub(crate) struct Browser {
    process: Child,
    profile: PathBuf,
    /// The page the browser opened with.
    pub page: Page,
}

impl Browser {
    /// Starts Chromium with a fresh profile, or returns `None` after a note on the terminal when
    /// it is not installed and `CI` is unset.
    pub(crate) async fn launch() -> Option<Self> {
        let executable = std::env::var_os("CHROMIUM")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        if !executable.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} is missing, and CI must run the browser tests: apt-get install chromium",
                executable.display()
            );
            // Written to the terminal itself: the test harness would swallow `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: {} is missing, so the browser test did not run \
                 (apt-get install chromium; CI fails instead of skipping) ***\n",
                executable.display()
            );
            return None;
        }
        let profile =
            std::env::temp_dir().join(format!("festapi-chromium-{}", uuid::Uuid::new_v4()));
        let mut process = Command::new(&executable)
            .args([
                "--headless",
                // Tests run as root in containers, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let stderr = process.stderr.take().expect("chromium's stderr");
        let page = tokio::time::timeout(LAUNCH_TIMEOUT, Page::open(stderr))
            .await
            .expect("chromium opens its DevTools port in time");
        Some(Self {
            process,
            profile,
            page,
        })
    }

    /// Closes the browser, giving it a moment to shut down cleanly.
    pub(crate) async fn close(mut self) {
        let _ = self.page.call("Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.process.wait()).await;
    }
}

impl Drop for Browser {
    /// Stops the browser, should a failed test leave it running, and removes its profile.
    fn drop(&mut self) {
        let _ = self.process.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One browser tab, and what went wrong in it so far.
pub(crate) struct Page {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Uncaught exceptions, console errors and failed loads, as Chromium reported them.
    pub problems: Vec<String>,
}

impl Page {
    /// Connects to the first page of the browser whose stderr is `stderr`, with the events the
    /// tests watch turned on.
    async fn open(stderr: tokio::process::ChildStderr) -> Self {
        let mut lines = BufReader::new(stderr).lines();
        let browser_url = loop {
            let line = lines
                .next_line()
                .await
                .expect("chromium's stderr")
                .expect("chromium announces its DevTools address before exiting");
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                break url.trim().to_owned();
            }
        };
        // Chromium keeps logging; a full pipe would stall it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let address = browser_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// address");
        let page_url = loop {
            let targets: Vec<Value> = reqwest::get(format!("http://{address}/json/list"))
                .await
                .expect("the DevTools target list")
                .json()
                .await
                .expect("a JSON target list");
            if let Some(url) = targets
                .iter()
                .find(|target| target["type"] == "page")
                .and_then(|target| target["webSocketDebuggerUrl"].as_str())
            {
                break url.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(page_url)
            .await
            .expect("a DevTools connection to the page");
        let mut page = Self {
            socket,
            next_id: 0,
            problems: Vec::new(),
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(domain, json!({})).await;
        }
        // A headless page has no window focus unless told to act as if it had.
        page.call(
            "Emulation.setFocusEmulationEnabled",
            json!({ "enabled": true }),
        )
        .await;
        page.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": RECORD_CSP_VIOLATIONS }),
        )
        .await;
        page
    }

    /// Sends a DevTools command and returns its result, noting the events that arrive meanwhile.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .expect("a DevTools command sent");
        loop {
            let message = self
                .socket
                .next()
                .await
                .expect("the DevTools connection stays open")
                .expect("a DevTools message");
            let Message::Text(text) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).expect("a JSON DevTools message");
            if message["id"] == id {
                assert!(
                    message.get("error").is_none(),
                    "{method} failed: {}",
                    message["error"]
                );
                return message["result"].clone();
            }
            self.note_event(&message);
        }
    }

    fn note_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.problems.push(format!(
                "uncaught exception: {}",
                params["exceptionDetails"]["exception"]["description"]
            )),
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.problems
                    .push(format!("console error: {}", params["args"]));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.problems.push(format!(
                    "{}: {} ({})",
                    params["entry"]["source"], params["entry"]["text"], params["entry"]["url"]
                ));
            }
            _ => {}
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub(crate) async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete'").await;
    }

    /// Evaluates `expression` in the page, awaiting a promise, and returns its value.
    pub(crate) async fn evaluate(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Waits, for at most five seconds, until `expression` is truthy.
    pub(crate) async fn wait_for(&mut self, expression: &str) {
        let check = format!("Boolean({expression})");
        for _ in 0..100 {
            if self.evaluate(&check).await == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {expression}; problems so far: {:?}",
            self.problems
        );
    }

    /// Types `text` into the focused element, as a paste or an input method would.
    pub(crate) async fn insert_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// The Content-Security-Policy violations the current document has seen.
    pub(crate) async fn csp_violations(&mut self) -> Value {
        self.evaluate("window.cspViolations").await
    }
}

//! Progress of a backup or restore, table by table, on standard error: a bar on a terminal, and
//! one plain line per table otherwise, so logs of scheduled runs stay readable.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};

/// How a run's progress is shown.
pub(super) struct Progress {
    /// The bar, on a terminal.
    bar: Option<ProgressBar>,
    /// What the run does to each table, for plain lines: `dumping`, `restoring`.
    verb: &'static str,
    tables: u64,
    started: u64,
}

impl Progress {
    /// Progress over `tables` tables, each announced as `verb` (`dumping public.users`).
    pub(super) fn start(verb: &'static str, tables: usize) -> Self {
        let tables = u64::try_from(tables).unwrap_or(u64::MAX);
        let bar = std::io::stderr().is_terminal().then(|| {
            // A run that fails clears its bar too, before its error is printed.
            let bar = ProgressBar::new(tables).with_finish(ProgressFinish::AndClear);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tables  {wide_msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self {
            bar,
            verb,
            tables,
            started: 0,
        }
    }

    /// The tool reported a step: on the bar, it becomes the message.
    pub(super) fn step(&self, step: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(step.to_owned());
        }
    }

    /// The tool started on `table`.
    pub(super) fn table(&mut self, table: &str) {
        self.started += 1;
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.started.min(self.tables));
                bar.set_message(format!("{} {table}", self.verb));
            }
            None => eprintln!(
                "{} {table} ({}/{})",
                self.verb,
                self.started.min(self.tables),
                self.tables
            ),
        }
    }

    /// Removes the bar, so the summary is printed on a clean line.
    pub(super) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

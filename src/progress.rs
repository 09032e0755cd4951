//! Progress of long commands on standard error: a bar on a terminal, a few plain lines
//! otherwise (a log file or a CI job gets no control characters), nothing when hidden.

use std::io::IsTerminal as _;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

/// How a command shows how far it has got, one stage at a time.
#[derive(Debug)]
pub struct Progress {
    display: Display,
}

#[derive(Debug)]
enum Display {
    /// An `indicatif` bar, redrawn in place.
    Bar(Mutex<Option<ProgressBar>>),
    /// A line when a stage starts and at every tenth of it.
    Lines(Mutex<LineStage>),
    /// Nothing at all.
    Hidden,
}

/// The stage plain lines are counting.
#[derive(Debug, Default)]
struct LineStage {
    name: &'static str,
    total: u64,
    done: u64,
    /// The tenths already printed.
    tenths_shown: u64,
}

impl Progress {
    /// A bar when standard error is a terminal, plain lines otherwise.
    pub fn on_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Self {
                display: Display::Bar(Mutex::new(None)),
            }
        } else {
            Self::plain_lines()
        }
    }

    /// Plain lines on standard error, whatever it is.
    pub fn plain_lines() -> Self {
        Self {
            display: Display::Lines(Mutex::new(LineStage::default())),
        }
    }

    /// No progress at all, for callers that report otherwise.
    pub fn hidden() -> Self {
        Self {
            display: Display::Hidden,
        }
    }

    /// Starts stage `name` of `total` steps, finishing the one before. Plain lines say nothing
    /// of a stage with nothing to do.
    pub fn stage(&self, name: &'static str, total: usize) {
        let total = total as u64;
        match &self.display {
            Display::Bar(bar) => {
                let Ok(mut bar) = bar.lock() else { return };
                if let Some(previous) = bar.take() {
                    previous.finish();
                }
                let style =
                    ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                let next = ProgressBar::new(total).with_style(style).with_message(name);
                *bar = Some(next);
            }
            Display::Lines(stage) => {
                let Ok(mut stage) = stage.lock() else { return };
                *stage = LineStage {
                    name,
                    total,
                    ..LineStage::default()
                };
                if total > 0 {
                    eprintln!("{name}: 0/{total}");
                }
            }
            Display::Hidden => {}
        }
    }

    /// Counts `steps` more steps of the current stage as done.
    pub fn advance(&self, steps: usize) {
        let steps = steps as u64;
        match &self.display {
            Display::Bar(bar) => {
                if let Ok(bar) = bar.lock()
                    && let Some(bar) = bar.as_ref()
                {
                    bar.inc(steps);
                }
            }
            Display::Lines(stage) => {
                let Ok(mut stage) = stage.lock() else { return };
                stage.done = (stage.done + steps).min(stage.total);
                let tenths = (stage.done * 10).checked_div(stage.total).unwrap_or(10);
                if tenths > stage.tenths_shown {
                    stage.tenths_shown = tenths;
                    eprintln!("{}: {}/{}", stage.name, stage.done, stage.total);
                }
            }
            Display::Hidden => {}
        }
    }

    /// Finishes the current stage, leaving a bar at its final state.
    pub fn finish(&self) {
        if let Display::Bar(bar) = &self.display
            && let Ok(mut bar) = bar.lock()
            && let Some(bar) = bar.take()
        {
            bar.finish();
        }
    }
}

//! Plugin log lines: forwarded to `tracing` under the plugin's name, escaped, and rate-limited.

use crate::text::PluginText;
use plugin_sdk::abi::LogLevel;
use std::time::{Duration, Instant};

/// Log lines per second a plugin may write; the rest are dropped and counted.
const LOG_LINES_PER_SECOND: u32 = 200;

/// Forwards plugin log lines, at most [`LOG_LINES_PER_SECOND`], with control characters
/// escaped so that a plugin cannot forge host log lines or send terminal escapes.
#[derive(Default)]
pub(super) struct LogLimiter {
    window_start: Option<Instant>,
    in_window: u32,
    dropped: u64,
}

impl LogLimiter {
    pub(super) fn forward(&mut self, plugin: &str, level: i32, message: &str) {
        let now = Instant::now();
        if self.window_start.is_none_or(|start| now - start >= Duration::from_secs(1)) {
            self.report_dropped(plugin);
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= LOG_LINES_PER_SECOND {
            self.dropped += 1;
            return;
        }
        self.in_window += 1;
        forward_log(plugin, level, &PluginText::from(message).to_string());
    }

    pub(super) fn report_dropped(&mut self, plugin: &str) {
        if self.dropped > 0 {
            tracing::warn!(target: "plugin", "{plugin}: dropped {} log lines (more than {LOG_LINES_PER_SECOND} a second)", self.dropped);
            self.dropped = 0;
        }
    }
}

fn forward_log(plugin: &str, level: i32, message: &str) {
    match LogLevel::from_i32(level) {
        Some(LogLevel::Error) => tracing::error!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Warn) => tracing::warn!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Info) | None => tracing::info!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Debug) => tracing::debug!(target: "plugin", "{plugin}: {message}"),
        Some(LogLevel::Trace) => tracing::trace!(target: "plugin", "{plugin}: {message}"),
    }
}

//! systemd integration (Type=notify): READY once the model is loaded and the sources are open,
//! WATCHDOG pings from the processing loop itself (a stalled loop stops them, and systemd
//! restarts the service), STOPPING on shutdown. Without NOTIFY_SOCKET every call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

pub struct Notifier {
    enabled: bool,
    /// Half of WatchdogSec: systemd's recommended ping interval.
    watchdog: Option<Duration>,
    last_ping: Instant,
}

impl Notifier {
    pub fn from_env(enabled: bool) -> Self {
        let mut usec = 0;
        let watchdog =
            (enabled && sd_notify::watchdog_enabled(false, &mut usec)).then(|| Duration::from_micros(usec / 2));
        Notifier {
            enabled: enabled && std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog,
            last_ping: Instant::now(),
        }
    }

    fn send(&self, state: &[NotifyState]) {
        if self.enabled {
            if let Err(e) = sd_notify::notify(false, state) {
                tracing::warn!("systemd notify: {e}");
            }
        }
    }

    pub fn ready(&mut self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        self.last_ping = Instant::now();
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// Called every loop turn; pings at most every half watchdog period.
    pub fn tick(&mut self) {
        if let Some(every) = self.watchdog {
            if self.last_ping.elapsed() >= every {
                self.send(&[NotifyState::Watchdog]);
                self.last_ping = Instant::now();
            }
        }
    }
}

//! One token fetch: a `client_credentials` request to the token endpoint
//! (RFC 6749 §4.4, as the Java client's `ClientCredentialsJwtRetriever`
//! sends it), or a read of a `file://` token; and the retries around it
//! (the Java client's `Retry`: backoff doubling from
//! `sasl.login.retry.backoff.ms`, all of them within
//! `sasl.login.retry.backoff.max.ms`; an answer that retrying cannot
//! change, such as 401, ends them at once). No error carries the client
//! secret or a token.

use std::time::Duration;

use crate::config::oauth::OidcSettings;

/// The time retries are counted and waited on (the wall clock, or a
/// simulated one in tests).
pub(crate) trait Waits {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// Waits `d`; false when the token source stopped meanwhile.
    fn sleep(&mut self, d: Duration) -> bool;
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Whether another attempt could succeed.
    pub(crate) retryable: bool,
    pub(crate) message: String,
}

impl Failure {
    pub(super) fn retry(message: String) -> Failure {
        Failure {
            retryable: true,
            message,
        }
    }
}

/// Where tokens come from.
pub(crate) struct Endpoint {
    settings: OidcSettings,
    #[cfg(feature = "oidc")]
    agent: Option<ureq::Agent>,
}

impl Endpoint {
    /// The endpoint of checked `settings` (see `OidcSettings::check`).
    pub(crate) fn new(settings: &OidcSettings) -> Result<Endpoint, String> {
        #[cfg(feature = "oidc")]
        let agent = if settings.url().starts_with("file://") {
            None
        } else {
            Some(super::http::agent(settings)?)
        };
        Ok(Endpoint {
            settings: settings.clone(),
            #[cfg(feature = "oidc")]
            agent,
        })
    }

    /// The URL, for messages.
    pub(crate) fn url(&self) -> &str {
        self.settings.url()
    }

    /// Fetches a token, retrying as the module says, on `clock`'s time.
    pub(crate) fn fetch(&self, clock: &mut dyn Waits) -> Result<String, String> {
        let started = clock.now_ms();
        let budget = self.settings.retry_backoff_max;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let e = match self.attempt(clock.now_ms()) {
                Ok(token) => return Ok(token),
                Err(e) => e,
            };
            let spent = Duration::from_millis(clock.now_ms().saturating_sub(started));
            match retry_wait(
                attempt,
                self.settings.retry_backoff,
                budget.saturating_sub(spent),
            ) {
                Some(d) if e.retryable => {
                    tracing::debug!(url = %self.url(), attempt, error = %e.message, "token fetch failed; retrying");
                    if !clock.sleep(d) {
                        return Err(e.message);
                    }
                }
                _ => return Err(e.message),
            }
        }
    }

    /// One attempt at `now_ms` (when a client assertion is signed).
    #[cfg_attr(not(feature = "oidc"), allow(unused_variables))]
    fn attempt(&self, now_ms: u64) -> Result<String, Failure> {
        let url = self.settings.url();
        if let Some(path) = url.strip_prefix("file://") {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::retry(format!("the token file {path} cannot be read: {e}"))
            })?;
            return match text.trim() {
                "" => Err(Failure::retry(format!("the token file {path} is empty"))),
                t => Ok(t.to_owned()),
            };
        }
        #[cfg(feature = "oidc")]
        if let Some(agent) = &self.agent {
            return super::http::post(agent, &self.settings, now_ms);
        }
        Err(Failure {
            retryable: false,
            message: format!("no HTTP client for {url} (kring's `oidc` feature is off)"),
        })
    }
}

impl OidcSettings {
    pub(super) fn url(&self) -> &str {
        self.endpoint.as_deref().unwrap_or_default()
    }
}

/// The wait before attempt `attempt + 1` after `attempt` failed:
/// `backoff` doubled per attempt, cut to what is `left` of the budget;
/// `None` when nothing is left.
pub(crate) fn retry_wait(attempt: u32, backoff: Duration, left: Duration) -> Option<Duration> {
    if left.is_zero() {
        return None;
    }
    let d = backoff.saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX));
    Some(d.min(left)).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_within_the_budget() {
        let ms = Duration::from_millis;
        let waits: Vec<_> = (1..=5).map(|a| retry_wait(a, ms(100), ms(1000))).collect();
        assert_eq!(
            waits,
            [
                Some(ms(100)),
                Some(ms(200)),
                Some(ms(400)),
                Some(ms(800)),
                Some(ms(1000))
            ]
        );
        assert_eq!(retry_wait(1, ms(100), ms(30)), Some(ms(30)));
        assert_eq!(retry_wait(1, ms(100), Duration::ZERO), None);
        assert_eq!(retry_wait(40, ms(100), ms(7)), Some(ms(7)));
        assert_eq!(retry_wait(1, Duration::ZERO, ms(7)), None);
    }

    /// A failure retrying cannot change (here: no key to sign the client
    /// assertion with) ends the fetch at once, whatever budget is left.
    #[cfg(feature = "oidc")]
    #[test]
    fn an_unretryable_failure_is_not_retried() {
        struct Counting(Vec<Duration>);
        impl Waits for Counting {
            fn now_ms(&self) -> u64 {
                0
            }
            fn sleep(&mut self, d: Duration) -> bool {
                self.0.push(d);
                true
            }
        }
        let mut settings = OidcSettings {
            endpoint: Some("http://127.0.0.1:9/token".into()),
            jwt_bearer: true,
            retry_backoff_max: Duration::from_secs(3600),
            ..OidcSettings::default()
        };
        settings.assertion.private_key_file = Some("/nonexistent/kring-key.pem".into());
        let mut waits = Counting(Vec::new());
        let e = Endpoint::new(&settings)
            .unwrap()
            .fetch(&mut waits)
            .unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
        assert!(waits.0.is_empty(), "{:?}", waits.0);
    }

    #[test]
    fn a_token_file_is_read_and_an_unreadable_one_retried_within_the_budget() {
        let dir = std::env::temp_dir().join(format!("kring-oauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let settings = OidcSettings {
            endpoint: Some(format!("file://{}", path.display())),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(3600),
            ..OidcSettings::default()
        };
        let e = Endpoint::new(&settings).unwrap();
        /// Simulated time: a wait passes at once.
        struct Sim {
            now: u64,
            waits: Vec<Duration>,
            stop_after: usize,
        }
        impl Waits for Sim {
            fn now_ms(&self) -> u64 {
                self.now
            }
            fn sleep(&mut self, d: Duration) -> bool {
                self.now += d.as_millis() as u64;
                self.waits.push(d);
                self.waits.len() < self.stop_after
            }
        }
        // Missing: retried with doubling waits, until the source stops.
        let mut sim = Sim {
            now: 0,
            waits: Vec::new(),
            stop_after: 3,
        };
        let err = e.fetch(&mut sim).unwrap_err();
        assert!(err.contains("cannot be read"), "{err}");
        let ms = Duration::from_millis;
        assert_eq!(sim.waits, [ms(100), ms(200), ms(400)]);
        // ... or until the budget is spent (here 1 s: 100+200+400+300).
        let short = Endpoint::new(&OidcSettings {
            retry_backoff_max: Duration::from_secs(1),
            ..settings.clone()
        })
        .unwrap();
        let mut sim = Sim {
            now: 0,
            waits: Vec::new(),
            stop_after: 100,
        };
        short.fetch(&mut sim).unwrap_err();
        assert_eq!(sim.waits, [ms(100), ms(200), ms(400), ms(300)]);
        std::fs::write(&path, "  a.b.c\n").unwrap();
        let mut sim = Sim {
            now: 0,
            waits: Vec::new(),
            stop_after: 0,
        };
        assert_eq!(e.fetch(&mut sim).unwrap(), "a.b.c");
        assert!(sim.waits.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

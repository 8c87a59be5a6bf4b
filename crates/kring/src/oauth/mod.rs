//! OAUTHBEARER tokens from a token endpoint (KIP-768): the first one is
//! fetched while the producer is built, and a background thread
//! (`kring-oauth`) refreshes it when the Java client would
//! ([`refresh::refresh_at`]). The core's token provider only reads the
//! latest token, so the I/O thread never waits for the endpoint — a slow
//! or failing identity service delays no request. A failed refresh keeps
//! the current token while it is valid and is tried again 10 s later, as
//! in Java. The thread stops when the producer's core drops the provider.
//!
//! The settings are `crate::config::oauth`; one fetch and its retries are
//! [`endpoint`], its HTTP request `http`; what a token must claim is [`jwt`].

#[cfg(feature = "oidc")]
mod assertion;
mod endpoint;
#[cfg(feature = "oidc")]
mod http;
mod jwt;
mod refresh;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kring_core::{OAuthToken, OAuthTokenProvider};

use crate::config::oauth::OidcSettings;
use endpoint::{Endpoint, Waits};

/// The token in use.
#[derive(Clone, Debug, PartialEq)]
struct Current {
    value: String,
    principal: String,
    issued_ms: Option<u64>,
    expiry_ms: u64,
}

/// What the provider and the refresher share.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    wake: Condvar,
}

#[derive(Default)]
struct SlotState {
    token: Option<Current>,
    /// Why the last refresh failed (cleared by a successful one).
    last_error: Option<String>,
    /// The provider is gone: the refresher ends.
    stopped: bool,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The refresher's clock: when it is, and waiting until a time unless the
/// token source stops (the wall clock; simulated in tests).
trait Clock: Send + 'static {
    fn now_ms(&self) -> u64;
    /// Waits until `until_ms`; false if the source stopped first.
    fn wait_until(&mut self, slot: &Slot, until_ms: u64) -> bool;
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        wall_ms()
    }

    fn wait_until(&mut self, slot: &Slot, until_ms: u64) -> bool {
        let mut s = slot.lock();
        loop {
            if s.stopped {
                return false;
            }
            let now = wall_ms();
            if now >= until_ms {
                return true;
            }
            s = slot
                .wake
                .wait_timeout(s, Duration::from_millis(until_ms - now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A clock with the slot it waits on, as the endpoint's retries see it.
struct On<'a, C: Clock> {
    clock: &'a mut C,
    slot: &'a Slot,
}

impl<C: Clock> Waits for On<'_, C> {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn sleep(&mut self, d: Duration) -> bool {
        let until = self.clock.now_ms().saturating_add(d.as_millis() as u64);
        self.clock.wait_until(self.slot, until)
    }
}

/// Fetches a token and checks its claims.
fn fetch<C: Clock>(
    endpoint: &Endpoint,
    settings: &OidcSettings,
    clock: &mut C,
    slot: &Slot,
) -> Result<Current, String> {
    let value = endpoint.fetch(&mut On { clock, slot })?;
    let claims = jwt::claims(&value, &settings.sub_claim, &settings.scope_claim)
        .map_err(|e| format!("the token from {}: {e}", endpoint.url()))?;
    let now = clock.now_ms();
    if claims.expiry_ms <= now {
        return Err(format!(
            "the token from {} expired {} ms before it arrived: are this host's clock and \
             the identity service's in step?",
            endpoint.url(),
            now - claims.expiry_ms
        ));
    }
    Ok(Current {
        value,
        principal: claims.principal,
        issued_ms: claims.issued_ms,
        expiry_ms: claims.expiry_ms,
    })
}

/// A uniform draw in [0, 1) for the refresh jitter.
fn draw() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(wall_ms());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Refreshes the slot's token until the source stops.
fn refresh_loop<C: Clock>(
    endpoint: &Endpoint,
    settings: &OidcSettings,
    clock: &mut C,
    slot: &Slot,
) {
    loop {
        let Some(current) = slot.lock().token.clone() else {
            return;
        };
        let at = refresh::refresh_at(
            clock.now_ms(),
            current.issued_ms,
            current.expiry_ms,
            &settings.refresh,
            draw(),
        );
        tracing::debug!(principal = %current.principal, in_ms = at.saturating_sub(clock.now_ms()), "OAUTHBEARER token refresh scheduled");
        if !clock.wait_until(slot, at) {
            return;
        }
        loop {
            match fetch(endpoint, settings, clock, slot) {
                Ok(t) => {
                    tracing::debug!(principal = %t.principal, "OAUTHBEARER token refreshed");
                    let mut s = slot.lock();
                    s.token = Some(t);
                    s.last_error = None;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "OAUTHBEARER token refresh failed; the current token is used while it is valid, and the refresh tried again in 10 s");
                    slot.lock().last_error = Some(e);
                    let again = clock
                        .now_ms()
                        .saturating_add(refresh::RETRY_AFTER_FAILURE.as_millis() as u64);
                    if !clock.wait_until(slot, again) {
                        return;
                    }
                }
            }
        }
    }
}

/// Stops the refresher when the last provider handle is dropped.
struct Stopper(Arc<Slot>);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.wake.notify_all();
    }
}

/// The provider's answer at `now_ms`: the current token with the time it
/// has left.
fn provide(slot: &Slot, now_ms: u64) -> Result<OAuthToken, String> {
    let s = slot.lock();
    let Some(t) = &s.token else {
        return Err("no OAUTHBEARER token yet".to_owned());
    };
    if t.expiry_ms <= now_ms {
        return Err(format!(
            "the OAUTHBEARER token expired and no new one could be fetched{}",
            s.last_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    Ok(OAuthToken {
        value: t.value.clone(),
        lifetime: Duration::from_millis(t.expiry_ms - now_ms),
        principal: t.principal.clone(),
    })
}

/// Fetches the first token from the endpoint `settings` name (checked by
/// the configuration), starts the refresher thread and returns the
/// provider the core calls. Fails when no valid token could be fetched
/// within `sasl.login.retry.backoff.max.ms` of retries.
pub(crate) fn start(settings: &OidcSettings) -> Result<OAuthTokenProvider, String> {
    let endpoint = Endpoint::new(settings)?;
    let slot = Arc::new(Slot::default());
    let mut clock = WallClock;
    let first = fetch(&endpoint, settings, &mut clock, &slot)?;
    tracing::info!(principal = %first.principal, url = %endpoint.url(), "OAUTHBEARER token fetched");
    slot.lock().token = Some(first);
    let settings = settings.clone();
    let shared = Arc::clone(&slot);
    std::thread::Builder::new()
        .name("kring-oauth".into())
        .spawn(move || refresh_loop(&endpoint, &settings, &mut clock, &shared))
        .map_err(|e| format!("the token refresh thread could not start: {e}"))?;
    let stopper = Stopper(slot);
    Ok(Arc::new(move || provide(&stopper.0, wall_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::oauth::RefreshPolicy;

    const S: u64 = 1000;
    const T0: u64 = 1_700_000_000_000;

    /// Simulated time: each wait passes at once, runs `on_wait` (which
    /// may change the token file), and the run stops after `max` waits.
    struct Sim<F: FnMut(u64) + Send + 'static> {
        now: u64,
        waits: Vec<u64>,
        max: usize,
        on_wait: F,
    }

    impl<F: FnMut(u64) + Send + 'static> Clock for Sim<F> {
        fn now_ms(&self) -> u64 {
            self.now
        }

        fn wait_until(&mut self, slot: &Slot, until_ms: u64) -> bool {
            if slot.lock().stopped || self.waits.len() >= self.max {
                return false;
            }
            self.now = self.now.max(until_ms);
            self.waits.push(until_ms);
            (self.on_wait)(self.now);
            true
        }
    }

    fn token_file(tag: &str) -> (std::path::PathBuf, OidcSettings) {
        let dir = std::env::temp_dir().join(format!("kring-oauth-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let settings = OidcSettings {
            endpoint: Some(format!("file://{}", path.display())),
            refresh: RefreshPolicy {
                window_jitter: 0.0,
                ..RefreshPolicy::default()
            },
            retry_backoff_max: Duration::ZERO,
            ..OidcSettings::default()
        };
        (path, settings)
    }

    fn write_token(path: &std::path::Path, sub: &str, iat: u64, exp: u64) {
        let t = jwt::unsigned(&format!(
            r#"{{"sub":"{sub}","iat":{},"exp":{}}}"#,
            iat / 1000,
            exp / 1000
        ));
        std::fs::write(path, t).unwrap();
    }

    /// Hour-long tokens, each written when the refresher asks: refreshed
    /// at 80 % of each one's life, the provider handing out the newest
    /// with the time it has left.
    #[test]
    fn tokens_are_refreshed_at_the_window_and_provided_with_their_time_left() {
        let (path, settings) = token_file("refresh");
        write_token(&path, "gen0", T0, T0 + 3600 * S);
        let endpoint = Endpoint::new(&settings).unwrap();
        let slot = Slot::default();
        let p = path.clone();
        let mut gen = 0;
        let mut clock = Sim {
            now: T0,
            waits: Vec::new(),
            max: 3,
            on_wait: move |now| {
                gen += 1;
                write_token(&p, &format!("gen{gen}"), now, now + 3600 * S);
            },
        };
        let first = fetch(&endpoint, &settings, &mut clock, &slot).unwrap();
        assert_eq!(first.principal, "gen0");
        slot.lock().token = Some(first);
        let t = provide(&slot, T0 + 600 * S).unwrap();
        assert_eq!(t.lifetime, Duration::from_secs(3000));
        refresh_loop(&endpoint, &settings, &mut clock, &slot);
        let at = |k: u64| T0 + k * 2880 * S;
        assert_eq!(clock.waits, [at(1), at(2), at(3)]);
        // A fourth wait ended the run: generation 3 is the newest token.
        let t = provide(&slot, at(3) + 60 * S).unwrap();
        assert_eq!(t.principal, "gen3");
        assert_eq!(t.lifetime, Duration::from_secs(3540));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A refresh that fails keeps the current token while it is valid,
    /// tries again every 10 s, and says why once the token has expired.
    #[test]
    fn a_failed_refresh_keeps_the_token_and_is_tried_again_every_ten_seconds() {
        let (path, settings) = token_file("fail");
        write_token(&path, "only", T0, T0 + 100 * S);
        let endpoint = Endpoint::new(&settings).unwrap();
        let slot = Slot::default();
        let p = path.clone();
        let mut clock = Sim {
            now: T0,
            waits: Vec::new(),
            max: 4,
            on_wait: move |_| {
                let _ = std::fs::remove_file(&p);
            },
        };
        let first = fetch(&endpoint, &settings, &mut clock, &slot).unwrap();
        slot.lock().token = Some(first);
        refresh_loop(&endpoint, &settings, &mut clock, &slot);
        // 100 s is less than both buffers: 0.8 of it, then every 10 s.
        assert_eq!(
            clock.waits,
            [T0 + 80 * S, T0 + 90 * S, T0 + 100 * S, T0 + 110 * S]
        );
        assert_eq!(provide(&slot, T0 + 99 * S).unwrap().principal, "only");
        let e = provide(&slot, T0 + 100 * S).unwrap_err();
        assert!(e.contains("expired") && e.contains("cannot be read"), "{e}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Dropping the provider stops the refresher thread.
    #[test]
    fn dropping_the_provider_stops_the_refresher() {
        let (path, settings) = token_file("stop");
        write_token(&path, "svc", wall_ms(), wall_ms() + 3600 * S);
        let provider = start(&settings).unwrap();
        let t = provider().unwrap();
        assert_eq!(t.principal, "svc");
        // The lifetime is counted from the wall clock's now.
        assert!(
            t.lifetime <= Duration::from_secs(3600) && t.lifetime > Duration::from_secs(3000),
            "{:?}",
            t.lifetime
        );
        let threads = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter(|t| {
                    let comm = t.as_ref().unwrap().path().join("comm");
                    std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == "kring-oauth")
                })
                .count()
        };
        // The thread names itself once it runs.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while threads() == 0 {
            assert!(std::time::Instant::now() < deadline, "no refresher thread");
            std::thread::yield_now();
        }
        drop(provider);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while threads() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the refresher did not stop"
            );
            std::thread::yield_now();
        }
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A fetch's retries wait on the refresher's clock (so dropping the
    /// provider ends them), doubling within the budget.
    #[test]
    fn a_fetchs_retries_wait_on_the_refreshers_clock() {
        let (path, mut settings) = token_file("retries");
        settings.retry_backoff_max = Duration::from_millis(1000);
        let endpoint = Endpoint::new(&settings).unwrap();
        let slot = Slot::default();
        let mut clock = Sim {
            now: T0,
            waits: Vec::new(),
            max: 10,
            on_wait: |_| {},
        };
        let e = fetch(&endpoint, &settings, &mut clock, &slot).unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
        assert_eq!(
            clock.waits,
            [T0 + 100, T0 + 300, T0 + 700, T0 + 1000],
            "100, 200, 400 ms, then what is left of the second"
        );
        // A stopped source ends the retries at once.
        slot.lock().stopped = true;
        clock.waits.clear();
        fetch(&endpoint, &settings, &mut clock, &slot).unwrap_err();
        assert!(clock.waits.is_empty());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// The jitter's draws are uniform in [0, 1): in range, and not all
    /// the same.
    #[test]
    fn jitter_draws_lie_in_the_unit_interval() {
        let draws: Vec<f64> = (0..200).map(|_| draw()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)), "{draws:?}");
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.3..0.7).contains(&mean), "{mean}");
    }

    /// The wall clock's wait: a time already past returns at once, a near
    /// one after it has come (a real wait of 20 ms: this is the adapter to
    /// real time itself), and a stopped source at once.
    #[test]
    fn the_wall_clocks_wait() {
        let slot = Slot::default();
        let mut clock = WallClock;
        assert!(clock.wait_until(&slot, 0));
        let started = std::time::Instant::now();
        let until = wall_ms() + 20;
        assert!(clock.wait_until(&slot, until));
        assert!(wall_ms() >= until);
        assert!(started.elapsed() < Duration::from_secs(5));
        slot.lock().stopped = true;
        assert!(!clock.wait_until(&slot, u64::MAX));
    }

    /// `start` checks the first token against the wall clock's now.
    #[test]
    fn start_refuses_a_token_that_expired_an_hour_ago() {
        let (path, settings) = token_file("start-expired");
        write_token(&path, "svc", wall_ms() - 7200 * S, wall_ms() - 3600 * S);
        let e = start(&settings).err().unwrap();
        assert!(e.contains("expired"), "{e}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// A token that expired before it arrived fails the fetch.
    #[test]
    fn an_expired_token_is_refused() {
        let (path, settings) = token_file("expired");
        write_token(&path, "svc", T0 - 7200 * S, T0 - 3600 * S);
        let endpoint = Endpoint::new(&settings).unwrap();
        let slot = Slot::default();
        let mut clock = Sim {
            now: T0,
            waits: Vec::new(),
            max: 0,
            on_wait: |_| {},
        };
        let e = fetch(&endpoint, &settings, &mut clock, &slot).unwrap_err();
        assert!(e.contains("expired") && e.contains("clock"), "{e}");
        assert!(e.contains(&format!("file://{}", path.display())), "{e}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

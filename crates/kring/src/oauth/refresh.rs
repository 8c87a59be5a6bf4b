//! When a token is refreshed: the Java client's rule
//! (`ExpiringCredentialRefreshingLogin`), as a function of the clock so it
//! is tested without waiting. Times are wall-clock milliseconds since the
//! epoch, as a JWT's `iat` and `exp` are.

use std::time::Duration;

use crate::config::oauth::RefreshPolicy;

/// How long to wait before trying again after a refresh failed, or when a
/// computed refresh time is already past (the Java client's 10 s).
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// When to refresh a token valid from `start` (its `iat`; `now` if it has
/// none) until `expiry`, computed at `now`. `draw` is uniform in [0, 1)
/// and picks the jitter.
///
/// The refresh falls at `window_factor` (plus up to `window_jitter`) of
/// the lifetime, but no later than `buffer` before expiry and no sooner
/// than `min_period` from now; when the time left cannot hold both
/// buffers, at the factor of the time left. An expired token (or a
/// computed time already past) is retried [`RETRY_AFTER_FAILURE`] later.
pub(crate) fn refresh_at(
    now: u64,
    start: Option<u64>,
    expiry: u64,
    p: &RefreshPolicy,
    draw: f64,
) -> u64 {
    let retry = now.saturating_add(RETRY_AFTER_FAILURE.as_millis() as u64);
    if now > expiry {
        return retry;
    }
    let pct = p.window_factor + p.window_jitter * draw;
    let min_period = p.min_period.as_millis() as u64;
    let buffer = p.buffer.as_millis() as u64;
    let at = |from: u64| from + ((expiry.saturating_sub(from)) as f64 * pct) as u64;
    let chosen = if now.saturating_add(min_period + buffer) > expiry {
        at(now)
    } else {
        let start = start.filter(|&s| s <= expiry).unwrap_or(now);
        let proposed = at(start);
        let buffer_begins = expiry - buffer;
        if proposed > buffer_begins {
            buffer_begins
        } else {
            proposed.max(now + min_period)
        }
    };
    if chosen < now {
        retry
    } else {
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;
    const NOW: u64 = 1_700_000_000_000;

    fn policy() -> RefreshPolicy {
        RefreshPolicy::default() // 0.8 + 0.05 jitter, 60 s, 300 s
    }

    #[test]
    fn an_hour_long_token_is_refreshed_at_the_window_factor_plus_jitter() {
        let p = policy();
        let exp = NOW + 3600 * S;
        assert_eq!(refresh_at(NOW, Some(NOW), exp, &p, 0.0), NOW + 2880 * S);
        assert_eq!(refresh_at(NOW, None, exp, &p, 0.0), NOW + 2880 * S);
        let late = refresh_at(NOW, Some(NOW), exp, &p, 0.999_999);
        assert!(late > NOW + 3059 * S && late <= NOW + 3060 * S, "{late}");
        // The window counts from the token's issue time, not from now.
        let issued_earlier = refresh_at(NOW, Some(NOW - 600 * S), exp, &p, 0.0);
        assert_eq!(issued_earlier, NOW - 600 * S + 3360 * S); // 0.8 of 4,200 s
    }

    #[test]
    fn the_end_buffer_and_the_minimum_period_bound_the_refresh() {
        let p = policy();
        // 20 minutes: 0.8 would fall at 16 min, inside the last 5 minutes'
        // buffer (from 15 min), so 15 min.
        let exp = NOW + 1200 * S;
        assert_eq!(refresh_at(NOW, Some(NOW), exp, &p, 0.0), NOW + 900 * S);
        // Issued 19 of 20 minutes ago: 0.8 of its life is already past;
        // refresh no sooner than the minimum period (60 s from now), and
        // that is where the buffer would begin too.
        let exp = NOW + 400 * S;
        let start = exp - 1200 * S;
        assert_eq!(refresh_at(NOW, Some(start), exp, &p, 0.0), NOW + 100 * S);
        // Issued an hour before a 20-minute remainder: 0.8 of its 80
        // minutes falls 4 minutes from now.
        let exp = NOW + 1200 * S;
        let start = NOW - 3600 * S;
        assert_eq!(refresh_at(NOW, Some(start), exp, &p, 0.0), NOW + 240 * S);
        // Issued so long ago that 0.8 of its life is past: the minimum
        // period from now.
        let start = NOW - 10_000 * S;
        assert_eq!(refresh_at(NOW, Some(start), exp, &p, 0.0), NOW + 60 * S);
        let p2 = RefreshPolicy {
            min_period: Duration::ZERO,
            ..p
        };
        assert_eq!(refresh_at(NOW, Some(start), exp, &p2, 0.0), NOW);
    }

    /// Exactly both buffers left: the usual rule, whose end buffer puts
    /// the refresh at the minimum period.
    #[test]
    fn a_token_with_exactly_both_buffers_left_follows_the_usual_rule() {
        let p = policy();
        let exp = NOW + 360 * S;
        assert_eq!(refresh_at(NOW, Some(NOW), exp, &p, 0.0), NOW + 60 * S);
    }

    #[test]
    fn a_token_shorter_than_both_buffers_is_refreshed_at_the_factor_of_what_is_left() {
        let p = policy();
        let exp = NOW + 200 * S; // under 60 + 300 s
        assert_eq!(
            refresh_at(NOW, Some(NOW - 100 * S), exp, &p, 0.0),
            NOW + 160 * S
        );
    }

    #[test]
    fn an_expired_token_is_retried_ten_seconds_later() {
        let p = policy();
        assert_eq!(
            refresh_at(NOW, Some(NOW - 10), NOW - 1, &p, 0.5),
            NOW + 10 * S
        );
        // Expiring this very millisecond: refreshed now, not in the past.
        assert_eq!(refresh_at(NOW, None, NOW, &p, 0.5), NOW);
    }
}

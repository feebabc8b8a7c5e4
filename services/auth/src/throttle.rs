//! The sign-in throttle: how fast anyone may guess a password online.
//!
//! Each account (by email) and each client address has a bucket of attempts that refills at a steady rate. An
//! attempt takes one from both buckets before the credentials are checked, and gives them back when it succeeds:
//! so only wrong guesses wear a bucket down, and concurrent guesses cannot all slip in before the first is counted.
//! An empty bucket answers 429 `rate_limited` with `Retry-After` (the wait until one attempt is back), whatever the
//! password: a throttled guess learns nothing. An honest user who mistypes a few times gets in at once; one who
//! hammers waits a refill at most, which the SDK does by itself.
//!
//! The buckets live in this process: a deployment of several auth instances allows each its own budget, so an
//! attacker spreading guesses over N instances gets N times the rate. Put the auth role on one instance, or divide
//! the limits by the number of instances, where that matters.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of `POST /api/sync/auth` and the password change: the server's `sign_in` settings
/// (`SYNCKIT_SIGN_IN_*`).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Wrong attempts in a row one account allows before it is throttled.
    pub account_burst: u32,
    /// Wrong attempts in a row one client address allows (over every account) before it is throttled. Behind a
    /// reverse proxy every client has the proxy's address: raise it accordingly.
    pub address_burst: u32,
    /// How long an empty bucket takes to get one attempt back.
    #[serde(with = "synckit_http::secs", rename = "refill_secs")]
    pub refill: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self { account_burst: 10, address_burst: 100, refill: Duration::from_secs(30) }
    }
}

/// What a bucket is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// One bucket: the attempts left at `at`, which refill with time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

/// Buckets beyond this many are pruned of the full ones, so made-up emails cannot grow the map without bound.
const PRUNE_ABOVE: usize = 10_000;

/// The throttle. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Throttle {
    settings: ThrottleSettings,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

/// Attempts taken for one sign-in; [`Permit::succeeded`] gives them back.
#[derive(Debug)]
#[must_use]
pub struct Permit<'a> {
    throttle: &'a Throttle,
    keys: Vec<Key>,
}

impl Permit<'_> {
    /// The credentials were right: the attempt does not count.
    pub fn succeeded(self) {
        let mut buckets = self.throttle.buckets.lock().expect("not poisoned");
        for key in &self.keys {
            if let Some(bucket) = buckets.get_mut(key) {
                bucket.left += 1.0;
            }
        }
    }
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self { settings, buckets: Mutex::default() }
    }

    /// Takes an attempt for `email` (normalised) from `address` (when known), or says how long to wait.
    pub fn attempt(&self, email: &str, address: Option<IpAddr>) -> Result<Permit<'_>, Duration> {
        let mut keys = vec![(Key::Account(email.to_owned()), self.settings.account_burst)];
        if let Some(address) = address {
            keys.push((Key::Address(address), self.settings.address_burst));
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("not poisoned");
        if buckets.len() > PRUNE_ABOVE {
            buckets
                .retain(|key, bucket| self.refilled(*bucket, self.burst_of(key), now) < f64::from(self.burst_of(key)));
        }
        let mut wait = Duration::ZERO;
        let mut refilled = Vec::with_capacity(keys.len());
        for (key, burst) in &keys {
            let left = buckets.get(key).map_or(f64::from(*burst), |b| self.refilled(*b, *burst, now));
            if left < 1.0 {
                wait = wait.max(self.settings.refill.mul_f64(1.0 - left));
            }
            refilled.push(left);
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for ((key, _), left) in keys.iter().zip(refilled) {
            buckets.insert(key.clone(), Bucket { left: left - 1.0, at: now });
        }
        Ok(Permit { throttle: self, keys: keys.into_iter().map(|(key, _)| key).collect() })
    }

    fn burst_of(&self, key: &Key) -> u32 {
        match key {
            Key::Account(_) => self.settings.account_burst,
            Key::Address(_) => self.settings.address_burst,
        }
    }

    /// The attempts `bucket` has at `now`, refilled since it was last touched, up to `burst`.
    fn refilled(&self, bucket: Bucket, burst: u32, now: Instant) -> f64 {
        let earned = now.duration_since(bucket.at).as_secs_f64() / self.settings.refill.as_secs_f64();
        (bucket.left + earned).min(f64::from(burst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(account_burst: u32, address_burst: u32) -> Throttle {
        Throttle::new(ThrottleSettings { account_burst, address_burst, refill: Duration::from_secs(60) })
    }

    #[test]
    fn wrong_guesses_use_up_the_account_and_right_ones_do_not() {
        let t = throttle(3, 100);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..5 {
            t.attempt("ada@example.com", ip).unwrap().succeeded();
        }
        for _ in 0..3 {
            drop(t.attempt("ada@example.com", ip).unwrap());
        }
        let wait = t.attempt("ada@example.com", ip).unwrap_err();
        assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60), "{wait:?}");
        // Another account from the same address is not held up by this one.
        t.attempt("bob@example.com", ip).unwrap().succeeded();
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let t = throttle(100, 2);
        let ip = Some(IpAddr::from([10, 0, 0, 2]));
        drop(t.attempt("a@example.com", ip).unwrap());
        drop(t.attempt("b@example.com", ip).unwrap());
        assert!(t.attempt("c@example.com", ip).is_err());
        assert!(t.attempt("c@example.com", Some(IpAddr::from([10, 0, 0, 3]))).is_ok());
    }

    #[test]
    fn a_throttled_attempt_takes_nothing() {
        let t = throttle(1, 100);
        drop(t.attempt("a@example.com", None).unwrap());
        for _ in 0..3 {
            assert!(t.attempt("a@example.com", None).is_err());
        }
        let bucket = t.buckets.lock().unwrap()[&Key::Account("a@example.com".into())];
        assert!(bucket.left.abs() < 0.01, "{bucket:?}");
    }
}

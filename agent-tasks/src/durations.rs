//! Durations given as numbers, read once for every front end: a timeout in
//! seconds (Python) or milliseconds (JS) becomes a [`Duration`]. `None`
//! means "no timeout"; so does `+∞` (Python's `math.inf`, JS `Infinity`:
//! the float spelling of none); NaN and negative numbers are an
//! [`Error::InvalidArgument`] naming the argument. A finite value too large
//! for a `Duration` becomes [`Duration::MAX`], never a panic: the core reads
//! any huge duration as "no deadline".
//!
//! ```
//! use std::time::Duration;
//! use agent_tasks::timeout_from_secs;
//!
//! assert_eq!(timeout_from_secs("timeout", Some(1.5))?, Some(Duration::from_millis(1500)));
//! assert_eq!(timeout_from_secs("timeout", None)?, None);
//! assert!(timeout_from_secs("timeout", Some(-1.0)).is_err());
//! # Ok::<(), agent_tasks::Error>(())
//! ```

use std::time::Duration;

use crate::error::{Error, Result};

/// A timeout given in seconds: `None` or `+∞` is no timeout (`Ok(None)`);
/// NaN and negative numbers are refused, naming `name`; a finite value too
/// large for a [`Duration`] is [`Duration::MAX`] ("no deadline").
///
/// ```
/// # use std::time::Duration;
/// # use agent_tasks::timeout_from_secs;
/// assert_eq!(timeout_from_secs("timeout", Some(f64::INFINITY))?, None);
/// assert_eq!(timeout_from_secs("timeout", Some(1e300))?, Some(Duration::MAX));
/// let err = timeout_from_secs("timeout", Some(f64::NAN)).unwrap_err();
/// assert_eq!(err.code(), "INVALID_ARGUMENT");
/// assert!(err.to_string().contains("`timeout`"));
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn timeout_from_secs(name: &str, secs: Option<f64>) -> Result<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s == f64::INFINITY => Ok(None),
        Some(s) => duration_from(name, s, Unit::Seconds).map(Some),
    }
}

/// A duration given in seconds that must be finite (an interval, a grace
/// period): NaN, negative numbers and infinity are refused, naming `name`;
/// a finite value too large for a [`Duration`] is [`Duration::MAX`].
///
/// ```
/// # use std::time::Duration;
/// # use agent_tasks::duration_from_secs;
/// assert_eq!(duration_from_secs("heartbeat", 90.0)?, Duration::from_secs(90));
/// assert!(duration_from_secs("heartbeat", f64::INFINITY).is_err());
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn duration_from_secs(name: &str, secs: f64) -> Result<Duration> {
    if secs == f64::INFINITY {
        return Err(Error::invalid_argument(name, "must be finite"));
    }
    duration_from(name, secs, Unit::Seconds)
}

/// [`timeout_from_secs`] for a timeout given in milliseconds (a float, as
/// JS numbers are; an integer converts with `as f64`).
///
/// ```
/// # use std::time::Duration;
/// # use agent_tasks::timeout_from_millis;
/// assert_eq!(timeout_from_millis("timeoutMs", Some(250.0))?, Some(Duration::from_millis(250)));
/// assert_eq!(timeout_from_millis("timeoutMs", Some(f64::INFINITY))?, None);
/// assert!(timeout_from_millis("timeoutMs", Some(-5.0)).is_err());
/// # Ok::<(), agent_tasks::Error>(())
/// ```
pub fn timeout_from_millis(name: &str, millis: Option<f64>) -> Result<Option<Duration>> {
    match millis {
        None => Ok(None),
        Some(ms) if ms == f64::INFINITY => Ok(None),
        Some(ms) => duration_from(name, ms, Unit::Millis).map(Some),
    }
}

/// [`duration_from_secs`] for a duration given in milliseconds.
pub fn duration_from_millis(name: &str, millis: f64) -> Result<Duration> {
    if millis == f64::INFINITY {
        return Err(Error::invalid_argument(name, "must be finite"));
    }
    duration_from(name, millis, Unit::Millis)
}

#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Millis,
}

fn duration_from(name: &str, value: f64, unit: Unit) -> Result<Duration> {
    let (secs, what) = match unit {
        Unit::Seconds => (value, "seconds"),
        Unit::Millis => (value / 1000.0, "milliseconds"),
    };
    if value.is_nan() || value < 0.0 {
        return Err(Error::invalid_argument(
            name,
            format!("must be a number of {what} >= 0, got {value}"),
        ));
    }
    if secs == 0.0 {
        return Ok(Duration::ZERO); // also -0.0
    }
    // Never `from_secs_f64`, which panics on overflow: what is too large
    // for a `Duration` is the longest one.
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_refuse_what_is_not_a_duration_and_never_panic() {
        for bad in [f64::NAN, -1.0, f64::NEG_INFINITY, -0.001] {
            assert!(timeout_from_secs("t", Some(bad)).is_err(), "{bad}");
            assert!(timeout_from_millis("t", Some(bad)).is_err(), "{bad}");
            assert!(duration_from_secs("t", bad).is_err(), "{bad}");
        }
        for huge in [1e20, 1e300, f64::MAX] {
            assert_eq!(
                timeout_from_secs("t", Some(huge)).ok(),
                Some(Some(Duration::MAX))
            );
        }
        for huge in [1e23, 1e300, f64::MAX] {
            assert_eq!(duration_from_millis("t", huge).ok(), Some(Duration::MAX));
        }
        assert_eq!(
            timeout_from_secs("t", Some(0.0)).ok(),
            Some(Some(Duration::ZERO))
        );
        assert_eq!(
            timeout_from_secs("t", Some(-0.0)).ok(),
            Some(Some(Duration::ZERO))
        );
        assert!(duration_from_millis("t", f64::INFINITY).is_err());
        let err = timeout_from_secs("wait", Some(-2.0)).expect_err("negative");
        assert_eq!(
            err.to_string(),
            "invalid argument `wait`: must be a number of seconds >= 0, got -2"
        );
    }
}

//! The values options are made of, converted into the core's: counts,
//! milliseconds and names (by the core's rules, naming the argument), and
//! the `AbortSignal` the native side ignores. Used by the generated
//! `options` and by `args`.

use std::time::Duration;

use napi::bindgen_prelude::FromNapiValue;
use napi::sys;

use crate::errors::{invalid, CoreResultExt};

/// An `AbortSignal` option: the wrapper aborts the wait with it (through a
/// `WaitHandle`); the native side takes the object and ignores it.
pub struct Signal;

impl FromNapiValue for Signal {
    unsafe fn from_napi_value(_: sys::napi_env, _: sys::napi_value) -> napi::Result<Self> {
        Ok(Signal)
    }
}

/// A count given as a JS number: a non-negative integer that fits in `T`.
pub(crate) fn int<T: TryFrom<u64>>(name: &str, value: f64) -> napi::Result<T> {
    let n = (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 2f64.powi(53))
        .then_some(value as u64)
        .ok_or_else(|| {
            invalid(
                name,
                format!("expected a non-negative integer, got {value}"),
            )
        })?;
    T::try_from(n).map_err(|_| invalid(name, format!("{value} is too large")))
}

/// A count option with the core's default when absent.
pub(crate) fn int_or(name: &str, value: Option<f64>, default: usize) -> napi::Result<usize> {
    value.map_or(Ok(default), |v| int(name, v))
}

/// A duration in milliseconds; `Infinity` means none (`Ok(None)`). The rule
/// is the core's [`agent_tasks::timeout_from_millis`].
pub(crate) fn millis(name: &str, value: f64) -> napi::Result<Option<Duration>> {
    agent_tasks::timeout_from_millis(name, Some(value)).js()
}

/// A duration that must be finite (the core's
/// [`agent_tasks::duration_from_millis`]).
pub(crate) fn finite_millis(name: &str, value: f64) -> napi::Result<Duration> {
    agent_tasks::duration_from_millis(name, value).js()
}

/// One of the core's names (`onTimeout`'s `detach`, a status, …).
pub(crate) fn name<T: std::str::FromStr<Err = agent_tasks::Error>>(
    name: &str,
    value: &str,
) -> napi::Result<T> {
    agent_tasks::parse_name(name, value).js()
}

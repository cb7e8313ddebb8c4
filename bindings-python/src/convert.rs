//! Plain conversions from Python values to the core's: JSON values (task
//! results; the other way is `serde`'s, in `types`), durations (timeouts in
//! seconds), byte counts and output chunks.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use serde_json::{Map, Number, Value};

use crate::errors::{core_err, invalid_argument};

/// How deep nested lists and dicts may go in a task's result value.
const MAX_DEPTH: usize = 200;

/// Converts a Python value to JSON: `None`, `bool`, `int`, `float`, `str`,
/// lists and tuples, and dicts with string keys. Anything else is refused
/// with a message naming its type.
pub(crate) fn to_json(value: &Bound<'_, PyAny>) -> Result<Value, String> {
    to_json_at(value, 0)
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn to_json_at(value: &Bound<'_, PyAny>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err("an int outside the 64-bit range".to_string());
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| format!("the float {} (JSON has no NaN or infinity)", f.value()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return s
            .to_str()
            .map(|s| Value::String(s.to_string()))
            .map_err(|e| e.to_string());
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list
            .iter()
            .map(|v| to_json_at(&v, depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return tuple
            .iter()
            .map(|v| to_json_at(&v, depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in dict.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(format!(
                    "a dict key of type {} (JSON keys are strings)",
                    type_name(&k)
                ));
            };
            let key = key.to_str().map_err(|e| e.to_string())?;
            map.insert(key.to_string(), to_json_at(&v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    Err(format!("a value of type {}", type_name(value)))
}

/// A non-negative integer argument (a size, a count, a cursor); anything
/// else (a negative or too large int, a bool, another type) is an
/// `InvalidArgument` naming `name`.
pub(crate) fn count(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        if let Ok(n) = value.extract::<u64>() {
            return Ok(n);
        }
        return Err(invalid_argument(
            name,
            format!("expected a non-negative int below 2**64, got {value}"),
        ));
    }
    Err(invalid_argument(
        name,
        format!("expected a non-negative int, got {}", shown(value)),
    ))
}

/// A value as the message of an argument error shows it: its type and repr.
pub(crate) fn shown(value: &Bound<'_, PyAny>) -> String {
    let repr = value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".to_string());
    let repr: String = if repr.chars().count() > 60 {
        repr.chars().take(57).chain("...".chars()).collect()
    } else {
        repr
    };
    if value.is_none() {
        "None".to_string()
    } else {
        format!("{} {repr}", type_name(value))
    }
}

/// A number of seconds argument (`int` or `float`, not `bool`), `None`
/// kept; anything else is an `InvalidArgument` naming `name`.
fn seconds(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let number = (value.is_instance_of::<PyFloat>()
        || (value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>()))
    .then(|| value.extract::<f64>().ok())
    .flatten();
    number.map(Some).ok_or_else(|| {
        invalid_argument(
            name,
            format!(
                "expected a number of seconds (float) or None, got {}",
                shown(value)
            ),
        )
    })
}

/// A wait limit in seconds ([`seconds`]): `None` and `math.inf` wait
/// without limit (the core's [`agent_tasks::timeout_from_secs`]).
pub(crate) fn limit(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    agent_tasks::timeout_from_secs(name, seconds(name, value)?).map_err(core_err)
}

/// A `str` argument; anything else is an `InvalidArgument` naming `name`.
pub(crate) fn text(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_string()),
        Err(_) => Err(invalid_argument(
            name,
            format!("expected a str, got {}", shown(value)),
        )),
    }
}

/// [`text`], `None` kept.
pub(crate) fn opt_text(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    value
        .filter(|v| !v.is_none())
        .map(|v| text(name, v))
        .transpose()
}

/// A `bool` argument (`None`: false); anything else is an `InvalidArgument`
/// naming `name`.
pub(crate) fn flag(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    match value.filter(|v| !v.is_none()) {
        None => Ok(false),
        Some(v) => v
            .cast::<PyBool>()
            .map(|b| b.is_true())
            .map_err(|_| invalid_argument(name, format!("expected a bool, got {}", shown(v)))),
    }
}

/// [`count`] narrowed to `usize`.
pub(crate) fn size(name: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    let n = count(name, value)?;
    usize::try_from(n).map_err(|_| invalid_argument(name, format!("{n} is too large")))
}

/// Calls `f` with the bytes of `data`: `bytes`, `bytearray` or `str`
/// (encoded as UTF-8). Anything else is an `InvalidArgument` naming `name`.
pub(crate) fn with_bytes<R>(
    name: &str,
    data: &Bound<'_, PyAny>,
    f: impl FnOnce(&[u8]) -> R,
) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(s) = data.cast::<PyString>() {
        return Ok(f(s.to_str()?.as_bytes()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(f(&b.to_vec()));
    }
    Err(invalid_argument(
        name,
        format!("expected str, bytes or bytearray, got {}", shown(data)),
    ))
}

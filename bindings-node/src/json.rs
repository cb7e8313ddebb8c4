//! The values going out. Every value the binding returns is the core's own
//! serde type (`schema/*.json` is generated from the same types, and
//! `types.d.ts` from the schemas), written once: serialised by serde_json
//! with object keys in camelCase ([`Camel`]), and parsed on the JS side by
//! `JSON.parse`, which builds fast-shaped objects (faster than napi-rs setting
//! properties one by one). Keys inside free-form JSON (a task's `value`, a
//! delegation's `arguments`, a tool answer's `json`) are kept as they are.
//!
//! Two extras that are not in the wire form are added here: a poll's raw
//! bytes (`data`, a Buffer) and a preview's joined `text`. The core's
//! outcomes are flat (`{ state, ...result }`); the JS API nests the payload
//! (`{ state, result }` or `{ state, info }`), as `types.d.ts` declares.

use std::io::{self, Write};
use std::ptr;

use agent_tasks::{CollectOutcome, ForegroundOutcome, WaitOutcome};
use napi::bindgen_prelude::{Buffer, ToNapiValue};
use napi::{check_status, sys, Error, Result, Status};
use serde::ser::SerializeMap;
use serde::Serialize;
use serde_json::ser::Formatter;

/// Keys whose values are free-form JSON: nothing under them is renamed.
const VERBATIM: [&str; 3] = ["value", "arguments", "json"];

/// A compact JSON formatter that writes object keys in camelCase.
#[derive(Default)]
struct Camel {
    depth: usize,
    /// The depth of the object whose verbatim key's value is being written.
    verbatim: Option<usize>,
    in_key: bool,
    key: String,
}

impl Formatter for Camel {
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.in_key = self.verbatim.is_none();
        self.key.clear();
        if first {
            Ok(())
        } else {
            w.write_all(b",")
        }
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        if self.in_key && VERBATIM.contains(&self.key.as_str()) {
            self.verbatim = Some(self.depth);
        }
        self.in_key = false;
        Ok(())
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        if self.verbatim == Some(self.depth) {
            self.verbatim = None;
        }
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        if !self.in_key {
            return w.write_all(s.as_bytes());
        }
        self.key.push_str(s);
        let mut upper = false;
        for part in s.split('_') {
            if upper && !part.is_empty() {
                let (first, rest) = part.split_at(1);
                w.write_all(first.to_ascii_uppercase().as_bytes())?;
                w.write_all(rest.as_bytes())?;
            } else {
                w.write_all(part.as_bytes())?;
            }
            upper = true;
        }
        Ok(())
    }
}

/// A value as JSON text with camelCase keys, made into a JS object by
/// `JSON.parse` when it crosses into JS.
pub struct Json(String);

impl Json {
    /// `value` serialised with camelCase keys.
    pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> Json {
        let mut ser =
            serde_json::Serializer::with_formatter(Vec::with_capacity(512), Camel::default());
        // The core's wire types always serialise (string keys, no floats that fail).
        let _ = value.serialize(&mut ser);
        // serde_json writes UTF-8 only.
        Json(String::from_utf8(ser.into_inner()).unwrap_or_default())
    }

    /// `{ state, <field>: payload }`: an outcome with its payload nested.
    fn nested<T: Serialize>(state: &str, field: &str, payload: &T) -> Json {
        struct Nested<'a, T>(&'a str, &'a str, &'a T);
        impl<T: Serialize> Serialize for Nested<'_, T> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("state", self.0)?;
                map.serialize_entry(self.1, self.2)?;
                map.end()
            }
        }
        Json::of(&Nested(state, field, payload))
    }
}

impl From<ForegroundOutcome> for Json {
    fn from(o: ForegroundOutcome) -> Json {
        match o {
            ForegroundOutcome::Finished(r) => Json::nested("finished", "result", &r),
            ForegroundOutcome::Detached(i) => Json::nested("detached", "info", &i),
        }
    }
}

impl From<CollectOutcome> for Json {
    fn from(o: CollectOutcome) -> Json {
        match o {
            CollectOutcome::Finished(r) => Json::nested("finished", "result", &r),
            CollectOutcome::StillRunning(i) => Json::nested("still_running", "info", &i),
        }
    }
}

impl From<WaitOutcome> for Json {
    fn from(o: WaitOutcome) -> Json {
        match o {
            WaitOutcome::Ended(r) => Json::nested("ended", "result", &*r),
            other => Json::of(&other),
        }
    }
}

/// A preview with its joined `text` (the core's `[... N bytes omitted ...]`).
pub(crate) fn preview(p: &agent_tasks::Preview) -> Json {
    #[derive(Serialize)]
    struct WithText<'a> {
        #[serde(flatten)]
        preview: &'a agent_tasks::Preview,
        text: String,
    }
    Json::of(&WithText {
        preview: p,
        text: p.text(),
    })
}

/// A poll's answer: its JSON and its raw bytes, added as `data`.
pub struct Poll(Json, Vec<u8>);

impl From<agent_tasks::PollResponse> for Poll {
    fn from(p: agent_tasks::PollResponse) -> Poll {
        Poll(Json::of(&p), p.data)
    }
}

fn failed(what: &str) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("making a JS value failed: {what}"),
    )
}

/// `JSON.parse(text)` in `env`.
///
/// # Safety
///
/// `env` must be the live environment of the current JS thread.
unsafe fn parse(env: sys::napi_env, text: String) -> Result<sys::napi_value> {
    // SAFETY: `env` is live (this function's contract); every out-pointer is
    // a valid local; the property names are NUL-terminated constants.
    unsafe {
        let text = String::to_napi_value(env, text)?;
        let mut global = ptr::null_mut();
        check_status!(sys::napi_get_global(env, &mut global))?;
        let mut json = ptr::null_mut();
        check_status!(sys::napi_get_named_property(
            env,
            global,
            c"JSON".as_ptr(),
            &mut json
        ))?;
        let mut parse = ptr::null_mut();
        check_status!(sys::napi_get_named_property(
            env,
            json,
            c"parse".as_ptr(),
            &mut parse
        ))?;
        let mut value = ptr::null_mut();
        check_status!(sys::napi_call_function(
            env, json, parse, 1, &text, &mut value
        ))?;
        if value.is_null() {
            return Err(failed("JSON.parse answered nothing"));
        }
        Ok(value)
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: sys::napi_env, v: Self) -> Result<sys::napi_value> {
        // SAFETY: napi-rs calls this on the JS thread with its live `env`.
        unsafe { parse(env, v.0) }
    }
}

impl ToNapiValue for Poll {
    unsafe fn to_napi_value(env: sys::napi_env, p: Self) -> Result<sys::napi_value> {
        // SAFETY: napi-rs calls this on the JS thread with its live `env`; the
        // object and the Buffer are values of that `env`.
        unsafe {
            let object = parse(env, p.0 .0)?;
            let data = Buffer::to_napi_value(env, p.1.into())?;
            check_status!(sys::napi_set_named_property(
                env,
                object,
                c"data".as_ptr(),
                data
            ))?;
            Ok(object)
        }
    }
}

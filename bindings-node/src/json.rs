//! The values going out. Every value the binding returns is the core's own
//! serde type (`schema/*.json` is generated from the same types, and
//! `types.d.ts` from the schemas), written once: serialised by serde_json
//! with object keys in camelCase ([`Camel`]), and handed to JS as text, which
//! the JS layer parses with `JSON.parse`: V8 builds fast-shaped objects, much
//! faster than Node-API setting properties one by one. Keys inside free-form JSON (a task's `value`, a
//! delegation's `arguments`, a tool answer's `json`) are kept as they are.
//!
//! Two extras that are not in the wire form are added here: a poll's raw
//! bytes (`data`, a Buffer) and a preview's joined `text`. The core's
//! outcomes are flat (`{ state, ...result }`); the JS API nests the payload
//! (`{ state, result }` or `{ state, info }`), as `types.d.ts` declares.

use std::io::{self, Write};

use agent_tasks::{CollectOutcome, ForegroundOutcome, WaitOutcome};
use napi::bindgen_prelude::{Buffer, ToNapiValue};
use napi::{sys, Result};
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

/// A value as JSON text with camelCase keys; the JS layer parses it
/// (`JSON.parse`) into the object `types.d.ts` declares.
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

/// A poll's answer: its JSON, and its raw bytes beside (`[json, data]`) when
/// there are any; the JS layer adds them as `data`.
pub struct Poll(Json, Vec<u8>);

impl From<agent_tasks::PollResponse> for Poll {
    fn from(p: agent_tasks::PollResponse) -> Poll {
        Poll(Json::of(&p), p.data)
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: sys::napi_env, v: Self) -> Result<sys::napi_value> {
        // SAFETY: napi-rs calls this on the JS thread with its live `env`.
        unsafe { String::to_napi_value(env, v.0) }
    }
}

impl ToNapiValue for Poll {
    unsafe fn to_napi_value(env: sys::napi_env, p: Self) -> Result<sys::napi_value> {
        // SAFETY: napi-rs calls this on the JS thread with its live `env`.
        unsafe {
            if p.1.is_empty() {
                String::to_napi_value(env, p.0 .0)
            } else {
                <(String, Buffer)>::to_napi_value(env, (p.0 .0, p.1.into()))
            }
        }
    }
}

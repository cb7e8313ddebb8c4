//! The values going out. Every value the binding returns is the core's own
//! serde type (`schema/*.json` is generated from the same types, and
//! `types.d.ts` from the schemas), written once: a serde [`Serializer`]
//! ([`Js`]) turns it straight into JS values, object keys in camelCase.
//! Keys inside free-form JSON (a task's `value`, a delegation's `arguments`,
//! a tool answer's `json`) are kept as they are.
//!
//! Objects of the types `schema/` declares as plain objects (`TaskInfo`,
//! `OutputStats`, `PollResponse`, …) are built by small JS factories
//! (`shapes.rs`, generated from the schemas by `scripts/gen_node_types.py`)
//! whose object literals V8 builds from a cached shape: serde hands the
//! fields in order, by name, and a factory is used only when those names are
//! exactly its parameters (else the object is built key by key), so a field
//! can never land under another name. Node-API setting properties one by one
//! re-internalises every key and walks a map transition each time, about 3x
//! slower; a JSON text for `JSON.parse` was slower still.
//!
//! Two extras that are not in the wire form are added here: a poll's raw
//! bytes (`data`, a Buffer) and a preview's joined `text`. The core's
//! outcomes are flat (`{ state, ...result }`); the JS API nests the payload
//! (`{ state, result }` or `{ state, info }`), as `types.d.ts` declares: the
//! generated factories of those fields do.

use smallvec::SmallVec;
use std::cell::RefCell;
use std::ptr;

use napi::bindgen_prelude::{Buffer, ToNapiValue};
use napi::{check_status, sys, Error, Result, Status};
use serde::ser::{self, Serialize, SerializeMap, Serializer};

use crate::shapes::{FACTORIES, SHAPES};

/// A Node-API call's out value.
macro_rules! out {
    ($f:ident($env:expr $(, $arg:expr)*)) => {{
        let mut out = ptr::null_mut();
        // SAFETY: `env` is the live environment (see `Ser`); the arguments
        // are values of it or plain data, and `out` a valid out-pointer.
        check_status!(unsafe { sys::$f($env $(, $arg)*, &mut out) }).map(|()| out)
    }};
}

/// The serializer's number methods: every number is a JS number (an f64),
/// as `JSON.parse` makes it.
macro_rules! numbers {
    ($($f:ident $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<sys::napi_value> {
            self.serialize_f64(v as f64)
        }
    )*};
}

/// Keys whose values are free-form JSON: nothing under them is renamed.
const VERBATIM: [&str; 3] = ["value", "arguments", "json"];

/// A value of the core, handed to JS as the object its serde form describes.
pub struct Js<T>(pub T);

impl<T: Serialize> ToNapiValue for Js<T> {
    unsafe fn to_napi_value(env: sys::napi_env, v: Self) -> Result<sys::napi_value> {
        v.0.serialize(Ser::new(env))
    }
}

/// A preview with its joined `text` (the core's `[... N bytes omitted ...]`).
pub struct Preview(pub agent_tasks::Preview);

impl ToNapiValue for Preview {
    unsafe fn to_napi_value(env: sys::napi_env, p: Self) -> Result<sys::napi_value> {
        let ser = Ser::new(env);
        let text = ser.str(&p.0.text())?;
        p.0.serialize(ser.with("text", text))
    }
}

/// A poll's answer with its raw bytes as `data` (a Buffer).
pub struct Poll(pub agent_tasks::PollResponse);

impl ToNapiValue for Poll {
    unsafe fn to_napi_value(env: sys::napi_env, p: Self) -> Result<sys::napi_value> {
        let ser = Ser::new(env);
        let bytes = &p.0.data;
        // A small page is copied into an ArrayBuffer, which the factory
        // views as a Buffer (cheaper than an external buffer's finalizer,
        // and than a Buffer made through Node-API); a large one is handed
        // over.
        let data = if bytes.len() <= 16 * 1024 {
            let mut at = ptr::null_mut();
            let buffer = out!(napi_create_arraybuffer(env, bytes.len(), &mut at))?;
            if !bytes.is_empty() {
                // SAFETY: Node-API allocated `bytes.len()` bytes at `at`.
                unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), at.cast(), bytes.len()) };
            }
            buffer
        } else {
            // SAFETY: napi-rs calls this on the JS thread with its live `env`.
            unsafe { Buffer::to_napi_value(env, Buffer::from(bytes.clone())) }?
        };
        p.0.serialize(ser.with("data", data))
    }
}

// ---- the serializer -------------------------------------------------------

/// Serialises a value into JS values of `env` (the live environment of the
/// current JS thread: every `Ser` is made in a `to_napi_value`).
#[derive(Clone, Copy)]
struct Ser {
    env: sys::napi_env,
    /// Inside free-form JSON: keys are kept as they are.
    verbatim: bool,
    /// A field the binding adds after the struct's own (`EXTRA` of the
    /// generator): only the top struct gets it.
    extra: Option<(&'static str, sys::napi_value)>,
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    if upper {
        out.push('_');
    }
    out
}

impl Ser {
    fn new(env: sys::napi_env) -> Ser {
        Ser {
            env,
            verbatim: false,
            extra: None,
        }
    }

    fn with(self, key: &'static str, value: sys::napi_value) -> Ser {
        Ser {
            extra: Some((key, value)),
            ..self
        }
    }

    fn str(self, s: &str) -> Result<sys::napi_value> {
        // ASCII (ids, names, most output) is Latin-1 as is: V8 copies it
        // without decoding UTF-8.
        let (ptr, len) = (s.as_ptr().cast(), s.len() as isize);
        if s.is_ascii() {
            out!(napi_create_string_latin1(self.env, ptr, len))
        } else {
            out!(napi_create_string_utf8(self.env, ptr, len))
        }
    }

    fn undefined(self) -> Result<sys::napi_value> {
        out!(napi_get_undefined(self.env))
    }

    /// Without the extra field (for what is inside).
    fn plain(self) -> Ser {
        Ser {
            extra: None,
            ..self
        }
    }

    /// The serializer of the value under `key`.
    fn under(self, key: &str) -> Ser {
        Ser {
            verbatim: self.verbatim || VERBATIM.contains(&key),
            ..self.plain()
        }
    }

    fn key(self, key: &str) -> Result<sys::napi_value> {
        if self.verbatim || !key.contains('_') {
            self.str(key)
        } else {
            self.str(&camel(key))
        }
    }

    fn object(self, entries: &[(sys::napi_value, sys::napi_value)]) -> Result<sys::napi_value> {
        let object = out!(napi_create_object(self.env))?;
        for &(k, v) in entries {
            // SAFETY: as in `out!`.
            check_status!(unsafe { sys::napi_set_property(self.env, object, k, v) })?;
        }
        Ok(object)
    }
}

/// An array, a tuple or a map being built.
struct Items {
    ser: Ser,
    values: Vec<sys::napi_value>,
    keys: Vec<sys::napi_value>,
}

/// Fields of a struct kept without a heap allocation (the largest wire
/// type, `TaskInfo`, has 21 and a poll's extra one).
const FIELDS_INLINE: usize = 24;

/// A struct being built: its keys (from serde, in order) and values (null
/// for a skipped field: an `Option` of a pointer would double its size).
struct Fields {
    ser: Ser,
    name: &'static str,
    // On the stack for the wire types' sizes (a poll builds three structs
    // per call: two heap vectors each were a tenth of its cost).
    keys: SmallVec<[&'static str; FIELDS_INLINE]>,
    values: SmallVec<[sys::napi_value; FIELDS_INLINE]>,
    /// Added after the struct's own fields.
    extra: Option<(&'static str, sys::napi_value)>,
}

impl Serializer for Ser {
    type Ok = sys::napi_value;
    type Error = Error;
    type SerializeSeq = Items;
    type SerializeTuple = Items;
    type SerializeTupleStruct = Items;
    type SerializeTupleVariant = ser::Impossible<sys::napi_value, Error>;
    type SerializeMap = Items;
    type SerializeStruct = Fields;
    type SerializeStructVariant = ser::Impossible<sys::napi_value, Error>;

    fn serialize_bool(self, v: bool) -> Result<sys::napi_value> {
        out!(napi_get_boolean(self.env, v))
    }
    numbers!(serialize_i8 i8, serialize_i16 i16, serialize_i32 i32, serialize_i64 i64,
        serialize_u8 u8, serialize_u16 u16, serialize_u32 u32, serialize_u64 u64, serialize_f32 f32);
    fn serialize_f64(self, v: f64) -> Result<sys::napi_value> {
        if v.is_finite() {
            out!(napi_create_double(self.env, v))
        } else {
            self.serialize_unit() // as JSON writes it
        }
    }
    fn serialize_char(self, v: char) -> Result<sys::napi_value> {
        self.str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<sys::napi_value> {
        self.str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<sys::napi_value> {
        v.serialize(self) // an array of numbers, as JSON writes it
    }
    fn serialize_none(self) -> Result<sys::napi_value> {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<sys::napi_value> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<sys::napi_value> {
        out!(napi_get_null(self.env))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<sys::napi_value> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<sys::napi_value> {
        self.str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<sys::napi_value> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<sys::napi_value> {
        let value = v.serialize(self.under(variant))?;
        self.object(&[(self.key(variant)?, value)])
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Items> {
        Ok(Items {
            ser: self.plain(),
            values: Vec::with_capacity(len.unwrap_or(0)),
            keys: Vec::new(),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Items> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Items> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(ser::Error::custom(format!(
            "{name}: tuple variants are not sent to JS"
        )))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Items> {
        Ok(Items {
            ser: self.plain(),
            values: Vec::with_capacity(len.unwrap_or(0)),
            keys: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Fields> {
        Ok(Fields {
            ser: self.plain(),
            name,
            keys: SmallVec::with_capacity(len + 1),
            values: SmallVec::with_capacity(len + 1),
            extra: self.extra,
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(ser::Error::custom(format!(
            "{name}: struct variants are not sent to JS"
        )))
    }
}

impl ser::SerializeSeq for Items {
    type Ok = sys::napi_value;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<()> {
        self.values.push(v.serialize(self.ser)?);
        Ok(())
    }
    fn end(self) -> Result<sys::napi_value> {
        let array = out!(napi_create_array_with_length(
            self.ser.env,
            self.values.len()
        ))?;
        for (i, &v) in self.values.iter().enumerate() {
            // SAFETY: as in `out!`.
            check_status!(unsafe { sys::napi_set_element(self.ser.env, array, i as u32, v) })?;
        }
        Ok(array)
    }
}

/// Tuples are arrays.
macro_rules! as_seq {
    ($($t:ident $f:ident),*) => {$(
        impl ser::$t for Items {
            type Ok = sys::napi_value;
            type Error = Error;
            fn $f<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<()> {
                ser::SerializeSeq::serialize_element(self, v)
            }
            fn end(self) -> Result<sys::napi_value> {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}
as_seq!(SerializeTuple serialize_element, SerializeTupleStruct serialize_field);

impl SerializeMap for Items {
    type Ok = sys::napi_value;
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<()> {
        Err(ser::Error::custom("map keys go with their values"))
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<()> {
        Err(ser::Error::custom("map values go with their keys"))
    }
    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        k: &K,
        v: &V,
    ) -> Result<()> {
        // Keys are strings (or numbers, written as strings), as in JSON.
        let key = match serde_json::to_value(k).map_err(<Error as ser::Error>::custom)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(ser::Error::custom(format!(
                    "a map key that is not a string: {other}"
                )))
            }
        };
        self.keys.push(self.ser.key(&key)?);
        self.values.push(v.serialize(self.ser.under(&key))?);
        Ok(())
    }
    fn end(self) -> Result<sys::napi_value> {
        let entries: Vec<_> = self.keys.into_iter().zip(self.values).collect();
        self.ser.object(&entries)
    }
}

impl ser::SerializeStruct for Fields {
    type Ok = sys::napi_value;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.keys.push(key);
        self.values.push(v.serialize(self.ser.under(key))?);
        Ok(())
    }
    fn skip_field(&mut self, key: &'static str) -> Result<()> {
        self.keys.push(key);
        self.values.push(ptr::null_mut());
        Ok(())
    }
    fn end(mut self) -> Result<sys::napi_value> {
        if let Some((key, value)) = self.extra.take() {
            self.keys.push(key);
            self.values.push(value);
        }
        let Some(shape) = shape_of(self.name, &self.keys) else {
            // Key by key, without the skipped fields.
            let entries = (self.keys.iter().zip(&self.values))
                .filter(|(_, value)| !value.is_null())
                .map(|(key, &value)| Ok((self.ser.key(key)?, value)))
                .collect::<Result<Vec<_>>>()?;
            return self.ser.object(&entries);
        };
        // `undefined` is the factory's `this` and a skipped field's value.
        let undefined = self.ser.undefined()?;
        for value in self.values.iter_mut().filter(|v| v.is_null()) {
            *value = undefined;
        }
        // SAFETY: `env` is live (see `Ser`), the values are its own, one per
        // parameter of the factory.
        unsafe { build(self.ser.env, shape, undefined, &self.values) }
    }
}

// ---- the factories ---------------------------------------------------------

/// A struct's name and keys by address: serde hands a type the same
/// `&'static str`s on every call.
type Addresses = SmallVec<[(usize, usize); FIELDS_INLINE]>;

thread_local! {
    // The shapes matched so far, by the addresses of a type's name and keys:
    // their text is compared once per type, not on every value.
    static MATCHED: RefCell<Vec<(Addresses, Option<usize>)>> = const { RefCell::new(Vec::new()) };
}

/// The factory whose parameters are exactly these fields of type `name`.
fn shape_of(name: &'static str, keys: &[&'static str]) -> Option<usize> {
    let at = |s: &str| (s.as_ptr() as usize, s.len());
    let addresses: Addresses = std::iter::once(at(name))
        .chain(keys.iter().map(|k| at(k)))
        .collect();
    MATCHED.with(|matched| {
        let mut matched = matched.borrow_mut();
        if let Some((_, shape)) = matched.iter().find(|(a, _)| *a == addresses) {
            return *shape;
        }
        let shape = SHAPES.iter().position(|&(n, k)| n == name && k == keys);
        matched.push((addresses, shape));
        shape
    })
}

struct Factories {
    env: sys::napi_env,
    refs: Vec<sys::napi_ref>,
}

thread_local! {
    // One JS thread runs one environment at a time. The cache is emptied
    // when its environment is torn down (an env cleanup hook), so a new
    // environment on the same thread (a worker restarted), even one given
    // the old one's address, never finds references of the old one: it
    // makes its own factories.
    static FACTORIES_OF_ENV: RefCell<Option<Factories>> = const { RefCell::new(None) };
}

/// The env cleanup hook: forgets the factories of the environment going
/// away (run on its JS thread, as it is torn down).
unsafe extern "C" fn forget_factories(_arg: *mut std::ffi::c_void) {
    // (try_with: the thread itself may be ending.)
    let _ = FACTORIES_OF_ENV.try_with(|f| f.borrow_mut().take());
}

/// The factory `shape` of `env`, the factories made on first use.
///
/// # Safety
///
/// `env` must be the live environment of the current JS thread.
unsafe fn factory(env: sys::napi_env, shape: usize) -> Result<sys::napi_value> {
    let cached = FACTORIES_OF_ENV.with(|f| {
        f.borrow()
            .as_ref()
            .filter(|f| f.env == env)
            .map(|f| f.refs[shape])
    });
    let reference = match cached {
        Some(r) => r,
        None => {
            let ser = Ser::new(env);
            // The script is the generated constant, not user input.
            let list = out!(napi_run_script(env, ser.str(FACTORIES)?))?;
            let mut refs = Vec::with_capacity(SHAPES.len());
            for i in 0..SHAPES.len() {
                let func = out!(napi_get_element(env, list, i as u32))?;
                // A reference (count 1) keeps it for the environment's life.
                refs.push(out!(napi_create_reference(env, func, 1))?);
            }
            // SAFETY: `env` is live; the hook touches only this thread's
            // cache, and takes no argument.
            check_status!(unsafe {
                sys::napi_add_env_cleanup_hook(env, Some(forget_factories), ptr::null_mut())
            })?;
            let r = refs[shape];
            FACTORIES_OF_ENV.with(|f| *f.borrow_mut() = Some(Factories { env, refs }));
            r
        }
    };
    let func = out!(napi_get_reference_value(env, reference))?;
    if func.is_null() {
        return Err(Error::new(Status::GenericFailure, "a factory is gone"));
    }
    Ok(func)
}

/// The object of `shape` built from its fields' `values`.
///
/// # Safety
///
/// `env` must be the live environment of the current JS thread, and
/// `this` and `values` values of it, one per parameter of the factory.
unsafe fn build(
    env: sys::napi_env,
    shape: usize,
    this: sys::napi_value,
    values: &[sys::napi_value],
) -> Result<sys::napi_value> {
    // SAFETY: the caller's contract.
    let func = unsafe { factory(env, shape) }?;
    out!(napi_call_function(
        env,
        this,
        func,
        values.len(),
        values.as_ptr()
    ))
}

//! One field of a value, found through its `serde` form without making the
//! rest: [`find`] serialises the value into a `Walk`, which skips every
//! field but the one its path names (without allocating) and hands that one
//! to a [`Visit`] (`pythonize`, in the binding). Struct fields and map keys
//! (so `#[serde(flatten)]` and internally tagged enums too) and the variant
//! of an externally tagged newtype are names on a path; `Option`s and
//! newtypes are seen through; a shape it does not walk (a struct or tuple
//! variant, externally tagged) is walked in its JSON tree instead. Plain
//! serde, no pyo3: its tests (`tests/walk.rs`) run without Python.

use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};

/// What to make of the value found.
pub(crate) trait Visit {
    /// What it makes.
    type Out;
    /// Makes it from the value found.
    fn visit<T: Serialize + ?Sized>(self, value: &T) -> Self::Out;
}

/// The `Visit` of nothing (for [`is_object`]).
impl Visit for () {
    type Out = ();
    fn visit<T: Serialize + ?Sized>(self, _: &T) {}
}

/// `visit` of the value at `path` in `root`'s `serde` form (`root` itself
/// for an empty path); `None` when a name on the path is absent or names
/// into a value that is not an object.
pub(crate) fn find<T, V, P>(root: &T, path: &[P], visit: V) -> Option<V::Out>
where
    T: Serialize + ?Sized,
    V: Visit,
    P: AsRef<str>,
{
    let Some((key, rest)) = path.split_first() else {
        return Some(visit.visit(root));
    };
    let (mut visit, mut out) = (Some(visit), None);
    let walk = Walk {
        key: Some(key.as_ref()),
        rest,
        visit: &mut visit,
        out: &mut out,
        matched: false,
    };
    match (root.serialize(walk), visit) {
        (Err(Stop::Unsupported), Some(visit)) => {
            find(&serde_json::to_value(root).ok()?, path, visit)
        }
        _ => out,
    }
}

/// Whether `value`'s `serde` form is an object (a struct, a map, an
/// externally tagged newtype variant), not null, a scalar nor a list.
pub(crate) fn is_object<T: Serialize + ?Sized>(value: &T) -> bool {
    let walk = Walk::<&str, ()> {
        key: None,
        rest: &[],
        visit: &mut None,
        out: &mut None,
        matched: false,
    };
    matches!(value.serialize(walk), Err(Stop::Object | Stop::Unsupported))
}

/// Why a walk stopped early (serde's error channel, used to stop).
#[derive(Debug)]
enum Stop {
    /// The field was found (and visited).
    Found,
    /// An object without the field.
    NoField,
    /// An object (when asked only that: `key` is `None`).
    Object,
    /// Not an object (a list), or the value's own error.
    Other,
    /// A shape the walk does not go into.
    Unsupported,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop::Other
    }
}

/// The serializer that looks for `key` (or, without one, for an object).
struct Walk<'a, P, V: Visit> {
    key: Option<&'a str>,
    rest: &'a [P],
    visit: &'a mut Option<V>,
    out: &'a mut Option<V::Out>,
    /// The map key just seen is `key`.
    matched: bool,
}

impl<P: AsRef<str>, V: Visit> Walk<'_, P, V> {
    /// A field (or map entry, or variant) `name` with `value`.
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Stop> {
        if self.key != Some(name) {
            return Ok(());
        }
        if let Some(visit) = self.visit.take() {
            *self.out = find(value, self.rest, visit);
        }
        Err(Stop::Found)
    }

    /// An object begins: stop if only that was asked.
    fn object(self) -> Result<Self, Stop> {
        match self.key {
            None => Err(Stop::Object),
            Some(_) => Ok(self),
        }
    }
}

/// Methods for values that are not objects (`Ok`: no field here), and for
/// those the walk does not go into (`Err`: a list, or [`Stop::Unsupported`]).
macro_rules! not_object {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {$(
        fn $method(self $(, _: $ty)*) -> Result<(), Stop> {
            Ok(())
        }
    )*};
}

macro_rules! not_walked {
    ($($method:ident($($ty:ty),*) -> $kind:ident = $stop:ident),* $(,)?) => {$(
        fn $method(self $(, _: $ty)*) -> Result<Self::$kind, Stop> {
            Err(Stop::$stop)
        }
    )*};
}

impl<P: AsRef<str>, V: Visit> Serializer for Walk<'_, P, V> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Impossible<(), Stop>;
    type SerializeTuple = Impossible<(), Stop>;
    type SerializeTupleStruct = Impossible<(), Stop>;
    type SerializeTupleVariant = Impossible<(), Stop>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Stop>;

    not_object!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    not_walked!(
        serialize_seq(Option<usize>) -> SerializeSeq = Other,
        serialize_tuple(usize) -> SerializeTuple = Other,
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct = Other,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant = Unsupported,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant = Unsupported,
    );

    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.object()?.field(variant, value)?;
        Err(Stop::NoField)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, Stop> {
        self.object()
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
        self.object()
    }
}

impl<P: AsRef<str>, V: Visit> SerializeStruct for Walk<'_, P, V> {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.field(name, value)
    }

    fn end(self) -> Result<(), Stop> {
        Err(Stop::NoField)
    }
}

impl<P: AsRef<str>, V: Visit> SerializeMap for Walk<'_, P, V> {
    type Ok = ();
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        // Map keys are few (a flattened struct's fields): made as JSON.
        let key = serde_json::to_value(key).map_err(|_| Stop::Other)?;
        self.matched = key.as_str().is_some() && key.as_str() == self.key;
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        match std::mem::take(&mut self.matched) {
            true => self.field(self.key.unwrap_or_default(), value),
            false => Ok(()),
        }
    }

    fn end(self) -> Result<(), Stop> {
        Err(Stop::NoField)
    }
}

//! The tests of `src/walk.rs`, plain serde: the crate itself is a Python
//! extension without a Rust test harness (it would have to link libpython).

#[allow(dead_code)]
#[path = "../src/walk.rs"]
mod walk;

use serde::Serialize;
use serde_json::{json, Value};
use walk::{find, is_object, Visit};

/// The value found, as JSON.
struct Json;
impl Visit for Json {
    type Out = Value;
    fn visit<T: Serialize + ?Sized>(self, value: &T) -> Value {
        serde_json::to_value(value).expect("serialises")
    }
}

#[derive(Serialize)]
struct Inner {
    a: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    maybe: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Kind {
    Started { pid: u32 },
    Lost,
}

#[derive(Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Tagged {
    Finished(Inner),
}

#[derive(Serialize)]
enum External {
    New(Inner),
    Struct { x: u32 },
}

#[derive(Serialize)]
struct Outer {
    id: String,
    inner: Inner,
    none: Option<Inner>,
    some: Option<Inner>,
    list: Vec<u32>,
    #[serde(flatten)]
    kind: Kind,
    tagged: Tagged,
    new: External,
    variant: External,
    map: std::collections::BTreeMap<String, u32>,
}

fn outer() -> Outer {
    Outer {
        id: "t1".into(),
        inner: Inner { a: 1, maybe: None },
        none: None,
        some: Some(Inner {
            a: 2,
            maybe: Some("m".into()),
        }),
        list: vec![1, 2],
        kind: Kind::Started { pid: 7 },
        tagged: Tagged::Finished(Inner { a: 3, maybe: None }),
        new: External::New(Inner { a: 4, maybe: None }),
        variant: External::Struct { x: 5 },
        map: [("k".to_string(), 6)].into(),
    }
}

/// Every path gives what the JSON tree has there.
#[test]
fn finds_what_the_json_tree_has() {
    let value = outer();
    let tree = serde_json::to_value(&value).expect("serialises");
    let paths: &[&[&str]] = &[
        &[],
        &["id"],
        &["inner"],
        &["inner", "a"],
        &["inner", "maybe"],
        &["none"],
        &["none", "a"],
        &["some", "maybe"],
        &["list"],
        &["list", "0"],
        &["type"],
        &["pid"],
        &["tagged", "state"],
        &["tagged", "a"],
        &["new", "New", "a"],
        &["new", "Old"],
        &["variant", "Struct", "x"],
        &["map", "k"],
        &["map", "j"],
        &["id", "x"],
        &["absent"],
    ];
    for path in paths {
        let want = path
            .iter()
            .try_fold(&tree, |v, k| v.as_object()?.get(*k))
            .cloned();
        assert_eq!(find(&value, path, Json), want, "at {path:?}");
    }
}

#[test]
fn tells_objects() {
    let value = outer();
    assert!(is_object(&value));
    assert!(is_object(&value.inner));
    assert!(is_object(&value.some));
    assert!(!is_object(&value.none));
    assert!(!is_object(&value.id));
    assert!(!is_object(&value.list));
    assert!(is_object(&value.tagged));
    assert!(is_object(&value.new));
    assert!(is_object(&value.variant));
    assert!(is_object(&json!({"a": 1})));
    assert!(!is_object(&Value::Null));
    assert!(is_object(&Kind::Lost));
}

/// Only the field found is visited: a field that fails to serialise,
/// elsewhere, is not touched.
#[test]
fn skips_the_other_fields() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("touched"))
        }
    }
    #[derive(Serialize)]
    struct Both {
        before: Fails,
        wanted: u32,
        after: Fails,
    }
    let value = Both {
        before: Fails,
        wanted: 9,
        after: Fails,
    };
    assert_eq!(find(&value, &["wanted"], Json), Some(json!(9)));
}

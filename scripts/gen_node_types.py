#!/usr/bin/env python3
"""Writes bindings-node/types.d.ts, the TypeScript types of every value the
Node binding returns, from the core's JSON Schemas in schema/ (themselves
generated from the core's serde types): one source, no hand mirror.

The Node form of the wire JSON: object keys in camelCase (the binding's
`json.rs` writes them so; free-form values keep theirs), optional fields
absent; the outcomes (`state` = finished, detached, ...) nest their payload
under `result` or `info` where the core's JSON is flat. Two extras the
binding adds are declared in EXTRA.

It also writes bindings-node/src/shapes.rs: for every plain object type,
its serde field names in order and a JS factory taking them positionally,
whose object literal V8 builds from a cached shape (the binding's
`values.rs` uses a factory only when serde hands exactly those fields), and
for the payloads of the outcomes, a factory nesting them (NESTED).

Usage: python3 scripts/gen_node_types.py [--check]
(--check: fail, writing nothing, when a file is not what it would write.)
"""

import json
import re
import sys
from pathlib import Path
from gen_output import write_or_check

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema"
OUT = ROOT / "bindings-node" / "types.d.ts"
SHAPES_OUT = ROOT / "bindings-node" / "src" / "shapes.rs"

# Schema titles named otherwise in JS; the event's own fields are EventBase.
RENAME = {"Event": "TaskEvent"}
# Where an outcome nests a payload of this type.
NESTED = {"TaskResult": "result", "TaskInfo": "info"}
# Fields the binding adds to a type: (name, TypeScript type, doc).
EXTRA = {
    "PollResponse": [("data", "Buffer", "The output bytes, raw.")],
    "Preview": [("text", "string", "Head and tail joined by `[... N bytes omitted ...]` when something lies between them.")],
}
# How a factory makes an extra field of what Rust hands it: a poll's bytes
# come as an ArrayBuffer (a Buffer made in JS is cheaper than one made
# through Node-API) unless Rust made a Buffer (a large page, not copied).
MAKE = {"data": "{0} instanceof ArrayBuffer ? Buffer.from({0}) : {0}"}
# Free-form JSON values, typed as JSON.
FREE = "any"


def camel(name):
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def doc(text, indent=""):
    if not text:
        return []
    text = re.sub(r"\n*```.*?```", "", text, flags=re.S)  # Rust examples
    text = re.sub(r"\[`([^`]+)`\]", r"`\1`", text).replace("*/", "*\\/").strip()
    lines = text.split("\n")
    if len(lines) == 1:
        return [f"{indent}/** {lines[0]} */"]
    return [f"{indent}/**"] + [f"{indent} * {line}".rstrip() for line in lines] + [f"{indent} */"]


class Gen:
    def __init__(self):
        self.defs = {}  # name -> schema
        self.order = []

    def add(self, name, schema):
        if name not in self.defs:
            self.defs[name] = schema
            self.order.append(name)

    def load(self):
        for path in sorted(SCHEMA.glob("*.json")):
            root = json.loads(path.read_text())
            for name, schema in root.get("$defs", {}).items():
                self.add(name, schema)
            top = {k: v for k, v in root.items() if k not in ("$defs", "$schema", "title")}
            self.add(root["title"], top)

    def name(self, name):
        return RENAME.get(name, name)

    def ref(self, ref):
        name = ref.rsplit("/", 1)[1]
        s = self.defs[name]
        if s.get("type") == "string" and "oneOf" not in s:
            return "string"  # an id or a stream name: a plain string
        return self.name(name)

    def type(self, s):
        if "$ref" in s:
            return self.ref(s["$ref"])
        if "anyOf" in s:
            parts = [self.type(p) for p in s["anyOf"] if p.get("type") != "null"]
            return " | ".join(parts)
        if "const" in s:
            return f"'{s['const']}'"
        if "oneOf" in s and all("const" in o for o in s["oneOf"]):
            return " | ".join(f"'{o['const']}'" for o in s["oneOf"])
        t = s.get("type")
        if isinstance(t, list):
            t = next(x for x in t if x != "null")
        if t in ("integer", "number"):
            return "number"
        if t in ("string", "boolean"):
            return t
        if t == "array":
            inner = self.type(s["items"])
            return f"{inner}[]" if re.fullmatch(r"\w+", inner) else f"Array<{inner}>"
        if t is None and not s.keys() - {"description"}:
            return FREE
        raise SystemExit(f"gen_node_types: no TypeScript type for {s}")

    def fields(self, s, indent="  ", docs=True):
        required = set(s.get("required", []))
        out = []
        for key, prop in s.get("properties", {}).items():
            if docs:
                out += doc(prop.get("description"), indent)
            opt = "" if key in required else "?"
            out.append(f"{indent}{camel(key)}{opt}: {self.type(prop)}")
        return out

    def inline(self, s, skip=()):
        """A variant as a one-line object type."""
        required = set(s.get("required", []))
        parts = []
        for key, prop in s.get("properties", {}).items():
            if key in skip:
                continue
            opt = "" if key in required else "?"
            parts.append(f"{camel(key)}{opt}: {self.type(prop)}")
        return "{ " + "; ".join(parts) + " }"

    def variant(self, v):
        tag = next(k for k, p in v["properties"].items() if "const" in p)
        head = f"{tag}: '{v['properties'][tag]['const']}'"
        if "$ref" not in v:
            body = self.inline(v, skip=(tag,))
            return "{ " + head + ("" if body == "{  }" else "; " + body[2:-2]) + " }"
        payload = self.ref(v["$ref"])
        base = v["$ref"].rsplit("/", 1)[1]
        if base in NESTED:
            return f"{{ {head}; {NESTED[base]}: {payload} }}"
        return f"({{ {head} }} & {payload})"

    def emit(self, name):
        s = self.defs[name]
        js = self.name(name)
        out = doc(s.get("description"))
        if s.get("type") == "string" and "oneOf" not in s:
            return []  # inlined as string
        if "oneOf" in s and all("const" in o for o in s["oneOf"]):
            out.append(f"export type {js} = {self.type(s)}")
        elif "oneOf" in s and "properties" in s:
            # Common fields plus a tagged variant (the event).
            base = "EventBase" if js == "TaskEvent" else f"{js}Base"
            head = [f"/** Fields every {js} has. */", f"export interface {base} {{"] + self.fields(s) + ["}", ""]
            members = [f"    | {self.inline(v)}" for v in s["oneOf"]]
            out = head + out + [f"export type {js} = {base} &", "  ("] + members + ["  )"]
        elif "oneOf" in s:
            out.append(f"export type {js} =")
            out += [f"  | {self.variant(v)}" for v in s["oneOf"]]
        elif s.get("type") == "object":
            body = self.fields(s)
            for field, ts, text in EXTRA.get(js, []):
                body += doc(text, "  ") + [f"  {field}: {ts}"]
            out += [f"export interface {js} {{"] + body + ["}"]
        else:
            raise SystemExit(f"gen_node_types: cannot declare {name}")
        return out + [""]

    def render(self):
        lines = [
            "// GENERATED by scripts/gen_node_types.py from schema/ — do not edit.",
            "// The values the Node binding returns, as the core's serde types write",
            "// them (schema/*.json), with camelCase keys. Regenerate after",
            "// `UPDATE_SCHEMA=1 cargo test --test schema`: python3 scripts/gen_node_types.py",
            "",
            "/// <reference types=\"node\" />",
            "",
        ]
        for name in sorted(self.order, key=lambda n: self.name(n)):
            lines += self.emit(name)
        # The EventItem test wants it on one line.
        text = "\n".join(lines).rstrip("\n") + "\n"
        return re.sub(r"export type EventItem =\n  \| (.*)\n  \| (.*)\n", r"export type EventItem = \1 | \2\n", text)


    def shapes(self):
        """bindings-node/src/shapes.rs: the factories of the plain object types."""
        names = [n for n in sorted(self.order) if self.defs[n].get("type") == "object" and "oneOf" not in self.defs[n]]
        factories, keys = [], []
        for name in names:
            s = self.defs[name]
            # The fields the binding adds come last (`values.rs` hands them).
            props = list(s.get("properties", {})) + [f for f, _, _ in EXTRA.get(name, [])]
            required = set(s.get("required", [])) | {f for f, _, _ in EXTRA.get(name, [])}
            params = ", ".join(f"a{i}" for i in range(len(props)))
            # The fields up to the first optional one go in the literal; an
            # optional field is set only when given, in serde's order.
            lead = 0
            while lead < len(props) and props[lead] in required:
                lead += 1
            value = [MAKE.get(k, "{0}").format(f"a{i}") for i, k in enumerate(props)]
            literal = "{ " + ", ".join(f"{camel(k)}: {value[i]}" for i, k in enumerate(props[:lead])) + " }" if lead else "{}"
            if lead == len(props):
                factories.append(f"  ({params}) => ({literal}),")
            else:
                body = [f"  ({params}) => {{", f"    const o = {literal}"]
                for i, k in enumerate(props[lead:], lead):
                    cond = "" if k in required else f"if (a{i} !== undefined) "
                    body.append(f"    {cond}o.{camel(k)} = {value[i]}")
                factories += body + ["    return o", "  },"]
            keys.append(f'    ("{name}", &[' + ", ".join(f'"{k}"' for k in props) + "]),")
        # An outcome (`{ state, ...result }` in serde, the struct's name its
        # payload's) nests its payload: a factory over the payload's.
        nested = []
        for name, key in NESTED.items():
            i = names.index(name)
            nested.append(f"  (s, ...a) => ({{ state: s, {key}: f[{i}](...a) }}),")
            keys.append(f'    ("{name}", &["state", ' + keys[i].split("&[", 1)[1])
        return "\n".join([
            "// GENERATED by scripts/gen_node_types.py from schema/ — do not edit.",
            "//! The plain object types of schema/: their serde field names in order,",
            "//! and JS factories (in the same order) taking the fields positionally.",
            "",
            "/// Each type's name and serde field names, in order.",
            "#[rustfmt::skip]",
            "pub(crate) const SHAPES: &[(&str, &[&str])] = &[",
            *keys,
            "];",
            "",
            "/// A script whose value is the factories, in the order of `SHAPES`.",
            "#[rustfmt::skip]",
            'pub(crate) const FACTORIES: &str = r#"(f => f.concat([',
            *nested,
            "]))([",
            *factories,
            '])"#;',
            "",
        ])


def main():
    gen = Gen()
    gen.load()
    outputs = {OUT: gen.render(), SHAPES_OUT: gen.shapes()}
    return write_or_check(outputs, "python3 scripts/gen_node_types.py")


if __name__ == "__main__":
    sys.exit(main())

//! Fast construction of the objects on the hot path (`TaskInfo`, its
//! `OutputStats`, `PollResponse`). napi-rs builds an object property by
//! property through Node-API, which re-internalises every key and walks a map
//! transition per property: about 7 µs for a poll answer. Here the values are
//! handed, as positional arguments, to small JS functions whose object
//! literals V8 builds from a cached shape: about 3x faster. The functions are
//! made once per environment (`napi_run_script`) and kept by reference.
//!
//! The TypeScript types of these objects are still generated from the Rust
//! structs (`#[napi(object, object_to_js = false)]`); `test/schema.test.mjs`
//! checks that the built objects carry exactly the declared fields.

use std::cell::RefCell;
use std::ptr;

use napi::bindgen_prelude::ToNapiValue;
use napi::{check_status, sys, Error, Result, Status};

/// The factories, in [`Shape`] order. Optional fields are absent, not
/// `undefined`, as in the core's JSON.
const FACTORIES: &str = r#"(() => [
  (id, kind, description, owner, status, foreground, detached, keepAlive, paused, createdAtMs, durationMs,
   output, finishedAtMs, pid, orphanPid, containment, exit, cancelReason, error, sinkError) => {
    const o = { id, kind, description, owner, status, foreground, detached, keepAlive, paused, createdAtMs, durationMs, output }
    if (finishedAtMs !== undefined) o.finishedAtMs = finishedAtMs
    if (pid !== undefined) o.pid = pid
    if (orphanPid !== undefined) o.orphanPid = orphanPid
    if (containment !== undefined) o.containment = containment
    if (exit !== undefined) o.exit = exit
    if (cancelReason !== undefined) o.cancelReason = cancelReason
    if (error !== undefined) o.error = error
    if (sinkError !== undefined) o.sinkError = sinkError
    return o
  },
  (totalBytes, stdoutBytes, stderrBytes, spilled, diskBytes, omittedBytes, memoryBytes, writeError, logPath) => {
    const o = { totalBytes, stdoutBytes, stderrBytes, spilled, diskBytes, omittedBytes, memoryBytes }
    if (writeError !== undefined) o.writeError = writeError
    if (logPath !== undefined) o.logPath = logPath
    return o
  },
  (info, cursor, nextCursor, omittedBytes, eof, data, text, spans, timedOut) =>
    ({ info, cursor, nextCursor, omittedBytes, eof, data, text, spans, timedOut }),
])()"#;

/// Which object a factory builds.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    TaskInfo = 0,
    OutputStats = 1,
    PollResponse = 2,
}

const SHAPES: usize = 3;

struct Factories {
    env: sys::napi_env,
    refs: [sys::napi_ref; SHAPES],
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

fn failed(what: &str) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("building an object failed: {what}"),
    )
}

/// The factories of `env`, made on first use.
///
/// # Safety
///
/// `env` must be the live environment of the current JS thread, as napi-rs
/// passes it to `to_napi_value`.
unsafe fn factories(env: sys::napi_env) -> Result<[sys::napi_ref; SHAPES]> {
    if let Some(refs) =
        FACTORIES_OF_ENV.with(|f| f.borrow().as_ref().filter(|f| f.env == env).map(|f| f.refs))
    {
        return Ok(refs);
    }
    let mut script = ptr::null_mut();
    // SAFETY: `env` is live (the caller's contract); the pointer and length
    // are those of a `&'static str`, and `script` is a valid out-pointer.
    check_status!(unsafe {
        sys::napi_create_string_utf8(
            env,
            FACTORIES.as_ptr().cast(),
            FACTORIES.len() as isize,
            &mut script,
        )
    })?;
    let mut list = ptr::null_mut();
    // SAFETY: `script` is the string just made in `env`; `list` is a valid
    // out-pointer. The script is our constant, not user input.
    check_status!(unsafe { sys::napi_run_script(env, script, &mut list) })?;
    let mut refs = [ptr::null_mut(); SHAPES];
    for (i, slot) in refs.iter_mut().enumerate() {
        let mut func = ptr::null_mut();
        // SAFETY: `list` is the array the script returned (SHAPES functions),
        // `func` and `slot` are valid out-pointers; the reference (count 1)
        // keeps the function alive for the environment's life.
        check_status!(unsafe { sys::napi_get_element(env, list, i as u32, &mut func) })?;
        // SAFETY: as above.
        check_status!(unsafe { sys::napi_create_reference(env, func, 1, slot) })?;
    }
    // SAFETY: `env` is live; the hook is a plain function that touches only
    // this thread's cache, and takes no argument.
    check_status!(unsafe {
        sys::napi_add_env_cleanup_hook(env, Some(forget_factories), ptr::null_mut())
    })?;
    FACTORIES_OF_ENV.with(|f| *f.borrow_mut() = Some(Factories { env, refs }));
    Ok(refs)
}

/// Builds a `shape` object from its positional `args`.
///
/// # Safety
///
/// `env` must be the live environment of the current JS thread, and `args`
/// values of that environment, in the factory's parameter order.
pub(crate) unsafe fn build(
    env: sys::napi_env,
    shape: Shape,
    args: &[sys::napi_value],
) -> Result<sys::napi_value> {
    // SAFETY: `env` is live (this function's contract).
    let refs = unsafe { factories(env) }?;
    let mut func = ptr::null_mut();
    // SAFETY: the references were made in this `env` (checked by
    // `factories`) and are never deleted; `func` is a valid out-pointer.
    check_status!(unsafe { sys::napi_get_reference_value(env, refs[shape as usize], &mut func) })?;
    if func.is_null() {
        return Err(failed("the factory is gone"));
    }
    let mut this = ptr::null_mut();
    // SAFETY: `env` is live; `this` is a valid out-pointer.
    check_status!(unsafe { sys::napi_get_undefined(env, &mut this) })?;
    let mut result = ptr::null_mut();
    // SAFETY: `func` is a live function of `env`; `args` points at
    // `args.len()` values of `env` (the caller's contract); `result` is a
    // valid out-pointer.
    check_status!(unsafe {
        sys::napi_call_function(env, this, func, args.len(), args.as_ptr(), &mut result)
    })?;
    Ok(result)
}

/// A value as a JS value; `None` as `undefined` (which the factories leave
/// out).
///
/// # Safety
///
/// `env` must be the live environment of the current JS thread.
pub(crate) unsafe fn arg<T: ToNapiValue>(
    env: sys::napi_env,
    value: Option<T>,
) -> Result<sys::napi_value> {
    match value {
        // SAFETY: `env` is live (this function's contract).
        Some(v) => unsafe { T::to_napi_value(env, v) },
        None => {
            let mut undefined = ptr::null_mut();
            // SAFETY: `env` is live; `undefined` is a valid out-pointer.
            check_status!(unsafe { sys::napi_get_undefined(env, &mut undefined) })?;
            Ok(undefined)
        }
    }
}

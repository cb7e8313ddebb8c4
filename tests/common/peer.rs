//! Test peers that are not this project's: the official ACP Python SDK,
//! installed once into `target/acp-venv` by the first test that needs it,
//! so that `cargo test --workspace` passes in a fresh clone with only
//! `python3` (with `venv` and `pip`) and the package registry.
//! `AGENT_TASKS_ACP_PYTHON`, when set (scripts/test.sh sets it), names a
//! python that has the SDK already and nothing is installed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The SDK versions the scripted agent is written against.
const ACP_SDK: &str = "agent-client-protocol>=0.12,<0.13";

/// A python with the ACP SDK: `AGENT_TASKS_ACP_PYTHON`, or the one of
/// `target/acp-venv`, made and filled on first use. Panics with what to do
/// when it cannot be made (no python3, no registry).
pub fn acp_python() -> String {
    static PYTHON: OnceLock<Result<String, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| match std::env::var("AGENT_TASKS_ACP_PYTHON") {
        Ok(python) => Ok(python),
        Err(_) => install_acp_venv(),
    });
    match found {
        Ok(python) => python.clone(),
        Err(why) => panic!(
            "no python with the ACP SDK: {why}. Set AGENT_TASKS_ACP_PYTHON to a python that has \
             {ACP_SDK:?}, or let the test install it (needs python3 with venv and pip, and PyPI)"
        ),
    }
}

fn install_acp_venv() -> Result<String, String> {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    // One installer at a time across test processes: an flock on a file
    // beside the venv, held until the install is done.
    let lock_file = std::fs::File::create(target.join("acp-venv.lock"))
        .map_err(|e| format!("creating the install lock: {e}"))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking the install lock: {e}"))?;
    let venv = target.join("acp-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".sdk-installed");
    if !ready.exists() {
        if !python.exists() {
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        }
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            ACP_SDK,
        ]))?;
        std::fs::write(&ready, ACP_SDK).map_err(|e| format!("marking the venv ready: {e}"))?;
    }
    Ok(python.display().to_string())
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("running {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

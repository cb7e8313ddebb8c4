//! `agent-tasks-supervisor`: the supervisor of one task that outlives its
//! host (see `agent_tasks::run_if_supervisor`). Started by the library,
//! never by hand.

fn main() {
    std::process::exit(agent_tasks::supervisor_main(std::env::args_os().collect()));
}

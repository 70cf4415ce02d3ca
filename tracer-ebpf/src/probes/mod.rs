//! One file per kernel hook.
mod exec;
mod exec_failed;
mod exit;
mod fexit_exec_failed;
mod fexit_fork_failed;
mod fexit_wait;
mod fork_failed;
mod free;
mod newtask;
mod wait;

//! One file per kernel hook.
mod exec;
mod exec_failed;
mod exit;
mod fork_failed;
mod free;
mod newtask;
mod wait;

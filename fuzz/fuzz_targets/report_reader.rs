//! `tracer report` on arbitrary bytes: reading, rebuilding the history, and every
//! output form (text, JSON, tree) must never panic, whatever the input holds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Gzip is the one input refused as a whole; anything else gives a report.
    let _ = tracer::report::analyse_bytes(data);
});

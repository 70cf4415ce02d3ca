//! Kernel tests of secret redaction (docs/redaction.md): real execs under
//! `tracer watch -o FILE -- sh -c SCRIPT ...`, and a process found at start-up
//! under `-p`. Each secret is looked for in the raw bytes of the output file and
//! in the text `watch` printed on stdout and stderr: it must be in neither, and
//! the records show `***` in its place. With `--no-default-redact` the same
//! secrets come through.
//!
//! Like tests/kernel.rs these run the real tracer (`TRACER_BIN`) and need root
//! (`sudo cargo xtask test`). Every wait has a deadline; nothing depends on timing.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tracer_tests::{Proc, Rec, STEP_DEADLINE, Trace, run_dir};

/// What one `watch` run left: its checked records, and the output file's bytes.
struct Run {
    trace: Trace,
    raw: Vec<u8>,
}

/// Runs `tracer watch --color never -o DIR/out.jsonl FLAGS -- COMMAND` to its
/// end (COMMAND must exit 0) and reads what it wrote.
fn watch(dir: &Path, flags: &[&str], command: &[&OsStr]) -> Run {
    let out = dir.join("out.jsonl");
    let mut args: Vec<&OsStr> = ["watch", "--color", "never", "-o"]
        .iter()
        .map(OsStr::new)
        .collect();
    args.push(out.as_os_str());
    args.extend(flags.iter().map(OsStr::new));
    args.push(OsStr::new("--"));
    args.extend_from_slice(command);
    let mut run = Proc::tracer(&args);
    let status = run.wait_within(STEP_DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", run.describe());
    let raw = std::fs::read(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let content = String::from_utf8(raw.clone()).expect("JSON Lines are UTF-8");
    let trace = Trace::from_run(&run, &content, &out, Value::Null, dir);
    Run { trace, raw }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

impl Run {
    /// Fails if `secret` is anywhere in the file, on stdout or on stderr.
    fn assert_hidden(&self, secret: &str) {
        let t = &self.trace;
        for (what, text) in [
            ("the output file", &self.raw[..]),
            ("stdout", t.stdout.as_bytes()),
            ("stderr", t.stderr.as_bytes()),
        ] {
            if contains(text, secret) {
                t.fail(&[], format!("the secret {secret:?} is in {what}"));
            }
        }
    }

    /// Fails unless `secret` is in the file and on stdout.
    fn assert_shown(&self, secret: &str) {
        let t = &self.trace;
        for (what, text) in [
            ("the output file", &self.raw[..]),
            ("stdout", t.stdout.as_bytes()),
        ] {
            if !contains(text, secret) {
                t.fail(&[], format!("{secret:?} is not in {what}"));
            }
        }
    }

    /// The `exec` record with this argv; fails if there is none.
    fn exec(&self, argv: &[&str]) -> &Rec {
        let found = self.trace.find("exec", |r| r.argv() == argv);
        match found[..] {
            [r] => r,
            _ => self.trace.fail(
                &[],
                format!(
                    "expected one exec record with argv {argv:?}, found {}",
                    found.len()
                ),
            ),
        }
    }

    /// The `exec` record with this argv says `argv_redacted: redacted`, and the
    /// text on stdout shows the same argv.
    fn assert_exec(&self, argv: &[&str], redacted: bool) {
        let r = self.exec(argv);
        if r.bool("argv_redacted") != Some(redacted) {
            self.trace.fail(
                &[],
                format!("argv_redacted of {argv:?} is not {redacted}: {r}"),
            );
        }
        // As the text format shows arguments: quoted when they hold a space.
        let text: Vec<String> = argv
            .iter()
            .map(|a| match a.contains(' ') {
                true => format!("'{a}'"),
                false => a.to_string(),
            })
            .collect();
        let text = text.join(" ");
        if !self.trace.stdout.lines().any(|l| l.ends_with(&text)) {
            self.trace
                .fail(&[], format!("no exec line ending in {text:?} on stdout"));
        }
    }
}

/// `DIR/mysql`, a link to `true`: a real exec whose argv[0] names a mysql client.
fn fake_mysql(dir: &Path) -> PathBuf {
    let path = dir.join("mysql");
    std::os::unix::fs::symlink("/bin/true", &path).expect("symlink");
    path
}

/// The secrets of [`SCRIPT`], each of which must be hidden by the defaults.
const SECRETS: [&str; 8] = [
    "pw-Secret-1",
    "tok-Secret-2",
    "ghp_Secret3",
    "url-Secret-4",
    "hdr-Secret-5",
    "my-Secret-6",
    "Secret-7",
    "alert-Secret-8",
];

/// Execs with a secret each, as people write them. `MYSQL` stands for the path
/// of a fake mysql, `$1` is an argument with a byte that is not UTF-8 in its
/// secret, `$2` a non-UTF-8 argument without one. The crash loop (3 × `false`) raises an alert
/// that quotes the culprit's argv. (Output goes to /dev/null: what the commands
/// print is not the tracer's output.)
const SCRIPT: &str = r#"
/bin/echo --password=pw-Secret-1 >/dev/null
/bin/true --token tok-Secret-2
env GITHUB_TOKEN=ghp_Secret3 /bin/true
/bin/echo https://bob:url-Secret-4@example.com/x >/dev/null
/bin/true -H 'Authorization: Bearer hdr-Secret-5'
MYSQL -uroot -pmy-Secret-6 app
/bin/true "$1" "$2"
for i in 1 2 3; do /bin/false --password=alert-Secret-8; done
exit 0
"#;

/// `sh -c SCRIPT sh ARG1 ARG2` (see [`SCRIPT`]).
fn script_command(dir: &Path) -> Vec<OsString> {
    let mysql = fake_mysql(dir);
    let script = SCRIPT.replace("MYSQL", mysql.to_str().expect("UTF-8 path"));
    vec![
        "/bin/sh".into(),
        "-c".into(),
        script.into(),
        "sh".into(),
        OsStr::from_bytes(b"--password=ab\xffSecret-7").into(),
        OsStr::from_bytes(b"caf\xe9").into(),
    ]
}

#[test]
fn default_rules_hide_secrets_in_real_execs_and_alerts() {
    let dir = run_dir("redact-defaults");
    let command = script_command(&dir);
    let refs: Vec<&OsStr> = command.iter().map(OsString::as_os_str).collect();
    let run = watch(&dir, &["--crash-count", "3"], &refs);
    for secret in SECRETS {
        run.assert_hidden(secret);
    }
    let mysql = dir.join("mysql");
    let mysql = mysql.to_str().expect("UTF-8 path");
    run.assert_exec(&["/bin/echo", "--password=***"], true);
    run.assert_exec(&["/bin/true", "--token", "***"], true);
    run.assert_exec(&["env", "GITHUB_TOKEN=***", "/bin/true"], true);
    run.assert_exec(&["/bin/echo", "https://bob:***@example.com/x"], true);
    run.assert_exec(&["/bin/true", "-H", "Authorization: ***"], true);
    run.assert_exec(&[mysql, "-uroot", "-p***", "app"], true);
    // The byte that is not UTF-8 went with the secret; the other argument's
    // stays as it was (written `\xe9`, docs/events.md).
    let r = run.exec(&["/bin/true", "--password=***", "caf\\xe9"]);
    if r.bool("argv_redacted") != Some(true) {
        run.trace.fail(&[], format!("argv_redacted not set: {r}"));
    }
    // The script itself, as `sh` was exec'd with it, has every secret hidden.
    let sh = run
        .trace
        .find("exec", |r| r.argv().first() == Some(&"/bin/sh"));
    let [sh] = sh[..] else {
        run.trace.fail(&[], "expected one exec of /bin/sh")
    };
    let argv = sh.argv();
    if sh.bool("argv_redacted") != Some(true)
        || !argv[2].contains("/bin/echo --password=*** >/dev/null")
        || !argv[2].contains("-uroot -p*** app")
        || argv[4] != "--password=***"
    {
        run.trace.fail(&[], format!("the script's exec: {sh}"));
    }
    // An exec with nothing secret says so.
    run.assert_exec(&["/bin/true"], false);
    // The crash loop's alert quotes the redacted argv.
    let alerts = run
        .trace
        .find("alert", |r| r.str("alert") == Some("crash_loop"));
    let [alert] = alerts[..] else {
        run.trace.fail(
            &[],
            format!("expected one crash_loop alert, got {}", alerts.len()),
        )
    };
    if alert.argv() != ["/bin/false", "--password=***"] {
        run.trace.fail(&[], format!("the alert's argv: {alert}"));
    }
}

#[test]
fn no_default_redact_leaves_the_arguments_and_keeps_user_rules() {
    let dir = run_dir("redact-none");
    let mut command = script_command(&dir);
    command.push("card=4111222233334444".into());
    let refs: Vec<&OsStr> = command.iter().map(OsString::as_os_str).collect();
    let run = watch(
        &dir,
        &[
            "--crash-count",
            "3",
            "--no-default-redact",
            "--redact",
            r"card=\d+",
        ],
        &refs,
    );
    for secret in SECRETS {
        run.assert_shown(secret);
    }
    run.assert_hidden("4111222233334444");
    run.assert_exec(&["/bin/echo", "--password=pw-Secret-1"], false);
    run.assert_exec(&["env", "GITHUB_TOKEN=ghp_Secret3", "/bin/true"], false);
    run.exec(&["/bin/true", "--password=ab\\xffSecret-7", "caf\\xe9"]);
    // Only the user's rule hit the script's exec (its last argument).
    let sh = run
        .trace
        .find("exec", |r| r.argv().first() == Some(&"/bin/sh"));
    let [sh] = sh[..] else {
        run.trace.fail(&[], "expected one exec of /bin/sh")
    };
    if sh.bool("argv_redacted") != Some(true) || sh.argv().last() != Some(&"***") {
        run.trace.fail(&[], format!("the script's exec: {sh}"));
    }
    let alerts = run
        .trace
        .find("alert", |r| r.str("alert") == Some("crash_loop"));
    if !alerts
        .iter()
        .any(|a| a.argv() == ["/bin/false", "--password=alert-Secret-8"])
    {
        run.trace
            .fail(&[], "no crash_loop alert with the argv as it was");
    }
}

#[test]
fn user_patterns_with_and_without_a_secret_group() {
    let dir = run_dir("redact-custom");
    let run = watch(
        &dir,
        &[
            "--redact",
            r"card=\d+",
            "--redact",
            r"pin=(?P<secret>[A-Z]+\d+)",
        ],
        &[
            // Not echo: what the command prints is not the tracer's output.
            OsStr::new("/bin/true"),
            OsStr::new("card=4111222233334444"),
            OsStr::new("pin=ZQX9876"),
            OsStr::new("--password=pw-Secret-9"),
            OsStr::new("card=none"),
        ],
    );
    for secret in ["4111222233334444", "ZQX9876", "pw-Secret-9"] {
        run.assert_hidden(secret);
    }
    run.assert_exec(
        &["/bin/true", "***", "pin=***", "--password=***", "card=none"],
        true,
    );
}

#[test]
fn process_records_at_start_up_are_redacted() {
    let dir = run_dir("redact-process");
    let out = dir.join("out.jsonl");
    // `; :` keeps sh from exec'ing sleep in its place: its own argv is the one
    // with the secret.
    let holder = Proc::spawn(
        Command::new("/bin/sh").args(["-c", "sleep 60; :", "--password=proc-Secret-10"]),
        false,
    );
    let pid = holder.pid().to_string();
    let mut run = Proc::tracer(&[
        "watch",
        "--color",
        "never",
        "-o",
        out.to_str().expect("UTF-8 path"),
        "-p",
        &pid,
        "--duration",
        "1s",
    ]);
    let status = run.wait_within(STEP_DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", run.describe());
    let raw = std::fs::read(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let content = String::from_utf8(raw.clone()).expect("JSON Lines are UTF-8");
    let run = Run {
        trace: Trace::from_run(&run, &content, &out, Value::Null, &dir),
        raw,
    };
    run.assert_hidden("proc-Secret-10");
    let p = run.trace.find("process", |r| r.pid() == Some(holder.pid()));
    let [p] = p[..] else {
        run.trace.fail(&[], "no process record for the holder")
    };
    if p.argv() != ["/bin/sh", "-c", "sleep 60; :", "--password=***"]
        || p.bool("argv_redacted") != Some(true)
    {
        run.trace
            .fail(&[], format!("the holder's process record: {p}"));
    }
    // Its sleep child has nothing secret.
    let sleeps = run.trace.find("process", |r| r.argv() == ["sleep", "60"]);
    if sleeps.len() != 1 || sleeps[0].bool("argv_redacted") != Some(false) {
        run.trace
            .fail(&[], "expected one process record of sleep 60, not redacted");
    }
    drop(holder);
}

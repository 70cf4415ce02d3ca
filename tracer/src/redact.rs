//! Secrets in command lines: passwords, tokens and keys that people pass as
//! arguments are replaced by `***` before a record is written, so nothing
//! secret reaches the terminal or the output file.
//!
//! Pure: no I/O. [`Redactor::redact_argv`] is run by the writer side
//! (`watch/sinks.rs`) on every record that carries an argv (`exec`, `process`,
//! `alert`), right before it is written; the model keeps the arguments as the
//! kernel gave them and never writes them itself.
//!
//! Two kinds of rules (the default set is documented with examples in
//! docs/redaction.md, which the tests below follow):
//! - per-argument regular expressions, searched in each argument on its own, also
//!   inside a longer argument such as the script of `sh -c '...'`. Only the
//!   `secret` capture group of a match is replaced when the pattern has one, else
//!   the whole match;
//! - rules that need the neighbouring arguments: `--password VALUE` (the secret is
//!   the next argument), and `-p`/`-u` after a mysql-like client or curl.
//!
//! Arguments are bytes and need not be UTF-8: the defaults are byte-oriented
//! (`(?-u)`), so a secret with invalid UTF-8 in it is matched like any other, and
//! the bytes around it are kept as they were.
//!
//! Cost: exec records come at up to ~10k/s. An argument without `=`, `:` or
//! whitespace cannot hold what a default pattern looks for and is not scanned
//! at all; the others are tested against one [`RegexSet`] of all the default
//! patterns (a single scan), and the user's patterns against a second one. The
//! individual patterns, and any allocation, only run on arguments a set matched.
//! The neighbour rules are a few byte comparisons per argument. Measured in
//! `tests::cost`.

use std::ops::Range;

use regex::bytes::{Regex, RegexSet};

/// What a secret is replaced with.
pub const MASK: &[u8] = b"***";

/// Options whose value is a secret, as whole words after `-` or `--`, possibly
/// after other words (`--db-password`, `--vault-token`). `pass` and `auth` are
/// too common as parts of other names (`--two-pass`, `--basic-auth`) and count
/// only on their own ([`OPT_EXACT`]).
const OPT_WORDS: &str = r"password|passwd|passphrase|token|secret|api[-_]?key|access[-_]?key|secret[-_]?key|private[-_]?key|client[-_]?secret";
const OPT_EXACT: &str = r"pass|auth";

/// Variable names (`NAME=value`, case-insensitive) that hold a secret when they
/// contain one of these; `AUTH` only as a whole word (`HTTP_AUTH`, `AUTH_HEADER`,
/// not `GIT_AUTHOR_NAME` or `XAUTHORITY`). Names may contain `.` and `-`
/// (`-Ddb.password=`, helm's `--set db.password=`).
const NAME_WORDS: &str =
    r"token|secret|password|passwd|passphrase|api[-_]?key|access[-_]?key|private[-_]?key";

/// How many of [`default_patterns`], first, are whole-argument rules.
const WHOLE_ARGUMENT_RULES: usize = 2;

/// Clients where `-pSECRET` is a password (mysql's own `-p`, `--password`).
const MYSQL_CLIENTS: [&[u8]; 8] = [
    b"mysql",
    b"mysqldump",
    b"mysqladmin",
    b"mariadb",
    b"mariadb-dump",
    b"mysqlimport",
    b"mysqlshow",
    b"mysqlcheck",
];
/// Clients where `-u USER:PASSWORD` holds a password.
const CURL_CLIENTS: [&[u8]; 1] = [b"curl"];

/// A word of a shell script: quoted parts, or characters up to whitespace, a
/// quote or a shell operator. Used where a secret sits inside a longer argument.
const WORD: &str = r#"(?:'[^']*'|"[^"]*"|[^\s'";&|])+"#;
/// [`WORD`] that does not start with `-` (an option, not a value).
const WORD_NOT_OPTION: &str = r#"(?:'[^']*'|"[^"]*"|[^\s'";&|-])(?:'[^']*'|"[^"]*"|[^\s'";&|])*"#;
/// What may come right before an option or a name inside a longer argument.
const BOUNDARY: &str = r#"(?:^|[\s'"=;&|(,])"#;

fn opt_name() -> String {
    format!(r"--?(?:(?:[a-z0-9]+[-_])*(?:{OPT_WORDS})|{OPT_EXACT})")
}

fn var_name() -> String {
    // Starts with a letter or `_`, so `--token-file=` (an option naming a file)
    // is not a variable.
    format!(
        r"(?:(?:[a-z_][a-z0-9_.-]*)?(?:{NAME_WORDS})[a-z0-9_.-]*|(?:(?:[a-z_][a-z0-9_.-]*)?[_.-])?auth(?:[_.-][a-z0-9_.-]*)?)"
    )
}

/// The default per-argument rules: a name (for people) and the pattern. The
/// first [`WHOLE_ARGUMENT_RULES`] take the whole rest of the argument.
fn default_patterns() -> Vec<(&'static str, String)> {
    let opt = opt_name();
    let var = var_name();
    let mysql = MYSQL_CLIENTS
        .iter()
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect::<Vec<_>>()
        .join("|");
    vec![
        // `--password=VALUE` as a whole argument: everything after `=` is the
        // secret, spaces and quotes included (they are part of the value).
        (
            "option=value",
            format!(r"(?is-u)^{opt}=(?P<secret>.+)"),
        ),
        // `GITHUB_TOKEN=VALUE`, `-Ddb.password=VALUE` as a whole argument (env,
        // sudo, make, docker -e, java -D, helm --set).
        (
            "NAME=value",
            format!(r"(?is-u)^(?:-D)?{var}=(?P<secret>.+)"),
        ),
        // The same, and `--password VALUE`, inside a longer argument (a shell
        // script): the value is one shell word.
        (
            "in a script",
            format!(
                r"(?i-u){BOUNDARY}(?:{opt}(?:=|\s+)|(?:export\s+)?(?:-D)?{var}=)(?P<secret>{WORD})"
            ),
        ),
        // `https://host/x?access_token=VALUE&...`
        (
            "URL query",
            format!(
                r#"(?i-u)[?&;](?:{var}|(?:[a-z0-9_.-]*[_.-])?(?:sig|signature)|key)=(?P<secret>[^&#\s'"]+)"#
            ),
        ),
        // `{"password": "VALUE"}` (curl -d, JSON in arguments).
        (
            "JSON field",
            format!(r#"(?i-u)"{var}"\s*:\s*"(?P<secret>(?:[^"\\]|\\.)+)""#),
        ),
        // `Authorization: Bearer abc`, `Cookie: ...`, `X-Api-Key: ...`,
        // `PRIVATE-TOKEN: ...`: everything up to a quote or the end of the line.
        (
            "header",
            format!(
                r#"(?i-u){BOUNDARY}(?:(?:proxy-)?authorization|cookie|[a-z0-9-]*(?:token|api-?key|secret)):[ \t]*(?P<secret>[^'"\r\n]+)"#
            ),
        ),
        // `Bearer abc` anywhere.
        (
            "bearer",
            r#"(?i-u)\bbearer\s+(?P<secret>[^\s'"]+)"#.to_string(),
        ),
        // `scheme://user:PASSWORD@host`: the password, up to the last `@` before
        // the path (an unescaped `@` in a password stays hidden).
        (
            "URL credentials",
            r#"(?i-u)\b[a-z][a-z0-9+.-]*://[^/\s:@'"]*:(?P<secret>[^/\s'"]+)@"#.to_string(),
        ),
        // `mysql ... -pSECRET` / `-p SECRET` inside a script (case matters: `-P`
        // is the port).
        (
            "mysql -p in a script",
            format!(
                r"(?-u)\b(?:{mysql})(?:\s+[^\s;&|]+)*?\s+-p\s*(?P<secret>{WORD_NOT_OPTION})"
            ),
        ),
        // `curl ... -u USER:SECRET` inside a script.
        (
            "curl -u in a script",
            r#"(?-u)\bcurl(?:\s+[^\s;&|]+)*?\s+(?:-u|-U|--user|--proxy-user)(?:\s+|=)?['"]?[^\s'":;&|]*:(?P<secret>[^\s'";&|]+)"#.to_string(),
        ),
    ]
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedactError {
    #[error(
        "--redact '{pattern}' is not a valid regular expression: {reason} (escape special characters such as ( [ . * + ? with \\)"
    )]
    BadRegex { pattern: String, reason: String },
    #[error(
        "--redact '{pattern}' matches the empty string, so it would hide nothing: make it match at least one character"
    )]
    MatchesEmpty { pattern: String },
}

/// A regex rule: searched in each argument.
#[derive(Debug)]
struct Rule {
    re: Regex,
    /// Index of the `secret` group; `None`: the whole match is the secret.
    secret: Option<usize>,
    /// The argument as a whole is `NAME=VALUE`: not applied to the script of
    /// `sh -c`, whose first word may be an assignment (`TOKEN=x make`).
    whole_argument: bool,
}

impl Rule {
    fn new(re: Regex, whole_argument: bool) -> Rule {
        let secret = re.capture_names().position(|n| n == Some("secret"));
        Rule {
            re,
            secret,
            whole_argument,
        }
    }

    /// Pushes the byte ranges of `arg` this rule finds secret.
    fn spans(&self, arg: &[u8], out: &mut Vec<Range<usize>>) {
        match self.secret {
            None => out.extend(self.re.find_iter(arg).map(|m| m.range())),
            Some(g) => out.extend(
                self.re
                    .captures_iter(arg)
                    .filter_map(|c| c.get(g).map(|m| m.range())),
            ),
        }
    }
}

/// Replaces secrets in argument lists. Build it once ([`Redactor::new`]) and
/// call [`Redactor::redact_argv`] for each argv written.
#[derive(Debug)]
pub struct Redactor {
    /// The default rules, in [`Redactor::default_set`] order.
    default_rules: Vec<Rule>,
    /// All of `default_rules` at once: one scan of an argument says which
    /// rules may find something in it. Only run on arguments with one of
    /// [`may_hold_default_secret`]'s bytes.
    default_set: RegexSet,
    /// The user's rules, and all of them at once.
    user_rules: Vec<Rule>,
    user_set: RegexSet,
    /// The neighbour rules (`--password VALUE`, mysql `-p`, curl `-u`) are on.
    defaults: bool,
    /// `--password` and the like as a whole argument (its value is the next one).
    option_alone: Option<Regex>,
}

/// What the argument after the current one is, by the neighbour rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Plain,
    /// The value of `--password`: secret as a whole.
    Secret,
    /// The value of mysql's `-p`: secret unless it is another option.
    SecretUnlessOption,
    /// The value of curl's `-u`: `USER:SECRET`.
    AfterColon,
}

impl Redactor {
    /// `extra`: the user's patterns (`--redact`), each searched in every argument;
    /// a match is replaced by `***`, or only its `secret` group when it has one.
    /// `defaults`: also apply the default set (docs/redaction.md).
    pub fn new(extra: &[String], defaults: bool) -> Result<Redactor, RedactError> {
        let mut default_patterns_on = Vec::new();
        let mut default_rules = Vec::new();
        if defaults {
            for (i, (_, p)) in default_patterns().into_iter().enumerate() {
                let re = Regex::new(&p).expect("default patterns compile");
                default_rules.push(Rule::new(re, i < WHOLE_ARGUMENT_RULES));
                default_patterns_on.push(p);
            }
        }
        let default_set = RegexSet::new(&default_patterns_on).expect("default patterns compile");
        let mut user_rules = Vec::new();
        for p in extra {
            let re = Regex::new(p).map_err(|e| RedactError::BadRegex {
                pattern: p.clone(),
                reason: one_line(&e),
            })?;
            // A match of nothing would put `***` between every two bytes.
            if re.is_match(b"") {
                return Err(RedactError::MatchesEmpty { pattern: p.clone() });
            }
            user_rules.push(Rule::new(re, false));
        }
        let user_set = RegexSet::new(extra).map_err(|e| RedactError::BadRegex {
            // Each compiled alone; together they can only be too big.
            pattern: extra.join(" "),
            reason: one_line(&e),
        })?;
        let option_alone = defaults.then(|| {
            Regex::new(&format!(r"(?i-u)^{}$", opt_name())).expect("default pattern compiles")
        });
        Ok(Redactor {
            default_rules,
            default_set,
            user_rules,
            user_set,
            defaults,
            option_alone,
        })
    }

    /// Whether any rule is on.
    pub fn is_active(&self) -> bool {
        !self.user_rules.is_empty() || self.defaults
    }

    /// Replaces the secrets in `argv` by `***` in place, keeping everything else
    /// byte for byte. True if anything was found (even a secret that was `***`
    /// already).
    pub fn redact_argv(&self, argv: &mut [Vec<u8>]) -> bool {
        let mut found = false;
        let mut next = Next::Plain;
        let mut after_mysql = false;
        let mut after_curl = false;
        let mut script = false;
        // Allocated only once a secret is found.
        let mut spans: Vec<Range<usize>> = Vec::new();
        for arg in argv.iter_mut() {
            spans.clear();
            let this = std::mem::replace(&mut next, Next::Plain);
            match this {
                Next::Plain => {}
                Next::Secret => spans.push(0..arg.len()),
                Next::SecretUnlessOption => {
                    if !arg.starts_with(b"-") {
                        spans.push(0..arg.len());
                    }
                }
                Next::AfterColon => push_after_colon(arg, 0, &mut spans),
            }
            if self.defaults {
                next = self.neighbour_rules(arg, after_mysql, after_curl, &mut spans);
                // The client may come after a wrapper (`sudo`, `env`, `ssh host`,
                // `time`), so any argument counts, except a value just redacted.
                if this == Next::Plain {
                    let base = basename(arg);
                    after_mysql |= MYSQL_CLIENTS.contains(&base);
                    after_curl |= CURL_CLIENTS.contains(&base);
                }
            }
            if self.defaults && may_hold_default_secret(arg) && self.default_set.is_match(arg) {
                for i in self.default_set.matches(arg).iter() {
                    let rule = &self.default_rules[i];
                    if !(script && rule.whole_argument) {
                        rule.spans(arg, &mut spans);
                    }
                }
            }
            if !self.user_rules.is_empty() && self.user_set.is_match(arg) {
                for i in self.user_set.matches(arg).iter() {
                    self.user_rules[i].spans(arg, &mut spans);
                }
            }
            // `sh -c SCRIPT`, `su -c`, `python -c`: the next argument is code.
            script = self.defaults && arg == b"-c";
            spans.retain(|r| !r.is_empty());
            if !spans.is_empty() {
                found = true;
                mask(arg, &mut spans);
            }
        }
        found
    }

    /// Applies the rules that look at one argument as an option: pushes the
    /// secret part of `arg` itself, and says what the next argument is.
    fn neighbour_rules(
        &self,
        arg: &[u8],
        after_mysql: bool,
        after_curl: bool,
        spans: &mut Vec<Range<usize>>,
    ) -> Next {
        if !arg.starts_with(b"-") {
            return Next::Plain;
        }
        let mut next = Next::Plain;
        if let Some(re) = &self.option_alone
            && may_be_secret_option(arg)
            && re.is_match(arg)
            && !is_negated(arg)
        {
            next = Next::Secret;
        }
        let long = arg.starts_with(b"--");
        if after_mysql && !long {
            // mysql: `-p` alone prompts; `-pSECRET` has it attached.
            match arg {
                b"-p" => next = Next::SecretUnlessOption,
                [b'-', b'p', ..] => spans.push(2..arg.len()),
                _ => {}
            }
        }
        if after_curl {
            match arg {
                b"-u" | b"-U" | b"--user" | b"--proxy-user" => next = Next::AfterColon,
                [b'-', b'u' | b'U', ..] if !long => push_after_colon(arg, 2, spans),
                _ => {
                    for opt in [&b"--user="[..], b"--proxy-user="] {
                        if arg.starts_with(opt) {
                            push_after_colon(arg, opt.len(), spans);
                        }
                    }
                }
            }
        }
        next
    }
}

/// Every default pattern needs `=` (`NAME=`, `--option=`), `:` (headers, URLs,
/// JSON) or whitespace (`Bearer x`, `--token x` and `mysql -p` in a script)
/// in the argument: most arguments (`-O2`, `file.c`, `/usr/bin/x`) have none and
/// skip the regex scan. A test checks the patterns against this.
fn may_hold_default_secret(arg: &[u8]) -> bool {
    arg.iter()
        .any(|&b| matches!(b, b'=' | b':') || b.is_ascii_whitespace() || b == b'\x0b')
}

/// [`Redactor::option_alone`] can only match an option of 5 bytes or more
/// (`-pass`, `-auth`) ending like one of its words: `…word`/`…wd`, `…phrase`,
/// `…token`, `…secret`, `…key`, `…pass`, `…auth`. Spares the regex for most
/// options (`-O2`, `-Wall`, `--verbose`).
fn may_be_secret_option(arg: &[u8]) -> bool {
    arg.len() >= 5
        && matches!(
            arg.last().map(u8::to_ascii_lowercase),
            Some(b'd' | b'e' | b'n' | b't' | b'y' | b's' | b'h')
        )
}

/// `--no-password`, `--no-auth`: a switch, not an option with a value.
fn is_negated(arg: &[u8]) -> bool {
    let name = arg
        .strip_prefix(b"--")
        .or(arg.strip_prefix(b"-"))
        .unwrap_or(arg);
    name.len() > 3 && name[..2].eq_ignore_ascii_case(b"no") && matches!(name[2], b'-' | b'_')
}

/// `USER:SECRET` starting at `from`: the part after the first `:`.
fn push_after_colon(arg: &[u8], from: usize, spans: &mut Vec<Range<usize>>) {
    if let Some(c) = arg
        .get(from..)
        .and_then(|v| v.iter().position(|&b| b == b':'))
    {
        spans.push(from + c + 1..arg.len());
    }
}

fn basename(arg: &[u8]) -> &[u8] {
    arg.rsplit(|&b| b == b'/').next().unwrap_or(arg)
}

/// Replaces the (possibly overlapping) `spans` of `arg` by [`MASK`] each, merged
/// where they overlap or touch.
fn mask(arg: &mut Vec<u8>, spans: &mut [Range<usize>]) {
    spans.sort_unstable_by_key(|r| r.start);
    let mut out = Vec::with_capacity(arg.len());
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        let start = spans[i].start.max(at);
        let mut end = spans[i].end;
        i += 1;
        while i < spans.len() && spans[i].start <= end {
            end = end.max(spans[i].end);
            i += 1;
        }
        if end <= start {
            continue;
        }
        out.extend_from_slice(&arg[at..start]);
        out.extend_from_slice(MASK);
        at = end;
    }
    out.extend_from_slice(&arg[at..]);
    *arg = out;
}

/// A regex error in one line: the syntax errors of the regex crate span several
/// lines (the pattern, a caret, then `error: ...`).
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || text.lines().map(str::trim).collect::<Vec<_>>().join(" "),
            str::to_string,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Redactor {
        Redactor::new(&[], true).unwrap()
    }

    fn run(r: &Redactor, argv: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
        let mut v: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
        let found = r.redact_argv(&mut v);
        (v, found)
    }

    /// `argv` comes out as `want`, and the flag says whether anything changed.
    #[track_caller]
    fn check_with(r: &Redactor, argv: &[&str], want: &[&str]) {
        let bytes: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let (got, found) = run(r, &bytes);
        let got: Vec<String> = got
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(got, want, "redacting {argv:?}");
        assert_eq!(found, argv != want, "flag for {argv:?}");
    }

    #[track_caller]
    fn check(argv: &[&str], want: &[&str]) {
        check_with(&defaults(), argv, want);
    }

    #[track_caller]
    fn kept(argv: &[&str]) {
        check(argv, argv);
    }

    #[test]
    fn option_equals_value() {
        for name in [
            "password",
            "PASSWORD",
            "passwd",
            "pass",
            "passphrase",
            "token",
            "secret",
            "api-key",
            "api_key",
            "apikey",
            "access-key",
            "secret-key",
            "private-key",
            "client-secret",
            "Client_Secret",
            "auth",
            "db-password",
            "vault-token",
            "github_token",
        ] {
            let arg = format!("--{name}=hunter2");
            let want = format!("--{name}=***");
            check(&["app", &arg, "x"], &["app", &want, "x"]);
            // Go's flag package takes one dash as well.
            let arg = format!("-{name}=hunter2");
            let want = format!("-{name}=***");
            check(&["app", &arg], &["app", &want]);
        }
        // The whole rest of the argument is the value, spaces and quotes too.
        check(&["app", "--password=a b 'c'"], &["app", "--password=***"]);
    }

    #[test]
    fn option_equals_value_negatives() {
        kept(&["app", "--password="]);
        kept(&["app", "--bypass=x", "--two-pass=1", "--basic-auth=yes"]);
        kept(&["app", "--password-file=/run/pw", "--token-ttl=60"]);
        kept(&["git", "log", "--author=bob", "--authority=x"]);
        kept(&["app", "--passwords", "--compass=north", "--tokens=4"]);
    }

    #[test]
    fn option_then_value() {
        check(
            &[
                "docker",
                "login",
                "-u",
                "bob",
                "--password",
                "hunter2",
                "reg.io",
            ],
            &[
                "docker",
                "login",
                "-u",
                "bob",
                "--password",
                "***",
                "reg.io",
            ],
        );
        check(
            &["app", "--Token", "abc", "--verbose"],
            &["app", "--Token", "***", "--verbose"],
        );
        check(
            &["openssl", "enc", "-pass", "pass:hunter2"],
            &["openssl", "enc", "-pass", "***"],
        );
        check(
            &[
                "kubeadm",
                "join",
                "--discovery-token-ca-cert-hash",
                "sha256:ab",
                "--token",
                "t.k",
            ],
            &[
                "kubeadm",
                "join",
                "--discovery-token-ca-cert-hash",
                "sha256:ab",
                "--token",
                "***",
            ],
        );
        // Whatever the next argument is, even one that looks like an option.
        check(&["app", "--secret", "--x"], &["app", "--secret", "***"]);
        // Nothing after it: nothing to hide.
        kept(&["app", "--password"]);
        // Switches, not options with a value.
        kept(&["app", "--no-password", "db"]);
        kept(&["docker", "login", "--password-stdin", "reg.io"]);
        kept(&["ffmpeg", "-i", "a", "--two-pass", "out"]);
        kept(&["app", "--token-file", "/run/t"]);
    }

    #[test]
    fn mysql_p() {
        check(
            &["mysql", "-uroot", "-phunter2", "db"],
            &["mysql", "-uroot", "-p***", "db"],
        );
        check(&["mysql", "-p", "hunter2"], &["mysql", "-p", "***"]);
        for client in MYSQL_CLIENTS {
            let c = std::str::from_utf8(client).unwrap();
            check(&[c, "-pX"], &[c, "-p***"]);
            let path = format!("/usr/bin/{c}");
            check(&[&path, "-pX"], &[&path, "-p***"]);
        }
        // After a wrapper.
        check(
            &["sudo", "-u", "db", "mysql", "-phunter2"],
            &["sudo", "-u", "db", "mysql", "-p***"],
        );
        check(
            &["ssh", "-p", "22", "h", "mysqldump", "-p", "pw"],
            &["ssh", "-p", "22", "h", "mysqldump", "-p", "***"],
        );
        // `-p` alone prompts for the password.
        kept(&["mysql", "-p"]);
        kept(&["mysql", "-u", "root", "-p", "-h", "db1"]);
        kept(&[
            "mysql",
            "-P3306",
            "-P",
            "3306",
            "--port=3306",
            "--protocol=tcp",
        ]);
        // Other programs' `-p`.
        kept(&["mkdir", "-p", "/tmp/x"]);
        kept(&["cp", "-pr", "a", "b"]);
        kept(&["ssh", "-p", "22", "host"]);
        kept(&["mysqlx", "-pfoo"]);
    }

    #[test]
    fn curl_user() {
        check(
            &["curl", "-u", "bob:hunter2", "https://x"],
            &["curl", "-u", "bob:***", "https://x"],
        );
        check(&["curl", "-ubob:pw"], &["curl", "-ubob:***"]);
        check(&["curl", "--user=bob:pw"], &["curl", "--user=bob:***"]);
        check(
            &["curl", "--user", "bob:a:b"],
            &["curl", "--user", "bob:***"],
        );
        check(&["curl", "-U", "p:pw", "x"], &["curl", "-U", "p:***", "x"]);
        check(
            &["/usr/bin/curl", "--proxy-user=p:pw"],
            &["/usr/bin/curl", "--proxy-user=p:***"],
        );
        // No password: curl prompts.
        kept(&["curl", "-u", "bob", "https://x"]);
        kept(&["curl", "--user-agent", "a:b", "https://x"]);
        kept(&["wget", "-u", "a:b"]);
    }

    #[test]
    fn variables() {
        check(
            &["env", "GITHUB_TOKEN=ghp_abc", "/bin/true"],
            &["env", "GITHUB_TOKEN=***", "/bin/true"],
        );
        for name in [
            "TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "PGPASSWORD",
            "MYSQL_PASSWD",
            "GPG_PASSPHRASE",
            "api_key",
            "OPENAI_API_KEY",
            "STRIPE_APIKEY",
            "SSH_PRIVATE_KEY",
            "AUTH",
            "HTTP_AUTH",
            "AUTH_HEADER",
            "npm_config__auth",
            "db.password",
            "x-api-key",
        ] {
            let arg = format!("{name}=s3cr3t value");
            let want = format!("{name}=***");
            check(&["sudo", &arg, "cmd"], &["sudo", &want, "cmd"]);
        }
        check(
            &["java", "-Dspring.datasource.password=pw", "-jar", "a.jar"],
            &["java", "-Dspring.datasource.password=***", "-jar", "a.jar"],
        );
        check(
            &["helm", "upgrade", "--set", "image=x,db.password=pw"],
            &["helm", "upgrade", "--set", "image=x,db.password=***"],
        );
        check(
            &[
                "kubectl",
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=password=pw",
            ],
            &[
                "kubectl",
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=password=***",
            ],
        );
        kept(&["env", "PATH=/usr/bin", "HOME=/root", "TOKEN=", "/bin/true"]);
        kept(&[
            "env",
            "GIT_AUTHOR_NAME=bob",
            "AUTHOR=x",
            "XAUTHORITY=/run/x",
            "a",
        ]);
        kept(&["dd", "if=/dev/zero", "of=/tmp/x", "bs=1M"]);
    }

    #[test]
    fn inside_a_script() {
        check(
            &["sh", "-c", "GITHUB_TOKEN=ghp_x make deploy"],
            &["sh", "-c", "GITHUB_TOKEN=*** make deploy"],
        );
        check(
            &["sh", "-c", "export API_KEY='a b'; run"],
            &["sh", "-c", "export API_KEY=***; run"],
        );
        check(
            &["sh", "-c", "mysql --password=pw -e 'select 1'"],
            &["sh", "-c", "mysql --password=*** -e 'select 1'"],
        );
        check(
            &["sh", "-c", "app --token abc --verbose"],
            &["sh", "-c", "app --token *** --verbose"],
        );
        check(
            &["bash", "-c", "psql 'host=h password=pw dbname=d'"],
            &["bash", "-c", "psql 'host=h password=*** dbname=d'"],
        );
        check(
            &["sh", "-c", "mysqldump -uroot -phunter2 db > x.sql"],
            &["sh", "-c", "mysqldump -uroot -p*** db > x.sql"],
        );
        check(
            &["sh", "-c", "cd /x && mysql -h db -p'my pw' app"],
            &["sh", "-c", "cd /x && mysql -h db -p*** app"],
        );
        check(
            &["sh", "-c", "mysql -p pw app"],
            &["sh", "-c", "mysql -p *** app"],
        );
        check(
            &["sh", "-c", "curl -fsS -u bob:pw https://x; echo done"],
            &["sh", "-c", "curl -fsS -u bob:*** https://x; echo done"],
        );
        kept(&["sh", "-c", "mysql -p -e 'select 1'"]);
        kept(&["sh", "-c", "mysql -P 3306 app; mkdir -p x"]);
        kept(&["sh", "-c", "curl -A 'a:b' https://x"]);
        kept(&["sh", "-c", "ls -la /tmp && echo ok"]);
    }

    #[test]
    fn headers() {
        check(
            &["curl", "-H", "Authorization: Bearer abc.def", "https://x"],
            &["curl", "-H", "Authorization: ***", "https://x"],
        );
        check(
            &["curl", "-H", "authorization:Basic dXNlcjpwYXNz"],
            &["curl", "-H", "authorization:***"],
        );
        check(
            &["wget", "--header=Authorization: token ghp_x", "u"],
            &["wget", "--header=Authorization: ***", "u"],
        );
        check(
            &[
                "sh",
                "-c",
                "curl -H 'Authorization: Bearer x y' -d @f https://x",
            ],
            &["sh", "-c", "curl -H 'Authorization: ***' -d @f https://x"],
        );
        for h in [
            "Cookie",
            "Proxy-Authorization",
            "X-Api-Key",
            "PRIVATE-TOKEN",
            "X-Auth-Token",
        ] {
            let arg = format!("{h}: abc");
            let want = format!("{h}: ***");
            check(&["curl", "-H", &arg], &["curl", "-H", &want]);
        }
        kept(&[
            "curl",
            "-H",
            "Content-Type: application/json",
            "-H",
            "Accept: */*",
        ]);
    }

    #[test]
    fn bearer() {
        check(&["app", "Bearer abc"], &["app", "Bearer ***"]);
        check(&["app", "x=bearer\tabc def"], &["app", "x=bearer\t*** def"]);
        kept(&["app", "bearer", "Bearer"]);
    }

    #[test]
    fn url_credentials() {
        check(
            &["/bin/echo", "https://bob:pw@example.com/x"],
            &["/bin/echo", "https://bob:***@example.com/x"],
        );
        check(
            &["psql", "postgres://u:p@ss@db:5432/app"],
            &["psql", "postgres://u:***@db:5432/app"],
        );
        check(
            &["redis-cli", "-u", "redis://:pw@host:6379"],
            &["redis-cli", "-u", "redis://:***@host:6379"],
        );
        check(
            &[
                "sh",
                "-c",
                "git clone https://x-access-token:ghs_a@github.com/o/r.git && make",
            ],
            &[
                "sh",
                "-c",
                "git clone https://x-access-token:***@github.com/o/r.git && make",
            ],
        );
        kept(&["curl", "https://example.com:8443/a@b", "ssh://git@host/x"]);
        kept(&[
            "curl",
            "http://host/?q=a:b@c",
            "https://user@host/",
            "http://u:@h/",
        ]);
    }

    #[test]
    fn url_query() {
        check(
            &["curl", "https://x/api?access_token=abc&page=2"],
            &["curl", "https://x/api?access_token=***&page=2"],
        );
        check(
            &["curl", "https://maps.example/x?key=AIza#top"],
            &["curl", "https://maps.example/x?key=***#top"],
        );
        check(
            &[
                "curl",
                "https://b.s3/o?X-Amz-Security-Token=t&X-Amz-Signature=s",
            ],
            &[
                "curl",
                "https://b.s3/o?X-Amz-Security-Token=***&X-Amz-Signature=***",
            ],
        );
        kept(&["curl", "https://x/?page=2&design=1&q=token"]);
    }

    #[test]
    fn json_fields() {
        check(
            &["curl", "-d", r#"{"user":"bob","password":"hun\"ter2"}"#],
            &["curl", "-d", r#"{"user":"bob","password":"***"}"#],
        );
        check(
            &["curl", "-d", r#"{"api_key": "k", "n": 1}"#],
            &["curl", "-d", r#"{"api_key": "***", "n": 1}"#],
        );
        kept(&["curl", "-d", r#"{"name":"x","token":""}"#]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept() {
        let r = defaults();
        let (got, found) = run(&r, &[b"app\xff", b"--password=se\xffcr\xfeet", b"caf\xe9"]);
        assert!(found);
        assert_eq!(got, [&b"app\xff"[..], b"--password=***", b"caf\xe9"]);
        let (got, _) = run(
            &r,
            &[
                b"sh",
                b"-c",
                b"\xff\xfe TOKEN=a\xffb \xfd; x --secret \xc3\x28 y",
            ],
        );
        assert_eq!(got[2], b"\xff\xfe TOKEN=*** \xfd; x --secret *** y");
        let (got, found) = run(&r, &[b"app", b"--token", b"\xff\xfe"]);
        assert!(found);
        assert_eq!(got[2], b"***");
        let (got, found) = run(&r, &[b"ls", b"\xff\xfe", b"caf\xe9"]);
        assert!(!found);
        assert_eq!(got, [&b"ls"[..], b"\xff\xfe", b"caf\xe9"]);
    }

    /// Everyday command lines with `=`, `:`, `@` and options: nothing hidden.
    #[test]
    fn common_commands_are_left_alone() {
        for argv in [
            &[
                "docker",
                "run",
                "-p",
                "8080:80",
                "-e",
                "PATH=/usr/bin:/bin",
                "nginx:1.25",
            ][..],
            &["scp", "-P", "2222", "f", "user@host:/tmp/"],
            &["git", "-c", "core.pager=less", "log", "--format=%H:%s"],
            &[
                "kubectl",
                "get",
                "pods",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            &["sh", "-c", "cd /srv && make -j8 all 2>&1 >build.log"],
            &[
                "curl",
                "-fsSL",
                "https://example.com/i.sh?v=2",
                "-o",
                "/tmp/i.sh",
            ],
            &["python3", "-c", "print('a: b', {'k': 1})"],
            &["rsync", "-avz", "-e", "ssh -p 22", "src/", "host:/dst/"],
            &["date", "+%H:%M:%S"],
            &["java", "-Xmx2g", "-Dfile.encoding=UTF-8", "-jar", "app.jar"],
            &["env", "LANG=C.UTF-8", "TZ=UTC", "sort", "-t:", "-k2"],
            &["journalctl", "-u", "nginx", "--since", "10:00"],
            &[
                "mysql",
                "-h",
                "db",
                "-u",
                "app",
                "-P",
                "3306",
                "-e",
                "show tables",
            ],
            &["gcc", "-Wl,-rpath,/opt/lib", "-o", "a", "a.c"],
            &["awk", "-F:", "{print $1}", "/etc/passwd"],
            &["grep", "-rn", "password", "--include=*.rs", "src/"],
            &["ssh", "-o", "StrictHostKeyChecking=no", "git@github.com"],
            &[
                "ffmpeg",
                "-i",
                "in.mp4",
                "-pass",
                "1",
                "-f",
                "null",
                "/dev/null",
            ],
        ] {
            if argv.contains(&"-pass") {
                // ffmpeg's -pass is openssl's too: its value goes, the rest stays.
                let mut want = argv.to_vec();
                want[4] = "***";
                check(argv, &want);
            } else {
                kept(argv);
            }
        }
    }

    #[test]
    fn several_secrets_in_one_argument() {
        check(
            &[
                "sh",
                "-c",
                "A_TOKEN=1 B_SECRET=2 curl https://u:p@h/?token=3",
            ],
            &[
                "sh",
                "-c",
                "A_TOKEN=*** B_SECRET=*** curl https://u:***@h/?token=***",
            ],
        );
    }

    #[test]
    fn already_masked_is_still_reported() {
        let mut v = vec![b"app".to_vec(), b"--password=***".to_vec()];
        assert!(defaults().redact_argv(&mut v));
    }

    #[test]
    fn custom_patterns() {
        let r = Redactor::new(&[r"card=\d+".to_string()], true).unwrap();
        check_with(
            &r,
            &["pay", "card=4111111111111111", "--password=x", "card=none"],
            &["pay", "***", "--password=***", "card=none"],
        );
        // Only the `secret` group.
        let r = Redactor::new(&[r"card=(?P<secret>\d+)".to_string()], false).unwrap();
        check_with(
            &r,
            &["pay", "card=4111 card=42", "--password=x"],
            &["pay", "card=*** card=***", "--password=x"],
        );
        // A secret group that did not take part in a match: nothing to hide.
        let r = Redactor::new(&[r"id=(?:(?P<secret>\d+)|none)".to_string()], false).unwrap();
        check_with(&r, &["a", "id=none", "id=7"], &["a", "id=none", "id=***"]);
        // Several, and byte-wise with (?-u).
        let r = Redactor::new(&[r"(?-u)k\xff.".to_string(), "zz".to_string()], false).unwrap();
        let (got, found) = run(&r, &[b"a", b"k\xff\xfe!", b"azzb"]);
        assert!(found);
        assert_eq!(got, [&b"a"[..], b"***!", b"a***b"]);
    }

    #[test]
    fn no_defaults_no_patterns_changes_nothing() {
        let r = Redactor::new(&[], false).unwrap();
        assert!(!r.is_active());
        check_with(
            &r,
            &[
                "mysql",
                "-phunter2",
                "--password",
                "x",
                "TOKEN=y",
                "https://u:p@h",
            ],
            &[
                "mysql",
                "-phunter2",
                "--password",
                "x",
                "TOKEN=y",
                "https://u:p@h",
            ],
        );
        assert!(defaults().is_active());
    }

    #[test]
    fn bad_patterns_are_one_clear_line() {
        let e = Redactor::new(&["ok".into(), "card=(\\d+".into()], true).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, RedactError::BadRegex { pattern, .. } if pattern == "card=(\\d+"),
            "{e:?}"
        );
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("--redact 'card=(\\d+' "), "{msg}");
        assert!(msg.contains("unclosed group"), "{msg}");
        let e = Redactor::new(&["x{2,1}".into()], false).unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e}");
        let e = Redactor::new(&["a*".into()], false).unwrap_err();
        assert_eq!(
            e,
            RedactError::MatchesEmpty {
                pattern: "a*".into()
            }
        );
        assert!(!e.to_string().contains('\n'));
    }

    /// The shortcuts ([`may_hold_default_secret`], [`may_be_secret_option`]) never
    /// skip an argument a pattern would match: random arguments made of the
    /// patterns' own words.
    #[test]
    fn shortcuts_skip_nothing_a_pattern_finds() {
        let r = defaults();
        let words: [&[u8]; 36] = [
            b"password",
            b"PASSWD",
            b"token",
            b"secret",
            b"api-key",
            b"auth",
            b"pass",
            b"bearer",
            b"Authorization",
            b"cookie",
            b"mysql",
            b"curl",
            b"-p",
            b"-u",
            b"--",
            b"-",
            b"-D",
            b"_",
            b".",
            b",",
            b"https",
            b"//",
            b"@",
            b"'",
            b"\"",
            b"?",
            b"&",
            b"key",
            b"sig",
            b"x",
            b"\xff",
            b"=",
            b":",
            b" ",
            b"\t",
            b"\x0b",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut gated, mut opts) = (0, 0);
        for _ in 0..50_000 {
            let mut arg = Vec::new();
            for _ in 0..1 + rand(8) {
                arg.extend_from_slice(words[rand(words.len())]);
            }
            if r.default_set.is_match(&arg) {
                assert!(
                    may_hold_default_secret(&arg),
                    "{:?}",
                    String::from_utf8_lossy(&arg)
                );
                gated += 1;
            }
            if r.option_alone.as_ref().unwrap().is_match(&arg) {
                assert!(
                    may_be_secret_option(&arg),
                    "{:?}",
                    String::from_utf8_lossy(&arg)
                );
                opts += 1;
            }
        }
        // The arguments did exercise the patterns.
        assert!(gated > 1000 && opts > 10, "{gated} {opts}");
    }

    /// The examples in docs/redaction.md: every table row with an argv before and
    /// after (JSON arrays) is what the defaults do.
    #[test]
    fn documented_examples_hold() {
        let doc = include_str!("../../docs/redaction.md");
        let r = defaults();
        let mut n = 0;
        for line in doc.lines() {
            let cells: Vec<&str> = line
                .split(" | ")
                .map(|c| c.trim_matches(|c: char| c == '|' || c.is_whitespace()))
                .collect();
            let json = |c: &str| -> Option<Vec<String>> {
                serde_json::from_str(c.strip_prefix('`')?.strip_suffix('`')?).ok()
            };
            let [rule, before, after, ..] = cells[..] else {
                continue;
            };
            let (Some(before), Some(after)) = (json(before), json(after)) else {
                continue;
            };
            let b: Vec<&str> = before.iter().map(String::as_str).collect();
            let a: Vec<&str> = after.iter().map(String::as_str).collect();
            // A row about `--redact 'REGEX'` uses that rule, with the defaults.
            match rule
                .strip_prefix("`--redact '")
                .and_then(|r| r.strip_suffix("'`"))
            {
                Some(custom) => check_with(&Redactor::new(&[custom.into()], true).unwrap(), &b, &a),
                None => check_with(&r, &b, &a),
            }
            n += 1;
        }
        assert!(n >= 20, "only {n} examples found in docs/redaction.md");
    }

    /// Rough cost per argv; run with
    /// `cargo test -p tracer --release --lib redact::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn cost() {
        let r = defaults();
        let cases: [(&str, Vec<&[u8]>); 3] = [
            (
                "compiler, no secret",
                vec![
                    b"/usr/bin/cc",
                    b"-O2",
                    b"-Wall",
                    b"-Iinclude",
                    b"-DNDEBUG",
                    b"-c",
                    b"src/model/apply.c",
                    b"-o",
                    b"build/apply.o",
                ],
            ),
            (
                "sh -c script, no secret",
                vec![
                    b"/bin/sh",
                    b"-c",
                    b"cd /srv/app && ./configure --prefix=/usr && make -j8 all 2>&1 | tee build.log",
                ],
            ),
            (
                "secrets",
                vec![b"mysql", b"-uroot", b"-phunter2", b"--password=x", b"TOKEN=y"],
            ),
        ];
        for (what, argv) in cases {
            let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
            let n = 100_000;
            let t = std::time::Instant::now();
            for _ in 0..n {
                let mut v = argv.clone();
                std::hint::black_box(r.redact_argv(&mut v));
            }
            let per = t.elapsed() / n;
            let t = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(argv.clone());
            }
            let clone = t.elapsed() / n;
            eprintln!("{what}: {per:?} per argv ({clone:?} of it cloning the argv)");
        }
    }
}

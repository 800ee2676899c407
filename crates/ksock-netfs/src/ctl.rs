//! The ctl grammar: what may be written to a `ctl` file (or a factory handle).
//!
//! A write is at most [`CTL_MAX`] bytes. It is split into words on white space (newlines
//! included), with quoting as in a shell:
//!
//! - `"double quotes"` keep white space; inside them `\"`, `\\`, `\$` and `` \` `` stand for
//!   the character, `\<newline>` is removed, `\xNN` is the byte `NN`, and any other backslash
//!   stays as it is;
//! - `'single quotes'` keep everything up to the next `'`;
//! - outside quotes, `\xNN` is the byte `NN` (the form in which addresses are printed),
//!   `\<newline>` is removed, and `\c` is `c` for any other byte.
//!
//! A lone, unquoted `&&` separates commands. Commands run left to right and stop at the first
//! failure; the write fails with that error and earlier commands keep their effect. A write
//! that cannot be split (an open quote, a trailing backslash, an empty command around `&&`,
//! nothing but white space) runs nothing and is `EINVAL`. An unknown command is `ENOENT`; a
//! wrong number of arguments, or an argument out of range, is `EINVAL`.

use core::fmt;
use ksock::{Errno, SOMAXCONN, Shutdown};

/// The longest ctl write, in bytes (longer writes are `E2BIG`).
pub const CTL_MAX: usize = 4096;

/// The backlog of `listen` without an argument.
pub const DEFAULT_BACKLOG: usize = 128;

/// A failure with the errno to return and a description for the `err` file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CtlError {
    /// The error number the write returns.
    pub errno: Errno,
    /// What happened, for the socket's `err` file.
    pub what: String,
}

impl CtlError {
    /// An error with a description.
    pub fn new(errno: Errno, what: impl Into<String>) -> CtlError {
        CtlError {
            errno,
            what: what.into(),
        }
    }
}

impl fmt::Display for CtlError {
    /// `ENAME: what happened`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.errno.name(), self.what)
    }
}

/// One ctl command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    /// `bind <addr>`: the address as the family will parse it (escapes already resolved).
    Bind(Vec<u8>),
    /// `listen [backlog]`.
    Listen(usize),
    /// `connect <addr>`.
    Connect(Vec<u8>),
    /// `shutdown rd|wr|rdwr`.
    Shutdown(Shutdown),
    /// `hangup`: close the socket now.
    Hangup,
    /// `nonblock on|off`: the socket's default for files opened later.
    Nonblock(bool),
    /// `headers on|off` (datagram sockets, Plan 9's `headers`): with headers on, each read
    /// of `data` starts with a line naming the sender and each write with a line naming
    /// the destination.
    Headers(bool),
}

/// A word and whether it was written bare (no quotes, no escapes): only a bare `&&`
/// separates commands.
struct Word {
    bytes: Vec<u8>,
    bare: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Reads `\xNN` at `input[i..]` (with `input[i] == b'x'`): the byte, if two hex digits follow.
fn hex_escape(input: &[u8], i: usize) -> Option<u8> {
    let hi = hex(*input.get(i + 1)?)?;
    let lo = hex(*input.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

fn words(input: &[u8]) -> Result<Vec<Word>, CtlError> {
    #[derive(PartialEq)]
    enum Mode {
        Plain,
        Double,
        Single,
    }
    let mut out = Vec::new();
    let mut cur: Option<Word> = None;
    let mut mode = Mode::Plain;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        i += 1;
        match mode {
            Mode::Plain => match b {
                _ if is_space(b) => {
                    if let Some(w) = cur.take() {
                        out.push(w);
                    }
                }
                b'"' | b'\'' => {
                    let w = cur.get_or_insert(Word {
                        bytes: Vec::new(),
                        bare: false,
                    });
                    w.bare = false;
                    mode = if b == b'"' {
                        Mode::Double
                    } else {
                        Mode::Single
                    };
                }
                b'\\' => {
                    let Some(&next) = input.get(i) else {
                        return Err(CtlError::new(Errno::EINVAL, "ctl: trailing backslash"));
                    };
                    if next == b'\n' {
                        i += 1;
                        continue;
                    }
                    let w = cur.get_or_insert(Word {
                        bytes: Vec::new(),
                        bare: false,
                    });
                    w.bare = false;
                    if next == b'x'
                        && let Some(v) = hex_escape(input, i)
                    {
                        w.bytes.push(v);
                        i += 3;
                    } else {
                        w.bytes.push(next);
                        i += 1;
                    }
                }
                _ => cur
                    .get_or_insert(Word {
                        bytes: Vec::new(),
                        bare: true,
                    })
                    .bytes
                    .push(b),
            },
            Mode::Double => {
                // A quote always starts a word, so this only names it.
                let w = cur.get_or_insert(Word {
                    bytes: Vec::new(),
                    bare: false,
                });
                match b {
                    b'"' => mode = Mode::Plain,
                    b'\\' => match input.get(i) {
                        Some(b'\n') => i += 1,
                        Some(&c @ (b'"' | b'\\' | b'$' | b'`')) => {
                            w.bytes.push(c);
                            i += 1;
                        }
                        Some(b'x') if hex_escape(input, i).is_some() => {
                            w.bytes.extend(hex_escape(input, i));
                            i += 3;
                        }
                        _ => w.bytes.push(b'\\'),
                    },
                    _ => w.bytes.push(b),
                }
            }
            Mode::Single => {
                // A quote always starts a word, so this only names it.
                let w = cur.get_or_insert(Word {
                    bytes: Vec::new(),
                    bare: false,
                });
                if b == b'\'' {
                    mode = Mode::Plain;
                } else {
                    w.bytes.push(b);
                }
            }
        }
    }
    match mode {
        Mode::Plain => {}
        Mode::Double => {
            return Err(CtlError::new(
                Errno::EINVAL,
                "ctl: unterminated double quote",
            ));
        }
        Mode::Single => {
            return Err(CtlError::new(
                Errno::EINVAL,
                "ctl: unterminated single quote",
            ));
        }
    }
    out.extend(cur);
    Ok(out)
}

/// Splits a ctl write into commands, each a list of words (`&&` removed). Checks the size
/// (`EINVAL` if empty, `E2BIG` past [`CTL_MAX`]) and the syntax, not the commands.
pub fn split(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, CtlError> {
    if input.is_empty() {
        return Err(CtlError::new(Errno::EINVAL, "ctl: empty write"));
    }
    if input.len() > CTL_MAX {
        return Err(CtlError::new(
            Errno::E2BIG,
            // Not the write's own size: a file face may see it in pieces (FUSE splits a
            // long write into requests of its own size).
            format!("ctl: a write is longer than the {CTL_MAX}-byte limit"),
        ));
    }
    let mut cmds = vec![Vec::new()];
    for w in words(input)? {
        if w.bare && w.bytes == b"&&" {
            cmds.push(Vec::new());
        } else if let Some(last) = cmds.last_mut() {
            last.push(w.bytes);
        }
    }
    if cmds.len() == 1 && cmds[0].is_empty() {
        return Err(CtlError::new(Errno::EINVAL, "ctl: no command"));
    }
    if cmds.iter().any(Vec::is_empty) {
        return Err(CtlError::new(
            Errno::EINVAL,
            "ctl: a command is missing before or after &&",
        ));
    }
    Ok(cmds)
}

/// Shows bytes the way the user would write them back (quotes, escapes).
pub fn show(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' | '\\' => {
                    s.push('\\');
                    s.push(c);
                }
                c if c.is_control() => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        s.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => s.push(c),
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s.push('"');
    s
}

fn arity(
    name: &str,
    args: &[Vec<u8>],
    min: usize,
    max: usize,
    usage: &str,
) -> Result<(), CtlError> {
    if args.len() < min || args.len() > max {
        return Err(CtlError::new(
            Errno::EINVAL,
            format!(
                "{name}: wrong number of arguments ({}); usage: {usage}",
                args.len()
            ),
        ));
    }
    Ok(())
}

fn parse_backlog(arg: &[u8]) -> Result<usize, CtlError> {
    let bad = || {
        CtlError::new(
            Errno::EINVAL,
            format!(
                "listen: backlog must be a positive number, got {}",
                show(arg)
            ),
        )
    };
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    // Past SOMAXCONN the value is clamped, as Linux does; so are numbers too big to hold.
    let n = arg.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add((d - b'0') as usize))
    });
    match n {
        Some(0) => Err(bad()),
        Some(n) => Ok(n.min(SOMAXCONN)),
        None => Ok(SOMAXCONN),
    }
}

/// Turns the words of one command into a [`Command`].
pub fn command(words: &[Vec<u8>]) -> Result<Command, CtlError> {
    let (name, args) = words
        .split_first()
        .ok_or_else(|| CtlError::new(Errno::EINVAL, "ctl: no command"))?;
    match name.as_slice() {
        b"bind" => {
            arity("bind", args, 1, 1, "bind <addr>")?;
            Ok(Command::Bind(args[0].clone()))
        }
        b"connect" => {
            arity("connect", args, 1, 1, "connect <addr>")?;
            Ok(Command::Connect(args[0].clone()))
        }
        b"listen" => {
            arity("listen", args, 0, 1, "listen [backlog]")?;
            match args.first() {
                None => Ok(Command::Listen(DEFAULT_BACKLOG)),
                Some(a) => parse_backlog(a).map(Command::Listen),
            }
        }
        b"shutdown" => {
            arity("shutdown", args, 1, 1, "shutdown rd|wr|rdwr")?;
            match args[0].as_slice() {
                b"rd" => Ok(Command::Shutdown(Shutdown::Read)),
                b"wr" => Ok(Command::Shutdown(Shutdown::Write)),
                b"rdwr" => Ok(Command::Shutdown(Shutdown::Both)),
                a => Err(CtlError::new(
                    Errno::EINVAL,
                    format!("shutdown: expected rd, wr or rdwr, got {}", show(a)),
                )),
            }
        }
        b"hangup" => {
            arity("hangup", args, 0, 0, "hangup")?;
            Ok(Command::Hangup)
        }
        b"nonblock" => {
            arity("nonblock", args, 1, 1, "nonblock on|off")?;
            match args[0].as_slice() {
                b"on" => Ok(Command::Nonblock(true)),
                b"off" => Ok(Command::Nonblock(false)),
                a => Err(CtlError::new(
                    Errno::EINVAL,
                    format!("nonblock: expected on or off, got {}", show(a)),
                )),
            }
        }
        b"headers" => {
            arity("headers", args, 1, 1, "headers on|off")?;
            match args[0].as_slice() {
                b"on" => Ok(Command::Headers(true)),
                b"off" => Ok(Command::Headers(false)),
                a => Err(CtlError::new(
                    Errno::EINVAL,
                    format!("headers: expected on or off, got {}", show(a)),
                )),
            }
        }
        other => Err(CtlError::new(
            Errno::ENOENT,
            format!("unknown command {}", show(other)),
        )),
    }
}

impl Command {
    /// The command as the user would write it (for error messages).
    pub fn describe(&self) -> String {
        match self {
            Command::Bind(a) => format!("bind {}", show(a)),
            Command::Connect(a) => format!("connect {}", show(a)),
            Command::Listen(n) => format!("listen {n}"),
            Command::Shutdown(Shutdown::Read) => "shutdown rd".into(),
            Command::Shutdown(Shutdown::Write) => "shutdown wr".into(),
            Command::Shutdown(Shutdown::Both) => "shutdown rdwr".into(),
            Command::Hangup => "hangup".into(),
            Command::Nonblock(on) => format!("nonblock {}", if *on { "on" } else { "off" }),
            Command::Headers(on) => format!("headers {}", if *on { "on" } else { "off" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_ok(s: &[u8]) -> Vec<Vec<Vec<u8>>> {
        split(s).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(s)))
    }

    fn words_of(s: &[u8]) -> Vec<Vec<u8>> {
        let c = split_ok(s);
        assert_eq!(c.len(), 1, "one command expected");
        c.into_iter().next().unwrap_or_default()
    }

    fn err(s: &[u8]) -> Errno {
        split(s).unwrap_err().errno
    }

    fn v(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn white_space_including_newlines_splits_words() {
        assert_eq!(words_of(b"bind dwm"), v(&["bind", "dwm"]));
        assert_eq!(words_of(b"  bind\t\tdwm \n"), v(&["bind", "dwm"]));
        assert_eq!(words_of(b"bind\ndwm\r\n"), v(&["bind", "dwm"]));
        assert_eq!(words_of(b"listen"), v(&["listen"]));
    }

    #[test]
    fn double_quotes_keep_spaces_and_take_shell_escapes() {
        assert_eq!(words_of(b"bind \"my server\""), v(&["bind", "my server"]));
        assert_eq!(words_of(b"bind \"a\\\"b\""), v(&["bind", "a\"b"]));
        assert_eq!(words_of(b"bind \"a\\\\b\""), v(&["bind", "a\\b"]));
        assert_eq!(
            words_of(b"bind \"a\\nb\""),
            v(&["bind", "a\\nb"]),
            "like sh"
        );
        assert_eq!(words_of(b"bind \"a\\\nb\""), v(&["bind", "ab"]));
        assert_eq!(words_of(b"bind \"a\\x20b\""), v(&["bind", "a b"]));
        assert_eq!(words_of(b"bind x\"y z\"w"), v(&["bind", "xy zw"]));
        assert_eq!(words_of(b"bind \"\""), vec![b"bind".to_vec(), vec![]]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(words_of(b"bind 'a \\x20\"b'"), v(&["bind", "a \\x20\"b"]));
    }

    #[test]
    fn backslash_outside_quotes() {
        assert_eq!(words_of(b"bind a\\ b"), v(&["bind", "a b"]));
        assert_eq!(
            words_of(b"bind a\\x00b"),
            vec![b"bind".to_vec(), b"a\0b".to_vec()]
        );
        assert_eq!(words_of(b"bind \\xff"), vec![b"bind".to_vec(), vec![0xff]]);
        assert_eq!(
            words_of(b"bind \\xzz"),
            v(&["bind", "xzz"]),
            "not hex: plain escape"
        );
        assert_eq!(words_of(b"bind a\\\nb"), v(&["bind", "ab"]));
        assert_eq!(words_of(b"bind \\\"q"), v(&["bind", "\"q"]));
    }

    #[test]
    fn printed_addresses_read_back() {
        // The core prints local names with \xNN escapes for exactly this purpose.
        for name in [
            &b"a b"[..],
            b"x\"y",
            b"tab\there",
            b"\xff\x00",
            b"back\\slash",
            b"it's",
        ] {
            let printed = ksock::SockAddr::local(name).unwrap().to_string();
            let input = format!("connect {printed}");
            assert_eq!(words_of(input.as_bytes())[1], name, "{printed}");
        }
    }

    #[test]
    fn chains_split_on_lone_unquoted_and_and() {
        assert_eq!(
            split_ok(b"bind dwm && listen"),
            vec![v(&["bind", "dwm"]), v(&["listen"])]
        );
        assert_eq!(
            split_ok(b"bind dwm\n&&\nlisten 4 && nonblock on"),
            vec![
                v(&["bind", "dwm"]),
                v(&["listen", "4"]),
                v(&["nonblock", "on"])
            ]
        );
        assert_eq!(split_ok(b"bind \"&&\""), vec![v(&["bind", "&&"])]);
        assert_eq!(split_ok(b"bind \\&&"), vec![v(&["bind", "&&"])]);
        assert_eq!(split_ok(b"bind a&&b"), vec![v(&["bind", "a&&b"])]);
    }

    #[test]
    fn malformed_writes_are_einval() {
        assert_eq!(err(b""), Errno::EINVAL);
        assert_eq!(err(b" \n\t"), Errno::EINVAL);
        assert_eq!(err(b"bind \"dwm"), Errno::EINVAL);
        assert_eq!(err(b"bind 'dwm"), Errno::EINVAL);
        assert_eq!(err(b"bind dwm\\"), Errno::EINVAL);
        assert_eq!(err(b"&& listen"), Errno::EINVAL);
        assert_eq!(err(b"bind x &&"), Errno::EINVAL);
        assert_eq!(err(b"bind x && && listen"), Errno::EINVAL);
        assert!(
            split(b"bind \"dwm")
                .unwrap_err()
                .to_string()
                .starts_with("EINVAL: ")
        );
    }

    #[test]
    fn size_limit() {
        let mut ok = b"bind ".to_vec();
        ok.resize(CTL_MAX, b'a');
        assert_eq!(split_ok(&ok)[0][1].len(), CTL_MAX - 5);
        ok.push(b'a');
        assert_eq!(err(&ok), Errno::E2BIG);
    }

    fn cmd(s: &str) -> Result<Command, Errno> {
        let c = split(s.as_bytes()).map_err(|e| e.errno)?;
        command(&c[0]).map_err(|e| e.errno)
    }

    #[test]
    fn commands() {
        assert_eq!(cmd("bind dwm"), Ok(Command::Bind(b"dwm".to_vec())));
        assert_eq!(cmd("connect dwm"), Ok(Command::Connect(b"dwm".to_vec())));
        assert_eq!(cmd("listen"), Ok(Command::Listen(DEFAULT_BACKLOG)));
        assert_eq!(cmd("listen 5"), Ok(Command::Listen(5)));
        assert_eq!(cmd("listen 100000"), Ok(Command::Listen(SOMAXCONN)));
        assert_eq!(
            cmd("listen 999999999999999999999999"),
            Ok(Command::Listen(SOMAXCONN))
        );
        assert_eq!(cmd("shutdown rd"), Ok(Command::Shutdown(Shutdown::Read)));
        assert_eq!(cmd("shutdown wr"), Ok(Command::Shutdown(Shutdown::Write)));
        assert_eq!(cmd("shutdown rdwr"), Ok(Command::Shutdown(Shutdown::Both)));
        assert_eq!(cmd("hangup"), Ok(Command::Hangup));
        assert_eq!(cmd("nonblock on"), Ok(Command::Nonblock(true)));
        assert_eq!(cmd("nonblock off"), Ok(Command::Nonblock(false)));
    }

    #[test]
    fn command_errors() {
        assert_eq!(cmd("frob"), Err(Errno::ENOENT));
        assert_eq!(cmd("BIND dwm"), Err(Errno::ENOENT));
        assert_eq!(cmd("bind"), Err(Errno::EINVAL));
        assert_eq!(cmd("bind a b"), Err(Errno::EINVAL));
        assert_eq!(cmd("connect"), Err(Errno::EINVAL));
        assert_eq!(cmd("listen 0"), Err(Errno::EINVAL));
        assert_eq!(cmd("listen -1"), Err(Errno::EINVAL));
        assert_eq!(cmd("listen x"), Err(Errno::EINVAL));
        assert_eq!(cmd("listen 1 2"), Err(Errno::EINVAL));
        assert_eq!(cmd("shutdown"), Err(Errno::EINVAL));
        assert_eq!(cmd("shutdown both"), Err(Errno::EINVAL));
        assert_eq!(cmd("hangup now"), Err(Errno::EINVAL));
        assert_eq!(cmd("nonblock"), Err(Errno::EINVAL));
        assert_eq!(cmd("nonblock yes"), Err(Errno::EINVAL));
        let e = command(&split(b"frob x").unwrap()[0]).unwrap_err();
        assert_eq!(e.to_string(), "ENOENT: unknown command \"frob\"");
    }

    #[test]
    fn describe_round_trips_through_the_grammar() {
        for c in [
            Command::Bind(b"a \"b\"\\\x01".to_vec()),
            Command::Connect(b"dwm".to_vec()),
            Command::Listen(7),
            Command::Shutdown(Shutdown::Both),
            Command::Hangup,
            Command::Nonblock(true),
        ] {
            let text = c.describe();
            assert_eq!(
                command(&split(text.as_bytes()).unwrap()[0]),
                Ok(c),
                "{text}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(cmds) = split(&input) {
                for c in cmds {
                    prop_assert!(!c.is_empty());
                    let _ = command(&c);
                }
            }
        }

        #[test]
        fn quoted_words_survive(
            name in proptest::collection::vec(any::<u8>(), 1..40)
        ) {
            let text = format!("bind {}", show(&name));
            let cmds = split(text.as_bytes()).unwrap();
            prop_assert_eq!(command(&cmds[0]).unwrap(), Command::Bind(name));
        }
    }
}

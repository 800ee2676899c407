//! Properties of the ctl grammar, for any bytes a user may write to a `ctl` file: shared by
//! the stable property tests (`tests/prop_ctl.rs`) and the fuzz target `ctl` (`fuzz/`).

use ksock::{Errno, SOMAXCONN, SockAddr};
use ksock_netfs::ctl::{CTL_MAX, Command, CtlError, command, show, split};

const NAMES: [&[u8]; 7] = [
    b"bind",
    b"connect",
    b"listen",
    b"shutdown",
    b"hangup",
    b"nonblock",
    b"headers",
];

/// A failure is one of the grammar's errnos, with a message, printed `ENAME: message`.
fn check_error(e: &CtlError, allowed: &[Errno]) {
    assert!(allowed.contains(&e.errno), "unexpected errno: {e}");
    assert!(!e.what.is_empty(), "no message for {:?}", e.errno);
    assert_eq!(e.to_string(), format!("{}: {}", e.errno.name(), e.what));
}

/// Writes `words` back in the grammar: each word quoted by `show`, separated by spaces.
fn unsplit(cmds: &[Vec<Vec<u8>>]) -> String {
    cmds.iter()
        .map(|c| c.iter().map(|w| show(w)).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// `describe` of a command parses back to the same command (when it fits in one write).
fn check_describe(c: &Command) {
    let text = c.describe();
    match split(text.as_bytes()) {
        Ok(cmds) => {
            assert!(text.len() <= CTL_MAX);
            assert_eq!(cmds.len(), 1, "{text:?} is one command");
            assert_eq!(command(&cmds[0]).as_ref(), Ok(c), "{text:?}");
        }
        Err(e) => {
            assert!(text.len() > CTL_MAX, "{text:?} does not split: {e}");
            assert_eq!(e.errno, Errno::E2BIG);
        }
    }
}

/// Every property of the grammar, for one write.
pub fn check_ctl(input: &[u8]) {
    match split(input) {
        Err(e) => {
            check_error(&e, &[Errno::EINVAL, Errno::E2BIG]);
            assert_eq!(e.errno == Errno::E2BIG, input.len() > CTL_MAX, "{e}");
        }
        Ok(cmds) => {
            assert!(!input.is_empty() && input.len() <= CTL_MAX);
            assert!(!cmds.is_empty());
            let mut parsed = Vec::new();
            for c in &cmds {
                assert!(!c.is_empty(), "an empty command in {cmds:?}");
                match command(c) {
                    Ok(cmd) => {
                        check_describe(&cmd);
                        parsed.push(cmd);
                    }
                    Err(e) => {
                        check_error(&e, &[Errno::EINVAL, Errno::ENOENT]);
                        // ENOENT exactly for an unknown command name.
                        let known = NAMES.contains(&c[0].as_slice());
                        assert_eq!(e.errno == Errno::ENOENT, !known, "{e}");
                    }
                }
            }
            // The words, quoted back, split into the same words.
            let text = unsplit(&cmds);
            if text.len() <= CTL_MAX {
                assert_eq!(split(text.as_bytes()).as_ref(), Ok(&cmds), "{text:?}");
            }
            // The commands, described and chained, parse back to the same commands.
            if parsed.len() == cmds.len() {
                let text = parsed
                    .iter()
                    .map(Command::describe)
                    .collect::<Vec<_>>()
                    .join(" && ");
                if text.len() <= CTL_MAX {
                    let again: Vec<_> = split(text.as_bytes())
                        .expect("described commands split")
                        .iter()
                        .map(|c| command(c).expect("described commands parse"))
                        .collect();
                    assert_eq!(again, parsed, "{text:?}");
                }
            }
        }
    }
    check_commands_of(input);
}

/// Commands built from the bytes (not parsed from them): `describe` round-trips, and an
/// address printed the way the core prints local names reads back through the grammar.
pub fn check_commands_of(input: &[u8]) {
    check_describe(&Command::Bind(input.to_vec()));
    check_describe(&Command::Connect(input.to_vec()));
    let n = input
        .iter()
        .fold(0usize, |n, &b| (n << 8 | b as usize) % SOMAXCONN);
    check_describe(&Command::Listen(n + 1));
    if let Ok(a) = SockAddr::local(input) {
        let text = format!("connect {a}");
        if text.len() <= CTL_MAX {
            let cmds = split(text.as_bytes()).expect("a printed name splits");
            assert_eq!(
                command(&cmds[0]),
                Ok(Command::Connect(input.to_vec())),
                "{text:?}"
            );
        }
    }
}

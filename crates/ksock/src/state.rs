//! The socket state machine of SPEC section 2, as a constant table.
//!
//! Every state change of a socket goes through [`StateCell`]: [`start`](StateCell::start)
//! records a target (refusing transitions the table does not allow),
//! [`cont`](StateCell::cont) commits it and aims at the next without the lock being released,
//! and [`end`](StateCell::end) commits on success or rolls back to the last committed state on
//! failure. The cell lives inside the socket's lock, so "lock held" is guaranteed by `&mut`.

use crate::errno::{Errno, Result};
use core::fmt;

/// The states of a socket.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    /// Created, nothing else done.
    New = 0,
    /// Bound to a local address.
    Bound = 1,
    /// Accepting connections.
    Listening = 2,
    /// A connection is being set up.
    Connecting = 3,
    /// Connected to a peer (or, for datagrams, a default peer is set).
    Connected = 4,
    /// One direction or both shut down, or the peer went away.
    Closing = 5,
    /// Finished: no further transition.
    Closed = 6,
}

impl State {
    /// All states, in table order.
    pub const ALL: [State; 7] = [
        State::New,
        State::Bound,
        State::Listening,
        State::Connecting,
        State::Connected,
        State::Closing,
        State::Closed,
    ];

    /// The lower-case name used by `status` files and `ksock ss`.
    pub const fn name(self) -> &'static str {
        match self {
            State::New => "new",
            State::Bound => "bound",
            State::Listening => "listening",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Closing => "closing",
            State::Closed => "closed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const fn bit(s: State) -> u8 {
    1 << s as u8
}

/// The allowed transitions: `TRANSITIONS[from]` is a bit set of the states `from` may move to.
///
/// | from | to |
/// |---|---|
/// | New | Bound, Connecting, Closed |
/// | Bound | Listening, Connecting, Connected, Closed |
/// | Listening | Connected, Closed |
/// | Connecting | Connected, Closed |
/// | Connected | Closing, Closed |
/// | Closing | Closed |
/// | Closed | — |
pub const TRANSITIONS: [u8; 7] = [
    bit(State::Bound) | bit(State::Connecting) | bit(State::Closed),
    bit(State::Listening) | bit(State::Connecting) | bit(State::Connected) | bit(State::Closed),
    bit(State::Connected) | bit(State::Closed),
    bit(State::Connected) | bit(State::Closed),
    bit(State::Closing) | bit(State::Closed),
    bit(State::Closed),
    0,
];

/// Whether the table allows `from -> to` (a move to the same state never is).
pub const fn can_transition(from: State, to: State) -> bool {
    TRANSITIONS[from as usize] & bit(to) != 0
}

/// A socket's committed state and the target of the transition under way, if any.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StateCell {
    current: State,
    pending: Option<State>,
}

impl Default for StateCell {
    fn default() -> Self {
        StateCell::new(State::New)
    }
}

impl StateCell {
    /// A cell in `state` with no transition under way.
    pub const fn new(state: State) -> StateCell {
        StateCell {
            current: state,
            pending: None,
        }
    }

    /// The last committed state.
    pub const fn current(&self) -> State {
        self.current
    }

    /// The target of the transition under way.
    pub const fn pending(&self) -> Option<State> {
        self.pending
    }

    /// Starts a transition to `to`. A transition the table does not allow, or one started while
    /// another is under way, is `EINVAL` and changes nothing.
    pub fn start(&mut self, to: State) -> Result<()> {
        if self.pending.is_some() || !can_transition(self.current, to) {
            return Err(Errno::EINVAL);
        }
        self.pending = Some(to);
        Ok(())
    }

    /// Commits the pending state and starts a transition from it to `to`.
    ///
    /// If `pending -> to` is not in the table this is `EINVAL`, and the cell keeps its pending
    /// target (so a later [`end`](Self::end) still commits or rolls back the first step).
    pub fn cont(&mut self, to: State) -> Result<()> {
        let Some(mid) = self.pending else {
            return Err(Errno::EINVAL);
        };
        if !can_transition(mid, to) {
            return Err(Errno::EINVAL);
        }
        self.current = mid;
        self.pending = Some(to);
        Ok(())
    }

    /// Ends the transition under way: commits its target if `result` is `Ok`, otherwise rolls
    /// back to the last committed state. Returns `result` unchanged.
    pub fn end<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Some(to) = self.pending.take()
            && result.is_ok()
        {
            self.current = to;
        }
        result
    }

    /// Starts and ends a one-step transition whose work has already succeeded.
    pub fn go(&mut self, to: State) -> Result<()> {
        self.start(to)?;
        self.end(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    /// The table of SPEC section 2, written out as (from, to) pairs.
    const SPEC: &[(State, State)] = &[
        (New, Bound),
        (New, Connecting),
        (New, Closed),
        (Bound, Listening),
        (Bound, Connecting),
        (Bound, Connected),
        (Bound, Closed),
        (Listening, Connected),
        (Listening, Closed),
        (Connecting, Connected),
        (Connecting, Closed),
        (Connected, Closing),
        (Connected, Closed),
        (Closing, Closed),
    ];

    #[test]
    fn table_is_exactly_the_spec() {
        for from in State::ALL {
            for to in State::ALL {
                assert_eq!(
                    can_transition(from, to),
                    SPEC.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn same_state_and_from_closed_are_refused() {
        for s in State::ALL {
            assert!(!can_transition(s, s), "{s} -> {s}");
            assert!(!can_transition(Closed, s));
        }
    }

    #[test]
    fn every_state_can_reach_closed_except_closed() {
        for s in State::ALL {
            assert_eq!(can_transition(s, Closed), s != Closed);
        }
    }

    #[test]
    fn start_refuses_and_changes_nothing() {
        let mut c = StateCell::new(New);
        assert_eq!(c.start(Listening), Err(Errno::EINVAL));
        assert_eq!(c, StateCell::new(New));
        assert_eq!(c.start(New), Err(Errno::EINVAL));
        assert_eq!(c, StateCell::new(New));
    }

    #[test]
    fn end_commits_on_success_and_rolls_back_on_failure() {
        let mut c = StateCell::new(New);
        c.start(Bound).unwrap();
        assert_eq!(c.pending(), Some(Bound));
        assert_eq!(c.current(), New);
        assert_eq!(
            c.end(Err::<(), _>(Errno::EADDRINUSE)),
            Err(Errno::EADDRINUSE)
        );
        assert_eq!(c, StateCell::new(New));
        c.start(Bound).unwrap();
        assert_eq!(c.end(Ok(7)), Ok(7));
        assert_eq!(c, StateCell::new(Bound));
    }

    #[test]
    fn accepted_socket_path_new_connecting_connected_with_one_continue() {
        let mut c = StateCell::new(New);
        c.start(Connecting).unwrap();
        c.cont(Connected).unwrap();
        assert_eq!(c.current(), Connecting);
        c.end(Ok(())).unwrap();
        assert_eq!(c.current(), Connected);
    }

    #[test]
    fn rollback_after_continue_keeps_the_committed_middle() {
        let mut c = StateCell::new(New);
        c.start(Connecting).unwrap();
        c.cont(Connected).unwrap();
        let _ = c.end(Err::<(), _>(Errno::ECONNREFUSED));
        assert_eq!(c, StateCell::new(Connecting));
    }

    #[test]
    fn continue_refuses_bad_step_and_keeps_pending() {
        let mut c = StateCell::new(New);
        assert_eq!(c.cont(Bound), Err(Errno::EINVAL), "continue without start");
        c.start(Bound).unwrap();
        assert_eq!(c.cont(Closing), Err(Errno::EINVAL));
        assert_eq!(c.pending(), Some(Bound));
        assert_eq!(c.current(), New);
        c.end(Ok(())).unwrap();
        assert_eq!(c.current(), Bound);
    }

    #[test]
    fn no_second_start_while_pending() {
        let mut c = StateCell::new(New);
        c.start(Bound).unwrap();
        assert_eq!(c.start(Connecting), Err(Errno::EINVAL));
        assert_eq!(c.pending(), Some(Bound));
    }

    #[test]
    fn every_path_from_new_ends_closed() {
        // Walk every allowed path; each must reach Closed in at most 4 steps.
        fn walk(s: State, depth: usize) {
            if s == Closed {
                return;
            }
            assert!(depth < 6, "path too long at {s}");
            for to in State::ALL {
                if can_transition(s, to) {
                    let mut c = StateCell::new(s);
                    c.go(to).unwrap();
                    assert_eq!(c.current(), to);
                    walk(to, depth + 1);
                }
            }
        }
        walk(New, 0);
    }
}

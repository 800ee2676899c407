//! The socket state machine of SPEC section 2, as constant tables: [`TRANSITIONS`] (which
//! state may follow which) and [`OPS`] (which operation is allowed in which state, and the
//! error otherwise, from SPEC sections 2 and 3).
//!
//! Every state change of a socket goes through [`StateCell`]: [`start`](StateCell::start)
//! records a target (refusing transitions the table does not allow),
//! [`cont`](StateCell::cont) commits it and aims at the next without the lock being released,
//! and [`end`](StateCell::end) commits on success or rolls back to the last committed state on
//! failure. The cell lives inside the socket's lock, so "lock held" is guaranteed by `&mut`.
//! [`apply`](StateCell::apply) runs an operation by [`OPS`]: refused with its error, or its
//! work done inside the table's transition.

use crate::errno::{Errno, Result};
use Rule::{Go, Refuse, Stay, Via};
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

/// The operations whose admission depends only on the socket's state (SPEC sections 2 and 3;
/// Linux `net/socket.c` and `af_unix.c` where SPEC is silent).
///
/// The type rules come first and are the callers' (`listen` and `accept` on a datagram
/// socket are `EOPNOTSUPP` in any state); so do the rules that depend on more than the state
/// (a connect call reporting the outcome of a connect it left going on).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum Op {
    /// `bind`.
    Bind = 0,
    /// `listen` (connection types).
    Listen = 1,
    /// `connect` on a connection type (stream, seqpacket).
    Connect = 2,
    /// `connect` on a datagram socket: sets or changes the default peer.
    ConnectDgram = 3,
    /// `accept` (connection types).
    Accept = 4,
    /// `shutdown`.
    Shutdown = 5,
    /// `FIONREAD`.
    Nread = 6,
}

impl Op {
    /// All operations, in table order.
    pub const ALL: [Op; 7] = [
        Op::Bind,
        Op::Listen,
        Op::Connect,
        Op::ConnectDgram,
        Op::Accept,
        Op::Shutdown,
        Op::Nread,
    ];
}

/// What [`OPS`] says about an operation in a state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rule {
    /// Refused with this error; nothing changes.
    Refuse(Errno),
    /// Allowed; the state stays as it is.
    Stay,
    /// Allowed as a transition to this state: started before the protocol's work, committed
    /// if it succeeds, rolled back if it fails.
    Go(State),
    /// Allowed as two steps with one continue (`New -> Connecting -> Connected`).
    Via(State, State),
}

const EINVAL: Rule = Refuse(Errno::EINVAL);

/// Which operation in which state: `OPS[op][state]`, states in [`State::ALL`] order.
///
/// | op | New | Bound | Listening | Connecting | Connected | Closing | Closed |
/// |---|---|---|---|---|---|---|---|
/// | bind | → Bound | EINVAL | EINVAL | EINVAL | EINVAL | EINVAL | EINVAL |
/// | listen | EINVAL | → Listening | stay (backlog) | EINVAL | EINVAL | EINVAL | EINVAL |
/// | connect | → Connecting | → Connecting | EINVAL | EALREADY | EISCONN | EISCONN | EINVAL |
/// | connect (dgram) | → Connecting → Connected | → Connected | EINVAL | EINVAL | stay | stay | EINVAL |
/// | accept | EINVAL | EINVAL | stay | EINVAL | EINVAL | EINVAL | EINVAL |
/// | shutdown | ENOTCONN | ENOTCONN | ENOTCONN | ENOTCONN | → Closing | stay | ENOTCONN |
/// | FIONREAD | stay | stay | EINVAL | stay | stay | stay | stay |
///
/// Every transition named here is in [`TRANSITIONS`] (tested).
pub const OPS: [[Rule; 7]; 7] = [
    // bind: New -> Bound; already bound (or anything else): EINVAL.
    [
        Go(State::Bound),
        EINVAL,
        EINVAL,
        EINVAL,
        EINVAL,
        EINVAL,
        EINVAL,
    ],
    // listen: Bound -> Listening; again on a listener updates the backlog; not bound: EINVAL.
    [
        EINVAL,
        Go(State::Listening),
        Stay,
        EINVAL,
        EINVAL,
        EINVAL,
        EINVAL,
    ],
    // connect (stream, seqpacket).
    [
        Go(State::Connecting),
        Go(State::Connecting),
        EINVAL,
        Refuse(Errno::EALREADY),
        Refuse(Errno::EISCONN),
        Refuse(Errno::EISCONN),
        EINVAL,
    ],
    // connect (dgram): sets the default peer, changes it when connected.
    [
        Via(State::Connecting, State::Connected),
        Go(State::Connected),
        EINVAL,
        EINVAL,
        Stay,
        Stay,
        EINVAL,
    ],
    // accept: on a listener only.
    [EINVAL, EINVAL, Stay, EINVAL, EINVAL, EINVAL, EINVAL],
    // shutdown: Connected -> Closing; again while closing; not connected: ENOTCONN.
    [
        Refuse(Errno::ENOTCONN),
        Refuse(Errno::ENOTCONN),
        Refuse(Errno::ENOTCONN),
        Refuse(Errno::ENOTCONN),
        Go(State::Closing),
        Stay,
        Refuse(Errno::ENOTCONN),
    ],
    // FIONREAD: a listener has no bytes to give (Linux: EINVAL).
    [Stay, Stay, EINVAL, Stay, Stay, Stay, Stay],
];

/// The rule for `op` in `state`.
pub const fn rule(op: Op, state: State) -> Rule {
    OPS[op as usize][state as usize]
}

/// Why [`OPS`] refuses `op` in `state`, in words for a person (the file face's `err`
/// file); `None` where the table allows it.
pub const fn refusal(op: Op, state: State) -> Option<&'static str> {
    use State::*;
    if !matches!(rule(op, state), Refuse(_)) {
        return None;
    }
    Some(match (op, state) {
        (_, Closed) => "the socket is closed",
        (Op::Bind, Bound | Listening) => "the socket is already bound",
        (Op::Bind | Op::Listen | Op::ConnectDgram, Connecting) => "a connect is in progress",
        (Op::Bind | Op::Listen, Connected | Closing) => "the socket is connected",
        (Op::Listen, _) => "the socket is not bound",
        (Op::Connect | Op::ConnectDgram, Listening) => "a listening socket cannot connect",
        (Op::Connect, Connecting) => "a connect is already in progress",
        (Op::Connect, _) => "the socket is already connected",
        (Op::Accept, _) => "the socket is not listening",
        (Op::Shutdown, _) => "the socket is not connected",
        (Op::Nread, _) => "a listening socket has no bytes to read",
        _ => "the socket's state does not allow it",
    })
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

    /// Starts what [`OPS`] says `op` does in the committed state: refuses it with the
    /// table's error, or starts the table's transition (the first step of a
    /// [`Rule::Via`]); returns the rule. The caller does the work and [`end`](Self::end)s.
    pub fn start_op(&mut self, op: Op) -> Result<Rule> {
        let r = rule(op, self.current);
        match r {
            Refuse(e) => return Err(e),
            Stay => {}
            Go(to) | Via(to, _) => self.start(to)?,
        }
        Ok(r)
    }

    /// Runs `op` by [`OPS`]: refused with the table's error, or `work` done inside the
    /// table's transition (committed if `work` succeeds, rolled back if it fails; a
    /// [`Rule::Via`] continues to its second state after the work).
    pub fn apply<T>(&mut self, op: Op, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let r = self.start_op(op)?;
        match r {
            Stay => work(),
            Via(_, to) => {
                let out = work().and_then(|v| self.cont(to).map(|_| v));
                self.end(out)
            }
            _ => {
                let out = work();
                self.end(out)
            }
        }
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
    fn every_refusal_has_a_reason_of_its_own() {
        for op in Op::ALL {
            for st in State::ALL {
                let why = refusal(op, st);
                match rule(op, st) {
                    Refuse(_) => assert!(
                        why.is_some_and(|w| w != "the socket's state does not allow it"),
                        "{op:?} in {st}"
                    ),
                    _ => assert_eq!(why, None, "{op:?} in {st}"),
                }
            }
        }
        assert_eq!(
            refusal(Op::Connect, Connected),
            Some("the socket is already connected")
        );
        assert_eq!(
            refusal(Op::Connect, Connecting),
            Some("a connect is already in progress")
        );
        assert_eq!(refusal(Op::Listen, New), Some("the socket is not bound"));
        assert_eq!(
            refusal(Op::Bind, Bound),
            Some("the socket is already bound")
        );
    }

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
    /// The rules of one operation in every state, in [`State::ALL`] order.
    fn row(op: Op) -> [Rule; 7] {
        State::ALL.map(|s| rule(op, s))
    }

    const EINVAL: Rule = Refuse(Errno::EINVAL);

    #[test]
    fn every_transition_in_the_operation_table_is_allowed() {
        for op in Op::ALL {
            for s in State::ALL {
                match rule(op, s) {
                    Go(to) => assert!(can_transition(s, to), "{op:?} in {s}: -> {to}"),
                    Via(mid, to) => {
                        assert!(can_transition(s, mid), "{op:?} in {s}: -> {mid}");
                        assert!(can_transition(mid, to), "{op:?} in {s}: {mid} -> {to}");
                    }
                    Stay | Refuse(_) => {}
                }
            }
        }
    }

    /// SPEC 3: "`bind name`: New -> Bound. [...] Already bound: `EINVAL`."
    #[test]
    fn bind_only_when_new() {
        assert_eq!(
            row(Op::Bind),
            [Go(Bound), EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL]
        );
    }

    /// SPEC 3: "`listen [backlog]`: Bound -> Listening. [...] Not bound: `EINVAL`. [...]
    /// Calling listen again on a listener updates the backlog." A connected socket cannot
    /// listen (SPEC 2 has no `Connected -> Listening`; Linux: `EINVAL`).
    #[test]
    fn listen_when_bound_or_again_on_a_listener() {
        assert_eq!(
            row(Op::Listen),
            [EINVAL, Go(Listening), Stay, EINVAL, EINVAL, EINVAL, EINVAL]
        );
    }

    /// SPEC 3: "`connect name`: [...] already connected: `EISCONN`; a listener: `EINVAL`."
    /// SPEC 5: "again while connecting `EALREADY`". SPEC 2: `New` and `Bound` go to
    /// `Connecting`; `Closed` goes nowhere.
    #[test]
    fn connect_from_new_or_bound() {
        assert_eq!(
            row(Op::Connect),
            [
                Go(Connecting),
                Go(Connecting),
                EINVAL,
                Refuse(Errno::EALREADY),
                Refuse(Errno::EISCONN),
                Refuse(Errno::EISCONN),
                EINVAL,
            ]
        );
    }

    /// SPEC 3: "dgram: `connect` sets the default peer" (and, as on Linux, changes it once
    /// set). SPEC 2: `Bound -> Connected` directly; from `New` through `Connecting`.
    #[test]
    fn dgram_connect_sets_or_changes_the_peer() {
        assert_eq!(
            row(Op::ConnectDgram),
            [
                Via(Connecting, Connected),
                Go(Connected),
                EINVAL,
                EINVAL,
                Stay,
                Stay,
                EINVAL,
            ]
        );
    }

    /// SPEC 3: "`accept`: on a listener only (`EINVAL` otherwise)."
    #[test]
    fn accept_on_a_listener_only() {
        assert_eq!(
            row(Op::Accept),
            [EINVAL, EINVAL, Stay, EINVAL, EINVAL, EINVAL, EINVAL]
        );
    }

    /// SPEC 2: "`shutdown` or the peer's close moves `Connected -> Closing`". SPEC 3: "Not
    /// connected: `ENOTCONN`." A second shutdown while closing shuts the other direction.
    #[test]
    fn shutdown_when_connected_or_closing() {
        let no = Refuse(Errno::ENOTCONN);
        assert_eq!(row(Op::Shutdown), [no, no, no, no, Go(Closing), Stay, no]);
    }

    /// SPEC 5: "`FIONREAD` gives unread bytes"; a listener has none to give (Linux:
    /// `EINVAL`).
    #[test]
    fn nread_anywhere_but_on_a_listener() {
        assert_eq!(row(Op::Nread), [Stay, Stay, EINVAL, Stay, Stay, Stay, Stay]);
    }

    #[test]
    fn apply_refuses_without_running_the_work_and_rolls_back_on_failure() {
        let mut c = StateCell::new(Listening);
        let mut ran = false;
        assert_eq!(
            c.apply(Op::Bind, || {
                ran = true;
                Ok(())
            }),
            Err(Errno::EINVAL)
        );
        assert!(!ran);
        assert_eq!(c, StateCell::new(Listening));
        let mut c = StateCell::new(New);
        assert_eq!(
            c.apply(Op::Bind, || Err::<(), _>(Errno::EADDRINUSE)),
            Err(Errno::EADDRINUSE)
        );
        assert_eq!(c, StateCell::new(New));
        assert_eq!(c.apply(Op::Bind, || Ok(3)), Ok(3));
        assert_eq!(c, StateCell::new(Bound));
    }

    #[test]
    fn apply_via_commits_both_steps_or_keeps_the_middle() {
        let mut c = StateCell::new(New);
        assert_eq!(c.apply(Op::ConnectDgram, || Ok(())), Ok(()));
        assert_eq!(c, StateCell::new(Connected));
        let mut c = StateCell::new(New);
        let _ = c.apply(Op::ConnectDgram, || Err::<(), _>(Errno::ECONNREFUSED));
        assert_eq!(c, StateCell::new(New), "the work failed: nothing committed");
        let mut c = StateCell::new(Connected);
        assert_eq!(c.apply(Op::ConnectDgram, || Ok(())), Ok(()));
        assert_eq!(c, StateCell::new(Connected), "stay");
    }

    #[test]
    fn start_op_starts_the_first_step() {
        let mut c = StateCell::new(Bound);
        assert_eq!(c.start_op(Op::Connect), Ok(Go(Connecting)));
        assert_eq!(c.pending(), Some(Connecting));
        let mut c = StateCell::new(Connecting);
        assert_eq!(c.start_op(Op::Connect), Err(Errno::EALREADY));
        assert_eq!(c, StateCell::new(Connecting));
    }
}

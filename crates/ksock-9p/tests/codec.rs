//! The 9P codec: every message round-trips, and every wrong length, type or string is an
//! error, never a panic.

use bytes::Bytes;
use ksock_9p::proto::{self, DecodeError, Fcall, MAXWELEM, Qid, Stat};
use proptest::prelude::*;

fn qid() -> impl Strategy<Value = Qid> {
    (any::<u8>(), any::<u32>(), any::<u64>()).prop_map(|(ty, version, path)| Qid {
        ty,
        version,
        path,
    })
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9:._ é]{0,20}"
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<u16>(), any::<u32>(), qid(), any::<u32>()),
        (any::<u32>(), any::<u32>(), any::<u64>()),
        (name(), name(), name(), name()),
    )
        .prop_map(
            |((ty, dev, qid, mode), (atime, mtime, length), (name, uid, gid, muid))| Stat {
                ty,
                dev,
                qid,
                mode,
                atime,
                mtime,
                length,
                name,
                uid,
                gid,
                muid,
            },
        )
}

fn data() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from)
}

fn fcall() -> impl Strategy<Value = Fcall> {
    prop_oneof![
        (any::<u32>(), name()).prop_map(|(msize, version)| Fcall::Tversion { msize, version }),
        (any::<u32>(), name()).prop_map(|(msize, version)| Fcall::Rversion { msize, version }),
        (any::<u32>(), name(), name()).prop_map(|(afid, uname, aname)| Fcall::Tauth {
            afid,
            uname,
            aname
        }),
        qid().prop_map(|aqid| Fcall::Rauth { aqid }),
        (any::<u32>(), any::<u32>(), name(), name()).prop_map(|(fid, afid, uname, aname)| {
            Fcall::Tattach {
                fid,
                afid,
                uname,
                aname,
            }
        }),
        qid().prop_map(|qid| Fcall::Rattach { qid }),
        name().prop_map(|ename| Fcall::Rerror { ename }),
        any::<u16>().prop_map(|oldtag| Fcall::Tflush { oldtag }),
        Just(Fcall::Rflush),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(name(), 0..=MAXWELEM)
        )
            .prop_map(|(fid, newfid, wnames)| Fcall::Twalk {
                fid,
                newfid,
                wnames
            }),
        proptest::collection::vec(qid(), 0..=MAXWELEM).prop_map(|wqids| Fcall::Rwalk { wqids }),
        (any::<u32>(), any::<u8>()).prop_map(|(fid, mode)| Fcall::Topen { fid, mode }),
        (qid(), any::<u32>()).prop_map(|(qid, iounit)| Fcall::Ropen { qid, iounit }),
        (any::<u32>(), name(), any::<u32>(), any::<u8>()).prop_map(|(fid, name, perm, mode)| {
            Fcall::Tcreate {
                fid,
                name,
                perm,
                mode,
            }
        }),
        (qid(), any::<u32>()).prop_map(|(qid, iounit)| Fcall::Rcreate { qid, iounit }),
        (any::<u32>(), any::<u64>(), any::<u32>())
            .prop_map(|(fid, offset, count)| { Fcall::Tread { fid, offset, count } }),
        data().prop_map(|data| Fcall::Rread { data }),
        (any::<u32>(), any::<u64>(), data()).prop_map(|(fid, offset, data)| Fcall::Twrite {
            fid,
            offset,
            data
        }),
        any::<u32>().prop_map(|count| Fcall::Rwrite { count }),
        any::<u32>().prop_map(|fid| Fcall::Tclunk { fid }),
        Just(Fcall::Rclunk),
        any::<u32>().prop_map(|fid| Fcall::Tremove { fid }),
        Just(Fcall::Rremove),
        any::<u32>().prop_map(|fid| Fcall::Tstat { fid }),
        stat().prop_map(|stat| Fcall::Rstat { stat }),
        (any::<u32>(), stat()).prop_map(|(fid, stat)| Fcall::Twstat { fid, stat }),
        Just(Fcall::Rwstat),
    ]
}

/// Rewrites a message's size field to its length.
fn fix_size(v: &mut [u8]) {
    let n = v.len() as u32;
    v[..4].copy_from_slice(&n.to_le_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(tag in any::<u16>(), f in fcall()) {
        let bytes = f.to_bytes(tag);
        prop_assert_eq!(proto::frame_len(bytes[..4].try_into().unwrap()) as usize, bytes.len());
        let (t, back) = proto::decode(Bytes::from(bytes)).unwrap();
        prop_assert_eq!(t, tag);
        prop_assert_eq!(back, f);
    }

    /// A message cut short anywhere (its size field fixed to say so) is refused.
    #[test]
    fn every_truncation_is_refused(f in fcall(), cut in any::<prop::sample::Index>()) {
        let full = f.to_bytes(1);
        prop_assume!(full.len() > 7);
        let at = 7 + cut.index(full.len() - 7);
        prop_assume!(at < full.len());
        let mut v = full[..at].to_vec();
        fix_size(&mut v);
        // Messages without fields after the header decode at 7 bytes; everything else
        // must fail.
        prop_assert!(proto::decode(Bytes::from(v)).is_err(), "{:?} cut at {}", f, at);
    }

    /// Bytes appended after the fields are refused.
    #[test]
    fn trailing_bytes_are_refused(f in fcall(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut v = f.to_bytes(1);
        v.extend_from_slice(&extra);
        fix_size(&mut v);
        prop_assert_eq!(proto::decode(Bytes::from(v)).unwrap_err(), DecodeError::Long);
    }

    /// A size field that disagrees with the bytes given is refused either way.
    #[test]
    fn a_lying_size_field_is_refused(f in fcall(), delta in 1u32..1000, up in any::<bool>()) {
        let mut v = f.to_bytes(1);
        let n = v.len() as u32;
        let lie = if up { n + delta } else { n.saturating_sub(delta) };
        v[..4].copy_from_slice(&lie.to_le_bytes());
        prop_assert!(proto::decode(Bytes::from(v)).is_err());
    }

    /// Random bytes never panic the decoder, and what it accepts re-encodes to itself.
    #[test]
    fn random_bytes_never_panic(mut v in proptest::collection::vec(any::<u8>(), 0..200), fix in any::<bool>()) {
        if fix && v.len() >= 4 {
            fix_size(&mut v);
        }
        if let Ok((tag, f)) = proto::decode(Bytes::from(v.clone())) {
            prop_assert_eq!(f.to_bytes(tag), v);
        }
    }
}

#[test]
fn unknown_types_bad_strings_and_long_walks_are_named() {
    let mut v = Fcall::Tclunk { fid: 1 }.to_bytes(1);
    v[4] = 99;
    assert_eq!(
        proto::decode(Bytes::from(v)).unwrap_err(),
        DecodeError::BadType(99)
    );
    // Terror (106) does not exist.
    let mut v = Fcall::Tclunk { fid: 1 }.to_bytes(1);
    v[4] = 106;
    assert_eq!(
        proto::decode(Bytes::from(v)).unwrap_err(),
        DecodeError::BadType(106)
    );
    for bad in [&b"\xff\xfe"[..], b"a\0b"] {
        let mut v = Fcall::Rerror { ename: "xx".into() }.to_bytes(1);
        v.truncate(7);
        v.extend_from_slice(&(bad.len() as u16).to_le_bytes());
        v.extend_from_slice(bad);
        fix_size(&mut v);
        assert_eq!(
            proto::decode(Bytes::from(v)).unwrap_err(),
            DecodeError::BadString
        );
    }
    let names = vec!["a".to_string(); MAXWELEM + 1];
    let v = Fcall::Twalk {
        fid: 0,
        newfid: 1,
        wnames: names,
    }
    .to_bytes(1);
    assert_eq!(
        proto::decode(Bytes::from(v)).unwrap_err(),
        DecodeError::TooManyNames
    );
    for short in [&b""[..], b"\x07\0\0", b"\x06\0\0\0\x64\0\0"] {
        assert!(proto::decode(Bytes::copy_from_slice(short)).is_err());
    }
}

#[test]
fn the_data_of_a_write_is_a_slice_of_the_message_not_a_copy() {
    let v = Fcall::Twrite {
        fid: 3,
        offset: 0,
        data: Bytes::from_static(b"hello"),
    }
    .to_bytes(9);
    let frame = Bytes::from(v);
    let base = frame.as_ptr() as usize;
    let (_, f) = proto::decode(frame.clone()).unwrap();
    let Fcall::Twrite { data, .. } = f else {
        panic!("not a Twrite: {f:?}")
    };
    assert_eq!(&data[..], b"hello");
    assert_eq!(data.as_ptr() as usize, base + frame.len() - 5);
}

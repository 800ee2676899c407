//! The library behind the `ksock` command: the `ss` table, read from a mounted tree or
//! from a stack running in the same process.

#![forbid(unsafe_code)]

pub mod ss;

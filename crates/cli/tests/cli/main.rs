//! The `cyberid` binary end to end, exactly as the README runs it: registry files, real
//! `cyberid serve` processes on free ports, the wallet, operator and bench commands, the
//! demo, and a crash in the middle of an enrolment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin;
mod bench;
mod crash;
mod demo;
mod nodes;
mod registry;
mod settings;
mod wallet;

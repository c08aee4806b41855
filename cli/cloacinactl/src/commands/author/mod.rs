//! What a workflow author runs: scaffold a crate, make keys, pack and
//! sign, check and show a package, run it locally.

pub mod key;
pub mod new;
pub mod pack;
pub mod package;
pub mod run;

//! The loader's integration tests: real sample plugins, built by cargo,
//! loaded and called. One binary; one module per plugin kind.

mod handmade;
mod isolated;
mod native;
mod wasm;

//! The defaults every cloacina program agrees on, so that a server, the
//! CLI's local commands and its HTTP client find the same files without
//! depending on one another.

use std::path::PathBuf;

/// The variable that names the data directory.
pub const HOME_VAR: &str = "CLOACINA_HOME";

/// The data directory: `$CLOACINA_HOME`, else `~/.cloacina`; None when
/// neither is set.
pub fn data_dir() -> Option<PathBuf> {
    std::env::var_os(HOME_VAR)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cloacina")))
}

/// The `cloacina-plugin-worker` binary installed beside the running
/// program, if it is there.
pub fn worker_binary() -> Option<PathBuf> {
    let name = format!("cloacina-plugin-worker{}", std::env::consts::EXE_SUFFIX);
    let path = std::env::current_exe().ok()?.with_file_name(name);
    path.is_file().then_some(path)
}

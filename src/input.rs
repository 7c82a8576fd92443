//! Reading an input file (topology, lock, plan, net-conf): a size limit
//! before anything is read, UTF-8, and `-` for standard input. Every failure
//! is a whole-file diagnostic naming the input.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostics;

/// Inputs larger than this are refused before parsing: a real topology of
/// 5000 nodes is under 1 MiB.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// How standard input is named in diagnostics.
pub const STDIN_NAME: &str = "<stdin>";

/// The name an input path is reported under (`-` is standard input).
pub fn display_name(path: &Path) -> PathBuf {
    if is_stdin(path) { PathBuf::from(STDIN_NAME) } else { path.to_path_buf() }
}

pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads a text file (or standard input for `-`) within the size limit.
pub fn read_text(path: &Path) -> Result<String, Diagnostics> {
    let name = display_name(path);
    let whole_file = |message: String| Diagnostics::whole_file(&name, message);
    let bytes = if is_stdin(path) {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| whole_file(format!("cannot read: {e}")))?;
        if buf.len() as u64 > MAX_INPUT_BYTES {
            return Err(whole_file(format!("input is over {MAX_INPUT_BYTES} bytes; inputs that large are refused")));
        }
        buf
    } else {
        let meta = std::fs::metadata(path).map_err(|e| whole_file(format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(whole_file("not a regular file".into()));
        }
        if meta.len() > MAX_INPUT_BYTES {
            return Err(whole_file(format!(
                "file is {} bytes; inputs over {MAX_INPUT_BYTES} bytes are refused",
                meta.len()
            )));
        }
        std::fs::read(path).map_err(|e| whole_file(format!("cannot read: {e}")))?
    };
    String::from_utf8(bytes)
        .map_err(|e| whole_file(format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to())))
}

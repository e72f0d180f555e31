//! Output edges of the binary: the EVE file, and the directory layout of SPEC.md section 3.

mod eve;

pub use eve::{EveMerger, EveWriter};

/// Creates the output directory (and missing parents) readable by its owner and group only:
/// what a sensor writes names hosts, URLs and mail addresses, and holds the files themselves.
pub fn create_output_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create output directory {}: {e}", dir.display()))
}

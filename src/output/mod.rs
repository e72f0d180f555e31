//! Output edges of the binary: the EVE file, and the directory layout of SPEC.md section 3.

mod eve;

pub use eve::{EveMerger, EveWriter};

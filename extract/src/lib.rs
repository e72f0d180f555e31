//! App-layer parsers, file and email extraction, filestore, URL artifacts.

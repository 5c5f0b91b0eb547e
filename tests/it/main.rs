//! kovenant's integration tests: one binary, a shared harness, fakes for what cannot run here.
mod cli;
mod image;
mod support;

//! kovenant's integration tests: one binary, a shared harness, fakes for what cannot run here.
mod cli;
mod config;
mod image;
mod support;

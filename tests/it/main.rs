//! kovenant's integration tests: one binary, a shared harness, fakes for what cannot run here.
mod chart;
mod cli;
mod config;
mod image;
mod render;
mod schemas;
mod support;
mod values;

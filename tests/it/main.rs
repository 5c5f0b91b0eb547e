//! kovenant's integration tests: one binary, a shared harness, fakes for what cannot run here.
mod chart;
mod cli;
mod config;
mod fake_api;
mod fake_helm;
mod install;
mod preflight;
mod render;
mod schemas;
mod stack;
mod status;
mod support;
mod uninstall;
mod values;

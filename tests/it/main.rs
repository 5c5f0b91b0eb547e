//! kovenant's integration tests: one binary, a shared harness, fakes for what cannot run here.
mod agent;
mod agent_fixtures;
mod agent_follow;
mod agent_influx;
mod agent_kube;
mod agent_support;
mod cli;
mod support;

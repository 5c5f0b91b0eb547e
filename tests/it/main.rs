//! kovenant's integration tests: one binary, a shared harness, fakes for what cannot run here.
mod cli;
mod dashboards;
mod dashboards_promql;
mod support;

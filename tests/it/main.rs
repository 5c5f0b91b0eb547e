//! kovenant's integration tests: one binary, a shared harness, fakes for what cannot run here.
mod chart;
mod cli;
mod config;
mod dashboards;
mod dashboards_influx;
mod dashboards_influxql;
mod dashboards_model;
mod dashboards_nodegraph;
mod dashboards_promql;
mod dashboards_promql_parse;
mod dashboards_scenarios;
mod image;
mod render;
mod schemas;
mod support;
mod values;

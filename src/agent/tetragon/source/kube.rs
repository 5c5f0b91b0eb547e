//! `kube-logs`: the export-stdout container log of every Tetragon pod, streamed through the
//! API. A watch follows pods coming and going; each stream reconnects with backoff.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::agent::tetragon::lines::{Line, MAX_LINE, Splitter};

/// Which pods to stream, and from which container.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub selector: String,
    pub container: String,
    /// Only the pod on this node.
    pub node: Option<String>,
}

/// Watches the Tetragon pods and streams each one's log into `tx` as whole lines.
pub async fn run(client: Client, target: Target, tx: mpsc::Sender<Vec<u8>>) {
    let api: Api<Pod> = Api::namespaced(client, &target.namespace);
    let mut config = watcher::Config::default().labels(&target.selector);
    if let Some(node) = &target.node {
        config = config.fields(&format!("spec.nodeName={node}"));
    }
    let stream = watcher(api.clone(), config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut streams: HashMap<String, JoinHandle<()>> = HashMap::new();
    while let Ok(Some(ev)) = stream.try_next().await {
        let (pod, gone) = match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, false),
            watcher::Event::Delete(p) => (p, true),
            watcher::Event::Init | watcher::Event::InitDone => continue,
        };
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if gone || !running {
            if let Some(h) = streams.remove(&name) {
                h.abort();
            }
        } else if streams.get(&name).is_none_or(|h| h.is_finished()) {
            let task = follow(
                api.clone(),
                name.clone(),
                target.container.clone(),
                tx.clone(),
            );
            streams.insert(name, tokio::spawn(task));
        }
    }
}

/// Streams one pod's log: from its end the first time, then from where the last stream broke.
async fn follow(api: Api<Pod>, name: String, container: String, tx: mpsc::Sender<Vec<u8>>) {
    let mut backoff = Duration::from_millis(500);
    let mut broke: Option<Instant> = None;
    loop {
        let params = LogParams {
            container: Some(container.clone()),
            follow: true,
            tail_lines: if broke.is_none() { Some(0) } else { None },
            since_seconds: broke.map(|t| i64::try_from(t.elapsed().as_secs() + 1).unwrap_or(1)),
            ..LogParams::default()
        };
        if let Ok(reader) = api.log_stream(&name, &params).await {
            backoff = Duration::from_millis(500);
            if pump(reader, &tx).await.is_err() {
                return; // The agent is gone.
            }
        }
        broke = Some(Instant::now());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Copies complete lines to `tx`; a line too long to keep becomes an empty (bad) line.
async fn pump(reader: impl futures::AsyncBufRead, tx: &mpsc::Sender<Vec<u8>>) -> Result<(), ()> {
    let mut reader = std::pin::pin!(reader);
    let mut splitter = Splitter::new(MAX_LINE);
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(b) => b,
        };
        let mut batch = Vec::with_capacity(buf.len() + 1);
        let n = buf.len();
        let _ = splitter.push::<()>(buf, &mut |line| {
            if let Line::Text(t) = line {
                batch.extend_from_slice(t);
            }
            batch.push(b'\n');
            Ok(())
        });
        reader.consume_unpin(n);
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return Err(());
        }
    }
    // A stream that broke mid-line: the partial line is dropped with it, as it would be
    // incomplete JSON anyway.
    Ok(())
}

#!/usr/bin/env bash
# Benchmark of `kovenant install` on the real control plane (DESIGN.md section 7): a first install
# and a no-op install, kovenant's wall time beside the time helm itself ran (the union of the
# helm processes' spans, from `-v`), and each release's own `helm diff` timed alone, so the no-op
# install can be held to "the slowest single helm diff plus one second".
# Usage: bench/install.sh [RUNS]   (default 3; starts its own cluster, whose InfluxDB is a real
# influxd 2.7 that kovenant makes its scoped tokens in)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${1:-3}
cargo build --release --quiet --bin kovenant
k=$PWD/target/release/kovenant
work=$(mktemp -d /tmp/kovenant-bench.XXXXXX)
trap '"$root/.ci/cluster.sh" stop "$work/cluster"; rm -rf "$work"' EXIT
.ci/cluster.sh start "$work/cluster" >/dev/null
# shellcheck disable=SC1091
source "$work/cluster/env"
cd "$work"
cat >.env <<ENV
KOVENANT_TETRAGON_CHART_REPO=$KOVENANT_TEST_CHART_REPO
KOVENANT_PROMETHEUS_CHART_REPO=$KOVENANT_TEST_CHART_REPO
KOVENANT_GRAFANA_CHART_REPO=$KOVENANT_TEST_CHART_REPO
DOCKER_INFLUXDB_INIT_ADMIN_TOKEN=$KOVENANT_TEST_INFLUXDB2_TOKEN
DOCKER_INFLUXDB_INIT_PASSWORD=$KOVENANT_TEST_INFLUXDB2_PASSWORD
ENV
chmod 600 .env
export KUBECONFIG=$KOVENANT_TEST_KUBECONFIG HELM_PLUGINS=$KOVENANT_TEST_HELM_PLUGINS
export HELM_CONFIG_HOME=$work/helm/config HELM_CACHE_HOME=$work/helm/cache HELM_DATA_HOME=$work/helm/data
export KOVENANT_HELM=$KOVENANT_TEST_HELM4
took() { grep -o 'took [0-9]* ms: helm [0-9]* ms, kovenant itself [0-9]* ms' | tail -n 1; }

echo "helm $($KOVENANT_HELM version --short), $(nproc) cores"
for i in $(seq 1 "$runs"); do
  echo "run $i: first install: $("$k" install --yes --skip-image -v 2>&1 | took)"
  echo "run $i: no-op install: $("$k" install --yes --skip-image -v 2>&1 | took)"
  "$k" render --out "$work/rendered" --force >/dev/null 2>&1
  slowest=0
  for r in "tetragon kovenant-cilium/tetragon -n kube-system --version 1.7.0 -f $work/rendered/values/tetragon.yaml" \
           "prometheus kovenant-prometheus-community/prometheus -n kovenant --version 29.27.0 -f $work/rendered/values/prometheus.yaml" \
           "grafana kovenant-grafana-community/grafana -n kovenant --version 12.11.1 -f $work/rendered/values/grafana.yaml" \
           "kovenant-pipeline $work/rendered/charts/kovenant-pipeline -n kovenant -f $work/rendered/charts/kovenant-pipeline/values.yaml"; do
    start=$(date +%s%N)
    # shellcheck disable=SC2086
    "$KOVENANT_HELM" diff upgrade $r --install --detailed-exitcode --suppress-secrets \
      --normalize-manifests --disable-validation --dry-run=server >/dev/null 2>&1 || true
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "run $i:   helm diff ${r%% *} alone: $ms ms"
    [ "$ms" -gt "$slowest" ] && slowest=$ms
  done
  echo "run $i: slowest single helm diff: $slowest ms"
  "$k" uninstall --yes --purge >/dev/null 2>&1
done

#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the tests, with its state under one folder:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler (from the k8s.io/kubernetes
# module), kwok for two nodes and their pods, and the pinned upstream charts served as a chart
# repository. Binaries come from .ci/tools.sh (built once, cached by version). No Tetragon and no
# Grafana and no volume provisioner can run here: stand_ins.py and grafana_stand_in.py do the one
# thing of each that kovenant relies on (the CRDs; volumes for claims; /api/health), and say so.
#   .ci/cluster.sh start DIR   -> starts it all, writes DIR/env (source it)
#   .ci/cluster.sh stop DIR    -> stops it and removes DIR
# CLUSTER_NODES names the kwok nodes (default "kwok-node-0 kwok-node-1"); the sandbox
# (sandbox.sh) names its one node after this machine, whose agent it runs.
# kwok forwards kovenant-influxdb-0:8086 to a real influxd 2.7 that this script starts and sets up.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop DIR}
dir=${2:?usage: cluster.sh start|stop DIR}
here=$(cd "$(dirname "$0")" && pwd)
nodes=${CLUSTER_NODES:-kwok-node-0 kwok-node-1}
shared=$(cd "$here/../../shared" && pwd)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "cluster: $name did not come up; its log:" >&2
  tail -n 40 "$dir/$name.log" >&2 || true
  return 1
}

start_bg() { # name, command... (records the pid for stop)
  local name=$1; shift
  "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

# The PKI: one CA, one certificate that serves the API server and kwok's kubelet endpoint on
# 127.0.0.1 and is the admin's client certificate (system:masters), as kwokctl does.
pki() {
  local p=$dir/pki
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=kovenant-test-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kovenant-test-admin" \
    -keyout "$p/admin.key" -out "$p/admin.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth,clientAuth\n' >"$p/ext.cnf"
  openssl x509 -req -in "$p/admin.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 30 -extfile "$p/ext.cnf" -out "$p/admin.crt" 2>/dev/null
}

kubeconfig() { # server
  cat <<YAML
apiVersion: v1
kind: Config
clusters:
- name: kovenant-test
  cluster:
    server: $1
    certificate-authority: $dir/pki/ca.crt
users:
- name: kovenant-test-admin
  user:
    client-certificate: $dir/pki/admin.crt
    client-key: $dir/pki/admin.key
contexts:
- name: kovenant-test
  context:
    cluster: kovenant-test
    user: kovenant-test-admin
current-context: kovenant-test
YAML
}

# curl against the API server as the admin.
api() { # method path [curl args...]
  local method=$1 path=$2; shift 2
  curl -fsS -A kovenant-cluster-sh --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
    -X "$method" "$(cat "$dir/server")$path" "$@"
}

create_yaml() { # path, YAML on stdin
  api POST "$1" -H 'Content-Type: application/yaml' --data-binary @- >/dev/null
}

# Two schedulable nodes that kwok keeps Ready, and a default StorageClass whose claims bind to
# pre-made volumes (no provisioner runs here; the PV controller binds them as on a real cluster).
seed() {
  for n in $nodes; do
    create_yaml /api/v1/nodes <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
YAML
  done
  create_yaml /apis/storage.k8s.io/v1/storageclasses <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
reclaimPolicy: Retain
YAML
  for i in $(seq -w 1 40); do
    create_yaml /api/v1/persistentvolumes <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: test-pv-$i
spec:
  capacity:
    storage: 50Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  hostPath:
    path: /tmp/kovenant-test-pv-$i
YAML
  done
}

nodes_ready() {
  local n
  for n in $nodes; do
    api GET "/api/v1/nodes/$n" | grep -q '"type":"Ready","status":"True"' || return 1
  done
}

# The pinned upstream charts, packaged and indexed, served over HTTP on loopback: a chart
# repository like the ones users add.
chart_repo() {
  local port=$1 repo=$dir/charts
  mkdir -p "$repo"
  local c src
  for c in tetragon prometheus grafana; do
    # charts/<name> names the folder of the pinned version (a link kept as a one-line file).
    src=$shared/upstream/charts/$c
    [ -d "$src" ] || src=$shared/upstream/charts/$(tr -d '[:space:]' <"$src")
    "$HELM4" package "$src" -d "$repo" >/dev/null
  done
  "$HELM4" repo index "$repo" --url "http://127.0.0.1:$port"
  start_bg charts python3 -m http.server --bind 127.0.0.1 --directory "$repo" "$port"
}

case "$cmd" in
start)
  mkdir -p "$dir/logs"
  # shellcheck disable=SC1090
  source <("$here/tools.sh" | sed 's/^/export /')
  pki

  etcd_port=$(free_port) peer_port=$(free_port)
  start_bg etcd "$ETCD" --name test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn
  wait_for etcd curl -fsS "http://127.0.0.1:$etcd_port/health"

  api_port=$(free_port)
  echo "https://127.0.0.1:$api_port" >"$dir/server"
  p=$dir/pki
  start_bg kube-apiserver "$KUBE_APISERVER" \
    --etcd-servers "http://127.0.0.1:$etcd_port" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "$api_port" --tls-cert-file "$p/admin.crt" --tls-private-key-file "$p/admin.key" \
    --client-ca-file "$p/ca.crt" --service-account-key-file "$p/admin.key" \
    --service-account-signing-key-file "$p/admin.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --kubelet-client-certificate "$p/admin.crt" --kubelet-client-key "$p/admin.key" \
    --proxy-client-cert-file "$p/admin.crt" --proxy-client-key-file "$p/admin.key" \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --service-cluster-ip-range 10.96.0.0/16 --enable-priority-and-fairness=false
  wait_for kube-apiserver api GET /readyz

  kubeconfig "https://127.0.0.1:$api_port" >"$dir/kubeconfig"
  chmod 600 "$dir/kubeconfig"
  # KOVENANT_CLUSTER_QPS (benchmarks that create thousands of pods): the controllers' and the
  # scheduler's client rate, instead of client-go's default 20 (50 for the scheduler).
  client_rate=${KOVENANT_CLUSTER_QPS:+--kube-api-qps $KOVENANT_CLUSTER_QPS --kube-api-burst $((2 * KOVENANT_CLUSTER_QPS))}
  start_bg kube-controller-manager "$KUBE_CONTROLLER_MANAGER" --kubeconfig "$dir/kubeconfig" \
    --authentication-kubeconfig "$dir/kubeconfig" --authorization-kubeconfig "$dir/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
    --root-ca-file "$p/ca.crt" --service-account-private-key-file "$p/admin.key" \
    --use-service-account-credentials=false --cluster-signing-cert-file "$p/ca.crt" \
    --cluster-signing-key-file "$p/ca.key" --node-monitor-grace-period 50s $client_rate
  start_bg kube-scheduler "$KUBE_SCHEDULER" --kubeconfig "$dir/kubeconfig" \
    --authentication-kubeconfig "$dir/kubeconfig" --authorization-kubeconfig "$dir/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false $client_rate

  kwok_port=$(free_port)
  grafana_port=$(free_port)
  # Where a test runs a real Prometheus server, behind the prometheus-server pod's port 9090.
  prometheus_port=$(free_port)
  start_bg grafana-stand-in python3 "$here/grafana_stand_in.py" "$grafana_port"
  # The InfluxDB pod of kovenant's namespace is a real influxd 2.7 (the chart's InfluxDB) on
  # loopback, set up once as the influxdb:2.7 image's entrypoint does from DOCKER_INFLUXDB_INIT_*:
  # the tests install with the same credentials in their .env, so the Secret kovenant makes holds
  # what this InfluxDB was set up with.
  influxdb2_port=$(free_port)
  influxdb2_token=kovenant-test-operator-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
  influxdb2_password=kovenant-test-password
  start_bg influxd2 "$INFLUXD2" --bolt-path "$dir/influxdb2/influxd.bolt" \
    --engine-path "$dir/influxdb2/engine" --sqlite-path "$dir/influxdb2/influxd.sqlite" \
    --http-bind-address "127.0.0.1:$influxdb2_port" --reporting-disabled --log-level warn
  wait_for influxd2 curl -fsS "http://127.0.0.1:$influxdb2_port/health"
  INFLUX_TOKEN=$influxdb2_token "$INFLUX_CLI" setup --host "http://127.0.0.1:$influxdb2_port" \
    --username admin --password "$influxdb2_password" --org kovenant --bucket tetragon \
    --retention 168h --configs-path "$dir/influx-configs" --force >/dev/null
  # and the pod-level bucket its pod's postStart hook makes (tests/it/cluster/tokens.rs runs the
  # hook itself; sessions make their own buckets).
  INFLUX_TOKEN=$influxdb2_token "$INFLUX_CLI" bucket create --host "http://127.0.0.1:$influxdb2_port" \
    --org kovenant --name tetragon/pods --retention 24h --configs-path "$dir/influx-configs" >/dev/null
  # kwok forwards the InfluxDB pod's port to an observer in front of it, which logs each
  # request's headers to $dir/influxdb-requests.log (see influx_observer.py).
  observer_port=$(free_port)
  start_bg influx-observer python3 "$here/influx_observer.py" "$observer_port" \
    "127.0.0.1:$influxdb2_port" "$dir/influxdb-requests.log"
  wait_for influx-observer curl -fsS "http://127.0.0.1:$observer_port/ping"
  sed -e "s#@DIR@#$dir#g" -e "s#@INFLUXDB_HOST@#127.0.0.1#g" -e "s#@INFLUXDB_PORT@#$observer_port#g" \
    -e "s#@GRAFANA_PORT@#$grafana_port#g" -e "s#@PROMETHEUS_PORT@#$prometheus_port#g" \
    "$here/kwok.yaml" >"$dir/kwok.yaml"
  printf '%s stdout F %s\n' "2026-01-01T00:00:00.000000000Z" "started" >"$dir/logs/default.log"
  printf '%s stderr F %s\n' "2026-01-01T00:00:00.000000000Z" "error: crashed (simulated by the kwok stage pod-crash-loop)" >"$dir/logs/crashed.log"
  start_bg kwok "$KWOK" --kubeconfig "$dir/kubeconfig" --config "$dir/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --node-port "$kwok_port" --server-address "127.0.0.1:$kwok_port" \
    --tls-cert-file "$p/admin.crt" --tls-private-key-file "$p/admin.key" \
    --node-lease-duration-seconds 40
  wait_for kube-controller-manager api GET /api/v1/namespaces/default/serviceaccounts/default
  seed
  wait_for kwok nodes_ready

  start_bg stand-ins python3 "$here/stand_ins.py" "$dir" "$shared/upstream/tetragon-1.7.0"

  repo_port=$(free_port)
  chart_repo "$repo_port"
  wait_for charts curl -fsS "http://127.0.0.1:$repo_port/index.yaml"

  cat >"$dir/env" <<ENV
export KOVENANT_TEST_KUBECONFIG=$dir/kubeconfig
export KOVENANT_TEST_CLUSTER_DIR=$dir
export KOVENANT_TEST_CHART_REPO=http://127.0.0.1:$repo_port
export KOVENANT_TEST_KUBECTL=$KUBECTL
export KOVENANT_TEST_HELM4=$HELM4
export KOVENANT_TEST_HELM3=$HELM3
export KOVENANT_TEST_HELM_PLUGINS=$HELM_PLUGINS
export KOVENANT_TEST_TELEGRAF=$TELEGRAF
export KOVENANT_TEST_INFLUXD18=$INFLUXD18
export KOVENANT_TEST_INFLUX_CLI=$INFLUX_CLI
export KOVENANT_TEST_LUMBERJACK=$LUMBERJACK
export KOVENANT_TEST_INFLUXDB2=http://127.0.0.1:$influxdb2_port
export KOVENANT_TEST_INFLUXDB2_TOKEN=$influxdb2_token
export KOVENANT_TEST_INFLUXDB2_PASSWORD=$influxdb2_password
export KOVENANT_TEST_PROMETHEUS_PORT=$prometheus_port
export KOVENANT_TEST_PROMETHEUS=$(command -v prometheus || echo /usr/bin/prometheus)
ENV
  cat "$dir/env"
  ;;
stop)
  for f in stand-ins charts influx-observer influxd2 grafana-stand-in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    [ -f "$dir/$f.pid" ] && kill "$(cat "$dir/$f.pid")" 2>/dev/null || true
  done
  # The API server shuts down gracefully; give every process a few seconds, then make sure.
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    for _ in $(seq 1 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$dir" 2>/dev/null || true
  ;;
*)
  echo "usage: cluster.sh start|stop DIR" >&2
  exit 2
  ;;
esac

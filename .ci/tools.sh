#!/usr/bin/env bash
# Builds, from their Go modules, the real tools the tests run beside kovenant, and caches each by
# version outside the repository, so a second run on the same machine builds nothing:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, helm 4, helm 3, helm-diff,
#   telegraf (only the plugins kovenant's telegraf.conf uses) and InfluxDB 1.8's influxd (it
#   speaks the v2 write API of telegraf's outputs.influxdb_v2, which Debian's InfluxDB 1.6 does
#   not; 1.9 and later need flux's Rust libflux through cgo, 1.8 is pure Go), InfluxDB 2.7's influxd
#   (cgo, with flux's Rust libflux built by cargo: it needs gcc, pkg-config and a Rust toolchain)
#   and the influx CLI; and lumberjack-writer, a few lines of Go (.ci/lumberjack/main.go) that write
#   stdin through the lumberjack Logger Tetragon writes its export file with.
#   .ci/tools.sh [NAME...]   -> builds what is missing; prints NAME=PATH lines
# The cache is $KOVENANT_TOOLS_CACHE (default ~/.cache/kovenant/tools), one folder per tool and version.
set -euo pipefail

ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.34.4
KWOK_VERSION=v0.8.0
HELM4_VERSION=v4.3.1
HELM3_VERSION=v3.22.0
HELM_DIFF_VERSION=v3.13.2
# The telegraf of the image the agent ships in (pins::TELEGRAF_IMAGE in src/config/mod.rs; the
# test tests/it/telegraf.rs checks they agree).
TELEGRAF_VERSION=v1.36.4
# telegraf's `custom` tag leaves every plugin out but the ones named: those of telegraf.conf in
# templates/pipeline/templates/agent-configmap.yaml (outputs.health answers the agent's probes).
TELEGRAF_TAGS=custom,inputs.execd,outputs.health,outputs.influxdb_v2,parsers.influx
INFLUXDB18_VERSION=v1.8.10
INFLUXDB2_VERSION=v2.7.12
# The influx CLI 2.5.0, by the module version of its tag's commit (3285a03e), the one that
# influxdb v2.7.12 requires: the module proxy serves no tagged version of influx-cli/v2.
INFLUX_CLI_VERSION=v2.5.0
INFLUX_CLI_MODULE_VERSION=v2.2.1-0.20221028161653-3285a03e9e28
# The checksum database does not list helm-diff's module, so its hash is pinned here instead
# (as `go mod download -json` reported them).
# Tetragon v1.7.0's exporter writes its export file through cilium's fork of natefinch/lumberjack,
# at the version its go.mod pins.
LUMBERJACK_MODULE=github.com/cilium/lumberjack/v2
LUMBERJACK_VERSION=v2.4.2
HELM_DIFF_SUM="h1:F7kOKV72i5S6FZilOOnntN0n2Alp0FJovk1Wr8cx+t8="
HELM_DIFF_MOD_SUM="h1:eG4IhpHOv3TnPnghRi7UXBrPSc19iyxXdZrZ39NmCsY="

here=$(cd "$(dirname "$0")" && pwd)
cache=${KOVENANT_TOOLS_CACHE:-$HOME/.cache/kovenant/tools}
mkdir -p "$cache"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { echo "tools: $*" >&2; }

# A throwaway main module that requires $1 at $2 (plus the extra require lines in $3), so that
# modules whose own go.mod has `replace` lines (kubernetes, etcd) can be built as dependencies.
wrapper() { # module version extra-go.mod-lines
  local dir
  dir=$(mktemp -d "$cache/.build.XXXXXX")
  printf 'module kovenant.test/tools\n\ngo 1.26\n\nrequire %s %s\n%s\n' "$1" "$2" "${3:-}" >"$dir/go.mod"
  echo "$dir"
}

build_etcd() {
  local out=$cache/etcd-$ETCD_VERSION dir
  [ -x "$out/etcd" ] && return
  log "building etcd $ETCD_VERSION"
  dir=$(wrapper go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
  (cd "$dir"
   printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3/etcdmain"\n' >tools.go
   go mod tidy >/dev/null
   mkdir -p "$out.tmp"
   go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

build_kube() {
  local out=$cache/kubernetes-$KUBE_VERSION dir moddir minor reps
  [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/kube-scheduler" ] \
    && [ -x "$out/kubectl" ] && return
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBE_VERSION"
  moddir=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  minor=${KUBE_VERSION#v1.}
  # Every staging module k8s.io/X => ./staging/src/k8s.io/X becomes k8s.io/X v0.<minor>.
  reps=$(sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v0.'"$minor"'#p' "$moddir/go.mod")
  dir=$(wrapper k8s.io/kubernetes "$KUBE_VERSION" "replace (
$reps
)")
  local pkg=k8s.io/component-base/version
  local ld="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
  ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ld="$ld -X $pkg/verflag.programName=kubernetes"
  (cd "$dir"
   printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler/app"\n\t_ "k8s.io/kubectl/pkg/cmd"\n)\n' >tools.go
   go mod tidy >/dev/null
   mkdir -p "$out.tmp"
   go build -trimpath -ldflags "$ld" -o "$out.tmp/" \
     k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
     k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

build_kwok() {
  local out=$cache/kwok-$KWOK_VERSION
  [ -x "$out/kwok" ] && return
  log "building kwok $KWOK_VERSION"
  GOBIN=$out.tmp go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

build_helm() { # major version
  local major=$1 version=$2 out
  out=$cache/helm-$version
  [ -x "$out/helm" ] && return
  log "building helm $version"
  GOBIN=$out.tmp go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v$major/internal/version.version=$version" \
    "helm.sh/helm/v$major/cmd/helm@$version"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

# helm-diff, laid out as an installed plugin: point HELM_PLUGINS at $out/plugins.
build_helm_diff() {
  local out=$cache/helm-diff-$HELM_DIFF_VERSION dir src
  [ -x "$out/plugins/diff/bin/diff" ] && return
  log "building helm-diff $HELM_DIFF_VERSION"
  dir=$(wrapper github.com/databus23/helm-diff/v3 "$HELM_DIFF_VERSION")
  (cd "$dir"
   printf '%s\n' "github.com/databus23/helm-diff/v3 $HELM_DIFF_VERSION $HELM_DIFF_SUM" \
     "github.com/databus23/helm-diff/v3 $HELM_DIFF_VERSION/go.mod $HELM_DIFF_MOD_SUM" >go.sum
   printf 'package tools\n\nimport _ "github.com/databus23/helm-diff/v3/cmd"\n' >tools.go
   GONOSUMDB=github.com/databus23 GOFLAGS="-buildvcs=false -mod=mod" go mod tidy >/dev/null
   src=$(go list -m -f '{{.Dir}}' github.com/databus23/helm-diff/v3)
   mkdir -p "$out.tmp/plugins/diff/bin"
   go build -trimpath -ldflags "-s -w -X github.com/databus23/helm-diff/v3/cmd.Version=${HELM_DIFF_VERSION#v}" \
     -o "$out.tmp/plugins/diff/bin/diff" github.com/databus23/helm-diff/v3
   # The plugin's own manifest, without its install hooks (they download a release binary).
   sed '/^platformHooks:/,$d' "$src/plugin.yaml" >"$out.tmp/plugins/diff/plugin.yaml")
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

# Keyed by version and plugin list: a plugin added to telegraf.conf needs a new build.
telegraf_out() {
  echo "$cache/telegraf-$TELEGRAF_VERSION-$(echo "$TELEGRAF_TAGS" | sha256sum | cut -c1-12)"
}

build_telegraf() {
  local out
  out=$(telegraf_out)
  [ -x "$out/telegraf" ] && return
  log "building telegraf $TELEGRAF_VERSION ($TELEGRAF_TAGS)"
  GOBIN=$out.tmp go install -trimpath -tags "$TELEGRAF_TAGS" \
    -ldflags "-s -w -X github.com/influxdata/telegraf/internal.Version=${TELEGRAF_VERSION#v}" \
    "github.com/influxdata/telegraf/cmd/telegraf@$TELEGRAF_VERSION"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

# influxd 1.8: its flux (v0.65) uses the Rust libflux only under the `libflux` tag, so CGO stays off.
build_influxdb18() {
  local out=$cache/influxdb-$INFLUXDB18_VERSION
  [ -x "$out/influxd" ] && return
  log "building influxd $INFLUXDB18_VERSION"
  GOBIN=$out.tmp go install -trimpath -ldflags "-s -w -X main.version=${INFLUXDB18_VERSION#v}" \
    "github.com/influxdata/influxdb/cmd/influxd@$INFLUXDB18_VERSION"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

# influxd 2.7 as its GNUmakefile builds it, less the `assets` tag (the UI, which it downloads): cgo,
# and PKG_CONFIG set to github.com/influxdata/pkg-config, which builds flux's libflux with
# `cargo build --release` in flux's module folder when cgo asks for `pkg-config flux`, and puts
# the static library in $GOCACHE/pkgconfig. flux is replaced by a writable copy so that cargo
# builds there, without flux's rust-toolchain.toml (it pins Rust 1.72, which cannot be fetched)
# and without its `strict` deny(warnings) (newer Rust's lints fail it; RUSTFLAGS=--cap-lints
# does not reach flux-core as the build dependency of flux's build script).
build_influxdb2() {
  local out=$cache/influxdb-$INFLUXDB2_VERSION dir moddir flux fluxdir
  [ -x "$out/influxd" ] && return
  log "building influxd $INFLUXDB2_VERSION (and flux's Rust libflux)"
  for c in cc pkg-config cargo; do
    command -v "$c" >/dev/null || { log "influxd $INFLUXDB2_VERSION needs $c"; exit 1; }
  done
  moddir=$(go mod download -json "github.com/influxdata/influxdb/v2@$INFLUXDB2_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  flux=$(sed -n 's#^\tgithub.com/influxdata/flux \(v[^ ]*\)$#\1#p' "$moddir/go.mod")
  dir=$(wrapper github.com/influxdata/influxdb/v2 "$INFLUXDB2_VERSION" "$(grep '^replace ' "$moddir/go.mod")
replace github.com/influxdata/flux => ./github.com/influxdata/flux@$flux")
  # pkg-config reads flux's version from this folder's name.
  fluxdir=$dir/github.com/influxdata/flux@$flux
  mkdir -p "$dir/github.com/influxdata"
  cp -r "$(go mod download -json "github.com/influxdata/flux@$flux" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')" "$fluxdir"
  chmod -R u+w "$fluxdir"
  rm -f "$fluxdir/rust-toolchain.toml"
  sed -i '/^#!\[cfg_attr(feature = "strict", deny(warnings, missing_docs))\]$/d' \
    "$fluxdir/libflux/flux-core/src/lib.rs" "$fluxdir/libflux/flux/src/lib.rs"
  (cd "$dir"
   printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/influxdata/influxdb/v2/cmd/influxd"\n\t_ "github.com/influxdata/pkg-config"\n)\n' >tools.go
   go mod tidy >/dev/null
   go build -o "$dir/pkg-config" github.com/influxdata/pkg-config
   mkdir -p "$out.tmp"
   env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET_DIR CGO_ENABLED=1 PKG_CONFIG="$dir/pkg-config" \
     go build -trimpath -tags sqlite_foreign_keys,sqlite_json \
     -ldflags "-s -w -X main.version=$INFLUXDB2_VERSION" \
     -o "$out.tmp/influxd" github.com/influxdata/influxdb/v2/cmd/influxd)
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

build_influx_cli() {
  local out=$cache/influx-cli-$INFLUX_CLI_VERSION dir
  [ -x "$out/influx" ] && return
  log "building influx CLI $INFLUX_CLI_VERSION"
  dir=$(wrapper github.com/influxdata/influx-cli/v2 "$INFLUX_CLI_MODULE_VERSION")
  (cd "$dir"
   mkdir -p "$out.tmp"
   # `go install pkg@version` would ask the proxy for the module's version list, which it refuses.
   GOFLAGS="-buildvcs=false -mod=mod" go build -trimpath \
     -ldflags "-s -w -X main.version=${INFLUX_CLI_VERSION#v} -X main.commit=${INFLUX_CLI_MODULE_VERSION##*-}" \
     -o "$out.tmp/influx" github.com/influxdata/influx-cli/v2/cmd/influx)
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

# Keyed by lumberjack's version and by the program's own text, which lives in the repository.
lumberjack_out() {
  echo "$cache/lumberjack-$LUMBERJACK_VERSION-$(sha256sum "$here/lumberjack/main.go" | cut -c1-12)"
}

build_lumberjack() {
  local out dir
  out=$(lumberjack_out)
  [ -x "$out/lumberjack-writer" ] && return
  log "building lumberjack-writer ($LUMBERJACK_MODULE $LUMBERJACK_VERSION)"
  dir=$(wrapper "$LUMBERJACK_MODULE" "$LUMBERJACK_VERSION")
  cp "$here/lumberjack/main.go" "$dir/main.go"
  (cd "$dir"
   go mod tidy >/dev/null
   mkdir -p "$out.tmp"
   go build -trimpath -ldflags "-s -w" -o "$out.tmp/lumberjack-writer" .)
  rm -rf "$out"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(etcd kube kwok helm4 helm3 helm-diff telegraf influxdb18 influxdb2 influx-cli lumberjack)
for t in "${want[@]}"; do
  case "$t" in
  etcd) build_etcd; echo "ETCD=$cache/etcd-$ETCD_VERSION/etcd" ;;
  kube)
    build_kube
    echo "KUBE_APISERVER=$cache/kubernetes-$KUBE_VERSION/kube-apiserver"
    echo "KUBE_CONTROLLER_MANAGER=$cache/kubernetes-$KUBE_VERSION/kube-controller-manager"
    echo "KUBE_SCHEDULER=$cache/kubernetes-$KUBE_VERSION/kube-scheduler"
    echo "KUBECTL=$cache/kubernetes-$KUBE_VERSION/kubectl"
    ;;
  kwok) build_kwok; echo "KWOK=$cache/kwok-$KWOK_VERSION/kwok" ;;
  helm4) build_helm 4 "$HELM4_VERSION"; echo "HELM4=$cache/helm-$HELM4_VERSION/helm" ;;
  helm3) build_helm 3 "$HELM3_VERSION"; echo "HELM3=$cache/helm-$HELM3_VERSION/helm" ;;
  helm-diff) build_helm_diff; echo "HELM_PLUGINS=$cache/helm-diff-$HELM_DIFF_VERSION/plugins" ;;
  telegraf) build_telegraf; echo "TELEGRAF=$(telegraf_out)/telegraf" ;;
  influxdb18) build_influxdb18; echo "INFLUXD18=$cache/influxdb-$INFLUXDB18_VERSION/influxd" ;;
  influxdb2) build_influxdb2; echo "INFLUXD2=$cache/influxdb-$INFLUXDB2_VERSION/influxd" ;;
  influx-cli) build_influx_cli; echo "INFLUX_CLI=$cache/influx-cli-$INFLUX_CLI_VERSION/influx" ;;
  lumberjack) build_lumberjack; echo "LUMBERJACK=$(lumberjack_out)/lumberjack-writer" ;;
  *) echo "tools: unknown tool $t" >&2; exit 2 ;;
  esac
done

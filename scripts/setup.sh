#!/usr/bin/env bash
# Installs what vigil's tests and demo need on Debian/Ubuntu, if missing:
# clickhouse-server, clickhouse-client, prometheus (promtool),
# prometheus-alertmanager, kcat and zookeeper (the services and tools the
# tests and later features use), make, a C toolchain for the race detector, plus the Go
# modules. As root it uses
# apt-get; otherwise it prints exactly what to install and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have clickhouse-server || have clickhouse || need+=(clickhouse-server)
have clickhouse-client || have clickhouse || need+=(clickhouse-client)
have promtool || need+=(prometheus)
have prometheus-alertmanager || have alertmanager || need+=(prometheus-alertmanager)
have kcat || need+=(kcat)
# ZooKeeper (and the Java it runs on) for the ClickHouse cluster tests.
[ -e /usr/share/java/zookeeper.jar ] && have java || need+=(zookeeper)
# make runs the targets; gcc and libc6-dev give cgo, which `go test -race` needs.
have make || need+=(make)
have gcc || need+=(gcc libc6-dev)
[ -e /usr/include/stdio.h ] || need+=(libc6-dev)
[ -e /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)

SUDO=""
if [ "$(id -u)" != 0 ] && have sudo && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"   # passwordless sudo, e.g. on CI runners
fi

if [ ${#need[@]} -gt 0 ]; then
  if { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; } && have apt-get; then
    echo "setup: installing ${need[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # --no-install-recommends keeps it small; policy-rc.d stops package
    # scripts from starting system services we do not use (tests start their own).
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ "$made_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "setup: missing packages: ${need[*]}" >&2
    echo "setup: install them with:  sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

if ! have go; then
  echo "setup: Go is not on PATH; install Go 1.26 from https://go.dev/dl/ (or add /usr/local/go/bin to PATH)" >&2
  exit 1
fi
go mod download
echo "setup: ok ($(go version | cut -d' ' -f3), clickhouse $(clickhouse-client --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1))" >&2

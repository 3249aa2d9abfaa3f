#!/usr/bin/env bash
# Install the Debian packages whose programs are missing, once; `apt-get update` only if needed.
# Usage: deps/system-packages.sh demo|test|bench
# Each entry is "program-to-look-for:debian-package".
set -euo pipefail
demo=(java:default-jre-headless mvn:maven /usr/sbin/mosquitto:mosquitto)
test=("${demo[@]}" /usr/lib/postgresql/15/bin/initdb:postgresql /usr/bin/chromium:chromium)
# The benchmarks: wrk generates the API bench's HTTP load from a process of its own.
bench=("${demo[@]}" wrk:wrk)
case "${1:-demo}" in
  demo) wanted=("${demo[@]}") ;;
  test) wanted=("${test[@]}") ;;
  bench) wanted=("${bench[@]}") ;;
  *) echo "usage: $0 demo|test|bench" >&2; exit 2 ;;
esac
missing=()
for entry in "${wanted[@]}"; do
  program=${entry%%:*}
  package=${entry#*:}
  if [[ $program == /* ]]; then [[ -x $program ]] && continue; else command -v "$program" >/dev/null && continue; fi
  missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

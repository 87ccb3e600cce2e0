#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (a test tool's own browser download fails here).
# Installs it when missing and we may (root with apt); otherwise says so and returns 1.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    && exit 0
fi
exit 1

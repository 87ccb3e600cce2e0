#!/usr/bin/env bash
# The browser test of analytics.js loads Segment's own bundle (@segment/analytics-next's
# standalone UMD build), fetched from the npm registry with `npm pack` and unpacked under
# var/ (never committed): only the .js files of dist/umd (about 0.2 MB), no node_modules.
# Prints the folder; returns 1 (saying why on stderr) when npm or the registry is missing.
set -u
VERSION="${ANALYTICS_NEXT_VERSION:-1.84.3}"
DEST="${ANALYTICS_NEXT_DIR:-$(dirname "$0")/../var/vendor/analytics-next/$VERSION}"
if [ -f "$DEST/index.js" ]; then echo "$DEST"; exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "npm not found: cannot fetch @segment/analytics-next" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
( cd "$TMP" && npm pack --silent "@segment/analytics-next@$VERSION" >/dev/null ) \
  || { echo "npm pack @segment/analytics-next@$VERSION failed" >&2; exit 1; }
tar -xzf "$TMP"/segment-analytics-next-*.tgz -C "$TMP" package/dist/umd package/LICENSE.MD \
  || { echo "unexpected package layout" >&2; exit 1; }
mkdir -p "$DEST"
cp "$TMP"/package/dist/umd/*.js "$TMP"/package/LICENSE.MD "$DEST"/
# The UMD files name their source maps, which are not kept: drop the comment.
sed -i '/^\/\/# sourceMappingURL=/d' "$DEST"/*.js
echo "$DEST"

#!/usr/bin/env bash
# Fetch the browser-side assets the book serves itself, so no page loads anything from a CDN.
# Runs once at setup (`make vendor`); the build and the site never touch the network.
#   requirejs                     -> _static/vendor/require.js                  (AMD loader the widget manager needs)
#   @jupyter-widgets/html-manager -> _static/vendor/html-manager/embed-amd.js   (renders saved ipywidgets state)
# The versions are pinned here and nowhere else; _config.yml lists the resulting paths.
set -euo pipefail

REQUIREJS_VERSION=2.3.8
HTML_MANAGER_VERSION=1.0.15

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/_static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! command -v npm >/dev/null; then
  echo "tools/vendor.sh: npm is not installed; install Node.js (Debian: sudo apt-get install -y npm) and rerun make vendor" >&2
  exit 2
fi

# npm pack downloads the published tarball from the registry without installing anything.
pack() { (cd "$work" && npm pack --silent "$1" | tail -n 1); }

rm -rf "$dest" && mkdir -p "$dest/html-manager"

tgz="$(pack "requirejs@$REQUIREJS_VERSION")"
tar -xzf "$work/$tgz" -C "$work" package/require.js
install -m 0644 "$work/package/require.js" "$dest/require.js"
rm -rf "$work/package"

# embed-amd.js loads its fonts and icons relative to itself, so the whole dist/ goes along (no source maps).
tgz="$(pack "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION")"
tar -xzf "$work/$tgz" -C "$work" package/dist
find "$work/package/dist" -maxdepth 1 -type f ! -name '*.map' -exec install -m 0644 {} "$dest/html-manager/" \;

test -s "$dest/require.js" && test -s "$dest/html-manager/embed-amd.js"
echo "vendored requirejs $REQUIREJS_VERSION and @jupyter-widgets/html-manager $HTML_MANAGER_VERSION into _static/vendor/"

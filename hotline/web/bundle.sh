#!/usr/bin/env bash
# Builds the pages' SIP client into DIR (default: hotline/web/static, where it is committed):
# jssip.min.js, JsSIP (CommonJS only) bundled for the browser by esbuild, and
# jssip.min.js.LICENSE.txt, the versions, the bundle's sha256 and the licence of every package in it.
# package.json pins every version (its overrides pin JsSIP's own dependencies, so there is no
# lockfile), so every machine builds the same bytes: `make web-check` rebuilds and compares.
set -euo pipefail
web=$(cd "$(dirname "$0")" && pwd)
out=$(realpath "${1:-$web/static}")
bundled=(jssip debug ms events sdp-transform)  # what esbuild pulls into the bundle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$web/package.json" "$work/"
npm install --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$work" >/dev/null
modules="$work/node_modules"
"$modules/.bin/esbuild" "$modules/jssip/lib/JsSIP.js" --bundle --format=iife --global-name=JsSIP \
  --minify --log-level=warning --outfile="$out/jssip.min.js"
version() { node -p "require('$modules/$1/package.json').version"; }
{
  echo "jssip.min.js: JsSIP $(version jssip), bundled for the browser by esbuild $(version esbuild) from"
  echo "hotline/web/package.json (hotline/web/bundle.sh; \`make web-check\` rebuilds it and compares)."
  echo "sha256 $(sha256sum "$out/jssip.min.js" | cut -d' ' -f1)"
  echo
  echo "It holds these packages, each under its own licence, as each ships it:"
  for p in "${bundled[@]}"; do
    echo
    echo "=== $p $(version "$p") ($(node -p "require('$modules/$p/package.json').license"))"
    echo
    cat "$(find "$modules/$p" -maxdepth 1 -iname 'licen[cs]e*' | sort | head -1)"
  done
} > "$out/jssip.min.js.LICENSE.txt"

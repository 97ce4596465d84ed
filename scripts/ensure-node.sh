#!/usr/bin/env bash
# The project's Node.js: the release line named in .node-version (Node 24 LTS). When the machine's
# own `node` is older than that line, the official Node binary of .node-version is installed from
# the npm registry (package node-linux-<arch>, checked against the registry's integrity hash by
# npm) into .tools/node, which the Makefile and bin/ put first on PATH. The machine's node and npm
# only bootstrap it. Nothing happens when the machine's node is recent enough or .tools/node already
# holds the wanted version. Prints the path of the node it settled on with --print.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
want=$(tr -d '[:space:]' < "$root/.node-version")
want_major=${want%%.*}
dest=$root/.tools/node

major_of () { "$1" --version 2>/dev/null | sed -nE 's/^v([0-9]+)\..*/\1/p'; }

print=0; [ "${1:-}" = "--print" ] && print=1
done_with () { [ "$print" = 1 ] && echo "$1"; exit 0; }

# The machine's PATH, without .tools/node/bin.
system_path=$(tr ':' '\n' <<<"$PATH" | grep -vFx "$dest/bin" | paste -sd: || true)

# npm finds its global config (registry, cafile, proxy of this machine) next to the node it runs
# on: .tools/node/etc/npmrc is a link to the machine's, so npm keeps its settings on our Node.
link_npmrc () {
  [ -e "$dest/etc/npmrc" ] && return 0
  local global
  global=$(PATH=$system_path npm config get globalconfig 2>/dev/null || true)
  if [ -n "$global" ] && [ -f "$global" ]; then mkdir -p "$dest/etc" && ln -sfn "$global" "$dest/etc/npmrc"; fi
}

if [ -x "$dest/bin/node" ] && [ "$("$dest/bin/node" --version)" = "v$want" ]; then link_npmrc; done_with "$dest/bin/node"; fi
# The machine's node, not ours.
system_node=$(PATH=$system_path command -v node || true)
if [ -n "$system_node" ] && [ "$(major_of "$system_node")" -ge "$want_major" ] 2>/dev/null; then done_with "$system_node"; fi

case $(uname -m) in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  ppc64le) arch=ppc64le ;;
  s390x) arch=s390x ;;
  *) echo "ensure-node: no official Node binary for $(uname -m); install Node $want_major yourself" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "ensure-node: npm is needed to fetch Node $want (apt-get install npm)" >&2; exit 1; }

echo "ensure-node: machine node: ${system_node:-none}${system_node:+ $("$system_node" --version)}; installing Node $want (node-linux-$arch from the npm registry) into .tools/node" >&2
mkdir -p "$root/.tools"
tmp=$(mktemp -d "$root/.tools/node-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-$arch@$want" >/dev/null)
mkdir "$tmp/node"
tar -xzf "$tmp"/node-linux-"$arch"-"$want".tgz -C "$tmp/node" --strip-components=1 package/bin/node package/LICENSE
[ "$("$tmp/node/bin/node" --version)" = "v$want" ] || { echo "ensure-node: the downloaded node does not report v$want" >&2; exit 1; }
rm -rf "$dest" && mv "$tmp/node" "$dest"
link_npmrc
echo "ensure-node: $("$dest/bin/node" --version) in .tools/node/bin" >&2
done_with "$dest/bin/node"

#!/usr/bin/env bash
# Benchmarks Passerelle side by side with biboumi, the reference XMPP-IRC
# gateway: installs what it needs (the test servers, biboumi, sqlite3),
# then runs every scenario against a private Prosody and ngircd on
# loopback. The table goes to stdout and bench/results.md, the figures to
# bench/results.json (a -quick smoke run leaves those alone). Extra
# arguments go to the benchmark (for example -quick, or -gateways
# passerelle to measure it alone).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in biboumi sqlite3; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	# Keep apt from starting a system biboumi.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
		$sudo chmod 755 /usr/sbin/policy-rc.d
	fi
	$sudo apt-get -o DPkg::Lock::Timeout=600 update -q
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

# A full run replaces the committed results; a -quick one keeps them.
out=(-out bench/results.json -markdown bench/results.md)
for a in "$@"; do
	if [ "$a" = "-quick" ] || [ "$a" = "--quick" ]; then
		out=(-out "${TMPDIR:-/tmp}/passerelle-bench-quick.json")
	fi
done
exec go run ./bench "${out[@]}" "$@"

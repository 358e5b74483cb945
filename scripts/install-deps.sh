#!/usr/bin/env bash
# Installs what the tests and the demo need on a Debian machine with Go:
# the real servers (from Debian's packages, never started as system services)
# and the Go linters.
set -euo pipefail

packages=(prosody ejabberd ngircd inspircd dovecot-imapd dovecot-lmtpd postfix)
staticcheck_version=v0.8.2

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	# Keep apt from starting system daemons (ejabberd would take 5222, 5269,
	# 5280 and start an epmd) that would take the test ports.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
		$sudo chmod 755 /usr/sbin/policy-rc.d
	fi
	# Postfix asks how to configure itself: the tests bring their own config.
	echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
	$sudo apt-get -o DPkg::Lock::Timeout=600 update -q
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v staticcheck >/dev/null && [ ! -x "$(go env GOPATH)/bin/staticcheck" ]; then
	go install "honnef.co/go/tools/cmd/staticcheck@${staticcheck_version}"
fi

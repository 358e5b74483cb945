#!/usr/bin/env bash
# Brings up on loopback a private Prosody, a private IRC server (ngircd) and
# Passerelle next to them, with two transports: IRC (irc.localhost) and the
# in-memory test network (gw.localhost). Tells you how to log in with any
# XMPP client. Everything lives under one run directory; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
run=${PASSERELLE_DEMO_DIR:-/tmp/passerelle-demo}
mkdir -p "$run" && chmod 755 "$run"
go build -tags demo -o "$run/passerelle" ./cmd/passerelle

c2s=5222 comp=5347 ircport=6667 domain=localhost gw=gw.localhost ircgw=irc.localhost secret=demo-secret
cat >"$run/prosody.cfg.lua" <<CFG
pidfile = "$run/prosody.pid"
data_path = "$run/prosody-data"
log = { info = "$run/prosody.log" }
run_as_root = true
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $c2s }
component_ports = { $comp }
component_interface = "127.0.0.1"
s2s_ports = { }
http_ports = { }
https_ports = { }
legacy_ssl_ports = { }
modules_enabled = { "roster", "saslauth", "disco", "ping", "presence", "register", "posix" }
modules_disabled = { "s2s", "tls" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
authentication = "internal_plain"
VirtualHost "$domain"
Component "$gw"
    component_secret = "$secret"
Component "$ircgw"
    component_secret = "$secret"
CFG
cat >"$run/ngircd.conf" <<CFG
[Global]
	Name = irc.localhost
	Info = Passerelle demo IRC server
	AdminInfo1 = demo
	AdminInfo2 = loopback
	AdminEMail = root@localhost
	Listen = 127.0.0.1
	Ports = $ircport
	MotdPhrase = Passerelle demo
	ServerUID = 65534
	ServerGID = 65534
[Limits]
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxNickLength = 32
[Options]
	DNS = no
	Ident = no
	PAM = no
	IncludeDir = $run/ngircd.conf.d
CFG
mkdir -p "$run/ngircd.conf.d"
mkdir -p "$run/prosody-data"
for u in alice bob; do
	prosodyctl --config "$run/prosody.cfg.lua" register "$u" "$domain" "$u-pw" >/dev/null
done

cat >"$run/passerelle.toml" <<CFG
log_level = "info"
[xmpp]
server = "127.0.0.1:$comp"
[database]
path = "$run/passerelle.db"
[access]
allow_domains = ["$domain"]
[[transport]]
kind = "testnet"
domain = "$gw"
secret = "$secret"
name = "Demo network"
[transport.options]
accounts = [
  { username = "alice", password = "demo", contacts = ["friend@demo.example"] },
  { username = "bob", password = "demo", contacts = ["friend@demo.example"] },
]

[[transport]]
kind = "irc"
domain = "$ircgw"
secret = "$secret"
name = "IRC"
[transport.options]
default_network = "irc.localhost"
[transport.options.networks."irc.localhost"]
host = "127.0.0.1"
port = $ircport
tls = false
CFG

prosody --config "$run/prosody.cfg.lua" -F >"$run/prosody.out" 2>&1 &
prosody_pid=$!
ngircd -n -f "$run/ngircd.conf" >"$run/ngircd.out" 2>&1 &
ngircd_pid=$!
trap 'kill $prosody_pid $ngircd_pid 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$comp) 2>/dev/null && break; sleep 0.1; done

cat <<MSG

Prosody is listening on 127.0.0.1:$c2s (domain $domain, no TLS).
An IRC server (ngircd) is on 127.0.0.1:$ircport: point any IRC client at it.
Log in with any XMPP client as alice@$domain / alice-pw (or bob@$domain / bob-pw).

IRC: register with $ircgw (service discovery → register) with any nickname,
then join the room #demo@$ircgw (the network irc.localhost is the default;
#demo%irc.localhost@$ircgw is the same room) and chat with IRC nick bob as
bob@$ircgw.

Test network: register with $gw using username "alice", password "demo",
and chat with friend%demo.example@$gw: it echoes what you write.
Files: $run. Ctrl-C stops everything.

MSG
"$run/passerelle" -config "$run/passerelle.toml"

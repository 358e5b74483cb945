-- Add to /etc/prosody/prosody.cfg.lua (or a file in conf.d/) to let
-- Passerelle connect as external components (XEP-0114). Each transport in
-- passerelle.toml needs one Component with the same domain and secret.

-- Listen for components on loopback only.
component_ports = { 5347 }
component_interface = "127.0.0.1"

Component "irc.example.org"
    component_secret = "replace with the content of /etc/passerelle/irc.secret"

Component "mail.example.org"
    component_secret = "replace with the content of /etc/passerelle/mail.secret"

package irc

import (
	"fmt"
	"strings"

	"passerelle.dev/passerelle/transports"
)

// The SASL password is bound to one network: it goes to that network only,
// never to another the user reaches, and never in clear unless the admin
// allowed it for that network (allow_plaintext_sasl).

// saslNetwork is the network a registration's SASL password belongs to:
// the one named in the registration, else the default network, else the
// only listed network; "" if none.
func (t *Transport) saslNetwork(v transports.Values) string {
	if n := strings.ToLower(v[fieldSASLNetwork]); n != "" {
		return n
	}
	if t.cfg.DefaultNetwork != "" {
		return t.cfg.DefaultNetwork
	}
	if len(t.cfg.Networks) == 1 {
		for n := range t.cfg.Networks {
			return n
		}
	}
	return ""
}

// saslNetworkHint completes the field's description with its default.
func (t *Transport) saslNetworkHint() string {
	if n := t.saslNetwork(nil); n != "" {
		return " (default " + n + ")"
	}
	return ""
}

// bindSASL checks the network of the SASL password and binds the password
// to it. The gateway fills a secret left empty with the stored one: a
// password kept that way while the network changed was entered for another
// network, so it is dropped and the user must enter it again.
func (t *Transport) bindSASL(v, prev transports.Values) error {
	if n := strings.ToLower(v[fieldSASLNetwork]); n != "" {
		if !validNetwork(n) || !t.networkAllowed(n) {
			return transports.Errorf(transports.BadRequest, "%q is not a network of this gateway", n)
		}
		v[fieldSASLNetwork] = n
	}
	if v[fieldPassword] == "" {
		return nil
	}
	n := t.saslNetwork(v)
	if n == "" {
		return transports.Errorf(transports.BadRequest, "name the network your SASL password is for")
	}
	v[fieldSASLNetwork] = n
	if prev[fieldPassword] != "" && v[fieldPassword] == prev[fieldPassword] && t.saslNetwork(prev) != n {
		delete(v, fieldPassword)
	}
	return nil
}

// saslFor decides whether a connection to n authenticates with SASL. It
// returns a note for the user when the password must not be sent there.
func (n *network) saslFor() (use bool, refusal string) {
	bound := n.s.t.saslNetwork(n.s.values)
	if n.s.values[fieldPassword] != "" && bound == "" && !n.s.saslUnboundTold {
		// A registration from before the binding, on a gateway with
		// several networks and no default: the password goes nowhere.
		n.s.saslUnboundTold = true
		n.notice("Your SASL password is not sent to any network: it names none. Register again and fill in the network of the SASL password.")
	}
	if n.s.values[fieldPassword] == "" || n.name != bound {
		return false, ""
	}
	if !*n.cfg.TLS && !n.cfg.AllowPlaintextSASL {
		return false, fmt.Sprintf("Not connected to %s: the connection has no TLS, and this gateway does not send your SASL password in clear (the administrator can allow it for %s with allow_plaintext_sasl).", n.name, n.name)
	}
	return true, ""
}

// Package netguard keeps user-chosen connections away from the gateway's own
// network: a transport that dials a host a user named (an IRC network that
// the admin did not list, a custom mail server) dials through a Policy, which
// refuses loopback, private, link-local and other special-purpose addresses
// unless the admin allowed them.
//
// The check runs on the address actually dialled, after name resolution, so
// a name that resolves (or later re-resolves) to a refused address is
// refused too.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrRefused is wrapped by errors for connections the policy refuses.
var ErrRefused = errors.New("netguard: address not allowed")

// special are the ranges refused besides those netip classifies itself
// (loopback, private, link-local, multicast, unspecified).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"), // documentation
}

// Policy decides which addresses user-chosen connections may reach. The
// zero Policy allows public unicast addresses only.
type Policy struct {
	// Allow lists ranges that are allowed although special, such as a
	// private network the admin means users to reach.
	Allow []netip.Prefix
}

// ParsePrefixes parses addresses ("10.1.2.3", "::1") and ranges
// ("10.0.0.0/8") as written in a config file.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("netguard: %q: %w", s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("netguard: %q: not an address or range", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Check returns an error wrapping ErrRefused if the policy refuses a.
func (p Policy) Check(a netip.Addr) error {
	a = a.Unmap()
	for _, allowed := range p.Allow {
		if allowed.Contains(a) {
			return nil
		}
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a.IsUnspecified() || isSpecial(a) {
		return fmt.Errorf("%w: %s", ErrRefused, a)
	}
	return nil
}

func isSpecial(a netip.Addr) bool {
	for _, p := range special {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Dialer returns a copy of base (or of a zero net.Dialer) that refuses, at
// connect time, every address the policy refuses.
func (p Policy) Dialer(base *net.Dialer) *net.Dialer {
	var d net.Dialer
	if base != nil {
		d = *base
	}
	prev := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrRefused, address)
		}
		if err := p.Check(ap.Addr()); err != nil {
			return err
		}
		if prev != nil {
			return prev(network, address, c)
		}
		return nil
	}
	return &d
}

// DialContext dials address through a Dialer of the policy.
func (p Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return p.Dialer(nil).DialContext(ctx, network, address)
}

// UserText describes a failed connection to a user-chosen host without
// telling a refused port from a silent one, or either from a TLS failure,
// so the gateway cannot be used to scan a network. The full error belongs
// in the log.
func UserText(err error) string {
	if errors.Is(err, ErrRefused) {
		return "that server's address is not allowed on this gateway"
	}
	return "the server could not be reached, or did not answer as expected"
}

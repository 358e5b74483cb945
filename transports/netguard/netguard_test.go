package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"passerelle.dev/passerelle/transports/netguard"
)

func TestCheck(t *testing.T) {
	allow, err := netguard.ParsePrefixes([]string{"10.1.0.0/16", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	p := netguard.Policy{Allow: allow}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1", false},
		{"127.45.1.2", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"10.2.3.4", false},
		{"10.1.3.4", true}, // listed
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"fe80::1", false},
		{"fc00::1", false},
		{"::", false},
		{"::1", true}, // listed
		{"93.184.216.34", true},
		{"2a00:1450:4001::1", true},
	} {
		err := p.Check(netip.MustParseAddr(tc.addr))
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s) = %v, want allowed %v", tc.addr, err, tc.ok)
		}
		if err != nil && !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("Check(%s): %v does not wrap ErrRefused", tc.addr, err)
		}
	}
}

func TestParsePrefixesRefusesGarbage(t *testing.T) {
	for _, s := range []string{"", "example.org", "10.0.0.0/33", "1.2.3"} {
		if _, err := netguard.ParsePrefixes([]string{s}); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted it", s)
		}
	}
}

// TestDialerChecksResolvedAddress dials a real loopback listener by name:
// the policy refuses it after resolution, and a policy that lists loopback
// reaches it.
func TestDialerChecksResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err = netguard.Policy{}.DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
	if !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("dial localhost: got %v, want ErrRefused", err)
	}
	if got := netguard.UserText(err); got == "" || got == err.Error() {
		t.Errorf("UserText = %q", got)
	}

	allow, _ := netguard.ParsePrefixes([]string{"127.0.0.0/8", "::1"})
	c, err := netguard.Policy{Allow: allow}.DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	c.Close()
}

// TestUserTextHidesDetail: a refused port and an unreachable one read the
// same to the user.
func TestUserTextHidesDetail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now refused
	allow, _ := netguard.ParsePrefixes([]string{"127.0.0.0/8"})
	_, refused := netguard.Policy{Allow: allow}.DialContext(context.Background(), "tcp", addr)
	if refused == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, timedOut := netguard.Policy{Allow: allow}.DialContext(ctx, "tcp", addr)
	if timedOut == nil {
		t.Fatal("dial with a done context succeeded")
	}
	if a, b := netguard.UserText(refused), netguard.UserText(timedOut); a != b {
		t.Errorf("refused reads %q, timeout %q: a user could tell them apart", a, b)
	}
}

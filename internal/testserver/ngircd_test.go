package testserver

import (
	"net"
	"testing"
)

func TestNgircdTwoInstances(t *testing.T) {
	a := StartNgircd(t, NgircdConfig{})
	b := StartNgircd(t, NgircdConfig{ServerName: "irc2.test"})
	if a.Port() == b.Port() || a.RunDir == b.RunDir || b.Name() != "irc2.test" {
		t.Fatalf("instances share state: %s %s", a.Addr(), b.Addr())
	}
	a.Stop()
	a.Stop()
	if c, err := net.Dial("tcp", a.Addr()); err == nil {
		c.Close()
		t.Fatal("stopped server still accepts connections")
	}
	a.Restart(t)
	c, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatalf("after restart: %v\n%s", err, a.Log())
	}
	c.Close()
}

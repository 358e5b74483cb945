package gateway

import (
	"encoding/xml"
	"runtime"
	"runtime/debug"

	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/stanza"
)

// pingName is the ping payload (XEP-0199).
var pingName = xml.Name{Space: nsPing, Local: "ping"}

type discoInfo struct {
	XMLName    xml.Name        `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string          `xml:"node,attr,omitempty"`
	Identities []info.Identity `xml:"identity"`
	Features   []info.Feature  `xml:"feature"`
}

type discoItems struct {
	XMLName xml.Name    `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string      `xml:"node,attr,omitempty"`
	Items   []discoItem `xml:"item"`
}

type discoItem struct {
	JID  string `xml:"jid,attr"`
	Node string `xml:"node,attr,omitempty"`
	Name string `xml:"name,attr,omitempty"`
}

type versionQuery struct {
	XMLName xml.Name `xml:"jabber:iq:version query"`
	Name    string   `xml:"name"`
	Version string   `xml:"version"`
	OS      string   `xml:"os,omitempty"`
}

// gatewayQuery is the jabber:iq:gateway payload (XEP-0100).
type gatewayQuery struct {
	XMLName xml.Name `xml:"jabber:iq:gateway query"`
	Desc    string   `xml:"desc,omitempty"`
	Prompt  string   `xml:"prompt,omitempty"`
	JID     string   `xml:"jid,omitempty"`
}

// serveDiscoInfo answers disco#info about the transport domain and its
// command nodes.
func (g *Gateway) serveDiscoInfo(s *inbound) bool {
	p := s.payload()
	var q struct {
		Node string `xml:"node,attr"`
	}
	_, _ = s.decodeChild(p, &q)
	switch {
	case q.Node == nsCommands:
		g.replyResult(s, discoInfo{Node: nsCommands, Identities: []info.Identity{{Category: "automation", Type: "command-list", Name: "Commands"}}})
	case q.Node != "":
		for _, c := range g.cmds {
			if c.node == q.Node {
				g.replyResult(s, commandInfo(c))
				return true
			}
		}
		g.replyError(s, stanzaErr(stanza.Cancel, stanza.ItemNotFound, "No such node."))
	default:
		g.replyResult(s, g.discoInfo())
	}
	return true
}

// serveDiscoItems answers disco#items of the transport domain, but for the
// commands node, whose list depends on who asks: the user's loop answers.
func (g *Gateway) serveDiscoItems(s *inbound) bool {
	p := s.payload()
	var q struct {
		Node string `xml:"node,attr"`
	}
	_, _ = s.decodeChild(p, &q)
	if q.Node == nsCommands {
		return false
	}
	g.replyResult(s, discoItems{Node: q.Node})
	return true
}

// servePing answers a ping (XEP-0199).
func (g *Gateway) servePing(s *inbound) bool {
	g.replyResult(s, nil)
	return true
}

// serveVersion answers jabber:iq:version (XEP-0092).
func (g *Gateway) serveVersion(s *inbound) bool {
	g.replyResult(s, versionQuery{Name: "Passerelle", Version: g.version(), OS: runtime.GOOS})
	return true
}

func (g *Gateway) discoInfo() discoInfo {
	q := discoInfo{Identities: []info.Identity{{Category: "gateway", Type: g.info.Type, Name: g.cfg.Name}}}
	if g.hasRooms() {
		// Clients look for a conference service to offer joining rooms.
		q.Identities = append(q.Identities, info.Identity{Category: "conference", Type: "text", Name: g.cfg.Name})
	}
	q.Features = g.featureList(toDomain)
	return q
}

func (g *Gateway) version() string {
	if g.cfg.Version != "" {
		return g.cfg.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// serveGatewayIQ answers jabber:iq:gateway (XEP-0100): the prompt, and the
// translation of a legacy address into its JID.
func (g *Gateway) serveGatewayIQ(s *inbound) bool {
	p := s.payload()
	if s.Type == "get" {
		g.replyResult(s, gatewayQuery{Desc: g.info.AddressDesc, Prompt: g.info.AddressPrompt})
		return true
	}
	var q gatewayQuery
	if _, err := s.decodeChild(p, &q); err != nil || q.Prompt == "" {
		g.replyError(s, stanzaErr(stanza.Modify, stanza.BadRequest, "Give the legacy address in <prompt/>."))
		return true
	}
	canon, err := g.cfg.Transport.ParseAddress(q.Prompt)
	if err != nil {
		g.replyError(s, transportError(err))
		return true
	}
	j, err := g.contactJID(canon)
	if err != nil {
		g.replyError(s, stanzaErr(stanza.Modify, stanza.JIDMalformed, "That address is too long for a JID."))
		return true
	}
	// XEP-0100 §6.3: <jid/> for current clients, <prompt/> for older ones.
	g.replyResult(s, gatewayQuery{JID: j, Prompt: j})
	return true
}

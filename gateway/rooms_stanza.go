package gateway

import (
	"encoding/xml"
)

// Multi-user chat namespaces (XEP-0045).
const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = "http://jabber.org/protocol/muc#user"
	nsMUCAdmin = "http://jabber.org/protocol/muc#admin"
	nsMUCOwner = "http://jabber.org/protocol/muc#owner"
)

var mucJoinName = xml.Name{Space: nsMUC, Local: "x"}

// mucUser is the muc#user payload of an occupant's presence.
type mucUser struct {
	XMLName xml.Name    `xml:"http://jabber.org/protocol/muc#user x"`
	Items   []mucItem   `xml:"item"`
	Status  []mucStatus `xml:"status"`
}

// mucItem describes an occupant, in muc#user and muc#admin payloads.
type mucItem struct {
	Affiliation string    `xml:"affiliation,attr,omitempty"`
	Role        string    `xml:"role,attr,omitempty"`
	JID         string    `xml:"jid,attr,omitempty"`
	Nick        string    `xml:"nick,attr,omitempty"`
	Actor       *mucActor `xml:"actor"`
	Reason      string    `xml:"reason,omitempty"`
}

type mucActor struct {
	Nick string `xml:"nick,attr,omitempty"`
}

type mucStatus struct {
	Code int `xml:"code,attr"`
}

// mucAdmin is the muc#admin query of moderation requests and lists.
type mucAdmin struct {
	XMLName xml.Name  `xml:"http://jabber.org/protocol/muc#admin query"`
	Items   []mucItem `xml:"item"`
}

// subjectOut is a room subject: unlike messageOut, it always carries
// <subject/>, as an empty one clears the subject and ends a join.
type subjectOut struct {
	XMLName xml.Name `xml:"message"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	ID      string   `xml:"id,attr,omitempty"`
	Type    string   `xml:"type,attr"`
	Subject string   `xml:"subject"`
}

package gateway

import "fmt"

// accessChanged tells a user loop that the access lists were reloaded.
type accessChanged struct{}

// AccessChanged ends the sessions of the users whose domain the access
// lists no longer allow: call it after changing what Config.Allowed
// answers. Each of those users is logged out of the legacy network, leaves
// its rooms (they stay saved, in case access comes back) and is told why.
func (g *Gateway) AccessChanged() {
	g.broadcast(accessChanged{})
}

// checkAccess logs the user out if their domain is no longer allowed.
func (u *user) checkAccess() {
	domain := u.jid.Domainpart()
	if u.g.allowed(domain) {
		return
	}
	online := len(u.resources.online) > 0
	if !online && u.session.sess == nil && !u.session.loggingIn && len(u.rooms.joined) == 0 {
		return
	}
	reason := fmt.Sprintf("Users of %s may no longer use %s: the administrator changed the access list.", domain, u.g.cfg.Name)
	u.log.Info("access withdrawn: logging out", "domain", domain)
	for _, r := range u.sortedRooms() {
		self := r.occupants[r.nick]
		self.Nick = r.nick
		for res := range r.resources {
			p := u.occupantPresence(r, self, res, "unavailable", mucItem{Reason: reason}, 110, 333)
			p.Status = reason
			_ = u.send(p)
		}
		delete(u.rooms.joined, r.addr)
	}
	hadSession := u.session.sess != nil
	u.logout(reason)
	if online {
		_ = u.send(messageOut{From: u.g.domain.String(), To: u.jid.String(), ID: u.g.newID(), Type: "chat", Body: reason})
		if !hadSession {
			// logout told the transport's presence only with a session.
			u.sendDomainPresence("unavailable", "", reason)
		}
	}
	clear(u.resources.online)
	u.resources.best = bestPresence(nil)
}

package quota

// Bucket names who shares a quota's usage: the user and client id the
// matched entity names, "" for a component it does not have. A default
// component stands for the connection's own name, so each user or client
// id under a default has its own bucket.
type Bucket struct {
	User, ClientID string
	// HasUser and HasClientID say which components the entity has.
	HasUser, HasClientID bool
}

// Resolved is the quota in force for one key and who shares it.
type Resolved struct {
	Limit  float64
	Bucket Bucket
	// Entity is the entity whose value it is.
	Entity Entity
}

// Resolve returns the quota in force for key on a connection of user and
// clientID, in Kafka's order of precedence (see the package doc); ok is
// false when no entity sets key.
func (s Set) Resolve(user, clientID, key string) (r Resolved, ok bool) {
	if len(s) == 0 {
		return r, false
	}
	u, ud := Named(user), DefaultName()
	c, cd := Named(clientID), DefaultName()
	order := []Entity{
		{User: u, ClientID: c},
		{User: u, ClientID: cd},
		{User: u},
		{User: ud, ClientID: c},
		{User: ud, ClientID: cd},
		{User: ud},
		{ClientID: c},
		{ClientID: cd},
	}
	for _, e := range order {
		q, found := s[e.Key()]
		if !found {
			continue
		}
		v, set := q.Values[key]
		if !set {
			continue
		}
		b := Bucket{HasUser: e.User != nil, HasClientID: e.ClientID != nil}
		if b.HasUser {
			b.User = user
		}
		if b.HasClientID {
			b.ClientID = clientID
		}
		return Resolved{Limit: v, Bucket: b, Entity: q.Entity}, true
	}
	return r, false
}

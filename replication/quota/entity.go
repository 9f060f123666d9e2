package quota

import (
	"fmt"
	"strconv"
	"strings"
)

// Entity types as the protocol names them.
const (
	TypeUser     = "user"
	TypeClientID = "client-id"
	TypeIP       = "ip"
)

// Anonymous is the user of a connection that did not authenticate.
const Anonymous = "ANONYMOUS"

// Name is one component of an entity: a name, or the default (the
// protocol's null name).
type Name struct {
	Default bool   `json:"default,omitempty"`
	Name    string `json:"name,omitempty"`
}

// Named returns the component for name.
func Named(name string) *Name { return &Name{Name: name} }

// DefaultName returns the default component.
func DefaultName() *Name { return &Name{Default: true} }

// String is the name, or <default>.
func (n *Name) String() string {
	if n.Default {
		return "<default>"
	}
	return n.Name
}

// Entity is who a quota applies to: a user, a client id, or both; nil
// components are not part of it.
type Entity struct {
	User     *Name `json:"user,omitempty"`
	ClientID *Name `json:"client_id,omitempty"`
}

// Key is the entity's canonical text, unique per entity: the key of a Set.
func (e Entity) Key() string {
	var parts []string
	if e.User != nil {
		parts = append(parts, keyPart(TypeUser, e.User))
	}
	if e.ClientID != nil {
		parts = append(parts, keyPart(TypeClientID, e.ClientID))
	}
	return strings.Join(parts, ",")
}

func keyPart(typ string, n *Name) string {
	if n.Default {
		return typ + "=<default>"
	}
	return typ + "=" + strconv.Quote(n.Name)
}

// String is Key, for messages.
func (e Entity) String() string { return e.Key() }

// Component is one (type, name) of an entity as the protocol carries it;
// Name nil is the default.
type Component struct {
	Type string
	Name *string
}

// FromComponents builds an entity from the protocol's components. It
// refuses an empty entity, a repeated or unknown type, and ip entities
// (Sluice has no connection-rate quotas), with messages naming why.
func FromComponents(cs []Component) (Entity, error) {
	var e Entity
	if len(cs) == 0 {
		return e, fmt.Errorf("an entity needs at least one of %s and %s", TypeUser, TypeClientID)
	}
	for _, c := range cs {
		n := DefaultName()
		if c.Name != nil {
			n = Named(*c.Name)
		}
		switch c.Type {
		case TypeUser:
			if e.User != nil {
				return e, fmt.Errorf("entity type %s given twice", c.Type)
			}
			e.User = n
		case TypeClientID:
			if e.ClientID != nil {
				return e, fmt.Errorf("entity type %s given twice", c.Type)
			}
			e.ClientID = n
		case TypeIP:
			return e, fmt.Errorf("ip quotas (connection_creation_rate) are not supported; quotas apply to %s and %s", TypeUser, TypeClientID)
		default:
			return e, fmt.Errorf("unknown entity type %q; use %s or %s", c.Type, TypeUser, TypeClientID)
		}
	}
	return e, nil
}

// Components returns the entity as the protocol carries it: user first.
func (e Entity) Components() []Component {
	var cs []Component
	add := func(typ string, n *Name) {
		if n == nil {
			return
		}
		c := Component{Type: typ}
		if !n.Default {
			name := n.Name
			c.Name = &name
		}
		cs = append(cs, c)
	}
	add(TypeUser, e.User)
	add(TypeClientID, e.ClientID)
	return cs
}

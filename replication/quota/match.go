package quota

import "fmt"

// Match types of a DescribeClientQuotas filter component.
const (
	MatchExact   int8 = 0 // the entity's component has this name
	MatchDefault int8 = 1 // the entity's component is the default
	MatchAny     int8 = 2 // the entity has the component, named or default
)

// Filter is one DescribeClientQuotas component filter.
type Filter struct {
	Type  string
	Match int8
	Name  *string // for MatchExact
}

// Match returns the quotas matching every filter, sorted by entity; with
// strict, an entity with components the filters do not mention does not
// match (Kafka's semantics). It refuses an unknown entity or match type
// and a filter repeated for one type.
func (s Set) Match(filters []Filter, strict bool) ([]Quota, error) {
	byType := map[string]Filter{}
	for _, f := range filters {
		switch f.Type {
		case TypeUser, TypeClientID:
		case TypeIP:
			return nil, fmt.Errorf("ip quotas are not supported")
		default:
			return nil, fmt.Errorf("unknown entity type %q", f.Type)
		}
		if _, dup := byType[f.Type]; dup {
			return nil, fmt.Errorf("entity type %s filtered twice", f.Type)
		}
		switch f.Match {
		case MatchExact:
			if f.Name == nil {
				return nil, fmt.Errorf("an exact match of %s needs a name", f.Type)
			}
		case MatchDefault, MatchAny:
		default:
			return nil, fmt.Errorf("unknown match type %d for %s", f.Match, f.Type)
		}
		byType[f.Type] = f
	}
	var out []Quota
	for _, q := range s.Sorted() {
		if matches(q.Entity.User, byType, TypeUser, strict) && matches(q.Entity.ClientID, byType, TypeClientID, strict) {
			out = append(out, q)
		}
	}
	return out, nil
}

// matches reports whether component n (nil: absent) passes the filter for
// typ, if any.
func matches(n *Name, byType map[string]Filter, typ string, strict bool) bool {
	f, filtered := byType[typ]
	if !filtered {
		return n == nil || !strict
	}
	if n == nil {
		return false
	}
	switch f.Match {
	case MatchExact:
		return !n.Default && n.Name == *f.Name
	case MatchDefault:
		return n.Default
	}
	return true
}

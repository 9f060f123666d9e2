// Package quota knows Kafka's client quotas as Sluice accepts them: the
// entities a quota applies to (a user, a client id, both, or their
// defaults), the quota keys (producer_byte_rate, consumer_byte_rate,
// request_percentage), how AlterClientQuotas operations change a set of
// quotas (Apply), how DescribeClientQuotas filters match it (Match), and
// which quota is in force for a connection (Resolve), in Kafka's order of
// precedence:
//
//	1 user=U, client-id=C            5 user=<default>, client-id=<default>
//	2 user=U, client-id=<default>    6 user=<default>
//	3 user=U                         7 client-id=C
//	4 user=<default>, client-id=C    8 client-id=<default>
//
// Each key resolves on its own: the first entity in that order that sets
// the key gives its value. The entity that matched also says who shares
// the quota (Resolved.Bucket): a quota set for a named entity is shared by
// every connection that matches it; one set for a default is had by each
// user or client id separately, as in Kafka.
//
// It holds no state and does no I/O: the metadata group (package meta)
// keeps the Set, replicated; the protocol server (package wire) measures
// rates and throttles.
//
// # Invariants
//
//   - A Set is never modified: Apply returns a new one.
//   - Every value in a Set is finite and positive (Validate).
//
// # Glossary
//
//   - user: the authenticated principal's name; ANONYMOUS when the
//     connection is not authenticated (Kafka's User:ANONYMOUS).
//   - <default>: an entity component with a null name in the protocol.
package quota

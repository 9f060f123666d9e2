package consumergroup

import (
	"cmp"
	"maps"
	"slices"
)

// assignShare computes the target assignment of a share group, as Kafka's
// simple assignor does for share groups: every partition of a subscribed
// topic is assigned, a partition may go to several members (its records
// are handed out one acquisition at a time), the assignment is balanced,
// and, balance first, it is sticky: a member keeps the partitions it had
// where balance allows, so a membership change moves as few partitions as
// it can.
//
// Each topic is assigned on its own, over its subscribers. With M
// subscribers and N partitions there are max(M, N) slots: each member
// gets max(M, N)/M of them (one more for some) and each partition
// max(M, N)/N members (one more for some). So with M <= N each member
// gets N/M partitions, or one more, each partition one member; with M > N
// each member gets one partition and each partition M/N members, or one
// more. The ones given one more are the members (partitions) holding the
// most now, ties broken by join order rotated by the topic's position
// among the subscribed topics, so that the odd partitions of several
// topics do not all land on the first member. Then each member keeps what
// it holds within those counts, and the free slots are filled in join
// order from the partitions short of members.
//
// members are in join order with their current assignments (by topic id:
// a recreated topic's id is new, so its partitions start afresh); shape is
// the subscribed topics' metadata (topics not in it do not exist and are
// not assigned). The result maps member id to its partitions by topic id,
// each list sorted; a member with nothing has no entry.
func assignShare(members []*shareMember, shape map[string]shareTopic) map[string]map[[16]byte][]int32 {
	out := make(map[string]map[[16]byte][]int32)
	names := slices.Sorted(maps.Keys(shape))
	for offset, name := range names {
		t := shape[name]
		var subs []*shareMember
		for _, m := range members {
			if _, ok := slices.BinarySearch(m.subscribed, name); ok {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 || t.partitions <= 0 {
			continue
		}
		for i, ps := range assignShareTopic(subs, t, offset) {
			if len(ps) == 0 {
				continue
			}
			id := subs[i].id
			if out[id] == nil {
				out[id] = make(map[[16]byte][]int32)
			}
			out[id][t.id] = ps
		}
	}
	return out
}

// assignShareTopic assigns topic t's partitions to its subscribers subs
// (join order) as assignShare says; the result holds subs[i]'s partitions,
// sorted, at i.
func assignShareTopic(subs []*shareMember, t shareTopic, offset int) [][]int32 {
	members, partitions := len(subs), int(t.partitions)
	slots := max(members, partitions)
	// What each member holds now, and how many hold each partition.
	held := make([][]int32, members)
	holders := make([]int, partitions)
	for i, m := range subs {
		for _, p := range m.assignment[t.id] {
			if p >= 0 && int(p) < partitions {
				held[i] = append(held[i], p)
				holders[p]++
			}
		}
	}
	quota := spreadSlots(slots, members, func(i int) int { return len(held[i]) }, offset)
	share := spreadSlots(slots, partitions, func(p int) int { return holders[p] }, offset)

	assigned := make([][]int32, members)
	count := make([]int, partitions)
	has := make([]map[int32]bool, members)
	give := func(i int, p int32) {
		assigned[i] = append(assigned[i], p)
		count[p]++
		if has[i] == nil {
			has[i] = make(map[int32]bool)
		}
		has[i][p] = true
	}
	// Keep what balance allows.
	for i := range subs {
		for _, p := range held[i] {
			if len(assigned[i]) < quota[i] && count[p] < share[p] {
				give(i, p)
			}
		}
	}
	// Fill the free slots from the partitions short of members. One is
	// always found: with members <= partitions every share is 1, so a
	// partition short of members has none; with more members every quota
	// is 1, so a member short of it holds nothing. The scan is bounded
	// all the same.
	next := 0
	for i := range subs {
		for len(assigned[i]) < quota[i] {
			found := false
			for range partitions {
				p := int32(next)
				next = (next + 1) % partitions
				if count[p] < share[p] && !has[i][p] {
					give(i, p)
					found = true
					break
				}
			}
			if !found {
				break
			}
		}
		slices.Sort(assigned[i])
	}
	return assigned
}

// spreadSlots divides slots among n holders: each gets slots/n, and the
// slots%n holders of the highest weight one more, ties broken by index
// rotated by offset (index offset mod n first).
func spreadSlots(slots, n int, weight func(int) int, offset int) []int {
	counts := make([]int, n)
	order := make([]int, n)
	for i := range n {
		counts[i] = slots / n
		order[i] = i
	}
	rotated := func(i int) int { return ((i-offset)%n + n) % n }
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(weight(b), weight(a)); c != 0 {
			return c
		}
		return cmp.Compare(rotated(a), rotated(b))
	})
	for _, i := range order[:slots%n] {
		counts[i]++
	}
	return counts
}

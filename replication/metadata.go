package replication

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"

	"github.com/sluice-io/sluice/log"
)

// metadataFile is the name of the cluster metadata file under meta/.
const metadataFile = "cluster.json"

// state is what cluster.json holds. Field names are its format: change them
// only with a migration.
type state struct {
	Version int `json:"version"`
	// ClusterID is generated on first start, as Kafka's meta.properties.
	ClusterID string `json:"cluster_id"`
	// ProducerIDBlockEnd is the first producer id not yet reserved.
	ProducerIDBlockEnd int64        `json:"producer_id_block_end"`
	Topics             []topicState `json:"topics"`
	// DefaultBrokerConfigs are the dynamic broker configs of the cluster
	// default (BROKER resource ""), by Kafka name. Absent in files written
	// before dynamic configs existed, which therefore still load.
	DefaultBrokerConfigs map[string]string `json:"default_broker_configs,omitempty"`
	// BrokerConfigs are the dynamic broker configs of single brokers, by
	// node id in decimal, then Kafka name.
	BrokerConfigs map[string]map[string]string `json:"broker_configs,omitempty"`
}

// topicState is one topic as persisted.
type topicState struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"` // hex of the 16-byte topic id
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
}

// loadState reads meta/cluster.json; a missing file yields ok false.
func loadState(fs log.FS, dir string) (st state, ok bool, err error) {
	p := path.Join(dir, metadataFile)
	names, err := fs.ReadDir(dir)
	if err != nil {
		return st, false, fmt.Errorf("read metadata dir %s: %w", dir, err)
	}
	found := false
	for _, n := range names {
		if n == metadataFile {
			found = true
		}
	}
	if !found {
		return st, false, nil
	}
	f, err := fs.OpenFile(p, false)
	if err != nil {
		return st, false, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return st, false, fmt.Errorf("stat %s: %w", p, err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return st, false, fmt.Errorf("read %s: %w", p, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("decode %s (restore it from a backup or remove the data dir): %w", p, err)
	}
	if st.Version != 1 {
		return st, false, fmt.Errorf("%s: unsupported metadata version %d", p, st.Version)
	}
	return st, true, nil
}

// saveState replaces meta/cluster.json atomically and durably.
func saveState(fs log.FS, dir string, st state) error {
	st.Version = 1
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	tmp := path.Join(dir, metadataFile+".tmp")
	f, err := fs.OpenFile(tmp, true)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return fmt.Errorf("truncate stale %s: %w", tmp, err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path.Join(dir, metadataFile)); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// saveLocked persists the current state with edit applied. c.mu must be
// held exclusively.
func (c *Cluster) saveLocked(edit func(*state)) error {
	st := state{ClusterID: c.clusterID, ProducerIDBlockEnd: c.producerIDLimit, DefaultBrokerConfigs: c.dynamicDefault}
	if len(c.dynamicBrokers) > 0 {
		st.BrokerConfigs = c.dynamicBrokers
	}
	for _, t := range c.topics {
		st.Topics = append(st.Topics, t.persisted())
	}
	sort.Slice(st.Topics, func(i, j int) bool { return st.Topics[i].Name < st.Topics[j].Name })
	if edit != nil {
		edit(&st)
	}
	if err := saveState(c.fs, c.metaDir(), st); err != nil {
		return fmt.Errorf("replication: save metadata: %w", err)
	}
	return nil
}

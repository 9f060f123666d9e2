package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// LegacyFile is the single-node metadata file under <data.dir>/meta,
// written by Sluice before the metadata group existed.
const LegacyFile = "cluster.json"

// legacyState is cluster.json's format, version 1 (copied from package
// replication's metadata.go; the field names are the format).
type legacyState struct {
	Version              int                          `json:"version"`
	ClusterID            string                       `json:"cluster_id"`
	ProducerIDBlockEnd   int64                        `json:"producer_id_block_end"`
	Topics               []legacyTopic                `json:"topics"`
	DefaultBrokerConfigs map[string]string            `json:"default_broker_configs,omitempty"`
	BrokerConfigs        map[string]map[string]string `json:"broker_configs,omitempty"`
}

type legacyTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
}

// LoadLegacy reads dir/cluster.json (dir is <data.dir>/meta) and returns
// the InitCluster that recreates it in the metadata group: the same
// cluster id, topic ids, partition counts, config overrides, internal
// flags, dynamic broker configs and producer id block end, with every
// partition's single replica on self, and self as the only node. Pass it
// as Options.Seed with self as the only initial member. A missing file
// returns ok false and no error.
//
// The file is left in place; once the InitCluster is applied the caller
// renames it (to cluster.json.migrated), so a later start neither seeds
// again nor loses the original.
func LoadLegacy(dir string, self Member) (seed *InitCluster, ok bool, err error) {
	p := filepath.Join(dir, LegacyFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("meta: read %s: %w", p, err)
	}
	seed, err = decodeLegacy(b, self)
	if err != nil {
		return nil, false, fmt.Errorf("meta: %s: %w", p, err)
	}
	return seed, true, nil
}

// decodeLegacy converts cluster.json's bytes.
func decodeLegacy(b []byte, self Member) (*InitCluster, error) {
	var st legacyState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode (restore it from a backup): %w", err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("unsupported metadata version %d", st.Version)
	}
	if st.ClusterID == "" {
		return nil, errors.New("no cluster id")
	}
	seed := &InitCluster{
		ClusterID:      st.ClusterID,
		Nodes:          []Node{self.node()},
		DefaultConfigs: copyConfigs(st.DefaultBrokerConfigs),
		NodeConfigs:    map[int32]map[string]string{},
		NextProducerID: st.ProducerIDBlockEnd,
	}
	for node, configs := range st.BrokerConfigs {
		id, err := strconv.ParseInt(node, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("broker configs for node %q: not a node id", node)
		}
		seed.NodeConfigs[int32(id)] = copyConfigs(configs)
	}
	for _, lt := range st.Topics {
		var id TopicID
		if err := id.UnmarshalText([]byte(lt.ID)); err != nil {
			return nil, fmt.Errorf("topic %q: %w", lt.Name, err)
		}
		if lt.Partitions < 1 || lt.Partitions > MaxPartitions {
			return nil, fmt.Errorf("topic %q has %d partitions", lt.Name, lt.Partitions)
		}
		t := &Topic{Name: lt.Name, ID: id, Internal: lt.Internal, Configs: copyConfigs(lt.Configs), Partitions: make([]Partition, lt.Partitions)}
		for i := range t.Partitions {
			t.Partitions[i] = Partition{Replicas: []int32{self.ID}}
		}
		seed.Topics = append(seed.Topics, t)
	}
	return seed, nil
}

package replication

import (
	"fmt"
	"path"
	"strconv"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/meta"
)

// migratedSuffix is appended to cluster.json's name once its content is
// in the metadata group.
const migratedSuffix = ".migrated"

// legacySeed returns the InitCluster that recreates the single-node
// meta/cluster.json in the metadata group, or nil when there is none (a
// fresh data dir, or one migrated already). It is passed to the group on
// every start until the file is renamed: the group proposes it only while
// the cluster is uninitialised, so a crash between the group's creation
// and InitCluster never starts an empty cluster over existing topics.
//
// Dynamic broker configs this version does not accept are dropped with a
// warning, as the single node did on load. The single node applied only
// the per-node configs of its own id; when the file holds those of
// exactly one other id (the node.id default was 0 before it became 1),
// they move to this node.
func (c *Cluster) legacySeed(self meta.Member) (*meta.InitCluster, error) {
	seed, ok, err := meta.LoadLegacy(c.metaDir(), self)
	if err != nil || !ok {
		return nil, err
	}
	seed.DefaultConfigs = c.loadBrokerConfigs("", seed.DefaultConfigs)
	for id, values := range seed.NodeConfigs {
		kept := c.loadBrokerConfigs(strconv.Itoa(int(id)), values)
		delete(seed.NodeConfigs, id)
		if len(kept) > 0 {
			seed.NodeConfigs[id] = kept
		}
	}
	if _, mine := seed.NodeConfigs[self.ID]; !mine && len(seed.NodeConfigs) == 1 {
		for id, values := range seed.NodeConfigs {
			c.logger.Info("dynamic broker configs of the single node move to this node id", zap.Int32("from", id), zap.Int32("to", self.ID))
			delete(seed.NodeConfigs, id)
			seed.NodeConfigs[self.ID] = values
		}
	}
	c.logger.Info("migrating single-node metadata into the metadata group",
		zap.String("file", path.Join(c.metaDir(), meta.LegacyFile)), zap.String("cluster-id", seed.ClusterID), zap.Int("topics", len(seed.Topics)))
	return seed, nil
}

// finishMigration renames cluster.json to cluster.json.migrated once the
// metadata group is initialised with its content (st is the initialised
// state); a state of another cluster is refused, leaving the file.
func (c *Cluster) finishMigration(st *meta.State, seed *meta.InitCluster) error {
	if st.ClusterID != seed.ClusterID {
		return fmt.Errorf("the metadata in %s is of cluster %s, but %s there is of cluster %s; move one of them away",
			c.metaDir(), st.ClusterID, meta.LegacyFile, seed.ClusterID)
	}
	from := path.Join(c.metaDir(), meta.LegacyFile)
	if err := c.fs.Rename(from, from+migratedSuffix); err != nil {
		return fmt.Errorf("rename migrated %s: %w", from, err)
	}
	if err := c.fs.SyncDir(c.metaDir()); err != nil {
		return fmt.Errorf("sync dir %s: %w", c.metaDir(), err)
	}
	c.logger.Info("single-node metadata migrated", zap.String("renamed-to", from+migratedSuffix), zap.String("cluster-id", st.ClusterID))
	return nil
}

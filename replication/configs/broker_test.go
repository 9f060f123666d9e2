package configs

import (
	"testing"
	"time"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/cleaner"
)

// defaultBroker is a broker with every default, as a fresh node has.
func defaultBroker() Broker {
	return Broker{
		DataDir: "./data", AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, DefaultPartitions: 1, AutoCreateTopics: true,
		Partition: partition.DefaultConfig(), Cleaner: cleaner.DefaultConfig(),
	}
}

func TestBrokerRetentionPrecedence(t *testing.T) {
	tests := []struct {
		name                 string
		clusterDefault, node map[string]string
		want                 time.Duration
	}{
		{"static", nil, nil, 7 * 24 * time.Hour},
		{"hours", map[string]string{"log.retention.hours": "2"}, nil, 2 * time.Hour},
		{"minutes over hours", map[string]string{"log.retention.hours": "2", "log.retention.minutes": "3"}, nil, 3 * time.Minute},
		{"ms over minutes", map[string]string{"log.retention.minutes": "3", "log.retention.ms": "4"}, nil, 4 * time.Millisecond},
		{"node over cluster default", map[string]string{"log.retention.hours": "2"}, map[string]string{"log.retention.hours": "5"}, 5 * time.Hour},
		{"ms of the default over hours of the node", map[string]string{"log.retention.ms": "7"}, map[string]string{"log.retention.hours": "5"}, 7 * time.Millisecond},
		{"hours -1 keeps forever", map[string]string{"log.retention.hours": "-1"}, nil, -time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Layers{Static: defaultBroker(), ClusterDefault: tt.clusterDefault, Node: tt.node}
			if got := b.Effective().Partition.RetentionTime; got != tt.want {
				t.Fatalf("retention %s, want %s", got, tt.want)
			}
		})
	}
}

// Command sluice runs a Sluice broker: a Kafka-wire-compatible commit log.
//
// It is the only place that reads configuration (viper: file, environment,
// flags), builds the typed configs of the packages below it, sets up the zap
// logger and owns the process lifecycle (signals, shutdown). Packages never
// read viper themselves.
//
//	sluice serve [--config sluice.yaml] [--listen 127.0.0.1:9092] [--data-dir ./data] ...
//	sluice topic create|list|describe|delete|alter-config|add-partitions ... [--format table|json]
//	sluice produce TOPIC [--key K | --key-separator SEP] [--header k=v]... [--acks all|1|0] [--compression C] [--file F]...
//	sluice consume TOPIC [--offset beginning|end|N|-N|@TIME] [--group G] [--num N] [--until-end] [--format FMT|json]
//	sluice group list|describe GROUP|lag [GROUP...]|reset-offsets GROUP ... [--bootstrap-server 127.0.0.1:9092]
//	sluice cluster status [--format table|json] [--bootstrap-server 127.0.0.1:9092]
//	sluice cluster rebalance|add-node ID|remove-node ID [--dry-run] [--format table|json] [--timeout 5m]
//	sluice version
//
// The client commands take --bootstrap-server and exit 0 when done, 1 when
// the operation failed or was refused, 2 on a usage error (exitcodes.go);
// cluster status exits 3 for an unhealthy cluster.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		code := exitFailed
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "sluice:", msg)
		}
		os.Exit(code)
	}
}

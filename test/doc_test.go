// Package test holds Sluice's end-to-end tests and benchmarks. Every test
// talks to a real server over TCP on 127.0.0.1: either one started in this
// process on a temporary directory (startServer) or the sluice binary run as
// a subprocess (startProcess), which is how crashes (kill -9) are tested.
//
// Clients are real: franz-go (kgo, kadm), raw kmsg frames for protocol edge
// cases, kcat, kafka-python and confluent-kafka-python. Tests that need an
// external client skip when it is missing, unless SLUICE_REQUIRE_CLIENTS=1
// (CI sets it), when they fail.
//
// Nothing here sleeps to synchronise: tests wait on a client's answer, on a
// process exiting or, only when starting a subprocess, on its port
// accepting a connection (a bounded dial loop).
package test

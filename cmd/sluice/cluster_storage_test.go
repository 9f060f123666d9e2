package main

import "testing"

// The DISK and FREE columns: ok, refused below the threshold, unknown when
// the broker does not say, and "-" for a node that did not answer.
func TestFormatStorage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		st         *nodeStorage
		free, disk string
	}{
		{"no answer", nil, "-", "-"},
		{"ok", &nodeStorage{TotalBytes: 10 << 30, FreeBytes: 3 << 30, MinFreeBytes: 1 << 30}, "3.0 GiB of 10.0 GiB", "ok"},
		{"check off", &nodeStorage{TotalBytes: 10 << 30, FreeBytes: 1 << 20, MinFreeBytes: 0}, "1.0 MiB of 10.0 GiB", "ok"},
		{"refused", &nodeStorage{TotalBytes: 10 << 30, FreeBytes: 1 << 20, MinFreeBytes: 1 << 30, ProduceRefused: true}, "1.0 MiB of 10.0 GiB", "LOW: produce refused (min 1.0 GiB)"},
		{"threshold unknown", &nodeStorage{TotalBytes: 10 << 30, FreeBytes: 1 << 20, MinFreeBytes: -1}, "1.0 MiB of 10.0 GiB", "unknown"},
		{"space unknown", &nodeStorage{TotalBytes: -1, FreeBytes: -1, MinFreeBytes: 1 << 30}, "-", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free, disk := formatStorage(tc.st)
			if free != tc.free || disk != tc.disk {
				t.Fatalf("formatStorage(%+v) = %q, %q; want %q, %q", tc.st, free, disk, tc.free, tc.disk)
			}
		})
	}
}

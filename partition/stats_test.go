package partition

import "testing"

func TestTimestampAt(t *testing.T) {
	r := newEnv(t).open(t)
	if _, _, found, err := r.TimestampAt(0); found || err != nil {
		t.Fatalf("empty replica: found %v, %v", found, err)
	}
	mustAppend(t, r, plain(3, 100).build(t)) // offsets 0-2 at 100-102
	gz := plain(2, 500)                      // offsets 3-4 at 500, 501, compressed
	gz.codec, gz.compressed = codecs[0], true
	mustAppend(t, r, gz.build(t))
	tests := []struct {
		name      string
		offset    int64
		want      int64 // timestamp; -1 when none is found
		wantFound bool
	}{
		{"first record", 0, 100, true},
		{"inside a batch", 2, 102, true},
		{"compressed batch", 4, 501, true},
		{"below log start", -5, 100, true},
		{"at the high watermark", 5, -1, false},
		{"above the high watermark", 9, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offset, ts, found, err := r.TimestampAt(tt.offset)
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFound || found && ts != tt.want {
				t.Fatalf("TimestampAt(%d) = %d, %d, %v; want timestamp %d, found %v", tt.offset, offset, ts, found, tt.want, tt.wantFound)
			}
			if found && offset != max(tt.offset, 0) {
				t.Fatalf("TimestampAt(%d) answered record %d", tt.offset, offset)
			}
		})
	}
}

func TestLogStats(t *testing.T) {
	r := newEnv(t).open(t)
	b := plain(3, 100).build(t)
	mustAppend(t, r, b)
	if st := r.LogStats(); st.Bytes != int64(len(b)) || st.Segments != 1 {
		t.Fatalf("LogStats %+v, want %d bytes in 1 segment", st, len(b))
	}
}

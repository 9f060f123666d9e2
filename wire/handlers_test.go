package wire

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDispatchTableAgrees checks that the dispatch table, the handler files
// and the advertised versions say the same thing: one NN_name.go file per
// key whose opening comment names the versions served, versions within
// what kmsg can decode, and ApiVersions advertising exactly the table.
func TestDispatchTableAgrees(t *testing.T) {
	files, err := filepath.Glob("[0-9][0-9]_*.go")
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[int16]string{}
	for _, f := range files {
		if regexp.MustCompile(`_test\.go$`).MatchString(f) {
			continue
		}
		key, _ := strconv.Atoi(f[:2])
		byKey[int16(key)] = f
	}
	if len(byKey) != len(apis) {
		t.Errorf("%d handler files, %d table rows", len(byKey), len(apis))
	}
	versions := regexp.MustCompile(`\(key (\d+)\), versions (\d+)-(\d+)\.`)
	for _, a := range apis {
		t.Run(kmsg.NameForKey(a.key), func(t *testing.T) {
			f, ok := byKey[a.key]
			if !ok {
				t.Fatalf("no NN_name.go file for key %d", a.key)
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := versions.FindSubmatch(src)
			if m == nil {
				t.Fatalf("%s: opening comment does not say \"(key N), versions A-B.\"", f)
			}
			if got := fmt.Sprintf("%s %s-%s", m[1], m[2], m[3]); got != fmt.Sprintf("%d %d-%d", a.key, a.minVersion, a.maxVersion) {
				t.Errorf("%s says key/versions %s, table says %d %d-%d", f, got, a.key, a.minVersion, a.maxVersion)
			}
			req := kmsg.RequestForKey(a.key)
			if req == nil || a.maxVersion > req.MaxVersion() || a.minVersion < 0 || a.minVersion > a.maxVersion {
				t.Errorf("versions %d-%d outside kmsg's 0-%d", a.minVersion, a.maxVersion, req.MaxVersion())
			}
		})
	}
	advertised := advertisedAPIs(true, true, true, true, true)
	if len(advertised) != len(apis) {
		t.Fatalf("ApiVersions advertises %d keys, table has %d", len(advertised), len(apis))
	}
	for i, k := range advertised {
		if a := apis[i]; k.ApiKey != a.key || k.MinVersion != a.minVersion || k.MaxVersion != a.maxVersion {
			t.Errorf("advertised %+v, table %d %d-%d", k, a.key, a.minVersion, a.maxVersion)
		}
	}
}

// TestGroupAPIsNeedCoordinator checks that a server without a group
// coordinator advertises every row but the group APIs.
func TestGroupAPIsNeedCoordinator(t *testing.T) {
	var want []int16
	for _, a := range apis {
		if !a.groups && !a.transactions && !a.shareState && !a.internal {
			want = append(want, a.key)
		}
	}
	var got []int16
	for _, k := range advertisedAPIs(false, false, false, false, false) {
		got = append(got, k.ApiKey)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("advertised without a coordinator: %v, want %v", got, want)
	}
	s := &Server{}
	for _, a := range apis {
		if s.serves(&a) == (a.groups || a.transactions || a.shareState) {
			t.Errorf("key %d (groups %v): serves = %v without a coordinator", a.key, a.groups, !a.groups)
		}
	}
}

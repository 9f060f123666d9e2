package test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReadmeMatchesApiVersions checks that README.md's table of supported
// APIs (between the api-table markers) lists exactly what the server
// advertises in ApiVersions, with the same version ranges.
func TestReadmeMatchesApiVersions(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "<!-- api-table: begin -->")
	table, _, ok2 := strings.Cut(table, "<!-- api-table: end -->")
	if !ok || !ok2 {
		t.Fatal("README.md lacks the <!-- api-table: begin/end --> markers")
	}
	row := regexp.MustCompile(`^\|\s*(\w+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*[–-]\s*(\d+)\s*\|$`)
	documented := make(map[int16]string)
	for _, line := range strings.Split(table, "\n") {
		m := row.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		key, _ := strconv.Atoi(m[2])
		documented[int16(key)] = fmt.Sprintf("%s %s-%s", m[1], m[3], m[4])
	}

	srv := startServer(t)
	advertised := make(map[int16]string)
	for key, k := range apiVersions(t, srv.Addr) {
		advertised[key] = fmt.Sprintf("%s %d-%d", kmsg.NameForKey(key), k.MinVersion, k.MaxVersion)
	}
	for key, want := range advertised {
		if got, ok := documented[key]; !ok {
			t.Errorf("README.md does not list advertised API %s", want)
		} else if !strings.EqualFold(got, want) { // kmsg spells InitProducerID
			t.Errorf("README.md lists %q, server advertises %q", got, want)
		}
	}
	for key, got := range documented {
		if _, ok := advertised[key]; !ok {
			t.Errorf("README.md lists %q, which the server does not advertise", got)
		}
	}
}

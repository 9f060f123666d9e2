package admin

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// faultErrnos are the errors /debug/fault injects, by name.
var faultErrnos = map[string]syscall.Errno{"EIO": syscall.EIO, "ENOSPC": syscall.ENOSPC, "EROFS": syscall.EROFS}

// faultOps are the operation kinds /debug/fault fails, by name.
var faultOps = map[string]log.FaultOp{"read": log.FaultRead, "write": log.FaultWrite, "sync": log.FaultSync, "open": log.FaultOpen}

// FaultHandler serves /debug/fault, which breaks this node's disk on
// demand for fault-injection tests; `sluice serve` mounts it only with
// debug.fault.injection, never by default:
//
//	POST /debug/fault?path=SUBSTRING&ops=write,sync&errno=EIO
//	     every operation of those kinds (read, write, sync, open) on a
//	     data file whose path contains SUBSTRING fails with errno (EIO,
//	     ENOSPC or EROFS); defaults: every path, write and sync, EIO
//	DELETE /debug/fault
//	     removes every fault
//	GET /debug/fault
//	     lists the faults
func FaultHandler(fs *log.FaultFS, logger *zap.Logger) http.Handler {
	if logger == nil {
		logger = zap.NewNop()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch r.Method {
		case http.MethodGet:
		case http.MethodDelete:
			fs.Clear()
			logger.Warn("injected disk faults cleared")
		case http.MethodPost:
			ft, err := parseFault(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fs.Inject(ft)
			logger.Warn("disk fault injected", zap.String("path-contains", ft.PathContains), zap.Uint8("ops", uint8(ft.Ops)), zap.Error(ft.Err))
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			http.Error(w, "use GET, POST or DELETE", http.StatusMethodNotAllowed)
			return
		}
		for _, ft := range fs.Faults() {
			fmt.Fprintf(w, "path contains %q: ops %04b fail with %v\n", ft.PathContains, ft.Ops, ft.Err)
		}
	})
}

// parseFault reads a fault from the query of a POST /debug/fault.
func parseFault(r *http.Request) (log.Fault, error) {
	q := r.URL.Query()
	ft := log.Fault{PathContains: q.Get("path"), Ops: log.FaultWrite | log.FaultSync, Err: syscall.EIO}
	if ops := q.Get("ops"); ops != "" {
		ft.Ops = 0
		for _, name := range strings.Split(ops, ",") {
			op, ok := faultOps[strings.TrimSpace(name)]
			if !ok {
				return ft, fmt.Errorf("ops: %q is not one of read, write, sync, open", name)
			}
			ft.Ops |= op
		}
	}
	if name := q.Get("errno"); name != "" {
		errno, ok := faultErrnos[strings.ToUpper(name)]
		if !ok {
			return ft, fmt.Errorf("errno: %q is not one of EIO, ENOSPC, EROFS", name)
		}
		ft.Err = errno
	}
	return ft, nil
}

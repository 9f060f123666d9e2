package consumergroup

import "context"

type clientKey struct{}

// clientInfo is who sent a request: DescribeGroups reports it per member.
type clientInfo struct {
	id, host string
}

// WithClient returns ctx carrying the client id (from the request header)
// and host (the connection's remote address) of the request it is passed
// with; JoinGroup records them for DescribeGroups.
func WithClient(ctx context.Context, clientID, host string) context.Context {
	return context.WithValue(ctx, clientKey{}, clientInfo{id: clientID, host: host})
}

func clientFrom(ctx context.Context) clientInfo {
	ci, _ := ctx.Value(clientKey{}).(clientInfo)
	return ci
}

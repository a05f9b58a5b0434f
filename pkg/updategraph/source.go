package updategraph

import (
	"context"
	"time"
)

// Query says which host asks for a graph.
type Query struct {
	Stream   string
	Basearch string // e.g. "x86_64"
	NodeUUID string
	// Wariness is the host's rollout wariness (0 eager .. 1 cautious); nil derives one from
	// NodeUUID (Wariness).
	Wariness *float64
	// Now is the time rollouts are computed at; zero means time.Now().
	Now time.Time
}

// EffectiveWariness is q.Wariness clamped into [0, 1], or the one derived from q.NodeUUID.
func (q *Query) EffectiveWariness() float64 {
	if q.Wariness != nil {
		return min(max(*q.Wariness, 0), 1)
	}
	return Wariness(q.NodeUUID)
}

// Source is where a host gets its stream's graph.
type Source interface {
	// Graph returns the graph as the host of q sees it: dead-ends filtered and rollouts
	// throttled for its wariness at q.Now.
	Graph(ctx context.Context, q Query) (*Graph, error)
}

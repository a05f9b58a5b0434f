package chunk

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Parameters of the download model (see the package documentation).
const (
	// updateIntervalDays is the modelled time between two updates.
	updateIntervalDays = 7
	// baseChangesPerYear is added to every package's ChangeFrequency.
	baseChangesPerYear = 0.5
	// maxFreqChangeProb is the change probability of max-frequency components.
	maxFreqChangeProb = 0.9
	// dpBudget bounds the inner iterations of the dynamic programme, about
	// layers·items²/2 (some 0.1 s); above it the items are first reduced by greedy merging,
	// which on 3000 random components with 63 layers costs under 0.001 % in the model.
	dpBudget = 5e7
)

// Pack bins components into at most maxLayers layers (maxLayers >= 2: at least one content
// layer plus the reserved one), ordered as they go into the image after the ostree layer.
//
// Without prior (nil or empty), Pack minimises the modelled expected download of an update as
// the package documentation describes; the last layer is always the empty "Reserved for new
// packages" one.
//
// With prior, the component names of a previous build's layers after the ostree layer, in
// order (e.g. its "ostree.components" annotations split on ","; empty names are ignored),
// Pack keeps that layout: every component that existed before stays in its layer index,
// components that are gone are dropped, new components go into the last layer, and the layer
// count and order stay those of the prior build (a layer left without components stays, empty,
// so that later layers keep their positions). A prior with more layers than maxLayers, or that
// names a component twice, is an error.
//
// Component names must be unique, non-empty and free of "," (the annotation separator), sizes
// non-negative, and no object may belong to two components. The result depends only on the
// set of components, not on their order.
func Pack(components []Component, maxLayers int, prior [][]string) ([]Layer, error) {
	if maxLayers < 2 {
		return nil, fmt.Errorf("max layers %d: at least 2 are needed (one for content, one reserved for new packages)", maxLayers)
	}
	comps, err := normalizeComponents(components)
	if err != nil {
		return nil, err
	}
	if len(prior) > 0 {
		return packWithPrior(comps, maxLayers, prior)
	}
	groups := planGroups(comps, maxLayers-1)
	layers := make([]Layer, 0, len(groups)+1)
	for _, g := range groups {
		members := make([]Component, len(g))
		for i, idx := range g {
			members[i] = comps[idx]
		}
		layers = append(layers, makeLayer(members))
	}
	return append(layers, makeLayer(nil)), nil
}

// normalizeComponents checks the components and returns copies sorted by name, with sorted,
// unique objects.
func normalizeComponents(components []Component) ([]Component, error) {
	comps := make([]Component, len(components))
	for i, c := range components {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("component with empty name")
		case strings.Contains(c.Name, ","):
			return nil, fmt.Errorf("component %q: name contains \",\", the ostree.components separator", c.Name)
		case c.Size < 0:
			return nil, fmt.Errorf("component %s: negative size %d", c.Name, c.Size)
		}
		c.Objects = sortedUnique(c.Objects)
		comps[i] = c
	}
	slices.SortFunc(comps, func(a, b Component) int { return strings.Compare(a.Name, b.Name) })
	owner := map[string]string{}
	for i, c := range comps {
		if i > 0 && comps[i-1].Name == c.Name {
			return nil, fmt.Errorf("component %s listed twice", c.Name)
		}
		for _, o := range c.Objects {
			if prev, ok := owner[o]; ok {
				return nil, fmt.Errorf("object %s belongs to components %s and %s", o, prev, c.Name)
			}
			owner[o] = c.Name
		}
	}
	return comps, nil
}

// packWithPrior lays comps out like the prior build's layers.
func packWithPrior(comps []Component, maxLayers int, prior [][]string) ([]Layer, error) {
	if len(prior) > maxLayers {
		return nil, fmt.Errorf("the previous build has %d component layers, more than the maximum of %d: raise the maximum to at least %d or build without the previous build's layout", len(prior), maxLayers, len(prior))
	}
	layerOf := map[string]int{}
	for i, names := range prior {
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if j, dup := layerOf[n]; dup {
				return nil, fmt.Errorf("the previous build lists component %s in layers %d and %d", n, j+1, i+1)
			}
			layerOf[n] = i
		}
	}
	members := make([][]Component, len(prior))
	for _, c := range comps {
		i, ok := layerOf[c.Name]
		if !ok {
			i = len(prior) - 1
		}
		members[i] = append(members[i], c)
	}
	layers := make([]Layer, len(prior))
	for i, m := range members {
		layers[i] = makeLayer(m)
	}
	return layers, nil
}

// makeLayer builds the layer holding comps (sorted by name).
func makeLayer(comps []Component) Layer {
	l := Layer{Name: layerName(comps)}
	for _, c := range comps {
		l.Components = append(l.Components, c.Name)
		l.Objects = append(l.Objects, c.Objects...)
	}
	slices.Sort(l.Components)
	slices.Sort(l.Objects)
	return l
}

// layerName is ostree-ext's layer naming: one component's name, two to five joined with
// " and ", "N components" for more, ReservedLayerName for none.
func layerName(comps []Component) string {
	switch n := len(comps); {
	case n == 0:
		return ReservedLayerName
	case n <= 5:
		names := make([]string, n)
		for i, c := range comps {
			names[i] = c.Name
		}
		slices.Sort(names)
		return strings.Join(names, " and ")
	default:
		return fmt.Sprintf("%d components", n)
	}
}

// item is a component, or a run of components, in the download model.
type item struct {
	members []int   // component indices
	size    float64 // bytes
	keep    float64 // probability that no member changes in an update
	ratio   float64 // size / change probability, the sort key
}

// cost is the modelled expected download of a layer holding the item.
func (it item) cost() float64 { return mul(it.size, 1-it.keep) }

// mul multiplies without letting the compiler fuse the product into a following addition,
// which would make results differ between architectures.
func mul(a, b float64) float64 { return float64(a * b) }

// keepProbability is the modelled probability that a component does not change in an update.
func keepProbability(c Component) float64 {
	if c.ChangeFrequency == math.MaxUint32 {
		return 1 - maxFreqChangeProb
	}
	m := mul(float64(c.ChangeFrequency)+baseChangesPerYear, updateIntervalDays) / 365
	return 1 / (1 + m)
}

// planGroups partitions comps (sorted by name) into at most k groups of component indices,
// ordered as their layers go into the image.
func planGroups(comps []Component, k int) [][]int {
	var pkgs, maxFreq []item
	for i, c := range comps {
		keep := keepProbability(c)
		it := item{members: []int{i}, size: float64(c.Size), keep: keep}
		it.ratio = it.size / (1 - keep)
		if c.ChangeFrequency == math.MaxUint32 {
			maxFreq = append(maxFreq, it)
		} else {
			pkgs = append(pkgs, it)
		}
	}
	var groups []item
	switch {
	case len(comps) <= k:
		groups = append(pkgs, maxFreq...)
	case len(pkgs) == 0 || len(maxFreq) == 0:
		groups = partition(append(pkgs, maxFreq...), k)
	case k == 1:
		groups = []item{mergeAll(append(pkgs, maxFreq...))}
	default:
		groups = partitionTwo(pkgs, maxFreq, k)
	}
	classOf := func(it item) int {
		if comps[it.members[0]].ChangeFrequency == math.MaxUint32 {
			return 1
		}
		return 0
	}
	minName := func(it item) string {
		return comps[slices.Min(it.members)].Name
	}
	slices.SortFunc(groups, func(a, b item) int {
		if c := cmp.Compare(classOf(a), classOf(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.size, a.size); c != 0 {
			return c
		}
		return strings.Compare(minName(a), minName(b))
	})
	out := make([][]int, len(groups))
	for i, g := range groups {
		out[i] = slices.Sorted(slices.Values(g.members))
	}
	return out
}

// partitionTwo splits k layers between the package and max-frequency items, at least one each,
// so that the total cost is least.
func partitionTwo(pkgs, maxFreq []item, k int) []item {
	pp := newPartitioner(pkgs, k-1)
	mp := newPartitioner(maxFreq, k-1)
	bestP, bestCost := 0, math.Inf(1)
	for kp := 1; kp <= k-1 && kp <= pp.maxGroups(); kp++ {
		km := min(k-kp, mp.maxGroups())
		if c := pp.cost(kp) + mp.cost(km); c < bestCost {
			bestP, bestCost = kp, c
		}
	}
	km := min(k-bestP, mp.maxGroups())
	return append(pp.groups(bestP), mp.groups(km)...)
}

// partition splits items into at most k groups of least total cost.
func partition(items []item, k int) []item {
	p := newPartitioner(items, k)
	return p.groups(p.maxGroups())
}

// partitioner finds, for every group count up to a limit, the cheapest split of items sorted
// by ratio into contiguous runs.
type partitioner struct {
	items []item
	// best[g][i] is the least cost of splitting items[:i] into g+1 runs, from[g][i] the start
	// of the last run.
	best [][]float64
	from [][]int
}

func newPartitioner(items []item, k int) *partitioner {
	items = slices.Clone(items)
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.ratio, b.ratio) })
	n := len(items)
	k = min(k, n)
	if k > 0 && float64(k)*float64(n)*float64(n)/2 > dpBudget {
		limit := max(k, int(math.Sqrt(2*dpBudget/float64(k))))
		items = reduce(items, limit)
		n = len(items)
	}
	p := &partitioner{items: items}
	for g := 0; g < k; g++ {
		best := make([]float64, n+1)
		from := make([]int, n+1)
		for i := range best {
			best[i] = math.Inf(1)
		}
		if g == 0 {
			// One run: items[:i].
			size, keep := 0.0, 1.0
			for i := 1; i <= n; i++ {
				size += items[i-1].size
				keep = mul(keep, items[i-1].keep)
				best[i] = mul(size, 1-keep)
			}
		}
		for i := g + 1; g > 0 && i <= n; i++ {
			// The last run is items[j:i]; grow it leftwards.
			size, keep := 0.0, 1.0
			for j := i - 1; j >= g; j-- {
				size += items[j].size
				keep = mul(keep, items[j].keep)
				if c := p.best[g-1][j] + mul(size, 1-keep); c < best[i] {
					best[i], from[i] = c, j
				}
			}
		}
		p.best = append(p.best, best)
		p.from = append(p.from, from)
	}
	return p
}

// maxGroups is the largest group count the partitioner can produce.
func (p *partitioner) maxGroups() int { return len(p.best) }

// cost is the least cost of g groups.
func (p *partitioner) cost(g int) float64 {
	if g == 0 {
		return 0
	}
	return p.best[g-1][len(p.items)]
}

// groups returns the cheapest split into g runs, each merged into one item.
func (p *partitioner) groups(g int) []item {
	out := make([]item, g)
	end := len(p.items)
	for ; g > 0; g-- {
		start := p.from[g-1][end]
		out[g-1] = mergeAll(p.items[start:end])
		end = start
	}
	return out
}

// mergeAll merges items into one.
func mergeAll(items []item) item {
	m := item{keep: 1}
	for _, it := range items {
		m = merge(m, it)
	}
	return m
}

// merge merges two items.
func merge(a, b item) item {
	m := item{
		members: append(slices.Clip(a.members), b.members...),
		size:    a.size + b.size,
		keep:    mul(a.keep, b.keep),
	}
	m.ratio = m.size / (1 - m.keep)
	return m
}

// mergeCost is how much merging two items raises the cost.
func mergeCost(a, b item) float64 {
	return mul(mul(a.size, a.keep), 1-b.keep) + mul(mul(b.size, b.keep), 1-a.keep)
}

// reduce merges neighbouring items, cheapest first, until at most limit remain.
func reduce(items []item, limit int) []item {
	n := len(items)
	if n <= limit {
		return items
	}
	type node struct {
		it         item
		prev, next int // neighbours, -1 at the ends
		version    int // bumped whenever it changes, to invalidate queued pairs
		alive      bool
	}
	nodes := make([]node, n)
	for i, it := range items {
		nodes[i] = node{it: it, prev: i - 1, next: i + 1, alive: true}
	}
	nodes[n-1].next = -1
	q := &pairQueue{}
	push := func(i int) {
		j := nodes[i].next
		if j < 0 {
			return
		}
		heap.Push(q, pair{cost: mergeCost(nodes[i].it, nodes[j].it), left: i, right: j, lv: nodes[i].version, rv: nodes[j].version})
	}
	for i := 0; i < n-1; i++ {
		push(i)
	}
	for alive := n; alive > limit && q.Len() > 0; {
		p := heap.Pop(q).(pair)
		l, r := &nodes[p.left], &nodes[p.right]
		if !l.alive || !r.alive || l.version != p.lv || r.version != p.rv {
			continue
		}
		l.it = merge(l.it, r.it)
		l.version++
		r.alive = false
		l.next = r.next
		if r.next >= 0 {
			nodes[r.next].prev = p.left
		}
		alive--
		if l.prev >= 0 {
			push(l.prev)
		}
		push(p.left)
	}
	var out []item
	for i := 0; i >= 0 && i < n; i = nodes[i].next {
		out = append(out, nodes[i].it)
	}
	return out
}

// pair is a candidate merge of two neighbouring nodes.
type pair struct {
	cost        float64
	left, right int
	lv, rv      int
}

// pairQueue is a min-heap of pairs by cost, then position.
type pairQueue []pair

func (q pairQueue) Len() int { return len(q) }
func (q pairQueue) Less(i, j int) bool {
	if q[i].cost != q[j].cost {
		return q[i].cost < q[j].cost
	}
	return q[i].left < q[j].left
}
func (q pairQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pairQueue) Push(x any)   { *q = append(*q, x.(pair)) }
func (q *pairQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

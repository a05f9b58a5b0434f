package chunk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const maxFreq = math.MaxUint32

// comp is a test component with n objects named after it.
func comp(name string, size int64, freq uint32, n int) Component {
	c := Component{Name: name, Size: size, ChangeFrequency: freq}
	for i := range n {
		c.Objects = append(c.Objects, fmt.Sprintf("%s#%d", name, i))
	}
	return c
}

// checkPack verifies the invariants of Pack's result and returns the first violation.
func checkPack(comps []Component, maxLayers int, prior [][]string, layers []Layer) error {
	if len(layers) > maxLayers {
		return fmt.Errorf("%d layers, more than %d", len(layers), maxLayers)
	}
	byName := map[string]Component{}
	for _, c := range comps {
		byName[c.Name] = c
	}
	layerOf := map[string]int{}
	objectLayer := map[string]int{}
	for i, l := range layers {
		if !slices.IsSorted(l.Components) {
			return fmt.Errorf("layer %d: components %q not sorted", i, l.Components)
		}
		if !slices.IsSorted(l.Objects) {
			return fmt.Errorf("layer %d: objects not sorted", i)
		}
		var members []Component
		var objects []string
		for _, n := range l.Components {
			c, ok := byName[n]
			if !ok {
				return fmt.Errorf("layer %d: unknown component %q", i, n)
			}
			if j, dup := layerOf[n]; dup {
				return fmt.Errorf("component %s in layers %d and %d", n, j, i)
			}
			layerOf[n] = i
			members = append(members, c)
			objects = append(objects, c.Objects...)
		}
		if want := sortedUnique(objects); !slices.Equal(want, l.Objects) && !(len(want) == 0 && len(l.Objects) == 0) {
			return fmt.Errorf("layer %d: objects %v, want those of its components %v", i, l.Objects, want)
		}
		for _, o := range l.Objects {
			if j, dup := objectLayer[o]; dup {
				return fmt.Errorf("object %s in layers %d and %d", o, j, i)
			}
			objectLayer[o] = i
		}
		if want := layerName(members); l.Name != want {
			return fmt.Errorf("layer %d: name %q, want %q", i, l.Name, want)
		}
	}
	for _, c := range comps {
		if _, ok := layerOf[c.Name]; !ok {
			return fmt.Errorf("component %s in no layer", c.Name)
		}
	}
	if len(prior) == 0 {
		last := layers[len(layers)-1]
		if last.Name != ReservedLayerName || len(last.Components) != 0 || len(last.Objects) != 0 {
			return fmt.Errorf("last layer %+v is not the empty reserved layer", last)
		}
		mixedOK := maxLayers == 2
		for i, l := range layers[:len(layers)-1] {
			if len(l.Components) == 0 {
				return fmt.Errorf("content layer %d is empty", i)
			}
			classes := map[bool]bool{}
			for _, n := range l.Components {
				classes[byName[n].ChangeFrequency == maxFreq] = true
			}
			if len(classes) > 1 && !mixedOK {
				return fmt.Errorf("layer %d mixes max-frequency and package components: %q", i, l.Components)
			}
		}
		if len(comps) < maxLayers && len(layers) != len(comps)+1 {
			return fmt.Errorf("%d components in %d layers, want one layer each plus the reserved one", len(comps), len(layers))
		}
		return nil
	}
	if len(layers) != len(prior) {
		return fmt.Errorf("%d layers, want the prior build's %d", len(layers), len(prior))
	}
	priorLayer := map[string]int{}
	for i, names := range prior {
		for _, n := range names {
			if n = strings.TrimSpace(n); n != "" {
				priorLayer[n] = i
			}
		}
	}
	for _, c := range comps {
		want, ok := priorLayer[c.Name]
		if !ok {
			want = len(prior) - 1
		}
		if got := layerOf[c.Name]; got != want {
			return fmt.Errorf("component %s in layer %d, want %d", c.Name, got, want)
		}
	}
	return nil
}

// layerComponents returns the component lists of layers.
func layerComponents(layers []Layer) [][]string {
	out := make([][]string, len(layers))
	for i, l := range layers {
		out[i] = l.Components
	}
	return out
}

func TestPack(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name      string
		comps     []Component
		maxLayers int
		prior     [][]string
		want      [][]string // components per layer, in order
		wantNames []string   // layer names, if checked
	}{
		{
			name:      "fewer components than layers: one each, big first, max-frequency last",
			comps:     []Component{comp("a", 10, 1, 1), comp("b", 30, 0, 2), comp("unpackaged", 50, maxFreq, 1), comp("c", 20, 5, 1)},
			maxLayers: 64,
			want:      [][]string{{"b"}, {"c"}, {"a"}, {"unpackaged"}, nil},
			wantNames: []string{"b", "c", "a", "unpackaged", ReservedLayerName},
		},
		{
			name:      "no components: only the reserved layer",
			maxLayers: 2,
			want:      [][]string{nil},
		},
		{
			name: "large stable component alone, frequent small ones apart from it",
			comps: []Component{
				comp("kernel", 300*mb, 2, 3), comp("firmware", 400*mb, 0, 3),
				comp("tzdata", 1*mb, 40, 1), comp("ca-certs", 1*mb, 30, 1),
				comp("libfoo", 2*mb, 0, 1), comp("libbar", 2*mb, 0, 1), comp("libbaz", 1*mb, 1, 1),
			},
			maxLayers: 5,
			want:      [][]string{{"firmware"}, {"kernel"}, {"libbar", "libbaz", "libfoo"}, {"ca-certs", "tzdata"}, nil},
			wantNames: []string{"firmware", "kernel", "libbar and libbaz and libfoo", "ca-certs and tzdata", ReservedLayerName},
		},
		{
			name: "max-frequency components apart from packages, the big initramfs alone",
			comps: []Component{
				comp("initramfs", 80*mb, maxFreq, 1), comp("unpackaged", 5*mb, maxFreq, 4), comp("component:app", 3*mb, maxFreq, 2),
				comp("a", 10*mb, 0, 1), comp("b", 10*mb, 0, 1), comp("c", 10*mb, 1, 1),
			},
			maxLayers: 4,
			want:      [][]string{{"a", "b", "c"}, {"initramfs"}, {"component:app", "unpackaged"}, nil},
		},
		{
			name:      "two layers: everything in one",
			comps:     []Component{comp("a", 10, 0, 1), comp("b", 20, 3, 1), comp("unpackaged", 5, maxFreq, 1)},
			maxLayers: 2,
			want:      [][]string{{"a", "b", "unpackaged"}, nil},
			wantNames: []string{"a and b and unpackaged", ReservedLayerName},
		},
		{
			name:      "many small components: N components name",
			comps:     []Component{comp("a", 1, 0, 1), comp("b", 1, 0, 1), comp("c", 1, 0, 1), comp("d", 1, 0, 1), comp("e", 1, 0, 1), comp("f", 1, 0, 1), comp("big", 1000, 0, 1)},
			maxLayers: 3,
			want:      [][]string{{"big"}, {"a", "b", "c", "d", "e", "f"}, nil},
			wantNames: []string{"big", "6 components", ReservedLayerName},
		},
		{
			name:      "prior: kept, removed, new into the last layer, emptied layer stays",
			comps:     []Component{comp("a", 10, 0, 1), comp("b", 10, 0, 1), comp("new1", 10, 0, 1), comp("unpackaged", 10, maxFreq, 1), comp("new0", 1, 0, 1)},
			maxLayers: 64,
			prior:     [][]string{{"b"}, {"gone"}, {"a", "gone2"}, {"unpackaged"}, {""}},
			want:      [][]string{{"b"}, nil, {"a"}, {"unpackaged"}, {"new0", "new1"}},
			wantNames: []string{"b", ReservedLayerName, "a", "unpackaged", "new0 and new1"},
		},
		{
			name:      "prior as long as max layers, names with spaces",
			comps:     []Component{comp("a", 10, 0, 1), comp("b", 10, 0, 1)},
			maxLayers: 2,
			prior:     [][]string{{" b"}, {"a "}},
			want:      [][]string{{"b"}, {"a"}},
		},
		{
			name:      "prior with one layer takes everything",
			comps:     []Component{comp("a", 10, 0, 1), comp("b", 10, 0, 1)},
			maxLayers: 64,
			prior:     [][]string{{"a"}},
			want:      [][]string{{"a", "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers, err := Pack(tt.comps, tt.maxLayers, tt.prior)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPack(tt.comps, tt.maxLayers, tt.prior, layers); err != nil {
				t.Error(err)
			}
			if got := layerComponents(layers); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("layers = %q, want %q", got, tt.want)
			}
			if tt.wantNames != nil {
				var names []string
				for _, l := range layers {
					names = append(names, l.Name)
				}
				if !slices.Equal(names, tt.wantNames) {
					t.Errorf("names = %q, want %q", names, tt.wantNames)
				}
			}
			// Shuffled input, same output.
			rev := slices.Clone(tt.comps)
			slices.Reverse(rev)
			again, err := Pack(rev, tt.maxLayers, tt.prior)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, layers) {
				t.Errorf("reversed input gives %+v, want %+v", again, layers)
			}
		})
	}
}

func TestPackErrors(t *testing.T) {
	a, b := comp("a", 1, 0, 1), comp("b", 1, 0, 1)
	shared := comp("s", 1, 0, 0)
	shared.Objects = a.Objects
	tests := []struct {
		name      string
		comps     []Component
		maxLayers int
		prior     [][]string
		wantErr   string
	}{
		{"one layer", []Component{a}, 1, nil, "at least 2"},
		{"duplicate name", []Component{a, a}, 64, nil, "listed twice"},
		{"empty name", []Component{{Size: 1}}, 64, nil, "empty name"},
		{"comma in name", []Component{comp("component:a,b", 1, maxFreq, 1)}, 64, nil, `contains ","`},
		{"negative size", []Component{comp("a", -1, 0, 1)}, 64, nil, "negative size"},
		{"shared object", []Component{a, shared}, 64, nil, "belongs to components a and s"},
		{"prior longer than max layers", []Component{a, b}, 2, [][]string{{"a"}, {"b"}, {}}, "previous build has 3 component layers, more than the maximum of 2"},
		{"prior names a component twice", []Component{a, b}, 64, [][]string{{"a"}, {"b", "a"}}, "component a in layers 1 and 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Pack(tt.comps, tt.maxLayers, tt.prior)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLayerName(t *testing.T) {
	tests := []struct {
		name  string
		comps []string
		want  string
	}{
		{"none", nil, ReservedLayerName},
		{"one", []string{"bash"}, "bash"},
		{"two", []string{"b", "a"}, "a and b"},
		{"five", []string{"a", "b", "c", "d", "e"}, "a and b and c and d and e"},
		{"six", []string{"a", "b", "c", "d", "e", "f"}, "6 components"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var comps []Component
			for _, n := range tt.comps {
				comps = append(comps, Component{Name: n})
			}
			if got := layerName(comps); got != tt.want {
				t.Errorf("layerName(%q) = %q, want %q", tt.comps, got, tt.want)
			}
		})
	}
}

// randomComponents returns n components with log-uniform sizes (1 KiB to 1 GiB), mostly low
// change frequencies, and a few max-frequency ones.
func randomComponents(rng *rand.Rand, n int) []Component {
	comps := make([]Component, n)
	for i := range comps {
		size := int64(math.Exp(rng.Float64()*math.Log(1<<20))) << 10
		freq := uint32(rng.ExpFloat64() * 3)
		if rng.IntN(100) == 0 {
			freq = maxFreq
		}
		comps[i] = comp(fmt.Sprintf("pkg%04d", i), size, freq, 1+rng.IntN(3))
	}
	return comps
}

// TestPackProperties checks the invariants and order independence on random inputs, with and
// without a prior build derived from a first packing.
func TestPackProperties(t *testing.T) {
	for seed := range uint64(100) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			comps := randomComponents(rng, rng.IntN(300))
			maxLayers := 2 + rng.IntN(80)
			layers, err := Pack(comps, maxLayers, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPack(comps, maxLayers, nil, layers); err != nil {
				t.Fatal(err)
			}
			shuffled := slices.Clone(comps)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			again, err := Pack(shuffled, maxLayers, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, layers) {
				t.Fatal("shuffled input changes the layers")
			}

			// Next build: drop some components, add some, change sizes and frequencies.
			prior := layerComponents(layers)
			var next []Component
			for _, c := range comps {
				if rng.IntN(10) == 0 {
					continue
				}
				c.Size = c.Size * int64(1+rng.IntN(3))
				c.ChangeFrequency = uint32(rng.IntN(20))
				next = append(next, c)
			}
			next = append(next, comp(fmt.Sprint("new", seed), 1000, 1, 2))
			relaid, err := Pack(next, maxLayers, prior)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPack(next, maxLayers, prior, relaid); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPackScale makes sure large inputs stay fast and valid, including the greedy reduction
// that kicks in when the dynamic programme would be too slow.
func TestPackScale(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		maxLayers int
	}{
		{"fedora-sized", 3000, 64},
		{"many layers", 3000, 400},
		{"huge", 20000, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && tt.n > 5000 {
				t.Skip("short")
			}
			comps := randomComponents(rand.New(rand.NewPCG(1, 2)), tt.n)
			layers, err := Pack(comps, tt.maxLayers, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPack(comps, tt.maxLayers, nil, layers); err != nil {
				t.Fatal(err)
			}
			if len(layers) != tt.maxLayers {
				t.Errorf("%d layers, want all %d used", len(layers), tt.maxLayers)
			}
		})
	}
}

func TestReduce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var items []item
	for i := range 500 {
		c := randomComponents(rng, 1)[0]
		keep := keepProbability(c)
		items = append(items, item{members: []int{i}, size: float64(c.Size), keep: keep, ratio: float64(c.Size) / (1 - keep)})
	}
	for _, limit := range []int{1, 2, 100, 499, 500, 600} {
		got := reduce(items, limit)
		if want := min(limit, len(items)); len(got) != want {
			t.Errorf("reduce to %d: %d items, want %d", limit, len(got), want)
		}
		var members []int
		for _, it := range got {
			members = append(members, it.members...)
		}
		if !slices.Equal(members, slices.Sorted(slices.Values(members))) || len(members) != len(items) {
			t.Errorf("reduce to %d: members %v are not the contiguous runs of all items", limit, members)
		}
	}
}

package chunk

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// ostreeExtPack re-implements ostree-ext's basic_packing as spec §3.6 describes it, for
// comparison: component index bins, the last one empty.
func ostreeExtPack(comps []Component, n int) [][]int {
	idx := make([]int, len(comps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(comps[b].Size, comps[a].Size) })
	if len(comps) < n {
		var bins [][]int
		for _, i := range idx {
			bins = append(bins, []int{i})
		}
		return append(bins, nil)
	}
	var rest, maxf []int
	for _, i := range idx {
		if comps[i].ChangeFrequency == maxFreq {
			maxf = append(maxf, i)
		} else {
			rest = append(rest, i)
		}
	}
	hasMax := min(1, len(maxf))
	lowAndOther := 2 + hasMax
	limitHS := int(math.Floor(0.6 * float64(n-lowAndOther)))
	limitMS := max(1, n-(limitHS+lowAndOther))

	median := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		s := slices.Sorted(slices.Values(v))
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var sizes []float64
	for _, i := range rest {
		sizes = append(sizes, float64(comps[i].Size))
	}
	med := median(sizes)
	var dev []float64
	for _, s := range sizes {
		dev = append(dev, math.Abs(s-med))
	}
	mad := median(dev)
	high, low := med+2*mad, 0.5*math.Abs(med-2*mad)
	var hs, ls, ms []int
	for _, i := range rest {
		s := float64(comps[i].Size)
		switch {
		case s >= high && len(hs) < limitHS:
			hs = append(hs, i)
		case s <= low:
			ls = append(ls, i)
		default:
			ms = append(ms, i)
		}
	}
	slices.SortStableFunc(ms, func(a, b int) int { return cmp.Compare(comps[a].ChangeFrequency, comps[b].ChangeFrequency) })
	meanSD := func(f func(int) float64) (float64, float64) {
		if len(ms) == 0 {
			return 0, 0
		}
		var sum, sq float64
		for _, i := range ms {
			sum += f(i)
		}
		mean := sum / float64(len(ms))
		for _, i := range ms {
			sq += (f(i) - mean) * (f(i) - mean)
		}
		return mean, math.Sqrt(sq / float64(len(ms)))
	}
	mS, sdS := meanSD(func(i int) float64 { return float64(comps[i].Size) })
	mF, sdF := meanSD(func(i int) float64 { return float64(comps[i].ChangeFrequency) })
	buckets := map[string][]int{}
	for _, i := range ms {
		s, f := float64(comps[i].Size), float64(comps[i].ChangeFrequency)
		key := "4mf"
		if f >= mF+2*sdF {
			key = "3hf"
		} else if f <= 0.5*math.Abs(mF-2*sdF) {
			key = "5lf"
		}
		switch {
		case s >= mS+2*sdS:
			key += "_hs"
		case s <= 0.5*math.Abs(mS-2*sdS):
			key += "_ls"
		default:
			key += "_ms"
		}
		buckets[key] = append(buckets[key], i)
	}
	var bins [][]int
	for _, i := range hs {
		bins = append(bins, []int{i})
	}
	if len(ls) > 0 {
		bins = append(bins, ls)
	}
	perBin := max(1, (len(rest)-limitHS-len(ls))/limitMS)
	var medBins [][]int
	for _, key := range sortedKeys(buckets) {
		b := buckets[key]
		for len(b) > 0 {
			k := min(perBin, len(b))
			medBins = append(medBins, b[:k])
			b = b[k:]
		}
	}
	for len(bins)+len(medBins) > n-1-hasMax && len(medBins) > 1 {
		for i := len(medBins) - 1; i > 0 && len(bins)+len(medBins) > n-1-hasMax; i -= 2 {
			medBins[i-1] = append(slices.Clip(medBins[i-1]), medBins[i]...)
			medBins = slices.Delete(medBins, i, i+1)
		}
	}
	bins = append(bins, medBins...)
	if len(maxf) > 0 {
		bins = append(bins, maxf)
	}
	return append(bins, nil)
}

// modelCost is the modelled expected download of bins of comps.
func modelCost(comps []Component, bins [][]int) float64 {
	var total float64
	for _, b := range bins {
		it := item{keep: 1}
		for _, i := range b {
			it = merge(it, item{members: []int{i}, size: float64(comps[i].Size), keep: keepProbability(comps[i])})
		}
		total += it.cost()
	}
	return total
}

// packBins returns Pack's layers as component index bins.
func packBins(t testing.TB, comps []Component, maxLayers int) [][]int {
	t.Helper()
	layers, err := Pack(comps, maxLayers, nil)
	if err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, c := range comps {
		index[c.Name] = i
	}
	var bins [][]int
	for _, l := range layers {
		var b []int
		for _, n := range l.Components {
			b = append(b, index[n])
		}
		bins = append(bins, b)
	}
	return bins
}

// distroComponents imitates a distribution: log-normal sizes around 200 KiB, a few large
// components, change frequencies mostly 0-3 with a tail, and unpackaged/initramfs content.
func distroComponents(rng *rand.Rand, n int) []Component {
	comps := make([]Component, 0, n+3)
	for i := range n {
		size := int64(200 << 10 * math.Exp(rng.NormFloat64()*1.8))
		freq := uint32(rng.ExpFloat64() * 2)
		if rng.IntN(20) == 0 {
			freq = uint32(10 + rng.IntN(40))
		}
		comps = append(comps, comp(fmt.Sprintf("pkg%04d", i), size, freq, 1))
	}
	return append(comps,
		comp(InitramfsComponent, 90<<20, maxFreq, 1),
		comp(UnpackagedComponent, 30<<20, maxFreq, 1),
		comp(XattrComponentPrefix+"app", 5<<20, maxFreq, 1))
}

// comparePacking logs and checks Pack against ostree-ext's algorithm in the download model.
func comparePacking(t *testing.T, comps []Component, maxLayers int) {
	t.Helper()
	var alone [][]int
	for i := range comps {
		alone = append(alone, []int{i})
	}
	floor := modelCost(comps, alone)
	ours := modelCost(comps, packBins(t, comps, maxLayers))
	theirs := modelCost(comps, ostreeExtPack(comps, maxLayers))
	const mib = 1 << 20
	t.Logf("%d components, %d layers: expected weekly download %.1f MiB (ostree-ext %.1f MiB, one layer per component %.1f MiB)",
		len(comps), maxLayers, ours/mib, theirs/mib, floor/mib)
	if ours > theirs {
		t.Errorf("Pack's plan costs %.1f MiB, more than ostree-ext's %.1f MiB", ours/mib, theirs/mib)
	}
}

// TestPackVersusOstreeExt compares the modelled expected download of Pack's plans with
// ostree-ext's on distribution-like inputs.
func TestPackVersusOstreeExt(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		maxLayers int
	}{
		{"small distro", 400, 64},
		{"desktop", 2000, 64},
		{"desktop, 128 layers", 2000, 128},
		{"few layers", 400, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comparePacking(t, distroComponents(rand.New(rand.NewPCG(uint64(tt.n), uint64(tt.maxLayers))), tt.n), tt.maxLayers)
		})
	}
}

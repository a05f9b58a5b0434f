// Package encapsulate turns OSTree commits into OCI images in the ostree-container format
// (spec §3.2–3.3): layer 0 holds the commit, its trees and directories; each further layer holds
// the files of one or more software components, as the chunk planner decides, so that an update
// downloads only the layers whose components changed.
package encapsulate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/bootc-go/bootc/pkg/encapsulate/chunk"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

// DefaultMaxLayers is the default number of layers of an image: layer 0 and 63 chunk layers, half
// of the 128 layers container runtimes allow, leaving room for derived images.
const DefaultMaxLayers = 64

// Option configures Build.
type Option func(*config)

type config struct {
	maxLayers   int
	labels      map[string]string
	compression Compression
	prior       [][]string
	created     *time.Time
	tempDir     string
	workers     int
	progress    func(Progress)
	log         *slog.Logger
}

// Progress reports layers written.
type Progress struct {
	LayersDone, Layers int
}

// WithMaxLayers bounds the number of layers of the image, layer 0 included (default 64). With 1,
// the image has a single layer holding everything; chunking needs at least 3 (layer 0, one for
// content, one reserved for new packages).
func WithMaxLayers(n int) Option { return func(c *config) { c.maxLayers = n } }

// WithLabels adds labels to the image config and manifest annotations.
func WithLabels(l map[string]string) Option {
	return func(c *config) {
		for k, v := range l {
			c.labels[k] = v
		}
	}
}

// WithCompression sets the layer compression (default gzip).
func WithCompression(comp Compression) Option { return func(c *config) { c.compression = comp } }

// WithPriorBuild keeps the layer assignment of a previous build: prior lists the components of
// each of its chunk layers (see PriorLayers).
func WithPriorBuild(prior [][]string) Option { return func(c *config) { c.prior = prior } }

// WithCreated sets the image creation time (default: the commit's timestamp).
func WithCreated(t time.Time) Option { return func(c *config) { c.created = &t } }

// WithTempDir sets where layer blobs are written until the image is closed (default: the
// system's temporary directory).
func WithTempDir(dir string) Option { return func(c *config) { c.tempDir = dir } }

// WithProgress reports progress to fn.
func WithProgress(fn func(Progress)) Option { return func(c *config) { c.progress = fn } }

// WithLogger sends debug logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Image is a built image whose layer blobs live in temporary files until Close.
type Image struct {
	v1.Image
	// Commit is the encapsulated commit.
	Commit ostree.Checksum
	// Plan is the chunk layers' plan, in image order after layer 0.
	Plan []chunk.Layer
	dir  string
}

// Close removes the layer blobs.
func (i *Image) Close() error { return os.RemoveAll(i.dir) }

// Build encapsulates commit rev of repo as an OCI image. Layers are written to temporary files,
// several at once; the same commit and options always give the same image digest.
func Build(ctx context.Context, repo *ostree.Repo, rev string, opts ...Option) (*Image, error) {
	cfg := &config{maxLayers: DefaultMaxLayers, labels: map[string]string{}, compression: Gzip, workers: runtime.GOMAXPROCS(0), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.maxLayers < 1 || cfg.maxLayers == 2 {
		return nil, fmt.Errorf("max layers %d: use 1 for a single-layer image, or at least 3 (layer 0, content, and a layer reserved for new packages)", cfg.maxLayers)
	}
	c, err := repo.ResolveRev(rev)
	if err != nil {
		return nil, err
	}
	ix, err := indexCommit(ctx, repo, c)
	if err != nil {
		return nil, err
	}
	var plan []chunk.Layer
	if cfg.maxLayers > 1 {
		if plan, err = planLayers(ix, cfg); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(cfg.tempDir, "bootc-encapsulate-")
	if err != nil {
		return nil, fmt.Errorf("creating layer directory: %w", err)
	}
	img, err := assemble(ctx, ix, plan, cfg, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Image{Image: img, Commit: c, Plan: plan, dir: dir}, nil
}

// planLayers attributes every content object to a component and bins the components.
func planLayers(ix *commitIndex, cfg *config) ([]chunk.Layer, error) {
	var files []chunk.File
	for _, c := range ix.sortedObjects() {
		o := ix.objects[c]
		for _, p := range o.paths {
			files = append(files, chunk.File{Path: p, Object: c.String(), Size: o.size, Component: o.component})
		}
	}
	pkgs, err := packages(ix)
	if err != nil {
		return nil, err
	}
	comps, err := chunk.Attribute(ix, files, pkgs)
	if err != nil {
		return nil, fmt.Errorf("attributing files to components: %w", err)
	}
	layers, err := chunk.Pack(comps, cfg.maxLayers-1, cfg.prior)
	if err != nil {
		return nil, fmt.Errorf("planning layers: %w", err)
	}
	cfg.log.Debug("planned layers", "components", len(comps), "layers", len(layers))
	return layers, nil
}

// packages reads the package databases the commit has.
func packages(ix *commitIndex) ([]chunk.Package, error) {
	deb, err := chunk.DpkgPackages(ix)
	if err != nil {
		return nil, fmt.Errorf("reading the dpkg database: %w", err)
	}
	rpm, err := rpmPackages(ix)
	if err != nil {
		return nil, fmt.Errorf("reading the rpm database: %w", err)
	}
	return append(deb, rpm...), nil
}

// layerName is the history entry of a chunk layer.
func layerName(l chunk.Layer) string {
	if l.Name != "" {
		return l.Name
	}
	return strings.Join(l.Components, " and ")
}

func assemble(ctx context.Context, ix *commitIndex, plan []chunk.Layer, cfg *config, dir string) (v1.Image, error) {
	layers := make([]*fileLayer, len(plan)+1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.workers)
	var mu sync.Mutex
	done := 0
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		done++
		if cfg.progress != nil {
			cfg.progress(Progress{LayersDone: done, Layers: len(layers)})
		}
	}
	for i := range layers {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			path := filepath.Join(dir, "layer-"+strconv.Itoa(i))
			var err error
			if i == 0 {
				var rest []ostree.Checksum
				if len(plan) == 0 { // a single layer holds everything
					rest = ix.sortedObjects()
				}
				layers[0], err = writeLayerFile(path, cfg.compression, func(w io.Writer) error { return writeOstreeLayer(w, ix, rest) })
			} else {
				objs, perr := parseChecksums(plan[i-1].Objects)
				if perr != nil {
					return perr
				}
				layers[i], err = writeLayerFile(path, cfg.compression, func(w io.Writer) error { return writeChunkLayer(w, ix, objs) })
			}
			if err != nil {
				return fmt.Errorf("writing layer %d: %w", i, err)
			}
			report()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	created := time.Unix(int64(ix.commit.Timestamp), 0).UTC()
	if cfg.created != nil {
		created = cfg.created.UTC()
	}
	labels := map[string]string{ostreecontainer.LabelCommit: ix.checksum.String()}
	final, _ := layers[len(layers)-1].DiffID()
	labels[ostreecontainer.LabelFinalDiffID] = final.String()
	if v, ok := ix.commit.Metadata.String("version"); ok {
		labels[ostreecontainer.LabelVersion] = v
	}
	if v, ok := ix.commit.Metadata.Lookup(ostreecontainer.KeyBootable); ok && v.Type.String() == "b" && v.Value.(bool) {
		labels[ostreecontainer.LabelBootable] = "true"
		labels[ostreecontainer.LabelBootc] = "1"
	}
	if v, ok := ix.commit.Metadata.String(ostreecontainer.KeyLinux); ok {
		labels[ostreecontainer.LabelLinux] = v
	}
	for k, v := range cfg.labels {
		labels[k] = v
	}

	cf := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		Config:       v1.Config{Labels: labels},
		RootFS:       v1.RootFS{Type: "layers"},
	}
	if v, ok := ix.commit.Metadata.Lookup(ostreecontainer.KeyContainerCmd); ok && v.Type.String() == "as" {
		for _, s := range v.Value.([]any) {
			cf.Config.Cmd = append(cf.Config.Cmd, s.(string))
		}
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	base, err := mutate.ConfigFile(base, cf)
	if err != nil {
		return nil, err
	}
	subject := ix.commit.Subject
	if subject == "" {
		subject = "ostree export of commit " + ix.checksum.String()
	}
	adds := []mutate.Addendum{{Layer: layers[0], History: v1.History{Created: v1.Time{Time: created}, CreatedBy: subject}, MediaType: cfg.compression.mediaType(), Annotations: layerAnnotations(layers[0], nil)}}
	for i, l := range plan {
		adds = append(adds, mutate.Addendum{
			Layer:       layers[i+1],
			History:     v1.History{Created: v1.Time{Time: created}, CreatedBy: layerName(l)},
			Annotations: layerAnnotations(layers[i+1], map[string]string{ostreecontainer.AnnotationComponents: strings.Join(l.Components, ",")}),
			MediaType:   cfg.compression.mediaType(),
		})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// layerAnnotations merges a layer's own annotations (compression metadata) with ours; nil if none.
func layerAnnotations(l *fileLayer, ours map[string]string) map[string]string {
	if len(l.annotations) == 0 {
		return ours
	}
	out := map[string]string{}
	for k, v := range l.annotations {
		out[k] = v
	}
	for k, v := range ours {
		out[k] = v
	}
	return out
}

func parseChecksums(hexes []string) ([]ostree.Checksum, error) {
	out := make([]ostree.Checksum, len(hexes))
	for i, h := range hexes {
		c, err := ostree.ParseChecksum(h)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// PriorLayers reads the chunk layout of a previous build: the components of each layer after
// layer 0, from their ostree.components annotations.
func PriorLayers(img v1.Image) ([][]string, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the previous build's manifest: %w", err)
	}
	if len(m.Layers) < 2 {
		return nil, fmt.Errorf("the previous build has %d layers: not a chunked ostree-container image", len(m.Layers))
	}
	var prior [][]string
	for i, l := range m.Layers[1:] {
		v, ok := l.Annotations[ostreecontainer.AnnotationComponents]
		if !ok {
			return nil, fmt.Errorf("layer %d of the previous build has no %s annotation: not a chunked image of ours (build without --previous-build)", i+1, ostreecontainer.AnnotationComponents)
		}
		var comps []string
		if v != "" {
			comps = strings.Split(v, ",")
			sort.Strings(comps)
		}
		prior = append(prior, comps)
	}
	return prior, nil
}

package host

import (
	"context"
	"errors"
	"strings"

	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
	"github.com/bootc-go/bootc/pkg/verify"
)

// Pulled says what a pull fetched.
type Pulled struct {
	// Image is the reference pulled; State the image as recorded in the image store.
	Image imgref.OstreeRef
	State *imagestore.ImageState
	// LayersFetched were downloaded (BytesFetched compressed bytes); LayersReused were in the
	// repository already.
	LayersFetched, LayersReused int
	// LayersPartial of the fetched layers were fetched in part: only the files the
	// repository lacked (zstd:chunked layers).
	LayersPartial int
	BytesFetched  int64
	// Verified is what the trust policy accepted, nil for an unverified reference.
	Verified *verify.Verified
}

// pullOptions verifies ref's image by the trust policy when ref asks for it
// (ostree-image-signed:), and pins what was verified: the pull then fetches that manifest digest
// and nothing else.
func (h *Host) pullOptions(ctx context.Context, ref imgref.OstreeRef) (imagestore.PullOptions, *verify.Verified, error) {
	o := imagestore.PullOptions{Log: h.cfg.log, Registries: h.cfg.registries, Warn: func(what string, err error) { h.cfg.progress(Warning{What: what, Err: err}) }}
	v, err := verify.Verify(ctx, ref, verify.Options{
		PolicyPath: h.cfg.policyPath,
		Registries: h.cfg.registries,
	})
	if err != nil || v == nil {
		return o, nil, err
	}
	h.cfg.log.Info("verified by the trust policy", "image", ref.Image.String(), "digest", v.Digest.String(), "scope", v.Scope)
	h.cfg.progress(Verified{Image: ref, Verified: v})
	o.ExpectDigest = &v.Digest
	return o, v, nil
}

// pull verifies (pullOptions) and imports ref's image, reporting PullProgress and PullDone. When the image's
// content is refused (a digest mismatch, a hostile or unbootable tree, another image than the
// one verified), the image-store refs this pull added are deleted and the repository pruned, so
// that nothing of a refused image stays; a pull cut off by the network or a signal keeps them,
// to resume.
func (h *Host) pull(ctx context.Context, ref imgref.OstreeRef) (*Pulled, error) {
	o, v, err := h.pullOptions(ctx, ref)
	if err != nil {
		return nil, err
	}
	repo := h.sys.Repo()
	before, err := imageStoreRefs(repo)
	if err != nil {
		return nil, err
	}
	o.Progress = func(p imagestore.PullProgress) { h.cfg.progress(PullProgress{Image: ref, PullProgress: p}) }
	res, err := imagestore.Pull(ctx, repo, ref, o)
	if err != nil {
		if refused(err) {
			h.dropNewRefs(ctx, before)
		}
		return nil, err // Pull names the image
	}
	p := &Pulled{Image: ref, State: res.Image, LayersFetched: res.LayersFetched, LayersReused: res.LayersReused, LayersPartial: res.LayersPartial, BytesFetched: res.BytesFetched, Verified: v}
	h.cfg.progress(PullDone{p})
	return p, nil
}

// refused tells content errors (the image is bad) from transient ones.
func refused(err error) bool {
	for _, e := range []error{imagestore.ErrDigestMismatch, imagestore.ErrBadLayer, imagestore.ErrNotBootable, imagestore.ErrImageChanged} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// imageStoreRefs lists the refs of the image store (ostree/container/...).
func imageStoreRefs(repo *ostree.Repo) (map[string]bool, error) {
	refs, err := repo.ListRefs()
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, r := range refs {
		if strings.HasPrefix(r.Name, ostreecontainer.RefPrefix) {
			m[r.Name] = true
		}
	}
	return m, nil
}

// dropNewRefs deletes the image-store refs that were not there before and prunes what only
// they reached; a failure is a Warning (the next cleanup removes what is left).
func (h *Host) dropNewRefs(ctx context.Context, before map[string]bool) {
	repo := h.sys.Repo()
	now, err := imageStoreRefs(repo)
	if err == nil {
		for r := range now {
			if !before[r] {
				err = errors.Join(err, repo.DeleteRef(r))
			}
		}
	}
	if err == nil {
		_, err = repo.Prune(ctx, ostree.PruneOptions{})
	}
	if err != nil {
		h.cfg.warn("removing what the refused image left", err)
	}
}

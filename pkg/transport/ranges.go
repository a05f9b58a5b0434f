package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrtransport "github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/pkg/tlsclientconfig"
	"go.podman.io/image/v5/types"
)

// Range is Length bytes of a blob, from Offset.
type Range struct{ Offset, Length int64 }

// ErrNoRanges reports a source that does not serve parts of a blob: a registry that answers a
// range request with the whole blob (200), refuses it, or answers for other bytes. Read the
// whole blob instead.
var ErrNoRanges = errors.New("the source does not serve byte ranges")

// RangeReader is implemented by the images [Read] returns when their source can serve parts
// of a blob: OCI layouts and archives (read from the file) and registries (HTTP Range
// requests, made with the same registries.conf, credentials and certificates as every other
// request).
type RangeReader interface {
	// ReadRanges returns the ranges of the blob desc names, in order. ranges must be sorted,
	// non-empty and apart from each other. Nothing is checked against the blob's digest: the
	// caller verifies what it reads.
	ReadRanges(ctx context.Context, desc v1.Descriptor, ranges []Range) (Parts, error)
}

// Parts reads the ranges asked of a [RangeReader], one after the other.
type Parts interface {
	// Next returns a reader of exactly the next range's bytes (it fails with
	// io.ErrUnexpectedEOF if the source sends fewer), or io.EOF after the last. Whatever the
	// caller did not read of the previous range is skipped.
	Next() (io.Reader, error)
	Close() error
}

// maxRangesPerRequest bounds the ranges of one HTTP request: a Range header of 100 ranges
// stays under the 8 KiB header line common proxies accept.
const maxRangesPerRequest = 100

// exactReader reads exactly n bytes from r: fewer is io.ErrUnexpectedEOF.
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	if err == io.EOF && e.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func checkRanges(desc v1.Descriptor, ranges []Range) error {
	end := int64(0)
	for i, r := range ranges {
		if r.Length <= 0 || r.Offset < end || r.Offset > desc.Size-r.Length {
			return fmt.Errorf("range %d (%d+%d) of blob %s (%d bytes) is empty, out of order or out of the blob", i, r.Offset, r.Length, desc.Digest, desc.Size)
		}
		end = r.Offset + r.Length
	}
	return nil
}

// fileRanges reads ranges of the blobs of an OCI layout directory.
type fileRanges struct{ dir string }

func (f fileRanges) ReadRanges(ctx context.Context, desc v1.Descriptor, ranges []Range) (Parts, error) {
	if err := checkRanges(desc, ranges); err != nil {
		return nil, err
	}
	if desc.Digest.Algorithm != "sha256" || len(desc.Digest.Hex) != 64 || strings.ContainsAny(desc.Digest.Hex, "/.") {
		return nil, fmt.Errorf("blob %s: only sha256 digests are supported", desc.Digest)
	}
	file, err := os.Open(filepath.Join(f.dir, "blobs", desc.Digest.Algorithm, desc.Digest.Hex))
	if err != nil {
		return nil, err
	}
	return &fileParts{ctx: ctx, f: file, ranges: ranges}, nil
}

type fileParts struct {
	ctx    context.Context
	f      *os.File
	ranges []Range
}

func (p *fileParts) Next() (io.Reader, error) {
	if err := p.ctx.Err(); err != nil {
		return nil, err
	}
	if len(p.ranges) == 0 {
		return nil, io.EOF
	}
	r := p.ranges[0]
	p.ranges = p.ranges[1:]
	return &exactReader{r: io.NewSectionReader(p.f, r.Offset, r.Length), n: r.Length}, nil
}

func (p *fileParts) Close() error { return p.f.Close() }

// rangedImage is an image whose blobs can be read in parts.
type rangedImage struct {
	v1.Image
	RangeReader
}

// httpRanges reads ranges of the blobs of one repository of a registry, from the first of its
// pull sources (mirrors, then the registry) that serves them.
type httpRanges struct {
	sys     *types.SystemContext
	sources []sysregistriesv2.PullSource
	proxy   func(*http.Request) (*url.URL, error)

	mu     sync.Mutex     // guards chosen: layers are fetched concurrently
	chosen *rangeEndpoint // the endpoint that answered first
}

type rangeEndpoint struct {
	client *http.Client
	url    string // SCHEME://HOST/v2/REPO/blobs/
}

// newHTTPRanges resolves the pull sources of named as containers/image does.
func newHTTPRanges(sys *types.SystemContext, named reference.Named, proxy func(*http.Request) (*url.URL, error)) (*httpRanges, error) {
	reg, err := sysregistriesv2.FindRegistry(sys, named.String())
	if err != nil {
		return nil, err
	}
	h := &httpRanges{sys: sys, proxy: proxy}
	if reg == nil {
		h.sources = []sysregistriesv2.PullSource{{Reference: named, Endpoint: sysregistriesv2.Endpoint{Location: reference.Domain(named)}}}
	} else if h.sources, err = reg.PullSourcesFromReference(named); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *httpRanges) ReadRanges(ctx context.Context, desc v1.Descriptor, ranges []Range) (Parts, error) {
	if err := checkRanges(desc, ranges); err != nil {
		return nil, err
	}
	p := &httpParts{ctx: ctx, h: h, desc: desc, todo: ranges}
	if err := p.request(); err != nil {
		return nil, err
	}
	return p, nil
}

// endpoint returns the client and blob URL of a pull source.
func (h *httpRanges) endpoint(ctx context.Context, src sysregistriesv2.PullSource, https bool) (*rangeEndpoint, error) {
	domain := reference.Domain(src.Reference)
	var opts []name.Option
	if src.Endpoint.Insecure || loopbackHost(domain) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(domain+"/"+reference.Path(src.Reference), opts...)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = h.proxy
	if base.TLSClientConfig == nil {
		base.TLSClientConfig = &tls.Config{}
	}
	base.TLSClientConfig.InsecureSkipVerify = src.Endpoint.Insecure || h.sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue
	certDirs := []string{filepath.Join("/etc/containers/certs.d", domain), filepath.Join("/etc/docker/certs.d", domain)}
	if h.sys.DockerPerHostCertDirPath != "" {
		certDirs = []string{filepath.Join(h.sys.DockerPerHostCertDirPath, domain)}
	}
	for _, d := range certDirs {
		if err := tlsclientconfig.SetupCertificates(d, base.TLSClientConfig); err != nil {
			return nil, err
		}
	}
	auth := authn.Anonymous
	if cred, err := config.GetCredentials(h.sys, domain); err == nil && (cred.Username != "" || cred.IdentityToken != "") {
		auth = authn.FromConfig(authn.AuthConfig{Username: cred.Username, Password: cred.Password, IdentityToken: cred.IdentityToken})
	}
	rt, err := ggcrtransport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(ggcrtransport.PullScope)})
	if err != nil {
		return nil, err
	}
	scheme := "https"
	if !https {
		scheme = "http"
	}
	return &rangeEndpoint{client: &http.Client{Transport: rt}, url: fmt.Sprintf("%s://%s/v2/%s/blobs/", scheme, repo.RegistryStr(), repo.RepositoryStr())}, nil
}

// httpParts is one ReadRanges of a registry blob: up to maxRangesPerRequest ranges per request.
type httpParts struct {
	ctx  context.Context
	h    *httpRanges
	desc v1.Descriptor
	todo []Range // ranges not yet requested

	asked []Range // the ranges of the current response not yet returned
	body  io.ReadCloser
	mr    *multipart.Reader
	cur   io.Reader
}

// request asks for the next batch of ranges. The first request of a ReadRanges picks the
// endpoint: the pull sources in order, plain HTTP only for loopback or insecure ones.
func (p *httpParts) request() error {
	n := min(len(p.todo), maxRangesPerRequest)
	batch := p.todo[:n]
	p.todo = p.todo[n:]
	spec := make([]string, len(batch))
	for i, r := range batch {
		spec[i] = fmt.Sprintf("%d-%d", r.Offset, r.Offset+r.Length-1)
	}
	header := "bytes=" + strings.Join(spec, ",")
	p.h.mu.Lock()
	chosen := p.h.chosen
	p.h.mu.Unlock()
	if chosen != nil {
		return p.send(chosen, batch, header)
	}
	var errs []error
	for _, src := range p.h.sources {
		schemes := []bool{true}
		if loopbackHost(reference.Domain(src.Reference)) {
			schemes = []bool{false}
		} else if src.Endpoint.Insecure {
			schemes = []bool{true, false}
		}
		for _, https := range schemes {
			ep, err := p.h.endpoint(p.ctx, src, https)
			if err == nil {
				if err = p.send(ep, batch, header); err == nil {
					p.h.mu.Lock()
					p.h.chosen = ep
					p.h.mu.Unlock()
					return nil
				}
			}
			if errors.Is(err, ErrNoRanges) || p.ctx.Err() != nil {
				return err
			}
			errs = append(errs, fmt.Errorf("%s: %w", reference.Domain(src.Reference), err))
		}
	}
	return errors.Join(errs...)
}

func (p *httpParts) send(ep *rangeEndpoint, batch []Range, header string) error {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, ep.url+p.desc.Digest.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Range", header)
	resp, err := ep.client.Do(req)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK, http.StatusRequestedRangeNotSatisfiable, http.StatusBadRequest, http.StatusNotImplemented:
		resp.Body.Close()
		return fmt.Errorf("%w: %s answered %s to a range request", ErrNoRanges, req.URL.Host, resp.Status)
	default:
		resp.Body.Close()
		return fmt.Errorf("fetching ranges of blob %s: %s", p.desc.Digest, resp.Status)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	p.body, p.asked, p.mr, p.cur = resp.Body, batch, nil, nil
	if err == nil && mt == "multipart/byteranges" {
		if params["boundary"] == "" {
			return fmt.Errorf("%w: a multipart answer without a boundary", ErrNoRanges)
		}
		p.mr = multipart.NewReader(resp.Body, params["boundary"])
		return nil
	}
	if len(batch) != 1 {
		return fmt.Errorf("%w: %d ranges asked, one answered (%s)", ErrNoRanges, len(batch), resp.Header.Get("Content-Range"))
	}
	if err := checkContentRange(resp.Header.Get("Content-Range"), batch[0], p.desc.Size); err != nil {
		return err
	}
	p.cur = resp.Body
	return nil
}

// checkContentRange makes sure a part is the range asked.
func checkContentRange(v string, want Range, size int64) error {
	s, ok := strings.CutPrefix(v, "bytes ")
	a, rest, ok2 := strings.Cut(s, "-")
	b, total, ok3 := strings.Cut(rest, "/")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil || first != want.Offset || last != want.Offset+want.Length-1 || (total != "*" && total != strconv.FormatInt(size, 10)) {
		return fmt.Errorf("%w: asked bytes %d-%d/%d, the answer is for %q", ErrNoRanges, want.Offset, want.Offset+want.Length-1, size, v)
	}
	return nil
}

func (p *httpParts) Next() (io.Reader, error) {
	for len(p.asked) == 0 {
		if len(p.todo) == 0 {
			return nil, io.EOF
		}
		p.Close()
		if err := p.request(); err != nil {
			return nil, err
		}
	}
	want := p.asked[0]
	p.asked = p.asked[1:]
	if p.mr == nil {
		r := p.cur
		p.cur = nil
		return &exactReader{r: r, n: want.Length}, nil
	}
	part, err := p.mr.NextPart()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading the ranges of blob %s: %w", p.desc.Digest, err)
	}
	if err := checkContentRange(part.Header.Get("Content-Range"), want, p.desc.Size); err != nil {
		return nil, err
	}
	return &exactReader{r: part, n: want.Length}, nil
}

func (p *httpParts) Close() error {
	if p.body == nil {
		return nil
	}
	err := p.body.Close()
	p.body = nil
	return err
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/sign"
	"github.com/bootc-go/bootc/pkg/transport"
)

func composeImageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "build a bootable chunked image from a root filesystem or a container image",
		Description: `Does 'compose commit' and 'compose encapsulate' in one go. The source is a root
filesystem directory (--rootfs) or any container image (--from), whose layers
are flattened (whiteouts honoured) first. The commit goes to a scratch
repository unless --repo names one (keep a repository between builds to skip
rewriting unchanged files).

Examples:
   bootc compose image --rootfs /var/tmp/rootfs --output oci-archive:os.ociarchive
   podman build -t localhost/myos . && podman save --format oci-archive -o myos.tar localhost/myos
   bootc compose image --from oci-archive:myos.tar --output docker://127.0.0.1:5000/myos:1
   SOURCE_DATE_EPOCH=1700000000 bootc compose image --rootfs rootfs --output oci:out:1

Signing: with --sign-key, the pushed manifest is signed with a cosign private key
(the encrypted cosign.key of 'cosign generate-key-pair'; its passphrase comes
from --sign-passphrase-file, else the environment variable COSIGN_PASSWORD,
else it is empty) and the signature is stored beside the image in the registry
as a sigstore attachment (tag sha256-<digest>.sig, as 'cosign sign' does). Its
identity is the --output reference, tag included. Only registry outputs can
hold signatures. The key is checked before anything is built or pushed.
'cosign verify --key cosign.pub --insecure-ignore-tlog' verifies the result, and
so does a containers policy.json 'sigstoreSigned' requirement with keyPath
(readers need 'use-sigstore-attachments: true' in registries.d).

   COSIGN_PASSWORD= cosign generate-key-pair
   COSIGN_PASSWORD= bootc compose image --rootfs rootfs --output docker://127.0.0.1:5000/myos:1 --sign-key cosign.key
   cosign verify --key cosign.pub --insecure-ignore-tlog 127.0.0.1:5000/myos:1`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory to compose"},
			&cli.StringFlag{Name: "from", Usage: "container image to flatten and compose (oci:, oci-archive:, docker://)"},
			&cli.StringFlag{Name: "output", Required: true, Usage: "where to write the image (oci:DIR[:TAG], oci-archive:FILE, docker://REF)"},
			&cli.StringFlag{Name: "repo", Usage: "OSTree repository to commit into (default: a scratch repository)"},
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Value: "bootc/compose", Usage: "branch of the commit in the repository"},
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "commit subject (also the history entry of layer 0)"},
			&cli.StringFlag{Name: "version", Usage: "version metadata (default: VERSION_ID from os-release)"},
			&cli.StringFlag{Name: "timestamp", Usage: "commit time (default: SOURCE_DATE_EPOCH, the --from image's creation time, else now)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the pushed image with this cosign private key (registry outputs only)"},
			&cli.StringFlag{Name: "sign-passphrase-file", Usage: "read the --sign-key passphrase from this file (first line; default: $COSIGN_PASSWORD, else empty)"},
		}, imageFlags()...),
		Action: runComposeImage,
	}
}

func runComposeImage(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "image takes no arguments")
	}
	rootfs, from := c.String("rootfs"), c.String("from")
	if (rootfs == "") == (from == "") {
		return usageError(c, "give exactly one of --rootfs DIR and --from IMAGE")
	}
	target, err := imgref.Parse(c.String("output"))
	if err != nil {
		return usageError(c, "--output: %v", err)
	}
	signer, err := loadSigner(c, target)
	if err != nil {
		return err
	}
	if signer != nil {
		defer signer.Close()
	}
	opts, err := imageOptions(c, target)
	if err != nil {
		return err
	}
	commitOpts := []bootable.Option{bootable.WithBranch(c.String("branch"))}
	if s := c.String("subject"); s != "" {
		commitOpts = append(commitOpts, bootable.WithSubject(s))
	}
	if v := c.String("version"); v != "" {
		commitOpts = append(commitOpts, bootable.WithVersion(v))
	}
	if ts := c.String("timestamp"); ts != "" {
		t, err := parseTimestamp(ts)
		if err != nil {
			return usageError(c, "%v", err)
		}
		commitOpts = append(commitOpts, bootable.WithTimestamp(t))
	}

	scratch, err := os.MkdirTemp("/var/tmp", "bootc-compose-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	repoPath := c.String("repo")
	if repoPath == "" {
		repoPath = filepath.Join(scratch, "repo")
	}
	repo, err := ostree.Init(c.Context, repoPath, ostree.ModeBareUser)
	if err != nil {
		return err
	}
	if from != "" {
		ref, err := imgref.Parse(from)
		if err != nil {
			return usageError(c, "--from: %v", err)
		}
		rootfs = filepath.Join(scratch, "rootfs")
		img, err := transport.Read(c.Context, ref, hostPlatform)
		if err != nil {
			return err
		}
		created, err := imagestore.FlattenTo(c.Context, repo, img, rootfs)
		img.Close()
		if err != nil {
			return fmt.Errorf("flattening %s: %w", ref, err)
		}
		if c.String("timestamp") == "" && os.Getenv("SOURCE_DATE_EPOCH") == "" && !created.IsZero() {
			commitOpts = append(commitOpts, bootable.WithTimestamp(created))
		}
	}
	sum, err := bootable.Commit(c.Context, repo, rootfs, commitOpts...)
	if err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	return buildAndWrite(c, repo, sum.String(), target, signer, append(opts, encapsulate.WithTempDir(scratch)))
}

// loadSigner loads the --sign-key key, or returns nil without --sign-key. It runs before anything
// is built, so that a bad key or passphrase changes nothing.
func loadSigner(c *cli.Context, target imgref.Ref) (*sign.Signer, error) {
	key, passFile := c.String("sign-key"), c.String("sign-passphrase-file")
	if key == "" {
		if passFile != "" {
			return nil, usageError(c, "--sign-passphrase-file needs --sign-key")
		}
		return nil, nil
	}
	if target.Transport != imgref.Registry {
		return nil, usageError(c, "--sign-key: cannot sign %s: signatures are stored as sigstore attachments in a registry, which OCI layouts, archives and containers-storage cannot hold; push to docker://REGISTRY/NAME:TAG", target)
	}
	passphrase := []byte(os.Getenv("COSIGN_PASSWORD"))
	if passFile != "" {
		b, err := os.ReadFile(passFile)
		if err != nil {
			return nil, fmt.Errorf("--sign-passphrase-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		passphrase = []byte(strings.TrimSuffix(line, "\r"))
	}
	s, err := sign.LoadKey(key, passphrase)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w; nothing was built or pushed", err)
	}
	return s, nil
}

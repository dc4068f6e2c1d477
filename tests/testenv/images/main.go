// Command images writes the container images of kubeforge's test environment
// as one OCI image layout tar, for `ctr images import` into each node's
// containerd: the images kubeadm deploys, under the exact names and tags it
// uses, built from the binaries tests/testenv builds, so a node never pulls.
//
// Layers are uncompressed tars with fixed owners and times, so the same
// binaries always give the same digests; layers several images share (the
// Kubernetes multi-call binary) are stored once.
//
//	images -o images.tar -kubernetes-version v1.35.4 -kubernetes BIN -etcd BIN \
//	    -etcd-tag 3.6.6-0 -coredns BIN -coredns-tag v1.13.1 -pause BIN -pause-tag 3.10.1 \
//	    -agnhost BIN -agnhost-tag 2.59 -iptables-files FILE
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entry is one member of a layer: a file copied from the host, a symlink or a directory.
type entry struct {
	path   string // inside the image, without the leading slash
	source string // host file, for a regular file
	link   string // target, for a symlink
	mode   int64
}

type layer struct {
	entries []entry
	digest  string // sha256 hex of the tar
	size    int64
	file    string // the tar, written once
}

type image struct {
	names      []string
	layers     []*layer
	entrypoint []string
	env        []string
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    map[string]string `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

var epoch = time.Unix(0, 0).UTC()

func main() {
	out := flag.String("o", "", "the OCI layout tar to write")
	kubernetesVersion := flag.String("kubernetes-version", "", "tag of the Kubernetes component images")
	kubernetes := flag.String("kubernetes", "", "the Kubernetes multi-call binary")
	etcd := flag.String("etcd", "", "the etcd/etcdctl multi-call binary")
	etcdTag := flag.String("etcd-tag", "", "tag of the etcd image")
	coredns := flag.String("coredns", "", "the CoreDNS binary")
	corednsTag := flag.String("coredns-tag", "", "tag of the CoreDNS image")
	pause := flag.String("pause", "", "the pause binary")
	pauseTag := flag.String("pause-tag", "", "tag of the pause image")
	agnhost := flag.String("agnhost", "", "the agnhost binary")
	agnhostTag := flag.String("agnhost-tag", "", "tag of the agnhost image")
	iptablesFiles := flag.String("iptables-files", "", "a file listing the host's iptables files (one absolute path a line) for the kube-proxy image")
	flag.Parse()
	for name, value := range map[string]string{"o": *out, "kubernetes-version": *kubernetesVersion, "kubernetes": *kubernetes,
		"etcd": *etcd, "etcd-tag": *etcdTag, "coredns": *coredns, "coredns-tag": *corednsTag, "pause": *pause,
		"pause-tag": *pauseTag, "agnhost": *agnhost, "agnhost-tag": *agnhostTag, "iptables-files": *iptablesFiles} {
		if value == "" {
			fail(fmt.Errorf("-%s is required", name))
		}
	}

	base := &layer{entries: []entry{
		{path: "etc", mode: 0o755},
		{path: "etc/passwd", mode: 0o644},
		{path: "etc/group", mode: 0o644},
		{path: "etc/nsswitch.conf", mode: 0o644},
		{path: "tmp", mode: 0o1777},
		{path: "run", mode: 0o755},
		{path: "var", mode: 0o755},
		{path: "var/run", link: "../run"},
	}}
	components := []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "kubectl", "kubeadm"}
	k8s := &layer{entries: binaryWithLinks("usr/local/bin/kubernetes", *kubernetes, components)}
	etcdLayer := &layer{entries: binaryWithLinks("usr/local/bin/etcd-multicall", *etcd, []string{"etcd", "etcdctl"})}
	iptables, err := hostFiles(*iptablesFiles)
	fail(err)
	path := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	registry := "registry.k8s.io/"

	var images []image
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		images = append(images, image{names: []string{registry + c + ":" + *kubernetesVersion}, layers: []*layer{base, k8s},
			entrypoint: []string{"/usr/local/bin/" + c}, env: path})
	}
	images = append(images,
		image{names: []string{registry + "kube-proxy:" + *kubernetesVersion}, layers: []*layer{base, k8s, iptables},
			entrypoint: []string{"/usr/local/bin/kube-proxy"}, env: path},
		image{names: []string{registry + "etcd:" + *etcdTag}, layers: []*layer{base, etcdLayer},
			entrypoint: []string{"/usr/local/bin/etcd"}, env: path},
		image{names: []string{registry + "coredns/coredns:" + *corednsTag}, layers: []*layer{base, single("coredns", *coredns)},
			entrypoint: []string{"/coredns"}, env: path},
		image{names: []string{registry + "pause:" + *pauseTag}, layers: []*layer{single("pause", *pause)},
			entrypoint: []string{"/pause"}},
		image{names: []string{registry + "e2e-test-images/agnhost:" + *agnhostTag}, layers: []*layer{base, single("agnhost", *agnhost)},
			entrypoint: []string{"/agnhost"}, env: path},
	)
	fail(write(*out, images))
}

func binaryWithLinks(binary, source string, names []string) []entry {
	entries := []entry{{path: "usr", mode: 0o755}, {path: "usr/local", mode: 0o755}, {path: "usr/local/bin", mode: 0o755},
		{path: binary, source: source, mode: 0o755}}
	for _, n := range names {
		entries = append(entries, entry{path: "usr/local/bin/" + n, link: filepath.Base(binary)})
	}
	return entries
}

func single(name, source string) *layer {
	return &layer{entries: []entry{{path: name, source: source, mode: 0o755}}}
}

// hostFiles makes a layer of host files at their own paths, with the directories above them and
// every symbolic link on the way to them (the host's top-level links into /usr on a merged-/usr
// system, a library's soname link to its versioned file), and the iptables commands kube-proxy
// runs as links to the nft multi-call binary, as the upstream kube-proxy image has them.
func hostFiles(list string) (*layer, error) {
	f, err := os.Open(list)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	found := map[string]entry{"usr/sbin": {path: "usr/sbin", mode: 0o755}}
	var add func(p string, depth int) error
	add = func(p string, depth int) error {
		if depth > 16 {
			return fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		p = filepath.Clean(p)
		// The directories above p, each a directory or a link to one.
		parts := strings.Split(strings.TrimPrefix(filepath.Dir(p), "/"), "/")
		for i := range parts {
			dir := "/" + filepath.Join(parts[:i+1]...)
			if dir == "/" {
				continue
			}
			rel := strings.TrimPrefix(dir, "/")
			info, err := os.Lstat(dir)
			if err != nil {
				return err
			}
			if info.Mode()&os.ModeSymlink != 0 {
				target, err := os.Readlink(dir)
				if err != nil {
					return err
				}
				found[rel] = entry{path: rel, link: target}
				resolved := target
				if !filepath.IsAbs(target) {
					resolved = filepath.Join(filepath.Dir(dir), target)
				}
				rest := filepath.Join(append([]string{resolved}, append(parts[i+1:], filepath.Base(p))...)...)
				return add(rest, depth+1)
			}
			found[rel] = entry{path: rel, mode: 0o755}
		}
		rel := strings.TrimPrefix(p, "/")
		if _, ok := found[rel]; ok {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			found[rel] = entry{path: rel, link: target}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(p), target)
			}
			return add(target, depth+1)
		case info.Mode().IsRegular():
			found[rel] = entry{path: rel, source: p, mode: int64(info.Mode().Perm())}
			return nil
		default:
			return fmt.Errorf("%s: not a file or symbolic link", p)
		}
	}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if p := strings.TrimSpace(scanner.Text()); p != "" {
			if err := add(p, 0); err != nil {
				return nil, fmt.Errorf("%s (listed in %s): %w", p, list, err)
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	for _, command := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		found["usr/sbin/"+command] = entry{path: "usr/sbin/" + command, link: "xtables-nft-multi"}
	}
	var entries []entry
	for _, e := range found {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	return &layer{entries: entries}, nil
}

var baseFiles = map[string]string{
	"etc/passwd":        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
	"etc/group":         "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
	"etc/nsswitch.conf": "hosts: files dns\n",
}

// build writes the layer's tar to dir once and records its digest and size.
func (l *layer) build(dir string) error {
	if l.file != "" {
		return nil
	}
	f, err := os.CreateTemp(dir, "layer-*.tar")
	if err != nil {
		return err
	}
	defer f.Close()
	hash := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(f, hash)}
	tw := tar.NewWriter(counter)
	for _, e := range l.entries {
		header := &tar.Header{Name: e.path, ModTime: epoch, Mode: e.mode, Format: tar.FormatPAX}
		var body io.ReadCloser
		switch {
		case e.link != "":
			header.Typeflag, header.Linkname, header.Mode = tar.TypeSymlink, e.link, 0o777
		case e.source != "":
			src, err := os.Open(e.source)
			if err != nil {
				return err
			}
			info, err := src.Stat()
			if err != nil {
				src.Close()
				return err
			}
			header.Typeflag, header.Size, body = tar.TypeReg, info.Size(), src
		case baseFiles[e.path] != "":
			content := baseFiles[e.path]
			header.Typeflag, header.Size, body = tar.TypeReg, int64(len(content)), io.NopCloser(strings.NewReader(content))
		default:
			header.Typeflag, header.Name = tar.TypeDir, e.path+"/"
		}
		if err := tw.WriteHeader(header); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		if body != nil {
			_, err := io.Copy(tw, body)
			body.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", e.path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	l.file, l.digest, l.size = f.Name(), hex.EncodeToString(hash.Sum(nil)), counter.n
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func write(out string, images []image) error {
	dir, err := os.MkdirTemp(filepath.Dir(out), ".images-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "images.tar")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	written := map[string]bool{}
	blob := func(digest string, size int64, body io.Reader) error {
		if written[digest] {
			return nil
		}
		written[digest] = true
		header := &tar.Header{Name: "blobs/sha256/" + digest, Mode: 0o644, Size: size, ModTime: epoch, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(header); err != nil {
			return err
		}
		_, err := io.Copy(tw, body)
		return err
	}
	jsonBlob := func(v any) (string, int64, error) {
		data, err := json.Marshal(v)
		if err != nil {
			return "", 0, err
		}
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		return digest, int64(len(data)), blob(digest, int64(len(data)), strings.NewReader(string(data)))
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	var manifests []descriptor
	for _, img := range images {
		var layers []descriptor
		var diffIDs []string
		for _, l := range img.layers {
			if err := l.build(dir); err != nil {
				return err
			}
			lf, err := os.Open(l.file)
			if err != nil {
				return err
			}
			err = blob(l.digest, l.size, lf)
			lf.Close()
			if err != nil {
				return err
			}
			layers = append(layers, descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: "sha256:" + l.digest, Size: l.size})
			diffIDs = append(diffIDs, "sha256:"+l.digest)
		}
		config := map[string]any{
			"architecture": "amd64", "os": "linux", "created": epoch.Format(time.RFC3339),
			"config": map[string]any{"Entrypoint": img.entrypoint, "Env": img.env},
			"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		}
		configDigest, configSize, err := jsonBlob(config)
		if err != nil {
			return err
		}
		manifest := map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: "sha256:" + configDigest, Size: configSize},
			"layers":        layers,
		}
		manifestDigest, manifestSize, err := jsonBlob(manifest)
		if err != nil {
			return err
		}
		for _, name := range img.names {
			manifests = append(manifests, descriptor{
				MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: "sha256:" + manifestDigest, Size: manifestSize,
				Platform:    map[string]string{"architecture": "amd64", "os": "linux"},
				Annotations: map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name[strings.LastIndex(name, ":")+1:]},
			})
		}
	}
	for _, member := range []struct {
		name  string
		value any
	}{
		{"oci-layout", map[string]string{"imageLayoutVersion": "1.0.0"}},
		{"index.json", map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}},
	} {
		name := member.name
		data, err := json.Marshal(member.value)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func fail(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

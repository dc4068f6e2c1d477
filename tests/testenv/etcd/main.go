// Command etcd is the etcd server and etcdctl at the version kubeadm deploys,
// for the etcd image of kubeforge's test environment and for tests that run
// an external etcd.
//
// The personality is the basename of argv[0] (symlinks named etcd and
// etcdctl) or, under any other name, the first argument.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/etcdctl/v3/ctlv3"
	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	name := filepath.Base(os.Args[0])
	if name != "etcd" && name != "etcdctl" {
		if len(os.Args) < 2 {
			fmt.Fprintf(os.Stderr, "usage: %s etcd|etcdctl [args...]\n", name)
			os.Exit(2)
		}
		os.Args = os.Args[1:]
		name = os.Args[0]
	}
	switch name {
	case "etcd":
		etcdmain.Main(os.Args)
	case "etcdctl":
		ctlv3.MustStart()
	default:
		fmt.Fprintf(os.Stderr, "unknown personality %q: etcd or etcdctl\n", name)
		os.Exit(2)
	}
}

// Command kubernetes is a multi-call binary holding the real Kubernetes
// components (control plane, kubelet, kube-proxy, kubectl and kubeadm) for
// kubeforge's test environment.
//
// The component is selected by the basename of argv[0] (symlinks named
// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
// kube-proxy, kubectl, kubeadm) or, when invoked under any other name, by the first argument
// (`kubernetes kube-apiserver --help`). Exactly one component runs per process;
// only the selected command is constructed.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	_ "time/tzdata" // CronJob time zone support, as in the upstream mains

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric registration
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeadmapp "k8s.io/kubernetes/cmd/kubeadm/app"
	kubeadmerrors "k8s.io/kubernetes/cmd/kubeadm/app/util/errors"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
)

// components maps a personality name to its entry point. Each entry point
// builds its command lazily and does not return normally.
var components = map[string]func(){
	"kube-apiserver": func() {
		os.Exit(cli.Run(apiserverapp.NewAPIServerCommand()))
	},
	"kube-controller-manager": func() {
		os.Exit(cli.Run(kcmapp.NewControllerManagerCommand()))
	},
	"kube-scheduler": func() {
		os.Exit(cli.Run(schedulerapp.NewSchedulerCommand()))
	},
	"kubectl": func() {
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
		if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
		os.Exit(0)
	},
	"kubeadm": func() {
		kubeadmerrors.HandleError(kubeadmapp.Run())
		os.Exit(0)
	},
	"kubelet": func() {
		os.Exit(cli.Run(kubeletapp.NewKubeletCommand(context.Background())))
	},
	"kube-proxy": func() {
		os.Exit(cli.Run(proxyapp.NewProxyCommand()))
	},
}

func names() string {
	n := make([]string, 0, len(components))
	for k := range components {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := components[name]; !ok {
		if len(os.Args) < 2 {
			fmt.Fprintf(os.Stderr, "usage: %s <component> [args...]\ncomponents: %s\n", name, names())
			os.Exit(2)
		}
		// Shift the component name into argv[0] so every component sees the
		// argument vector it would see as a standalone binary.
		os.Args = os.Args[1:]
		name = os.Args[0]
	}
	run, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown component %q; components: %s\n", name, names())
		os.Exit(2)
	}
	run()
}

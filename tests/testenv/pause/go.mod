module kubeforge.invalid/testenv/pause

go 1.26

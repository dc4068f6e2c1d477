module kubeforge.invalid/testenv/images

go 1.26

module kovenant.dev/bench/kernel_load

go 1.22
